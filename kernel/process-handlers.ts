/**
 * The kernel's process-level listeners: SIGINT (without a listener Node exits on it), SIGTERM, and
 * uncaught exceptions / unhandled rejections from cell callbacks (which must not end the kernel; they are
 * handed to `background`, which shows them in a notebook output).
 *
 * They are re-ensured after the prelude and after every cell because code we load removes them:
 * tfjs-backend-wasm 4.22's glue computes the listeners it added as
 * `filter(l => !before.indexOf(l) > -1)`, which is every listener, and removes them all — measured: after
 * the backend initialised, `process.listeners("uncaughtException")` was empty and the next exception
 * thrown from a cell's setTimeout killed the kernel.
 *
 * `process.exit()` is refused while the kernel runs: from a cell it would end the kernel in the middle of
 * a request (the frontend sees it die, and an exit with the control thread's sockets open aborts the
 * process natively). The kernel itself exits through `exitKernel`.
 */
import { kernelLog } from "./log";

type Listener = (...args: any[]) => void;
const installed: [NodeJS.Signals | "uncaughtException" | "unhandledRejection", Listener][] = [];

export interface ProcessHooks {
  sigint(): void;
  sigterm(): void;
  /** An error nobody caught: thrown by a timer or callback, or a promise rejected with no handler. */
  background(kind: string, e: unknown): void;
}

export function installProcessHandlers(h: ProcessHooks): void {
  installed.push(
    ["SIGINT", () => h.sigint()],
    ["SIGTERM", () => h.sigterm()],
    ["uncaughtException", (e: unknown) => h.background("Uncaught exception (from a callback or timer)", e)],
    ["unhandledRejection", (reason: unknown) => h.background("Unhandled promise rejection", reason)],
  );
  ensureProcessHandlers(false);
}

/** Re-adds any of our listeners that something removed. */
export function ensureProcessHandlers(note = true): void {
  for (const [event, listener] of installed) {
    if (!process.listeners(event as "SIGINT").includes(listener)) {
      process.on(event as "SIGINT", listener);
      if (note) kernelLog(`re-installed the ${event} listener (loaded code had removed it)`);
    }
  }
}

/** The real `process.exit`, for the kernel's own shutdown. */
export const exitKernel: (code?: number) => never = process.exit.bind(process);

export class ExitRefusedError extends Error {
  override name = "ExitRefusedError";
}

/** Makes `process.exit()` throw a clear error instead of killing the kernel. */
export function refuseProcessExit(): void {
  process.exit = ((code?: number) => {
    throw new ExitRefusedError(
      `process.exit(${code ?? ""}) is refused in a notebook: it would kill the kernel and every variable with it. ` +
        "To start over, restart the kernel (Kernel > Restart); to stop it, shut it down (Kernel > Shut Down).",
    );
  }) as typeof process.exit;
}
