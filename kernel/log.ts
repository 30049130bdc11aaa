/**
 * The kernel log. Jupyter collects a kernel's stderr into its own log; cells must never see these lines.
 * Once a cell runs, `process.stdout/stderr.write` are pointed at IOPub (as tslab and ipykernel do), so we
 * keep the original stderr writer from before that happens.
 *
 * Levels: a normal start writes one `info` line (ready, backend, model); `warn` is for what a user or an
 * administrator should act on; `debug` is the running commentary (listeners re-installed, prelude steps,
 * interrupts), shown only when ARRAKIS_LOG_LEVEL=debug (or `arrakis-ts kernel --log-level debug`).
 */
import util from "util";

const rawStderrWrite = process.stderr.write.bind(process.stderr);

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_LEVEL_ENV = "ARRAKIS_LOG_LEVEL";

/** The level in force: ARRAKIS_LOG_LEVEL (read on each call, so the CLI can set it), else "info". */
export function logLevel(): LogLevel {
  const v = (process.env[LOG_LEVEL_ENV] ?? "").toLowerCase();
  return (LOG_LEVELS as readonly string[]).includes(v) ? (v as LogLevel) : "info";
}

function write(level: LogLevel, args: unknown[]): void {
  if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(logLevel())) return;
  const line = util.format(...args);
  rawStderrWrite(`[arrakis-ts ${new Date().toISOString()} ${level}] ${line}\n`);
}

/** Detail for whoever debugs the kernel; hidden unless the level is debug. */
export function kernelLog(...args: unknown[]): void {
  write("debug", args);
}

/** The few lines a normal run shows (the ready line). */
export function kernelInfo(...args: unknown[]): void {
  write("info", args);
}

/** Something went wrong that the user or administrator should know about. */
export function kernelWarn(...args: unknown[]): void {
  write("warn", args);
}

/** Writes to the real stderr even while cells capture process.stderr. */
export function writeKernelStderr(text: string): boolean {
  return rawStderrWrite(text);
}
