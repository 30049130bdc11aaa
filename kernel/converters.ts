/**
 * tslab's converters (TypeScript type-check and transpile of each cell), wrapped for this kernel:
 *  - the JavaScript of every cell goes through rewriteAwaits (coroutine.ts) so async code is
 *    interruptible, and a top-level `for await` is flagged as top-level await (tslab misses it);
 *  - a cell that type-checked but then threw (or was interrupted) keeps its declarations, as in IPython
 *    where the assignments a failing cell made before the exception persist. tslab's executor only adopts
 *    a cell's declarations after the cell succeeded, so in the notebook cell
 *    `const text = "..."; attention.attentionPatterns(text, 0, 0)` failing on its second line used to
 *    make `text` unknown to every later cell. Names declared after the failure point type-check later but
 *    hold `undefined`.
 *  - a shorthand property naming an earlier cell's variable (`console.table({ clean })`) works: tslab
 *    rewrites such references to `exports.clean` but misses the shorthand form (it asks the checker for
 *    the property's symbol, not the variable's), which left `clean is not defined` at run time.
 */
import type * as TS from "@tslab/typescript-for-tslab";
import type { Converter } from "tslab/dist/converter";
import type { ConverterSet } from "tslab/dist/executor";
import { installCellSources } from "./cell-source";
import { rewriteAwaits } from "./coroutine";
import { kernelWarn } from "./log";

export interface KernelConverters {
  set: ConverterSet;
  /** The last converted cell failed at run time: later cells still see its declarations. */
  keepLastDeclarations(): void;
}

export function createConverters(ts: typeof TS): KernelConverters {
  const { createConverter } = require("tslab/dist/converter") as typeof import("tslab/dist/converter");
  let lastDecl: string | undefined;
  let carried: string | undefined;
  // The TypeScript of each compiled cell beside its JavaScript, for logging functions as written.
  const sources = installCellSources(ts);

  const wrap = (conv: Converter): Converter => ({
    ...conv,
    convert(prevDecl, src) {
      const declarations = carried ?? prevDecl;
      const r = conv.convert(declarations, src);
      if (r.diagnostics.length > 0) return r; // the carried declarations wait for the next cell that compiles
      carried = undefined;
      lastDecl = r.declOutput;
      if (r.output) {
        try {
          r.output = qualifyShorthandReferences(ts, r.output, declarations);
        } catch (e) {
          kernelWarn("shorthand rewrite failed; the cell runs as tslab converted it:", e);
        }
        try {
          const { output, topLevelAwait } = rewriteAwaits(ts, r.output);
          r.output = output;
          r.hasToplevelAwait ||= topLevelAwait;
        } catch (e) {
          kernelWarn("await rewrite failed; the cell runs without soft interrupts:", e);
        }
        sources.record(src, r.output);
      }
      return r;
    },
    inspect: (prevDecl, src, position) => conv.inspect(carried ?? prevDecl, src, position),
    complete: (prevDecl, src, position) => conv.complete(carried ?? prevDecl, src, position),
  });

  let node: Converter | undefined;
  let browser: Converter | undefined;
  const set: ConverterSet = {
    get node() {
      return (node ??= wrap(createConverter({ isJS: false, isBrowser: false })));
    },
    get browser() {
      return (browser ??= createConverter({ isJS: false, isBrowser: true }));
    },
    close() {
      node?.close();
      browser?.close();
    },
  };
  return {
    set,
    keepLastDeclarations() {
      if (lastDecl !== undefined) carried = lastDecl;
    },
  };
}

/** Names of the values declared at the top of a declarations file (what earlier cells left behind). */
export function declaredValueNames(ts: typeof TS, declarations: string): Set<string> {
  const names = new Set<string>();
  if (!declarations) return names;
  const file = ts.createSourceFile("prev.d.ts", declarations, ts.ScriptTarget.Latest);
  const addBinding = (name: TS.BindingName) => {
    if (ts.isIdentifier(name)) names.add(name.text);
    else for (const el of name.elements) if (!ts.isOmittedExpression(el)) addBinding(el.name);
  };
  for (const st of file.statements) {
    if (ts.isVariableStatement(st)) st.declarationList.declarations.forEach((d) => addBinding(d.name));
    else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isEnumDeclaration(st) || ts.isModuleDeclaration(st)) && st.name && ts.isIdentifier(st.name)) names.add(st.name.text);
  }
  return names;
}

/**
 * In a cell's JavaScript (tslab's output), turns `{ name }` into `{ name: exports.name }` where `name` is an
 * earlier cell's value (declared in `previousDeclarations`, the .d.ts text tslab keeps of earlier cells) and
 * nothing in the cell declares it (the checker cannot resolve it there). Shadowing is respected because
 * resolution is the checker's: `(x) => ({ x })` keeps its parameter.
 */
export function qualifyShorthandReferences(ts: typeof TS, js: string, previousDeclarations: string): string {
  if (!previousDeclarations || !js.includes("{")) return js;
  const fileName = "cell.js";
  const options: TS.CompilerOptions = { allowJs: true, noLib: true, noResolve: true, types: [], noEmit: true };
  const file = ts.createSourceFile(fileName, js, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const shorthands: TS.ShorthandPropertyAssignment[] = [];
  const visit = (node: TS.Node): void => {
    if (ts.isShorthandPropertyAssignment(node) && !node.objectAssignmentInitializer) shorthands.push(node);
    ts.forEachChild(node, visit);
  };
  visit(file);
  if (shorthands.length === 0) return js; // most cells: the earlier cells' declarations are not even parsed
  const previous = declaredValueNames(ts, previousDeclarations);
  const candidates = shorthands.filter((node) => previous.has(node.name.text));
  if (candidates.length === 0) return js;
  const host = ts.createCompilerHost(options);
  host.getSourceFile = (name) => (name === fileName ? file : undefined);
  host.fileExists = (name) => name === fileName;
  host.readFile = (name) => (name === fileName ? js : undefined);
  const checker = ts.createProgram([fileName], options, host).getTypeChecker();
  let out = js;
  // From the end, so earlier offsets stay valid.
  for (const node of candidates.reverse()) {
    if (checker.getShorthandAssignmentValueSymbol(node) !== undefined) continue; // declared in this cell
    const end = node.name.getEnd();
    out = `${out.slice(0, end)}: exports.${node.name.text}${out.slice(end)}`;
  }
  return out;
}
