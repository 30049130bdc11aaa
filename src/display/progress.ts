/**
 * Progress of long work (head sweeps, patching, detector runs) as notebook outputs that do not pile up.
 *
 * The tools only call `startProgress(label, total)`; where the updates go is decided by whoever hosts them. A
 * host (`setProgressHost`, the Arrakis kernel installs one) provides outputs that can be rewritten in place and
 * says which cell is running. This module decides what is shown:
 * - nothing at 0 %: an output opens at the first finished step, so work that never starts while its cell
 *   runs (an async sweep whose `await` was forgotten, then a new cell) leaves no bar behind;
 * - one output per kind of work and cell: a second sweep with the same label in the same cell (twenty sweeps
 *   in a loop) rewrites the first one's output instead of adding another;
 * - it ends as one line: when the work finishes (or stops), the bar is replaced by a one-line summary.
 * A script without a host shows nothing. `setProgressFactory` is the older, simpler hook (one `Progress` per
 * call, no grouping), used when no host is installed.
 */
import type { MimeBundle } from "./mime";
import { escapeHtml as esc } from "./tokens";

export interface Progress {
  /** `done` of `total` steps finished. */
  update(done: number): void;
  /** The work ended (also after an error or an interrupt); `note` says why it stopped early, e.g. "aborted". */
  finish(note?: string): void;
}

export type ProgressFactory = (label: string, total: number) => Progress;

/** One output in a notebook, rewritten in place by `show`. */
export interface ProgressOutput {
  show(bundle: MimeBundle): void;
}

export interface ProgressHost {
  /** Opens a new output in the running cell. */
  open(): ProgressOutput;
  /** Identity of the running cell (any value, compared with ===); undefined when no cell runs. */
  cell(): unknown;
  /** Milliseconds clock (default Date.now; tests pass their own). */
  now?(): number;
}

/** Fewest milliseconds between two redraws of a bar: enough to look live without flooding the frontend. */
export const PROGRESS_INTERVAL_MS = 250;

const NONE: Progress = { update: () => undefined, finish: () => undefined };
let factory: ProgressFactory | undefined;
let host: ProgressHost | undefined;

/** Installs (or, with no argument, removes) a factory that receives every progress report as is. */
export function setProgressFactory(f?: ProgressFactory): void {
  factory = f;
}

/** Installs (or, with no argument, removes) the host whose outputs show progress. */
export function setProgressHost(h?: ProgressHost): void {
  host = h;
  groups.clear();
}

/** The output of one kind of work (one label) in one cell, shared by every run of it there. */
interface Group {
  cell: unknown;
  label: string;
  output: ProgressOutput | null;
  runs: number;
  /** Milliseconds spent by the runs that finished. */
  spent: number;
  lastShown: number;
}

/** Groups of the running cell, by label (older cells' groups are dropped when a new cell starts work). */
const groups = new Map<string, Group>();

export function startProgress(label: string, total: number): Progress {
  const h = host;
  if (!h) return factory ? factory(label, total) : NONE;
  const cell = h.cell();
  if (cell === undefined) return NONE;
  const now = () => (h.now ? h.now() : Date.now());
  let g = groups.get(label);
  if (!g || g.cell !== cell) {
    for (const [k, other] of groups) if (other.cell !== cell) groups.delete(k);
    g = { cell, label, output: null, runs: 0, spent: 0, lastShown: -Infinity };
    groups.set(label, g);
  }
  const group = g;
  group.runs++;
  const run = group.runs;
  const started = now();
  let done = 0;
  let ended = false;
  const show = (bundle: MimeBundle) => {
    group.lastShown = now();
    try {
      group.output?.show(bundle);
    } catch {
      // A frontend that went away must not break the work it reports on.
    }
  };
  return {
    update(n: number): void {
      if (ended) return;
      done = n;
      if (!group.output) {
        // Opened at the first finished step, and only in the cell that started the work.
        if (n < 1 || h.cell() !== group.cell) return;
        group.output = h.open();
      } else if (now() - group.lastShown < PROGRESS_INTERVAL_MS && n < total) {
        return;
      }
      show(progressBundle(runLabel(group, run), done, total, now() - started));
    },
    finish(note?: string): void {
      if (ended) return;
      ended = true;
      const elapsed = now() - started;
      group.spent += elapsed;
      if (!group.output) return; // nothing was shown, nothing to close
      show(summaryBundle(group, done, total, elapsed, note));
    },
  };
}

function runLabel(g: Group, run: number): string {
  return g.runs > 1 ? `${g.label} · run ${run}` : g.label;
}


/** The one line a finished (or stopped) piece of work leaves behind. */
function summaryBundle(g: Group, done: number, total: number, elapsedMs: number, note?: string): MimeBundle {
  const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const runs = g.runs > 1 ? ` × ${g.runs} runs (${secs(g.spent)} in all), the last` : "";
  const what = note ? `${note} (${done}/${total})` : `${total}/${total} done`;
  const text = `${note ? "■" : "✓"} ${g.label}${runs}: ${what} in ${secs(elapsedMs)}`;
  const html = `<div style="font-family:sans-serif;font-size:12px;color:${note ? "#b45309" : "#555"}">${esc(text)}</div>`;
  return { "text/plain": text, "text/html": html };
}

/**
 * A progress bar bundle: plain HTML and CSS (no script, so it shows untrusted too) and a text line.
 * `elapsedMs` gives a rate and an estimate of the time left.
 */
export function progressBundle(label: string, done: number, total: number, elapsedMs: number, note?: string): MimeBundle {
  const pct = total > 0 ? Math.min(100, (100 * done) / total) : 100;
  const secs = elapsedMs / 1000;
  const left = done > 0 && done < total ? ` · ~${Math.ceil((secs / done) * (total - done))} s left` : "";
  const text = `${label}: ${done}/${total} (${pct.toFixed(0)}%) · ${secs.toFixed(1)} s${left}${note ? ` · ${note}` : ""}`;
  const html =
    `<div style="font-family:sans-serif;font-size:12px;max-width:480px">` +
    `<div style="background:#e6e6e6;border-radius:3px;height:10px;overflow:hidden">` +
    `<div style="background:${note ? "#b45309" : "#1f6feb"};width:${pct.toFixed(1)}%;height:10px"></div></div>` +
    `<div style="color:#555;margin-top:2px">${esc(text)}</div></div>`;
  return { "text/plain": text, "text/html": html };
}
