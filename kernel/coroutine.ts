/**
 * Interruptible async cells.
 *
 * Node runs a cell's continuations (the code after each `await`) from V8's microtask queue, where nothing
 * can stop them: tslab's interrupt only stops *waiting* for the cell and leaves it running in the
 * background, with whatever hooks or ablations it had applied. We instead rewrite each async function of
 * a cell (and the cell's top level when it uses top-level await) into a generator that this runtime
 * drives step by step, which gives two interrupt points:
 *
 *  - soft: at every step boundary (every `await` in cell code) the runtime checks the shared interrupt
 *    flag and throws an InterruptError *into* the generator, so the cell's own `finally` blocks (and the
 *    library's, e.g. restoring an ablated head) run. A suspended cell is thrown into immediately.
 *    (tf-interrupt.ts adds the same check to every tf.js op, for synchronous code.)
 *  - hard: a step that has been slow is run inside `vm.Script#runInThisContext({ breakOnSigint: true })`,
 *    which is Node's supported way to terminate running JavaScript on SIGINT (the same watchdog the REPL
 *    uses). The control worker sends SIGINT when the cell is still running after its grace period
 *    (pure JavaScript that neither awaits nor calls tf.js).
 *    Terminated code skips its `finally` blocks; the kernel then resets model hooks and tf.js scopes.
 *
 * The watchdog costs ~0.2 ms to arm at the outermost level and ~5 µs when nested, so fast steps (tight
 * await loops) run unguarded and only steps whose previous run took SLOW_STEP_MS or more are guarded.
 * Functions the rewrite cannot express as generators (`for await`, `super`, `arguments` in an arrow) stay
 * native: their awaits are still soft-interruptible at the enclosing cell's next step, not inside.
 */
import vm from "vm";
import { performance } from "perf_hooks";
import type * as TS from "@tslab/typescript-for-tslab";
import { InterruptState } from "./interrupt-state";

type Ts = typeof TS;

/** Steps slower than this arm the SIGINT watchdog on their next run. */
const SLOW_STEP_MS = 4;
/** Global through which rewritten cell code reaches the runtime (cells are sloppy-mode scripts). */
export const RUNTIME_GLOBAL = "__arrakis__";
const CELL_FN = "__arrakis_cell__";

export class InterruptError extends Error {
  override name = "InterruptError";
  constructor(readonly hard: boolean) {
    super(
      hard
        ? "execution interrupted inside synchronous code (its finally blocks did not run; the kernel restored ablations and reset model hooks)"
        : "execution interrupted",
    );
  }
}

/** True for the error Node throws when the SIGINT watchdog terminated a vm script. */
export function isSigintTermination(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { code?: unknown }).code === "ERR_SCRIPT_EXECUTION_INTERRUPTED";
}

interface Task {
  exec: number;
  gen: Generator<unknown, unknown, unknown>;
  /** Bumped on every suspension; a resumption for an older suspension is stale and dropped. */
  suspension: number;
  running: boolean;
  done: boolean;
  lastStepMs: number;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

export class CoroutineRuntime {
  /** The execution new coroutines belong to (0 between cells). */
  currentExec = 0;
  private readonly tasks = new Set<Task>();
  private readonly hardExecs = new Set<number>();
  private guardDepth = 0;
  private pendingStep: (() => unknown) | undefined;
  private readonly stepScript = new vm.Script(`${RUNTIME_GLOBAL}.step()`, { filename: "arrakis-step" });

  constructor(private readonly state: InterruptState) {}

  /** Exposes `co` and `step` to cell code. */
  install(): void {
    (globalThis as Record<string, unknown>)[RUNTIME_GLOBAL] = {
      co: (thisArg: unknown, args: ArrayLike<unknown> | undefined, genFn: (...a: unknown[]) => Generator) =>
        this.co(thisArg, args, genFn),
      step: () => {
        const f = this.pendingStep;
        this.pendingStep = undefined;
        return f!();
      },
    };
  }

  /** Runs `fn` while a SIGINT watchdog is known to be armed (tslab's own breakOnSigint run of a cell). */
  underWatchdog<T>(fn: () => T): T {
    this.guardDepth++;
    try {
      return fn();
    } finally {
      this.guardDepth--;
    }
  }

  /** Records that SIGINT terminated code of execution `exec` outside a coroutine step. */
  markHard(exec: number): void {
    this.hardExecs.add(exec);
  }

  /** Whether an execution lost code to a hard (SIGINT) interrupt; clears the record. */
  takeHard(exec: number): boolean {
    const had = this.hardExecs.delete(exec);
    return had;
  }

