/**
 * Layer × head heatmap of one number per head: the effect of ablating each head (a head sweep) or a head
 * detector's score. Plotly view, so hovering a cell gives layer, head and value wherever the output is trusted;
 * the static picture prints the values in the cells when they fit.
 */
import { fail, show } from "../errors";
import { round4 } from "./format";
import type { MimeBundle } from "./mime";
import { plotlyBundle, type PlotlyFigure, type PlotlyLibraryMode } from "./plotly";
import { drawStatic } from "./static";
import { figureTitle } from "./titles";
import { escapeHtml } from "./tokens";
import { checkInt, checkMatrix, optional } from "./validate";
import { baseConfig, BLUES, plotlyColorscale, RED_BLUE, stops } from "./vegalite";

export interface HeadGridProps {
  /** One value per head, `[layer][head]`; every layer has the same number of heads. */
  values: number[][];
  /** Chart title, e.g. "Loss increase when ablating each head". */
  title: string;
  /** What a value is, for the colour bar and hover, e.g. "Δ loss (nats)" or "previous-token score". */
  metricLabel: string;
  /**
   * Diverging colours centred on 0 (blue negative, red positive) instead of a sequential scale.
   * Default: true when any value is negative.
   */
  diverging?: boolean;
  /** Decimals in hover, cell text and text/plain (default 3). */
  digits?: number;
  /**
   * Fixed colour range [lo, hi], e.g. [0, 1] for scores that are fractions of attention, so a weak grid looks
   * weak. Default: from the values (0..max for non-negative values, symmetric around 0 when diverging).
   */
  domain?: [number, number];
  /** Which output carries the Plotly library (default "once" per kernel session); see PlotlyLibraryMode. */
  library?: PlotlyLibraryMode;
}

const VIEW = "headGridView";
/** Values are printed in the cells when the grid has at most this many cells. */
const TEXT_CELLS = 24 * 16;

interface GridData {
  values: number[][];
  layers: number;
  heads: number;
  title: string;
  metric: string;
  diverging: boolean;
  digits: number;
  /** Colour domain [lo, hi]; symmetric around 0 when diverging. */
  domain: [number, number];
}

function prepare(props: HeadGridProps): GridData {
  if (typeof props !== "object" || props === null) fail(`${VIEW}: expected a props object, got ${show(props)}`);
  const values = checkMatrix(VIEW, "values", props.values);
  if (typeof props.title !== "string") fail(`${VIEW}: title must be a string, got ${show(props.title)}`);
  if (typeof props.metricLabel !== "string") fail(`${VIEW}: metricLabel must be a string, got ${show(props.metricLabel)}`);
  const flat = values.flat();
  if (flat.length === 0) fail(`${VIEW}: values has no heads (layers of length 0)`);
  const lo = Math.min(...flat);
  const hi = Math.max(...flat);
  const diverging = optional(VIEW, "diverging", props.diverging, lo < 0);
  const digits = checkInt(VIEW, "digits", optional(VIEW, "digits", props.digits, 3), 0, 10);
  let domain: [number, number];
  if (props.domain !== undefined) {
    const [a, b] = props.domain;
    if (!Array.isArray(props.domain) || !Number.isFinite(a) || !Number.isFinite(b) || !(b > a)) fail(`${VIEW}: domain must be [lo, hi] with lo < hi, got ${show(props.domain)}`);
    domain = [a, b];
  } else if (diverging) {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    domain = [-m, m];
  } else {
    // Sequential from 0 when all values are ≥ 0 (scores), else from the minimum.
    const from = Math.min(0, lo);
    domain = [from, hi > from ? hi : from + 1];
  }
  return { values, layers: values.length, heads: values[0].length, title: props.title, metric: props.metricLabel, diverging, digits, domain };
}

const colors = (d: GridData) => (d.diverging ? RED_BLUE : BLUES);

/** Cell size: roomy for small models (56 px, so a 2 × 2 grid is not a postage stamp), down to 14 px for 48-layer × 32-head grids. */
function cellSize(d: GridData): number {
  return Math.max(14, Math.min(56, Math.floor(640 / Math.max(d.heads, d.layers * 0.75))));
}

/** Space kept above the title for Plotly's mode bar (shown on hover), px. */
const MODEBAR = 30;

