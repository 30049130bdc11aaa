/**
 * The kernel's process-level listeners: SIGINT (without a listener Node exits on it), SIGTERM, and
 * uncaught exceptions / unhandled rejections from cell callbacks (which must not end the kernel).
 *
 * They are re-ensured after the prelude and after every cell because code we load removes them:
 * tfjs-backend-wasm 4.22's glue computes the listeners it added as
 * `filter(l => !before.indexOf(l) > -1)`, which is every listener, and removes them all — measured: after
 * the backend initialised, `process.listeners("uncaughtException")` was empty and the next exception
 * thrown from a cell's setTimeout killed the kernel.
 */
import { kernelLog } from "./log";

type Listener = (...args: any[]) => void;
const installed: [NodeJS.Signals | "uncaughtException" | "unhandledRejection", Listener][] = [];

export function installProcessHandlers(h: { sigint(): void; sigterm(): void }): void {
  installed.push(
    ["SIGINT", () => h.sigint()],
    ["SIGTERM", () => h.sigterm()],
    [
      "uncaughtException",
      (e: unknown) => {
        kernelLog("uncaught exception:", e);
        console.error("Uncaught exception (from a callback or timer):", e);
      },
    ],
    [
      "unhandledRejection",
      (reason: unknown) => {
        kernelLog("unhandled rejection:", reason);
        console.error("Unhandled promise rejection:", reason);
      },
    ],
  );
  ensureProcessHandlers();
}

/** Re-adds any of our listeners that something removed. */
export function ensureProcessHandlers(): void {
  for (const [event, listener] of installed) {
    if (!process.listeners(event as "SIGINT").includes(listener)) {
      process.on(event as "SIGINT", listener);
      kernelLog(`re-installed the ${event} listener (loaded code had removed it)`);
    }
  }
}
