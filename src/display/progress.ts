/**
 * Progress of long work (head sweeps, detector runs) as one display that updates in place.
 *
 * The tools only call `startProgress(label, total)`; where the updates go is decided by whoever hosts them:
 * the Arrakis kernel installs a factory that rewrites one notebook output (a `display_data` with a
 * `display_id`), a script gets nothing unless it installs its own. This keeps src/tools free of kernel code.
 */
import type { MimeBundle } from "./mime";

export interface Progress {
  /** `done` of `total` steps finished. */
  update(done: number): void;
  /** The work ended (also after an error or an interrupt); `note` replaces the bar, e.g. "aborted". */
  finish(note?: string): void;
}

export type ProgressFactory = (label: string, total: number) => Progress;

const NONE: Progress = { update: () => undefined, finish: () => undefined };
let factory: ProgressFactory | undefined;

/** Installs (or, with no argument, removes) where progress is shown. */
export function setProgressFactory(f?: ProgressFactory): void {
  factory = f;
}

export function startProgress(label: string, total: number): Progress {
  return factory ? factory(label, total) : NONE;
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
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const html =
    `<div style="font-family:sans-serif;font-size:12px;max-width:480px">` +
    `<div style="background:#e6e6e6;border-radius:3px;height:10px;overflow:hidden">` +
    `<div style="background:${note ? "#b45309" : "#1f6feb"};width:${pct.toFixed(1)}%;height:10px"></div></div>` +
    `<div style="color:#555;margin-top:2px">${esc(text)}</div></div>`;
  return { "text/plain": text, "text/html": html };
}
