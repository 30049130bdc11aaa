/** Argument checks shared by the views: each error names the prop, the bad value and what was expected. */
import { fail, show } from "../errors";

export function checkTokens(view: string, tokens: unknown, min = 1): string[] {
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== "string")) {
    fail(`${view}: tokens must be an array of strings, got ${show(tokens)}`);
  }
  if (tokens.length < min) fail(`${view}: tokens must have at least ${min} entr${min === 1 ? "y" : "ies"}, got ${tokens.length}`);
  return tokens as string[];
}

export function checkNumbers(view: string, name: string, xs: unknown, length?: number): number[] {
  if (!Array.isArray(xs)) fail(`${view}: ${name} must be an array of numbers, got ${show(xs)}`);
  const bad = (xs as unknown[]).findIndex((x) => typeof x !== "number" || !Number.isFinite(x));
  if (bad >= 0) fail(`${view}: ${name}[${bad}] must be a finite number, got ${show((xs as unknown[])[bad])}`);
  if (length !== undefined && xs.length !== length) {
    fail(`${view}: ${name} must have ${length} entries, got ${xs.length}`);
  }
  return xs as number[];
}

export function checkInt(view: string, name: string, x: unknown, min = 0, max = Infinity): number {
  if (typeof x !== "number" || !Number.isInteger(x) || x < min || x > max) {
    const range = max === Infinity ? `an integer ≥ ${min}` : `an integer in [${min}, ${max}]`;
    fail(`${view}: ${name} must be ${range}, got ${show(x)}`);
  }
  return x;
}

/** A rectangular matrix of finite numbers with the given shape (columns unchecked when undefined). */
export function checkMatrix(view: string, name: string, m: unknown, rows?: number, cols?: number): number[][] {
  if (!Array.isArray(m)) fail(`${view}: ${name} must be an array of rows, got ${show(m)}`);
  if (rows !== undefined && m.length !== rows) fail(`${view}: ${name} must have ${rows} rows, got ${m.length}`);
  if (m.length === 0) fail(`${view}: ${name} must not be empty`);
  const width = cols ?? (Array.isArray(m[0]) ? m[0].length : -1);
  m.forEach((row, i) => checkNumbers(view, `${name}[${i}]`, row, width));
  return m as number[][];
}

/** Default for an optional prop, rejecting wrong types rather than silently using the default. */
export function optional<T>(view: string, name: string, value: T | undefined, fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== typeof fallback) {
    fail(`${view}: ${name} must be a ${typeof fallback}, got ${show(value)}`);
  }
  return value;
}
