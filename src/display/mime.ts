/**
 * The one display protocol: anything that can show itself in a notebook has `toMimeBundle()`.
 *
 * A MIME bundle is what Jupyter's `display_data` / `execute_result` messages carry in `data`: keys are MIME
 * types, values are strings (text, HTML, base64 images) or JSON objects (Plotly / Vega-Lite specs). The kernel
 * calls `toMimeBundle` on a cell's last value and on whatever is passed to `display(...)`, and sends the result
 * as the message's `data` unchanged: this module is the only place a value becomes a bundle.
 */
import { inspect } from "node:util";

/** MIME type → payload. Always has "text/plain" so every frontend (and a terminal) shows something. */
export type MimeBundle = Record<string, unknown>;

/** An object that renders itself; tool results implement this. */
export interface Displayable {
  toMimeBundle(): MimeBundle;
}

/** True for objects (or functions) with a callable `toMimeBundle`. */
export function isDisplayable(x: unknown): x is Displayable {
  return (
    (typeof x === "object" || typeof x === "function") &&
    x !== null &&
    typeof (x as { toMimeBundle?: unknown }).toMimeBundle === "function"
  );
}

/** A tf.js tensor, recognised without importing tf.js (its own summarised `toString()` reads well). */
function isTensorLike(x: unknown): x is { toString(): string } {
  const t = x as { dataSync?: unknown; shape?: unknown; dtype?: unknown };
  return typeof x === "object" && x !== null && typeof t.dataSync === "function" && Array.isArray(t.shape) && typeof t.dtype === "string";
}

/** What Node's REPL would print, bounded so a huge array or string cannot flood the notebook. */
export function plainText(x: unknown): string {
  if (typeof x === "string") return x;
  if (isTensorLike(x)) {
    try {
      return x.toString();
    } catch {
      // A disposed tensor cannot print its values; fall through to the inspection.
    }
  }
  return inspect(x, { depth: 4, maxArrayLength: 100, maxStringLength: 10_000, breakLength: 100 });
}

/**
 * Checks a bundle someone built and makes it JSON-safe: binary values become base64 (Jupyter carries binary
 * as base64 in JSON), undefined entries are dropped, and a missing "text/plain" is filled by `fallbackText`.
 */
export function completeBundle(bundle: unknown, fallbackText: () => string): MimeBundle {
  if (typeof bundle !== "object" || bundle === null || Array.isArray(bundle)) {
    // Not an ArrakisError: a broken toMimeBundle is a bug in the object, not a bad user argument.
    throw new TypeError(`toMimeBundle() must return an object of MIME type → data, got ${inspect(bundle)}`);
  }
  const out: MimeBundle = {};
  for (const [mime, v] of Object.entries(bundle)) {
    if (v === undefined) continue;
    out[mime] = v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v;
  }
  if (typeof out["text/plain"] !== "string") out["text/plain"] = fallbackText();
  return out;
}

/**
 * The bundle for any value: a Displayable's own bundle (given a "text/plain" if it forgot one), otherwise
 * plain text as Node's REPL would print it (a tensor's own summary, strings as they are).
 */
export function toMimeBundle(x: unknown): MimeBundle {
  if (isDisplayable(x)) return completeBundle(x.toMimeBundle(), () => inspect(x, { depth: 2, breakLength: 100 }));
  return { "text/plain": plainText(x) };
}
