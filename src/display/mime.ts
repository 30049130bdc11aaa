/**
 * The one display protocol: anything that can show itself in a notebook has `toMimeBundle()`.
 *
 * A MIME bundle is what Jupyter's `display_data` / `execute_result` messages carry in `data`: keys are MIME
 * types, values are strings (text, HTML, base64 images) or JSON objects (Plotly / Vega-Lite specs). The kernel
 * calls `toMimeBundle` on a cell's last value and on whatever is passed to `display(...)`.
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

/**
 * The bundle for any value: a Displayable's own bundle (given a "text/plain" if it forgot one), otherwise
 * `util.inspect` text, which is what Node's REPL would print.
 */
export function toMimeBundle(x: unknown): MimeBundle {
  if (isDisplayable(x)) {
    const bundle = x.toMimeBundle();
    if (typeof bundle !== "object" || bundle === null || Array.isArray(bundle)) {
      // Not an ArrakisError: a broken toMimeBundle is a bug in the object, not a bad user argument.
      throw new TypeError(`toMimeBundle() must return an object of MIME type → data, got ${inspect(bundle)}`);
    }
    if (typeof bundle["text/plain"] === "string") return bundle;
    return { ...bundle, "text/plain": inspect(x, { depth: 2, breakLength: 100 }) };
  }
  return { "text/plain": typeof x === "string" ? x : inspect(x, { depth: 4, breakLength: 100 }) };
}