  /**
   * Throws an InterruptError into every suspended coroutine of `exec`, newest first, if the pending
   * request was not already delivered at an await or a tf.js op. Returns how many were thrown into.
   */
  interruptSuspended(exec: number): number {
    if (!this.state.takeInterrupt(exec)) return 0;
    const victims = [...this.tasks].filter((t) => t.exec === exec && !t.running && !t.done).reverse();
    for (const t of victims) {
      if (t.done || t.running) continue; // an earlier victim's finally may have finished it
      t.suspension++;
      this.step(t, "throw", new InterruptError(false));
    }
    return victims.length;
  }

  /** Number of unfinished coroutines of an execution (a background loop may outlive its cell). */
  liveCount(exec: number): number {
    let n = 0;
    for (const t of this.tasks) if (t.exec === exec && !t.done) n++;
    return n;
  }

  private co(thisArg: unknown, args: ArrayLike<unknown> | undefined, genFn: (...a: unknown[]) => Generator): Promise<unknown> {
    const gen = genFn.apply(thisArg, Array.from(args ?? []));
    return new Promise((resolve, reject) => {
      const task: Task = { exec: this.currentExec, gen, suspension: 0, running: false, done: false, lastStepMs: 0, resolve, reject };
      this.tasks.add(task);
      this.step(task, "next", undefined);
    });
  }

  private finish(task: Task): void {
    task.done = true;
    this.tasks.delete(task);
  }

  private step(task: Task, kind: "next" | "throw", arg: unknown): void {
    if (kind === "next" && this.state.takeInterrupt(task.exec)) {
      kind = "throw";
      arg = new InterruptError(false);
    }
    const guarded = this.guardDepth > 0 || task.lastStepMs >= SLOW_STEP_MS;
    const t0 = performance.now();
    let r: IteratorResult<unknown, unknown>;
    task.running = true;
    try {
      r = guarded ? this.runGuarded(() => task.gen[kind](arg)) : task.gen[kind](arg);
    } catch (e) {
      task.running = false;
      this.finish(task);
      if (isSigintTermination(e)) {
        this.hardExecs.add(task.exec);
        task.reject(new InterruptError(true));
      } else {
        task.reject(e);
      }
      return;
    } finally {
      task.lastStepMs = performance.now() - t0;
    }
    task.running = false;
    if (r.done) {
      this.finish(task);
      task.resolve(r.value);
      return;
    }
    const token = ++task.suspension;
    Promise.resolve(r.value).then(
      (v) => this.resume(task, token, "next", v),
      (e) => this.resume(task, token, "throw", e),
    );
  }

  private resume(task: Task, token: number, kind: "next" | "throw", v: unknown): void {
    if (task.done || token !== task.suspension) return;
    this.step(task, kind, v);
  }

