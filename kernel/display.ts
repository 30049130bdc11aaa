/**
 * `display` as preloaded in notebooks: `display(x)` sends x's whole MIME bundle as one `display_data`
 * (messaging spec, "Display Data"); a Displayable keeps all its representations. The tslab helpers
 * (`display.html(s)`, `display.svg(s)`, ...) are here too, plus `display.handle()` for progress that updates
 * one output in place (`update_display_data` with a `transient.display_id`), `display.clear()`, and
 * `display.resetPlotlyLibrary()` (the library's, so the advice in its "library gone" note works as written).
 *
 * The kernel points the sink at the running cell's IOPub parent before each execution.
 */
import { randomBytes } from "crypto";
import { resetPlotlyLibrary } from "../src/display/plotly";
import { MimeBundle, completeBundle, toMimeBundle } from "../src/display/mime";
import type { ProgressFactory, progressBundle } from "../src/display/progress";

export interface DisplayContent {
  data: MimeBundle;
  metadata: Record<string, unknown>;
  transient: { display_id?: string };
}

export interface DisplaySink {
  display(content: DisplayContent, update: boolean): void;
  clear(wait: boolean): void;
}

let sink: DisplaySink | undefined;

/** Called by the kernel; not part of the notebook API. */
export function setDisplaySink(s: DisplaySink | undefined): void {
  sink = s;
}

function current(): DisplaySink {
  if (!sink) throw new Error("display() is only available while a notebook cell runs in the Arrakis kernel");
  return sink;
}

/** An output area entry that later calls replace in place (e.g. a progress line during a head sweep). */
export interface DisplayHandle {
  readonly id: string;
  /** Replaces the entry's content with `value`'s bundle. */
  update(value: unknown): void;
}

export interface Display {
  /** Shows each value as its own output: a Displayable with every MIME type it offers, others as text. */
  (...values: unknown[]): void;
  /** Shows `initial` (if given) in a new entry and returns a handle whose `update` rewrites that entry. */
  handle(initial?: unknown): DisplayHandle;
  /** Clears the cell's output; with `wait`, only when the next output arrives (avoids flicker). */
  clear(wait?: boolean): void;
  /** Sends a raw bundle, e.g. `display.raw({ "text/markdown": "**hi**" })`. */
  raw(bundle: MimeBundle, metadata?: Record<string, unknown>): void;
  html(s: string): void;
  markdown(s: string): void;
  svg(s: string): void;
  latex(s: string): void;
  javascript(s: string): void;
  text(s: string): void;
  png(b: Uint8Array): void;
  jpeg(b: Uint8Array): void;
  /**
   * Makes the next Plotly output carry the Plotly library again. Needed after the output that carried it
   * was cleared: until then a reopened notebook shows static pictures.
   */
  resetPlotlyLibrary(): void;
}

function send(data: MimeBundle, metadata: Record<string, unknown> = {}, id?: string, update = false): void {
  current().display({ data, metadata, transient: id ? { display_id: id } : {} }, update);
}

const single = (mime: string, label: string) => (s: string | Uint8Array) =>
  send(completeBundle({ [mime]: s }, () => `<${label}>`));

/**
 * Shows values in the cell's output: `display(x)` sends x's whole MIME bundle (a Displayable keeps every
 * representation). Also `display.html(s)`, `.markdown`, `.svg`, `.raw(bundle)`, `.handle()` for output
 * updated in place, and `.clear()`.
 */
export const display: Display = Object.assign(
  (...values: unknown[]): void => {
    for (const v of values) send(toMimeBundle(v));
  },
  {
    handle(initial?: unknown): DisplayHandle {
      const id = randomBytes(8).toString("hex");
      let shown = false;
      const show = (v: unknown) => {
        send(toMimeBundle(v), {}, id, shown);
        shown = true;
      };
      if (initial !== undefined) show(initial);
      return { id, update: show };
    },
    clear(wait = false): void {
      current().clear(wait);
    },
    raw(bundle: MimeBundle, metadata: Record<string, unknown> = {}): void {
      send(completeBundle(bundle, () => "<output>"), metadata);
    },
    html: single("text/html", "HTML"),
    markdown: single("text/markdown", "Markdown"),
    svg: single("image/svg+xml", "SVG"),
    latex: single("text/latex", "LaTeX"),
    javascript: single("application/javascript", "JavaScript"),
    text: (s: string) => send({ "text/plain": s }),
    png: single("image/png", "PNG image"),
    jpeg: single("image/jpeg", "JPEG image"),
    resetPlotlyLibrary,
  },
);


/** Fewest milliseconds between two progress updates: enough to look live without flooding IOPub. */
const PROGRESS_INTERVAL_MS = 250;

/**
 * The kernel's host for the library's progress reports (`src/display/progress.ts`): one output per long
 * operation, rewritten in place. Outside a running cell there is nowhere to show it, so nothing is sent.
 */
export function kernelProgressFactory(bundle: typeof progressBundle): ProgressFactory {
  return (label: string, total: number) => {
    if (!sink) return { update: () => undefined, finish: () => undefined };
    const started = Date.now();
    const entry = display.handle();
    let done = 0;
    let lastSent = 0;
    const show = (note?: string) => {
      lastSent = Date.now();
      entry.update({ toMimeBundle: () => bundle(label, done, total, lastSent - started, note) });
    };
    return {
      update(n: number): void {
        done = n;
        if (n === 0 || n === total || Date.now() - lastSent >= PROGRESS_INTERVAL_MS) show();
      },
      finish(note?: string): void {
        show(note);
      },
    };
  };
}

/**
 * The kernel's host for the library's progress board (`src/display/progress.ts`, which decides what is shown):
 * outputs open in the running cell, and the display sink, replaced at each cell, identifies that cell.
 */
export function kernelProgressHost() {
  return {
    cell: (): unknown => sink,
    open: () => {
      const entry = display.handle();
      return { show: (bundle: MimeBundle) => entry.update({ toMimeBundle: () => bundle }) };
    },
  };
}
