/**
 * What a cell produced, captured from tslab's executor. The executor reports through the console object
 * it is given: `log(value)` for the cell's last expression and `error(...)` for type errors (one call per
 * diagnostic, printf-style) and for thrown values. Stock tslab prints both to stdout/stderr; we keep them
 * so the kernel can send a proper `execute_result` and an `error` with ename/evalue/traceback
 * (messaging spec, "Execution results" and "Execution errors").
 */
import util from "util";
import { InterruptError, isSigintTermination } from "./coroutine";

export interface ErrorContent {
  ename: string;
  evalue: string;
  traceback: string[];
}

const RED = "\u001b[0;31m";
const RESET = "\u001b[0m";

/** Stack frames that belong to the kernel machinery rather than to the user's code or the library. */
const internalFrame = /\((node:|internal\/)|[\\/]tslab[\\/]dist[\\/]|[\\/]dist[\\/]kernel[\\/]|[\\/]kernel[\\/][a-z-]+\.ts:|arrakis-step|^\s+at (node:|new Promise \(<anonymous>\))/;

export function errorContent(e: unknown): ErrorContent {
  if (isSigintTermination(e)) e = new InterruptError(true);
  if (e instanceof Error || (typeof e === "object" && e !== null && "stack" in e && "message" in e)) {
    const err = e as Error;
    const ename = err.name || err.constructor?.name || "Error";
    const evalue = String(err.message ?? "");
    const frames = String(err.stack ?? "")
      .split("\n")
      .slice(1)
      .filter((l) => /^\s+at /.test(l) && !internalFrame.test(l));
    const cause = err.cause !== undefined ? [`Caused by: ${util.inspect(err.cause, { depth: 2 })}`] : [];
    return { ename, evalue, traceback: [`${RED}${ename}${RESET}: ${evalue}`, ...frames, ...cause] };
  }
  const text = util.inspect(e, { depth: 2 });
  return { ename: "Thrown", evalue: text, traceback: [`${RED}Uncaught${RESET} ${text}`] };
}

/** The console given to tslab's executor for one execution at a time. */
export class OutcomeRecorder {
  private hasValue = false;
  private value: unknown;
  private diagnostics: string[] = [];
  private thrown: { e: unknown } | undefined;

  reset(): void {
    this.hasValue = false;
    this.value = undefined;
    this.diagnostics = [];
    this.thrown = undefined;
  }

  readonly console = {
    log: (value?: unknown): void => {
      this.hasValue = true;
      this.value = value;
    },
    error: (first?: unknown, ...rest: unknown[]): void => {
      if (typeof first === "string" && first.startsWith("%s%d:%d - %s")) {
        // printDiagnostics(fileName, line, column, message): only the cell's own file has no name.
        const [file, line, col, message] = rest as [string, number, number, string];
        this.diagnostics.push(`${file}${line}:${col} - ${message}`);
      } else if (this.thrown === undefined) {
        this.thrown = { e: first };
      }
    },
  };

  result(): { value?: unknown; hasValue: boolean; error?: ErrorContent; compileError?: boolean; interrupted: boolean; sigint: boolean } {
    if (this.diagnostics.length > 0) {
      return {
        hasValue: false,
        interrupted: false,
        sigint: false,
        compileError: true,
        error: {
          ename: "TSError",
          evalue: this.diagnostics.join("\n"),
          traceback: [`${RED}TSError${RESET}: cell does not type-check`, ...this.diagnostics],
        },
      };
    }
    if (this.thrown) {
      const e = this.thrown.e;
      const sigint = isSigintTermination(e);
      const interrupted = sigint || e instanceof InterruptError || (e instanceof Error && e.message === "Interrupted asynchronously");
      return { hasValue: false, interrupted, sigint, error: errorContent(interrupted && !(e instanceof InterruptError) ? new InterruptError(sigint) : e) };
    }
    return { hasValue: this.hasValue, value: this.value, interrupted: false, sigint: false };
  }
}
