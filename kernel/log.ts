/**
 * The kernel log. Jupyter collects a kernel's stderr into its own log; cells must never see these lines.
 * Once a cell runs, `process.stdout/stderr.write` are pointed at IOPub (as tslab and ipykernel do), so we
 * keep the original stderr writer from before that happens.
 */
import util from "util";

const rawStderrWrite = process.stderr.write.bind(process.stderr);

export function kernelLog(...args: unknown[]): void {
  const line = util.format(...args);
  rawStderrWrite(`[arrakis-ts ${new Date().toISOString()}] ${line}\n`);
}

/** Writes to the real stderr even while cells capture process.stderr. */
export function writeKernelStderr(text: string): boolean {
  return rawStderrWrite(text);
}
