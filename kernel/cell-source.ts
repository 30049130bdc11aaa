/**
 * Recent cells' TypeScript beside the JavaScript they were compiled to, so the library can log a function as
 * the user wrote it (`exp.logExperiment` hashes and stores the source) rather than as compiled (types
 * stripped, earlier cells' names as `exports.x`, async bodies rewritten into generators).
 *
 * A function's compiled text (`Function.prototype.toString`) is found in a cell's JavaScript; its position
 * among the function-like nodes of that JavaScript with the same name and parameter names is the position
 * of its TypeScript original among the TypeScript functions with that name and parameters. Compilation
 * keeps every function with a body and its parameter names (it only adds wrappers — the cell function,
 * enum IIFEs, generator bodies — which have other names or parameters), so the match is exact.
 */
import type * as TS from "@tslab/typescript-for-tslab";
import { type CellSourceLookup, setCellSourceLookup } from "../src/tools/cell-source";

/** Cells kept: enough for functions defined many cells before they are logged, bounded in memory. */
const MAX_CELLS = 200;
const MAX_CHARS = 8_000_000;

interface Cell {
  ts: string;
  js: string;
}

export class CellSources implements CellSourceLookup {
  private readonly cells: Cell[] = [];
  private chars = 0;

  constructor(private readonly ts: typeof TS) {}

  /** Called by the converter for every cell that compiled. */
  record(typescript: string, javascript: string): void {
    this.cells.push({ ts: typescript, js: javascript });
    this.chars += typescript.length + javascript.length;
    while (this.cells.length > MAX_CELLS || (this.chars > MAX_CHARS && this.cells.length > 1)) {
      const old = this.cells.shift()!;
      this.chars -= old.ts.length + old.js.length;
    }
  }

  typescriptOf(compiled: string): string | undefined {
    for (let i = this.cells.length - 1; i >= 0; i--) {
      const cell = this.cells[i];
      const at = cell.js.indexOf(compiled);
      if (at === -1) continue;
      const found = this.match(cell, at, compiled.length);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  private match(cell: Cell, at: number, length: number): string | undefined {
    const ts = this.ts;
    const tsFile = ts.createSourceFile("cell.ts", cell.ts, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    const tsFns = functionsIn(ts, tsFile, () => false);
    const wrappers = iifeNames(ts, tsFile);
    const jsFile = ts.createSourceFile("cell.js", cell.js, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
    const jsFns = functionsIn(ts, jsFile, (fn) => isCompilerWrapper(ts, fn, jsFile, wrappers));
    const target = jsFns.find((f) => f.start === at && f.end - f.start === length);
    if (!target) return undefined;
    const ordinal = jsFns.filter((f) => f.key === target.key && f.start < target.start).length;
    return tsFns.filter((f) => f.key === target.key)[ordinal]?.text;
  }
}

interface FunctionNode {
  /** Declared name (empty for arrows and anonymous functions) and parameter names. */
  key: string;
  start: number;
  end: number;
  text: string;
}

/** Every function-like node with a body, in source order, except those `skip` names. */
function functionsIn(ts: typeof TS, file: TS.SourceFile, skip: (fn: TS.FunctionLikeDeclaration) => boolean): FunctionNode[] {
  const out: FunctionNode[] = [];
  const visit = (node: TS.Node): void => {
    if (ts.isFunctionLike(node) && "body" in node && (node as { body?: unknown }).body && !skip(node as TS.FunctionLikeDeclaration)) {
      const fn = node as TS.FunctionLikeDeclaration;
      const params = fn.parameters.filter((p) => p.name.getText(file) !== "this").map((p) => p.name.getText(file).replace(/\s+/g, ""));
      out.push({ key: `${fn.name ? fn.name.getText(file) : ""}(${params.join(",")})`, start: fn.getStart(file), end: fn.getEnd(), text: fn.getText(file) });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return out;
}

/** Names of the cell's enums and namespaces, which compile to `(function (Name) { … })(…)`. */
function iifeNames(ts: typeof TS, file: TS.SourceFile): Set<string> {
  const names = new Set<string>();
  const visit = (node: TS.Node): void => {
    if ((ts.isEnumDeclaration(node) || ts.isModuleDeclaration(node)) && ts.isIdentifier(node.name)) names.add(node.name.text);
    ts.forEachChild(node, visit);
  };
  visit(file);
  return names;
}

/**
 * Functions the compiler and the kernel add: the cell function, the generator bodies of rewritten async code
 * (`__arrakis__.co(this, args, function* () { … })`) and enum/namespace IIFEs.
 */
function isCompilerWrapper(ts: typeof TS, fn: TS.FunctionLikeDeclaration, file: TS.SourceFile, iifes: Set<string>): boolean {
  if (fn.name?.getText(file) === "__arrakis_cell__") return true;
  const call = fn.parent;
  if (fn.asteriskToken && call && ts.isCallExpression(call) && call.expression.getText(file) === "__arrakis__.co") return true;
  if (ts.isFunctionExpression(fn) && fn.parameters.length === 1 && iifes.has(fn.parameters[0].name.getText(file))) {
    const paren = fn.parent;
    return !!paren && ts.isParenthesizedExpression(paren) && !!paren.parent && ts.isCallExpression(paren.parent);
  }
  return false;
}

/** The kernel's one instance, registered with the library as its cell-source lookup. */
export function installCellSources(ts: typeof TS): CellSources {
  const sources = new CellSources(ts);
  setCellSourceLookup(sources);
  return sources;
}
