/**
 * Turning values into MIME bundles for `execute_result` / `display_data` (messaging spec, "Display Data").
 *
 * A Displayable (any object with a `toMimeBundle()` method, the contract of `src/display`) is sent whole:
 * several representations in one message so each frontend picks the richest it can render. Everything
 * else gets `text/plain` in Node's REPL format (strings quoted, objects inspected), and tf.js tensors their
 * own summarised `toString()` instead of an inspection of the tensor object's internals.
 * Every bundle carries `text/plain`, which the spec asks for as the fallback.
 */
import util from "util";

export type MimeBundle = Record<string, unknown>;

export interface Displayable {
  toMimeBundle(): MimeBundle;
}

export function isDisplayable(x: unknown): x is Displayable {
  return typeof x === "object" && x !== null && typeof (x as { toMimeBundle?: unknown }).toMimeBundle === "function";
}

function isTensorLike(x: unknown): x is { toString(verbose?: boolean): string } {
  const t = x as { dataSync?: unknown; shape?: unknown; dtype?: unknown };
  return typeof x === "object" && x !== null && typeof t.dataSync === "function" && Array.isArray(t.shape) && typeof t.dtype === "string";
}

export function plainText(x: unknown): string {
  if (isTensorLike(x)) {
    try {
      return x.toString();
    } catch {
      // A disposed tensor cannot print its values; fall through to the inspection.
    }
  }
  return util.inspect(x, { depth: 4, maxArrayLength: 100, maxStringLength: 10_000, breakLength: 100 });
}

/** JSON-safe bundle values: binary becomes base64 (spec: binary data is base64-encoded in JSON). */
function normalise(bundle: MimeBundle): MimeBundle {
  const out: MimeBundle = {};
  for (const [mime, v] of Object.entries(bundle)) {
    if (v === undefined) continue;
    out[mime] = v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v;
  }
  return out;
}

let libraryFormatter: ((x: unknown) => MimeBundle) | undefined;

/** Lets the library's `toMimeBundle` (src/display) format plain values too, once it is loaded. */
export function setLibraryFormatter(fn: ((x: unknown) => MimeBundle) | undefined): void {
  libraryFormatter = fn;
}

/** Validates a raw bundle, base64-encodes binary values and adds `text/plain` when it is missing. */
export function completeBundle(bundle: unknown, fallbackText: () => string): MimeBundle {
  if (typeof bundle !== "object" || bundle === null || Array.isArray(bundle)) {
    throw new TypeError("a MIME bundle must be an object mapping MIME types to data");
  }
  const out = normalise(bundle as MimeBundle);
  if (typeof out["text/plain"] !== "string") out["text/plain"] = fallbackText();
  return out;
}

function checked(bundle: unknown, x: unknown): MimeBundle {
  return completeBundle(bundle, () => (isDisplayable(x) ? util.inspect(x, { depth: 0 }) : plainText(x)));
}

/** The bundle for one value. A Displayable whose toMimeBundle throws surfaces the error to the caller. */
export function toBundle(x: unknown): MimeBundle {
  if (isDisplayable(x)) return checked(libraryFormatter ? libraryFormatter(x) : x.toMimeBundle(), x);
  if (isTensorLike(x)) return { "text/plain": plainText(x) };
  if (libraryFormatter) {
    try {
      return checked(libraryFormatter(x), x);
    } catch {
      // The library could not format this value; the kernel's plain text is always available.
    }
  }
  return { "text/plain": plainText(x) };
}
