/**
 * One error type for everything the library rejects, so notebook users (and tests) can tell a bad argument
 * from a bug. Messages always name the bad value and what was expected.
 */
export class ArrakisError extends Error {
  override name = "ArrakisError";
}

/** Throws an ArrakisError; handy in expressions (`x ?? fail("...")`). */
export function fail(message: string): never {
  throw new ArrakisError(message);
}

/** Formats a value for an error message (strings quoted, long arrays shortened). */
export function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) {
    const head = value.slice(0, 8).map(show).join(", ");
    return `[${head}${value.length > 8 ? `, … (${value.length} items)` : ""}]`;
  }
  if (typeof value === "number" || typeof value === "boolean" || value == null) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Checks `0 <= value < count` for an integer index such as a layer or head. */
export function checkIndex(what: string, value: unknown, count: number, unit = what + "s"): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    fail(`${what} must be an integer in [0, ${count - 1}], got ${show(value)}`);
  }
  if (value < 0 || value >= count) {
    fail(`${what} ${value} is out of range: the model has ${count} ${unit} (valid: 0..${count - 1})`);
  }
  return value;
}
