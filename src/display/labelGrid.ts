/**
 * A heatmap with labelled rows and columns (layers × positions, layers × heads), the shared drawing of the
 * activation patching and logit lens views. Plotly for hover (a per-cell hover text), the same chart as a
 * Vega-Lite spec drawn in Node for the static picture; cell text optional (the logit lens writes the top
 * token in each cell).
 */
import { fail, show } from "../errors";
import { round4 } from "./format";
import type { MimeBundle } from "./mime";
import { plotlyBundle, type PlotlyFigure } from "./plotly";
import { drawStatic } from "./static";
import { escapeHtml, truncate } from "./tokens";
import { baseConfig, BLUES, plotlyColorscale, RED_BLUE, stops } from "./vegalite";

export interface LabelGridProps {
  /** `[row][column]`; null draws an empty cell. */
  z: (number | null)[][];
  rows: string[];
  columns: string[];
  rowTitle: string;
  columnTitle: string;
  title: string;
  subtitle?: string;
  /** Colour bar title. */
  colorLabel: string;
  domain: [number, number];
  diverging: boolean;
  /** Short text drawn in each cell (e.g. the top token). */
  cellText?: string[][];
  /** Plain hover text per cell (escaped here; "\n" becomes a line break). */
  hover: string[][];
  /** text/plain body. */
  text: string;
  /** Cell width in px (default: from the grid size). */
  cellWidth?: number;
}

const LABEL_CHARS = 18;

function checkGrid(view: string, p: LabelGridProps): void {
  if (!Array.isArray(p.z) || p.z.length !== p.rows.length || p.z.some((r) => !Array.isArray(r) || r.length !== p.columns.length)) {
    fail(`${view}: values must be ${p.rows.length} rows × ${p.columns.length} columns, got ${show(p.z?.map?.((r) => r?.length))}`);
  }
}

function sizes(p: LabelGridProps): { w: number; h: number } {
  const n = Math.max(p.rows.length, p.columns.length);
  const h = Math.max(14, Math.min(40, Math.floor(720 / n)));
  return { w: p.cellWidth ?? h, h };
}

function figure(p: LabelGridProps): PlotlyFigure {
  const { w, h } = sizes(p);
  const margin = { l: 90, r: 110, t: p.subtitle ? 80 : 60, b: 130 };
  const colors = p.diverging ? RED_BLUE : BLUES;
  return {
    data: [
      {
        type: "heatmap",
        z: p.z.map((r) => r.map((v) => (v === null ? null : round4(v)))),
        x: p.columns.map((_, i) => i),
        y: p.rows.map((_, i) => i),
        zmin: p.domain[0],
        zmax: p.domain[1],
        colorscale: plotlyColorscale(colors),
        colorbar: { title: { text: escapeHtml(p.colorLabel), side: "top" }, thickness: 14, lenmode: "pixels", len: Math.max(120, p.rows.length * h) },
        xgap: 1,
        ygap: 1,
        customdata: p.hover.map((r) => r.map((s) => escapeHtml(s).replace(/\n/g, "<br>"))),
        hovertemplate: "%{customdata}<extra></extra>",
        ...(p.cellText ? { text: p.cellText.map((r) => r.map((s) => escapeHtml(s))), texttemplate: "%{text}", textfont: { size: 9 } } : {}),
      },
    ],
    layout: {
      width: Math.max(margin.l + margin.r + p.columns.length * w, Math.min(960, 40 + 7 * p.title.length)),
      height: margin.t + margin.b + p.rows.length * h,
      margin,
      title: { text: escapeHtml(p.title) + (p.subtitle ? `<br><sub>${escapeHtml(p.subtitle)}</sub>` : ""), x: 0, xref: "paper", xanchor: "left" },
      font: { family: "DejaVu Sans, Verdana, sans-serif", size: 11 },
      xaxis: { title: { text: escapeHtml(p.columnTitle) }, tickvals: p.columns.map((_, i) => i), ticktext: p.columns.map((c) => escapeHtml(truncate(c, LABEL_CHARS))), tickangle: -60, showgrid: false, zeroline: false },
      yaxis: { title: { text: escapeHtml(p.rowTitle) }, tickvals: p.rows.map((_, i) => i), ticktext: p.rows.map(escapeHtml), autorange: "reversed", showgrid: false, zeroline: false },
      plot_bgcolor: "#e4e4e4",
    },
  };
}

function staticSpec(p: LabelGridProps): Record<string, unknown> {
  const { w, h } = sizes(p);
  const colors = p.diverging ? RED_BLUE : BLUES;
  const values = p.z.flatMap((r, i) => r.map((v, j) => ({ r: i, c: j, value: v === null ? null : round4(v), text: p.cellText?.[i][j] ?? "" })));
  const labels = (xs: string[]) => `${JSON.stringify(xs.map((x) => truncate(x, LABEL_CHARS)))}[datum.value]`;
  const layers: object[] = [
    {
      mark: { type: "rect", stroke: "white", strokeWidth: 1 },
      encoding: { color: { field: "value", type: "quantitative", title: p.colorLabel, scale: { domain: stops(p.domain[0], p.domain[1], colors.length), range: colors, clamp: true } } },
    },
  ];
  if (p.cellText) layers.push({ mark: { type: "text", fontSize: 9, limit: w - 2 }, encoding: { text: { field: "text", type: "nominal" }, color: { value: "#111" } } });
  return {
    title: p.subtitle ? { text: p.title, subtitle: p.subtitle } : p.title,
    data: { values },
    width: p.columns.length * w,
    height: p.rows.length * h,
    encoding: {
      x: { field: "c", type: "ordinal", axis: { title: p.columnTitle, labelExpr: labels(p.columns), labelAngle: -60 } },
      y: { field: "r", type: "ordinal", axis: { title: p.rowTitle, labelExpr: labels(p.rows) } },
    },
    layer: layers,
    config: baseConfig({ view: { stroke: null } }),
  };
}

/** Bundle: text/html (static PNG + interactive Plotly), application/vnd.plotly.v1+json, image/png, text/plain. */
export function labelGridBundle(view: string, p: LabelGridProps): MimeBundle {
  checkGrid(view, p);
  return plotlyBundle({ figure: figure(p), picture: drawStatic(staticSpec(p)), title: p.title, text: p.text });
}
