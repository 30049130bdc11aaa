/**
 * Execution history for `history_request` (messaging spec, "History"). Entries are
 * `[session, line_number, input]`, or `[session, line, [input, output]]` when output is requested; line
 * numbers are execution counts. History lives in memory for the kernel's lifetime: this kernel's
 * session is number 1, and session 0 or a negative offset of 0 both mean "this session" as in IPython.
 * `search` patterns are globs matched against the whole input (IPython uses SQLite GLOB).
 */
export interface HistoryRequest {
  output?: boolean;
  raw?: boolean;
  hist_access_type: "range" | "tail" | "search";
  session?: number;
  start?: number;
  stop?: number;
  n?: number | null;
  pattern?: string;
  unique?: boolean;
}

type Entry = { line: number; input: string; output: string | null };
type Row = [number, number, string | [string, string | null]];

export const CURRENT_SESSION = 1;
/** Characters of a cell's output text kept in the history (the notebook itself holds the full output). */
export const HISTORY_OUTPUT_MAX = 10_000;

export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") re += "[\\s\\S]*";
    else if (c === "?") re += "[\\s\\S]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        const body = glob.slice(i + 1, end);
        re += "[" + (body.startsWith("!") ? "^" + body.slice(1) : body).replace(/\\/g, "\\\\") + "]";
        i = end;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

export class History {
  private readonly entries: Entry[] = [];

  /**
   * Keeps a cell's input and the start of its output text: the history lives as long as the kernel, and a
   * cell whose value is a huge string must not keep that string alive with it.
   */
  record(line: number, input: string, output: string | null): void {
    const kept = output !== null && output.length > HISTORY_OUTPUT_MAX ? `${output.slice(0, HISTORY_OUTPUT_MAX)}…` : output;
    this.entries.push({ line, input, output: kept });
  }

  query(req: HistoryRequest): Row[] {
    const row = (e: Entry): Row => [CURRENT_SESSION, e.line, req.output ? [e.input, e.output] : e.input];
    const lastN = <T>(xs: T[], n: number | null | undefined): T[] => (n != null && n >= 0 ? xs.slice(Math.max(0, xs.length - n)) : xs);
    switch (req.hist_access_type) {
      case "tail":
        return lastN(this.entries, req.n ?? 10).map(row);
      case "range": {
        const session = req.session ?? 0;
        if (session !== 0 && session !== CURRENT_SESSION) return []; // earlier sessions are not kept
        const start = req.start ?? 0;
        const stop = req.stop ?? Infinity;
        return this.entries.filter((e) => e.line >= start && e.line < stop).map(row);
      }
      case "search": {
        const re = globToRegExp(req.pattern ?? "*");
        let hits = this.entries.filter((e) => re.test(e.input));
        if (req.unique) {
          // Keep the latest occurrence of each input, in chronological order (IPython's GROUP BY input).
          const last = new Map<string, Entry>();
          for (const e of hits) last.set(e.input, e);
          hits = hits.filter((e) => last.get(e.input) === e);
        }
        return lastN(hits, req.n).map(row);
      }
      default:
        return [];
    }
  }
}
