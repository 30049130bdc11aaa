/**
 * The TypeScript of a function as the user wrote it in a notebook cell.
 *
 * In the kernel a cell is type-checked and compiled to JavaScript before it runs, so `String(fn)` is the
 * compiled text (types stripped, earlier cells' names as `exports.x`, async bodies rewritten). The kernel
 * keeps the recent cells' TypeScript beside their JavaScript and registers a lookup here; the experiment log
 * asks it for the original text of a function. Outside the kernel there is no lookup and callers fall back to
 * `String(fn)`. The lookup is kept on a global symbol so that a kernel and a library loaded from different
 * paths (tsx vs dist) still meet.
 */

/** What the kernel provides. */
export interface CellSourceLookup {
  /** The TypeScript text of the function whose compiled text (`Function.prototype.toString`) is `compiled`. */
  typescriptOf(compiled: string): string | undefined;
}

const KEY = Symbol.for("arrakis-ts.cellSourceLookup");
type Holder = { [KEY]?: CellSourceLookup };

/** Called by the kernel once its converter records cells; undefined removes the lookup. */
export function setCellSourceLookup(lookup: CellSourceLookup | undefined): void {
  (globalThis as Holder)[KEY] = lookup;
}

/** The notebook cell's TypeScript for `fn`, or undefined when not in the kernel or not found. */
export function cellSourceOf(fn: (...args: never[]) => unknown): string | undefined {
  const lookup = (globalThis as Holder)[KEY];
  if (!lookup || typeof fn !== "function") return undefined;
  try {
    return lookup.typescriptOf(Function.prototype.toString.call(fn));
  } catch {
    return undefined; // a lookup that fails must never stop an experiment; the compiled text is logged instead
  }
}
