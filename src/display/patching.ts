/**
 * Activation patching result: layers × (positions or heads) of the restored fraction
 * (patched − corrupted) / (clean − corrupted), on a diverging scale centred on 0 (1 = fully restored).
 */
import { fail, show } from "../errors";
import { labelGridBundle } from "./labelGrid";
import type { MimeBundle } from "./mime";

export interface PatchingViewProps {
  /** Normalised effect `[layer][column]`. */
  values: number[][];
  /** Column labels (positions with their tokens, or heads). */
  columns: string[];
  columnTitle: string;
  title: string;
  subtitle: string;
  metricLabel: string;
  /** The metric of each patched run, shown on hover. */
  raw: number[][];
}

const VIEW = "patchingView";

export function patchingView(props: PatchingViewProps): MimeBundle {
  if (typeof props !== "object" || props === null || !Array.isArray(props.values)) fail(`${VIEW}: expected { values, columns, … }, got ${show(props)}`);
  const flat = props.values.flat();
  const m = Math.max(1, ...flat.map(Math.abs));
  const columns = props.columns;
  const rows = props.values.map((_, l) => `L${l}`);
  const hover = props.values.map((r, l) => r.map((v, j) => `layer ${l} · ${columns[j]}\n${props.metricLabel}: ${v.toFixed(3)}\npatched metric: ${props.raw[l][j].toFixed(4)}`));
  const best = flat.length ? Math.max(...flat) : NaN;
  const text = [
    props.subtitle,
    `${rows.length} layers × ${columns.length} columns (${props.columnTitle}); highest ${best.toFixed(3)}`,
    ...props.values.map((r, l) => `L${l}`.padEnd(5) + r.map((v) => v.toFixed(2).padStart(7)).join("")),
  ].join("\n");
  return labelGridBundle(VIEW, {
    z: props.values,
    rows,
    columns,
    rowTitle: "layer",
    columnTitle: props.columnTitle,
    title: props.title,
    subtitle: props.subtitle,
    colorLabel: props.metricLabel,
    domain: [-m, m],
    diverging: true,
    hover,
    text,
  });
}
