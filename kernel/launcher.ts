/**
 * Starts the Arrakis kernel: tslab's converter and executor (wrapped: package resolution from the project,
 * interruptible async code, captured results), our handler and transport, then the prelude.
 *
 * The working directory is left where Jupyter put it (the notebook's folder), so relative paths in cells
 * and local `.ts` imports behave as the user expects; only package resolution looks at the project.
 */
import type * as TS from "@tslab/typescript-for-tslab";
import { createConverters } from "./converters";
import { CoroutineRuntime } from "./coroutine";
import { CellRunner } from "./execute";
import { ArrakisHandler } from "./handler";
import { InterruptState } from "./interrupt-state";
import { kernelInfo, kernelLog, kernelWarn, writeKernelStderr } from "./log";
import { OutcomeRecorder } from "./outcome";
import { ensureProcessHandlers, installProcessHandlers, refuseProcessExit } from "./process-handlers";
import { projectRoot, tslabDir, tslabRequire } from "./paths";
import { PRELOAD_GLOBAL, preparePrelude } from "./prelude";
import { forwardTypeResolution, wrapCellRequire } from "./resolve";
import { installOpInterrupts } from "./tf-interrupt";
import { ArrakisServer } from "./server";

export interface KernelOptions {
  connectionFile: string;
  /** Model for the prelude (kernelspec --model); ARRAKIS_MODEL overrides it. */
  model?: string;
}

/** Soft interrupts get this long to land at an await before the control worker sends SIGINT. */
const DEFAULT_GRACE_MS = 1000;

export async function startKernel(opts: KernelOptions): Promise<void> {
  const t0 = Date.now();
  kernelLog(`starting in ${process.cwd()} (package ${projectRoot()}, tslab ${tslabDir()})`);
  const ts = tslabRequire("@tslab/typescript-for-tslab") as typeof TS;
  forwardTypeResolution(ts, process.cwd());

  const { createExecutor } = require("tslab/dist/executor") as typeof import("tslab/dist/executor");
  const convs = createConverters(ts);
  void convs.set.node; // building the TypeScript program takes seconds; do it before binding sockets
  const recorder = new OutcomeRecorder();
  const executor = createExecutor(process.cwd(), convs.set, recorder.console);
  const tslabGlobal = (globalThis as unknown as { __tslab__: { require: NodeJS.Require } }).__tslab__;
  tslabGlobal.require = wrapCellRequire(tslabGlobal.require) as NodeJS.Require;

  const state = new InterruptState();
  const runtime = new CoroutineRuntime(state);
  runtime.install();
  const runner = new CellRunner(executor, recorder, runtime, state, convs);
  const handler = new ArrakisHandler(executor, runner, state, ts);

  const graceMs = Number(process.env.ARRAKIS_INTERRUPT_GRACE_MS) || DEFAULT_GRACE_MS;
  const zeromqPath = require.resolve("zeromq", { paths: [tslabDir()] });
  const server = new ArrakisServer(handler, { connectionFile: opts.connectionFile, zeromqPath, state, interruptGraceMs: graceMs });

  // SIGINT outside a watchdog-guarded step lands here (Node's default would exit the process).
  installProcessHandlers({
    sigint: () => handler.onSigint(),
    sigterm: () => void server.shutdown(),
    background: (kind, e) => handler.backgroundError(kind, e),
  });
  refuseProcessExit();

  await server.start();
  kernelLog(`listening (${Date.now() - t0} ms); running the prelude`);
  handler.setPrelude(
    runPrelude(runner, opts.model, t0).then((p) => {
      ensureProcessHandlers();
      installOpInterrupts(p.tf, state);
      return p;
    }),
  );
}

/** Runs the prelude with cell output routed to the kernel log. */
async function runPrelude(runner: CellRunner, model: string | undefined, startedAt: number) {
  const t0 = Date.now();
  const out = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => writeKernelStderr(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString())) as typeof process.stdout.write;
  try {
    const plan = await preparePrelude(model);
    const result = await runner.run(plan.source);
    if (result.error) kernelWarn("prelude cell failed:", result.error.evalue);
    kernelLog(`prelude done in ${Date.now() - t0} ms: ${plan.names.join(", ")}`);
    // The one line a normal start prints (everything else above is debug detail).
    kernelInfo(`ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s: ${plan.summary}; preloaded ${plan.names.join(", ")}`);
    delete (globalThis as Record<string, unknown>)[PRELOAD_GLOBAL];
    return plan.preloaded;
  } finally {
    process.stdout.write = out;
  }
}