export function headGridFigure(d: GridData): PlotlyFigure {
  const cell = cellSize(d);
  const showText = d.layers * d.heads <= TEXT_CELLS && cell >= 30;
  // Room above and below for a colour bar taller than a short grid (see colorbar.len).
  const extra = Math.max(0, 140 - d.layers * cell) / 2;
  const side = { l: 70, r: 110 };
  const title = figureTitle(d.title, side.l + side.r + d.heads * cell, MODEBAR);
  // Below the title: the colour bar's title, then the plot.
  // A title wider than the grid widens the right margin, not the plot: cells stay square, the bar stays close.
  const r = title.width - side.l - d.heads * cell;
  const margin = { l: side.l, r, t: MODEBAR + title.height + 26 + extra, b: 60 + extra };
  const fmt = `.${d.digits}f`;
  return {
    data: [
      {
        type: "heatmap",
        z: d.values.map((row) => row.map(round4)),
        x: Array.from({ length: d.heads }, (_, h) => h),
        y: Array.from({ length: d.layers }, (_, l) => l),
        zmin: d.domain[0],
        zmax: d.domain[1],
        colorscale: plotlyColorscale(colors(d)),
        // In pixels: a 2-layer grid is ~80 px tall and a plot-relative bar would be too short to read.
        colorbar: {
          title: { text: escapeHtml(d.metric), side: "top" },
          thickness: 14,
          lenmode: "pixels",
          len: Math.max(140, d.layers * cell),
        },
        xgap: 1,
        ygap: 1,
        hovertemplate: `layer %{y} · head %{x}<br>${escapeHtml(d.metric)}: %{z:${fmt}}<extra></extra>`,
        ...(showText ? { texttemplate: `%{z:.${Math.min(d.digits, 2)}f}`, textfont: { size: 10 } } : {}),
      },
    ],
    layout: {
      // Wide enough for the title, which wraps when it would need more than TITLE_MAX_WIDTH.
      width: title.width,
      height: margin.t + margin.b + d.layers * cell,
      margin,
      title: title.layout,
      font: { family: "DejaVu Sans, Verdana, sans-serif", size: 11 },
      xaxis: { title: { text: "head" }, dtick: 1, side: "bottom", showgrid: false, zeroline: false },
      yaxis: { title: { text: "layer" }, dtick: 1, autorange: "reversed", showgrid: false, zeroline: false },
      plot_bgcolor: "white",
    },
  };
}

export function headGridStaticSpec(d: GridData): Record<string, unknown> {
  const cell = cellSize(d);
  const values = d.values.flatMap((row, layer) => row.map((v, head) => ({ layer, head, value: round4(v) })));
  const range = colors(d);
  const encoding = {
    x: { field: "head", type: "ordinal", axis: { labelAngle: 0, title: "head" } },
    y: { field: "layer", type: "ordinal", axis: { title: "layer" } },
  };
  const layers: object[] = [
    {
      mark: { type: "rect", stroke: "white", strokeWidth: 1 },
      encoding: {
        color: {
          field: "value",
          type: "quantitative",
          title: d.metric,
          scale: { domain: stops(d.domain[0], d.domain[1], range.length), range, clamp: true },
          // The whole metric name: Vega-Lite cuts legend titles at 180 px ("Δ log p(next) on re…").
          legend: { titleLimit: 400 },
        },
      },
    },
  ];
  if (d.layers * d.heads <= TEXT_CELLS && cell >= 30) {
    // Text colour flips to white on dark cells (the outer third of either end of a diverging scale).
    const [lo, hi] = d.domain;
    const dark = d.diverging
      ? `abs(datum.value) > ${0.6 * hi}`
      : `datum.value > ${lo + 0.6 * (hi - lo)}`;
    layers.push({
      mark: { type: "text", fontSize: 10 },
      encoding: {
        text: { field: "value", type: "quantitative", format: `.${Math.min(d.digits, 2)}f` },
        color: { condition: { test: dark, value: "white" }, value: "#222" },
      },
    });
  }
  return {
    title: d.title,
    data: { values },
    width: d.heads * cell,
    height: d.layers * cell,
    encoding,
    layer: layers,
    config: baseConfig({ view: { stroke: null } }),
  };
}

function plainText(d: GridData): string {
  const cells = d.values.flatMap((row, layer) => row.map((v, head) => ({ layer, head, v })));
  const byValue = [...cells].sort((a, b) => b.v - a.v);
  const fmt = (c: { layer: number; head: number; v: number }) => `L${c.layer}H${c.head} ${c.v.toFixed(d.digits)}`;
  const lines = [
    `${d.layers} layers × ${d.heads} heads of ${d.metric}` + (d.diverging ? " (diverging scale around 0)" : ""),
    `highest: ${byValue.slice(0, 5).map(fmt).join(", ")}`,
    `lowest: ${byValue.slice(-5).reverse().map(fmt).join(", ")}`,
  ];
  if (d.layers * d.heads <= 16 * 16) {
    lines.push("layer " + Array.from({ length: d.heads }, (_, h) => `H${h}`.padStart(d.digits + 4)).join(""));
    d.values.forEach((row, l) =>
      lines.push(`L${l}`.padEnd(6) + row.map((v) => v.toFixed(d.digits).padStart(d.digits + 4)).join("")),
    );
  }
  return lines.join("\n");
}

/** The text/plain body of `headGridView(props)` (summary and, for small grids, the table), without drawing. */
export function headGridText(props: HeadGridProps): string {
  return plainText(prepare(props));
}

/**
 * Layer × head heatmap (layer 0 at the top). Bundle: text/html (static PNG + interactive Plotly),
 * application/vnd.plotly.v1+json, image/png, text/plain. No summarising: L × H numbers are small.
 */
export function headGridView(props: HeadGridProps): MimeBundle {
  const d = prepare(props);
  return plotlyBundle({
    figure: headGridFigure(d),
    picture: drawStatic(headGridStaticSpec(d)),
    title: d.title,
    text: plainText(d),
    library: props.library,
  });
}