  private runGuarded<T>(fn: () => T): T {
    this.pendingStep = fn;
    this.guardDepth++;
    try {
      return this.stepScript.runInThisContext({ breakOnSigint: true }) as T;
    } finally {
      this.guardDepth--;
    }
  }
}

/**
 * Rewrites the JavaScript tslab produced for a cell so its async functions (and its top level, when it
 * awaits) run on the runtime above: `async function f(a) { B }` becomes
 * `function f(a) { return __arrakis__.co(this, arguments, function* () { B' }) }` with each `await e`
 * in B replaced by `(yield e)`, the same shape TypeScript's own ES2017 downlevel (`__awaiter`) uses.
 * Code without `await` is returned unchanged.
 *
 * `topLevelAwait` reports whether the cell awaits at its top level. tslab's own flag misses a top-level
 * `for await`, and its executor then runs the cell in a plain function, where that is a syntax error.
 */
export function rewriteAwaits(ts: Ts, js: string): { output: string; topLevelAwait: boolean } {
  if (!/\bawait\b/.test(js)) return { output: js, topLevelAwait: false };
  const src = `async function ${CELL_FN}(exports, require) {\n${js}\n}\n`;
  const sf = ts.createSourceFile("cell.js", src, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const cell = sf.statements[0] as TS.FunctionDeclaration;
  const topLevelAwait = awaitsOutsideFunctions(ts, cell.body!);
  const result = ts.transform(sf, [(ctx) => (root) => rewriteFile(ts, ctx, root, topLevelAwait)]);
  const printed = ts.createPrinter({ newLine: ts.NewLineKind.LineFeed }).printFile(result.transformed[0]);
  result.dispose();
  return { output: `${printed}\nreturn ${CELL_FN}.call(this, exports, require);\n`, topLevelAwait };
}

/** Whether `node` awaits (`await`, `for await`) other than inside a nested function. */
function awaitsOutsideFunctions(ts: Ts, node: TS.Node): boolean {
  let found = false;
  const scan = (n: TS.Node): void => {
    if (found || ts.isFunctionLike(n)) return;
    if (ts.isAwaitExpression(n) || (ts.isForOfStatement(n) && n.awaitModifier)) found = true;
    else ts.forEachChild(n, scan);
  };
  ts.forEachChild(node, scan);
  return found;
}

function rewriteFile(ts: Ts, ctx: TS.TransformationContext, root: TS.SourceFile, topLevelAwait: boolean): TS.SourceFile {
  const f = ctx.factory;
  const isAsync = (n: TS.Node) => (ts.canHaveModifiers(n) ? ts.getModifiers(n) ?? [] : []).some((m) => m.kind === ts.SyntaxKind.AsyncKeyword);

  /** Whether the function's body can move into a generator without changing meaning. */
  function rewritable(fn: TS.FunctionLikeDeclaration): boolean {
    let ok = true;
    const arrow = ts.isArrowFunction(fn);
    const scan = (n: TS.Node, ownBody: boolean): void => {
      if (!ok) return;
      if (ts.isFunctionLike(n) && !ts.isArrowFunction(n)) return; // own this/arguments/super
      if (ownBody && ts.isForOfStatement(n) && n.awaitModifier) ok = false; // `for await` needs an async function
      if (n.kind === ts.SyntaxKind.SuperKeyword) ok = false; // `super` is a syntax error in a nested function*
      if (arrow && ts.isIdentifier(n) && n.text === "arguments") ok = false; // would see the generator's
      ts.forEachChild(n, (c) => scan(c, ownBody && !ts.isArrowFunction(c)));
    };
    if (fn.body) ts.forEachChild(fn.body, (c) => scan(c, !ts.isArrowFunction(c)));
    return ok;
  }

  function rewrite(fn: TS.FunctionLikeDeclaration): TS.Node {
    const body = ts.visitNode(fn.body!, (n) => visit(n, true)) as TS.ConciseBody;
    const genBody = ts.isBlock(body) ? body : f.createBlock([f.createReturnStatement(body as TS.Expression)], true);
    const gen = f.createFunctionExpression(undefined, f.createToken(ts.SyntaxKind.AsteriskToken), undefined, undefined, [], undefined, genBody);
    const arrow = ts.isArrowFunction(fn);
    const call = f.createCallExpression(f.createPropertyAccessExpression(f.createIdentifier(RUNTIME_GLOBAL), "co"), undefined, [
      f.createThis(),
      arrow ? f.createVoidZero() : f.createIdentifier("arguments"),
      gen,
    ]);
    const mods = (ts.getModifiers(fn) ?? []).filter((m) => m.kind !== ts.SyntaxKind.AsyncKeyword);
    const params = ts.visitNodes(fn.parameters, (n) => visit(n, false)) as TS.NodeArray<TS.ParameterDeclaration>;
    const block = f.createBlock([f.createReturnStatement(call)], true);
    if (ts.isArrowFunction(fn)) return f.updateArrowFunction(fn, mods, fn.typeParameters, params, fn.type, fn.equalsGreaterThanToken, call);
    if (ts.isFunctionDeclaration(fn)) return f.updateFunctionDeclaration(fn, mods, undefined, fn.name, fn.typeParameters, params, fn.type, block);
    if (ts.isFunctionExpression(fn)) return f.updateFunctionExpression(fn, mods, undefined, fn.name, fn.typeParameters, params, fn.type, block);
    if (ts.isMethodDeclaration(fn)) {
      const decos = (fn.modifiers ?? []).filter((m) => m.kind !== ts.SyntaxKind.AsyncKeyword) as TS.ModifierLike[];
      return f.updateMethodDeclaration(fn, decos, undefined, fn.name, fn.questionToken, fn.typeParameters, params, fn.type, block);
    }
    return ts.visitEachChild(fn, (n) => visit(n, false), ctx);
  }

  function visit(node: TS.Node, inGenerator: boolean): TS.Node {
    if (inGenerator && ts.isAwaitExpression(node)) {
      return f.createParenthesizedExpression(f.createYieldExpression(undefined, ts.visitNode(node.expression, (n) => visit(n, true)) as TS.Expression));
    }
    if (ts.isFunctionLike(node)) {
      const fn = node as TS.FunctionLikeDeclaration;
      if (fn.body && isAsync(fn) && !fn.asteriskToken && rewritable(fn)) return rewrite(fn);
      return ts.visitEachChild(node, (n) => visit(n, false), ctx);
    }
    return ts.visitEachChild(node, (n) => visit(n, inGenerator), ctx);
  }

  // The cell function was parsed as async so that any await parses; without top-level awaits it is a
  // plain function again (tslab runs it synchronously, under its SIGINT watchdog).
  const [cell, ...rest] = root.statements;
  let top = visit(cell, false) as TS.FunctionDeclaration;
  if (!topLevelAwait && isAsync(top)) {
    const mods = (ts.getModifiers(top) ?? []).filter((m) => m.kind !== ts.SyntaxKind.AsyncKeyword);
    top = f.updateFunctionDeclaration(top, mods, undefined, top.name, undefined, top.parameters, undefined, top.body);
  }
  return f.updateSourceFile(root, [top, ...rest]);
}
