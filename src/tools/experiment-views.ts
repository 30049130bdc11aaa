/**
 * What the experiment log's queries return, as arrays that print as summaries: a table of versions or runs
 * in text (console, terminal, the notebook's text/plain) and HTML (the notebook), instead of raw objects
 * with every argument, result and source in full.
 */
import type { Displayable, MimeBundle } from "../display";
import { escapeHtml } from "../display/tokens";
import type { ExperimentRecord } from "./experiment-log";
import { isTensorRef } from "./record-value";
import { fmt, textTable } from "./common";

/** One version of a logged experiment: a distinct source text. */
export interface ExperimentVersion {
  version: string;
  runs: number;
  errors: number;
  firstRun: string;
  lastRun: string;
  source: string;
}

const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/** The versions of one experiment, oldest first; an array with a summary display. */
export class ExperimentVersionList extends Array<ExperimentVersion> implements Displayable {
  /** map/filter/slice give plain arrays, not lists without an experiment name. */
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }

  experiment = "";

  static create(experiment: string, versions: ExperimentVersion[]): ExperimentVersionList {
    const list = new ExperimentVersionList();
    list.experiment = experiment;
    list.push(...versions);
    return list;
  }

  override toString(): string {
    if (!this.length) return `${this.experiment}: no versions`;
    const rows = this.map((v) => [v.version, String(v.runs), String(v.errors), when(v.firstRun), when(v.lastRun), firstLine(v.source, 60)]);
    return `${this.experiment}: ${this.length} version${this.length > 1 ? "s" : ""}\n${textTable([["version", "runs", "errors", "first run", "last run", "source"], ...rows])}`;
  }

  toMimeBundle(): MimeBundle {
    const rows = this.map(
      (v) =>
        `<tr>${cell(`<code>${v.version}</code>`)}${cell(String(v.runs))}${cell(String(v.errors))}${cell(when(v.firstRun))}${cell(when(v.lastRun))}` +
        `${cell(`<details><summary><code>${escapeHtml(firstLine(v.source, 60))}</code></summary><pre style="margin:4px 0">${escapeHtml(v.source)}</pre></details>`)}</tr>`,
    );
    const head = `<tr>${["version", "runs", "errors", "first run", "last run", "source"].map((h) => cell(`<b>${h}</b>`)).join("")}</tr>`;
    return { "text/plain": this.toString(), "text/html": `<div><b>${escapeHtml(this.experiment)}</b>: ${this.length} version(s)<table>${head}${rows.join("")}</table></div>` };
  }

  [INSPECT](): string {
    return this.toString();
  }
}

/** Records of one experiment (or of one version), oldest first; an array with a summary display. */
export class ExperimentRecordList extends Array<ExperimentRecord> implements Displayable {
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }

  title = "";

  static create(title: string, records: ExperimentRecord[]): ExperimentRecordList {
    const list = new ExperimentRecordList();
    list.title = title;
    for (const r of records) list.push(r);
    return list;
  }

  override toString(): string {
    const rows = this.map((r) => [when(r.startedAt), r.version, r.status, `${fmt(r.durationMs, 1)} ms`, brief(r.args, 40), r.status === "ok" ? brief(r.result, 60) : `${r.error?.name}: ${r.error?.message}`.slice(0, 60)]);
    return `${this.title}: ${this.length} run${this.length === 1 ? "" : "s"}${this.length ? "\n" + textTable([["started", "version", "status", "time", "args", "result"], ...rows]) : ""}`;
  }

  toMimeBundle(): MimeBundle {
    const rows = this.map(
      (r) =>
        `<tr>${cell(when(r.startedAt))}${cell(`<code>${r.version}</code>`)}${cell(r.status === "ok" ? "ok" : `<span style="color:#b00">error</span>`)}` +
        `${cell(`${fmt(r.durationMs, 1)} ms`)}${cell(`<code>${escapeHtml(brief(r.args, 60))}</code>`)}` +
        `${cell(escapeHtml(r.status === "ok" ? brief(r.result, 80) : `${r.error?.name}: ${r.error?.message}`))}</tr>`,
    );
    const head = `<tr>${["started", "version", "status", "time", "args", "result"].map((h) => cell(`<b>${h}</b>`)).join("")}</tr>`;
    return { "text/plain": this.toString(), "text/html": `<div><b>${escapeHtml(this.title)}</b>: ${this.length} run(s)<table>${head}${rows.join("")}</table></div>` };
  }

  [INSPECT](): string {
    return this.toString();
  }
}

/** One version: its source and its runs. */
export class ExperimentVersionDetail implements Displayable {
  constructor(
    readonly experiment: string,
    readonly version: string,
    readonly source: string,
    readonly runs: ExperimentRecordList,
  ) {}

  toString(): string {
    return `${this.experiment} version ${this.version}\n${this.source}\n${this.runs.toString()}`;
  }

  toMimeBundle(): MimeBundle {
    const runs = this.runs.toMimeBundle()["text/html"];
    return {
      "text/plain": this.toString(),
      "text/html": `<div><b>${escapeHtml(this.experiment)}</b> version <code>${this.version}</code><pre>${escapeHtml(this.source)}</pre>${runs}</div>`,
    };
  }

  toJSON(): object {
    return { experiment: this.experiment, version: this.version, source: this.source, runs: [...this.runs] };
  }

  [INSPECT](): string {
    return this.toString();
  }
}

function cell(html: string): string {
  return `<td style="padding:2px 8px;text-align:left;vertical-align:top">${html}</td>`;
}

/** "2026-12-01 09:12:03" from an ISO time. */
function when(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, "");
}

function firstLine(source: string, max: number): string {
  const line = source.split("\n").find((l) => l.trim()) ?? "";
  return line.length > max ? line.slice(0, max - 1) + "…" : line;
}

/** A short one-line rendering of a logged value (TensorRefs as "tensor float32[2,16,512]", 4 significant digits). */
function brief(x: unknown, max: number): string {
  const replace = (_k: string, v: unknown) => {
    if (isTensorRef(v)) return `tensor ${v.$tensor.dtype}[${v.$tensor.shape.join(",")}]`;
    if (typeof v === "number" && !Number.isInteger(v)) return Number(v.toPrecision(4));
    return v;
  };
  const text = JSON.stringify(x, replace) ?? "undefined";
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}
