/**
 * Attention pattern heatmaps: query tokens on rows, key tokens on columns, weight 0..1 as colour; the causal
 * upper triangle (keys after the query) is left empty (null, drawn grey), not painted as 0.
 *
 * Plotly view (hover gives query token, key token and weight in every trusted frontend; the head selector is
 * a Plotly dropdown, so it also works where the Plotly JSON is rendered natively). Static picture: the same
 * chart as a Vega-Lite spec drawn in Node (faceted into small multiples for several heads).
 */
import { fail, show } from "../errors";
import type { MimeBundle } from "./mime";
import { plotlyBundle, type PlotlyFigure, type PlotlyLibraryMode } from "./plotly";
import { drawStatic } from "./static";
import { figureTitle } from "./titles";
import { escapeHtml, formatToken, truncate, uniqueLabels } from "./tokens";
import { round3 } from "./format";
import { checkInt, checkMatrix, checkTokens, optional } from "./validate";
import { baseConfig, BLUES, EMPTY_FILL, plotlyColorscale, stops } from "./vegalite";

/**
 * Longest token sequence drawn by default; longer inputs are windowed (see `maxTokens` / `start`): 64 for one
 * or two heads (~190 kB per output), 32 for more (12 heads × 64² weights would make a ~1 MB output).
 */
export const HEATMAP_MAX_TOKENS = 64;
export const HEATMAP_MAX_TOKENS_MANY_HEADS = 32;
/** Longest label drawn; the hover text and text/plain keep more. */
const LABEL_CHARS = 16;

export interface AttentionHeatmapProps {
  /** String tokens of the input, one per position, as the tokenizer returns them (`Ġ`/`▁` are made visible). */
  tokens: string[];
  /** Post-softmax patterns `[head][query][key]`, one `[n, n]` matrix per entry of `heads` (n = tokens.length). */
  patterns: number[][][];
  /** The head index of each pattern (used for titles, the selector and hover). */
  heads: number[];
  /** Layer the patterns come from (titles only). */
  layer: number;
  /** Chart title. Default: "Attention pattern · layer L · head H" (or "heads a, b, …"). */
  title?: string;
  /**
   * Most positions drawn: default 64 for one or two heads, 32 for more (HEATMAP_MAX_TOKENS[_MANY_HEADS]; the
   * cap keeps one output under ~300 kB).
   * Longer inputs show the window `[start, start + maxTokens)` of queries and keys; what is dropped is said in
   * the subtitle and in text/plain.
   */
  maxTokens?: number;
  /** First position of the window when the input is longer than `maxTokens` (default 0). */
  start?: number;
  /**
   * Causal mask (default true): weights of keys after the query are not drawn (null, shown grey). Turn off for
   * bidirectional models.
   */
  causal?: boolean;
  /** Small multiples per row when several heads are given (default: up to 4, fewer when panels are large). */
  columns?: number;
  /** Which output carries the Plotly library (default "once" per kernel session); see PlotlyLibraryMode. */
  library?: PlotlyLibraryMode;
}

const VIEW = "attentionHeatmap";

/** The validated, windowed data of one heatmap call. */
interface HeatmapData {
  layer: number;
  heads: number[];
  /** Formatted, deduplicated labels of the drawn positions. */
  labels: string[];
  /** Formatted labels without dedupe suffixes and without the label length cap (hover, text). */
  fullLabels: string[];
  /** `[head][q][k]` with null where masked. */
  z: (number | null)[][][];
  start: number;
  total: number;
  causal: boolean;
  title: string;
  subtitle: string;
  columns: number;
}

function prepare(props: AttentionHeatmapProps): HeatmapData {
  if (typeof props !== "object" || props === null) fail(`${VIEW}: expected a props object, got ${show(props)}`);
  const tokens = checkTokens(VIEW, props.tokens);
  const n = tokens.length;
  if (!Array.isArray(props.heads) || props.heads.length === 0) {
    fail(`${VIEW}: heads must be a non-empty array of head indices, got ${show(props.heads)}`);
  }
  const heads = props.heads.map((h, i) => checkInt(VIEW, `heads[${i}]`, h));
  if (new Set(heads).size !== heads.length) fail(`${VIEW}: heads must not repeat, got ${show(heads)}`);
  if (!Array.isArray(props.patterns) || props.patterns.length !== heads.length) {
    fail(
      `${VIEW}: patterns must hold one [${n}, ${n}] matrix per head (${heads.length}), ` +
        `got ${Array.isArray(props.patterns) ? props.patterns.length : show(props.patterns)}`,
    );
  }
  props.patterns.forEach((p, i) => checkMatrix(VIEW, `patterns[${i}]`, p, n, n));
  const layer = checkInt(VIEW, "layer", props.layer);
  const maxTokens = checkInt(VIEW, "maxTokens", optional(VIEW, "maxTokens", props.maxTokens, heads.length <= 2 ? HEATMAP_MAX_TOKENS : HEATMAP_MAX_TOKENS_MANY_HEADS), 1);
  const start = checkInt(VIEW, "start", optional(VIEW, "start", props.start, 0), 0, n - 1);
  const causal = optional(VIEW, "causal", props.causal, true);
  const end = Math.min(n, start + maxTokens);
  const fit = Math.max(1, Math.floor(GRID_MAX_WIDTH / (panelSide(end - start) + GAP)));
  const columns = checkInt(VIEW, "columns", optional(VIEW, "columns", props.columns, Math.min(heads.length, 4, fit)), 1);

  const formatted = tokens.slice(start, end).map((t) => formatToken(t));
  const z = props.patterns.map((p) =>
    p.slice(start, end).map((row, qi) => row.slice(start, end).map((w, ki) => (causal && ki > qi ? null : round3(w)))),
  );
  const what = heads.length === 1 ? `head ${heads[0]}` : `heads ${heads.join(", ")}`;
  const title = optional(VIEW, "title", props.title, `Attention pattern · layer ${layer} · ${what}`);
  return {
    layer,
    heads,
    labels: uniqueLabels(formatted.map((t) => truncate(t, LABEL_CHARS))),
    fullLabels: formatted,
    z,
    start,
    total: n,
    causal,
    title,
    subtitle: windowNote(start, end, n, maxTokens),
    columns: Math.min(columns, heads.length),
  };
}

/** What the window leaves out, in words ("" when everything is shown). */
function windowNote(start: number, end: number, n: number, maxTokens: number): string {
  if (start === 0 && end === n) return "";
  const dropped = [start > 0 ? `${start} earlier` : "", end < n ? `${n - end} later` : ""].filter(Boolean);
  return (
    `positions ${start}–${end - 1} of ${n} shown (cap maxTokens = ${maxTokens}); ${dropped.join(" and ")} ` +
    `position${n - (end - start) === 1 ? "" : "s"} dropped` +
    (start > 0 ? "; rows omit the weight on keys before the window" : "")
  );
}

// ---------------------------------------------------------------- Plotly figure

interface Box {
  width: number;
  height: number;
  margin: { l: number; r: number; t: number; b: number };
}

/** Pixels per cell of a single heatmap: large for short inputs, down to 11 px (9 px font) at 64 tokens. */
function singleCell(n: number): number {
  return Math.max(11, Math.min(36, Math.floor(560 / n)));
}
const GAP = 44; // between small multiples (room for their titles)
const COLORBAR = 90;
/** Width the small multiples may take before they wrap to fewer columns, px. */
const GRID_MAX_WIDTH = 1100;
/**
 * Side of one small multiple: 220 px, or 12 px per position when more are shown, so every position keeps a
 * readable token label (9 px font) as in the one-head view.
 */
function panelSide(n: number): number {
  return Math.max(220, n * 12);
}

function labelMargin(labels: string[], fontSize: number): number {
  const longest = Math.max(...labels.map((l) => Array.from(l.replace(/\u200b/g, "")).length));
  return Math.min(150, Math.max(40, Math.round(longest * fontSize * 0.62) + 28));
}

/**
 * Top margin, from the top: Plotly's mode bar (30 px, shown on hover), the title (and subtitle), then with
 * several heads the head selector (34 px) and room for the panel titles. The selector sits `SELECTOR_PAD` above
 * the plot area in both modes, so the margin is the same for the grid and for one selected head.
 */
const MODEBAR = 30;
const SELECTOR_PAD = 26;
function topMargin(d: HeatmapData, titleHeight: number): number {
  const titleBottom = MODEBAR + titleHeight + 4;
  return d.heads.length > 1 ? titleBottom + 6 + 34 + SELECTOR_PAD : titleBottom + 16;
}

/** The title of the grid, and of one head when the selector picks it. */
const gridTitle = (d: HeatmapData) => d.title;
const headTitle = (d: HeatmapData, h: number) => (d.heads.length === 1 ? d.title : `Attention pattern · layer ${d.layer} · head ${h}`);

/**
 * A figure of plot area `plotW` × `plotH` with left/bottom margin `m`, widened for its title: the extra width
 * goes to the right margin, so cells stay square. The top margin holds the tallest of `titles`.
 */
function boxFor(d: HeatmapData, plotW: number, plotH: number, m: number, titles: string[]): Box {
  const width = plotW + m + COLORBAR;
  const fitted = titles.map((t) => figureTitle(t, width, MODEBAR, d.subtitle));
  const top = topMargin(d, Math.max(...fitted.map((t) => t.height)));
  const full = Math.max(...fitted.map((t) => t.width));
  const margin = { l: m, r: full - m - plotW, t: top, b: m };
  return { width: full, height: plotH + margin.t + margin.b, margin };
}

function singleBox(d: HeatmapData): Box {
  const side = Math.max(200, d.labels.length * singleCell(d.labels.length));
  const font = d.labels.length > 32 ? 9 : 11;
  return boxFor(d, side, side, labelMargin(d.labels, font), d.heads.map((h) => headTitle(d, h)));
}

function gridBox(d: HeatmapData): Box {
  const rows = Math.ceil(d.heads.length / d.columns);
  const panel = panelSide(d.labels.length);
  const plotW = d.columns * panel + (d.columns - 1) * GAP;
  const plotH = rows * panel + (rows - 1) * GAP;
  return boxFor(d, plotW, plotH, labelMargin(d.labels, 9), [gridTitle(d)]);
}

/** Plotly axis names of subplot i ("xaxis", "xaxis2", …) and trace references ("x", "x2", …). */
const axisName = (axis: "x" | "y", i: number) => `${axis}axis${i === 0 ? "" : i + 1}`;
const axisRef = (axis: "x" | "y", i: number) => `${axis}${i === 0 ? "" : i + 1}`;

/**
 * The axis attributes that differ between the grid and the one-head view, for subplot i. With `only`, head
 * `only` fills the plot area and the other subplots are hidden.
 */
function axisState(d: HeatmapData, box: Box, i: number, only?: number): { x: Record<string, unknown>; y: Record<string, unknown> } {
  const plotW = box.width - box.margin.l - box.margin.r;
  const plotH = box.height - box.margin.t - box.margin.b;
  const n = d.labels.length;
  const col = i % d.columns;
  const row = Math.floor(i / d.columns);
  const single = only !== undefined;
  const panel = panelSide(n);
  const top = 1 - (row * (panel + GAP)) / plotH;
  const lastRow = i + d.columns >= d.heads.length;
  const font = { size: single ? (n > 32 ? 9 : 11) : 9 };
  return {
    x: {
      // The one-head view is the plot area's left square: a wide title widens the right margin only.
      domain: single ? [0, 1] : [(col * (panel + GAP)) / plotW, (col * (panel + GAP) + panel) / plotW],
      visible: !single || only === i,
      showticklabels: single || lastRow,
      tickfont: font,
      "title.text": single || lastRow ? "key" : "",
    },
    y: {
      domain: single ? [0, 1] : [Math.max(0, top - panel / plotH), top],
      visible: !single || only === i,
      showticklabels: single || col === 0,
      tickfont: font,
      "title.text": single || col === 0 ? "query" : "",
    },
  };
}

/** Full axis objects for the initial layout. */
function axesLayout(d: HeatmapData, box: Box, only?: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const n = d.labels.length;
  // dtick 1: every token labelled (Plotly would otherwise thin out labels it finds crowded).
  const common = { type: "category", dtick: 1, showgrid: false, zeroline: false, automargin: true /* title clear of labels */ };
  d.heads.forEach((_, i) => {
    const { x, y } = axisState(d, box, i, only);
    const { "title.text": xTitle, ...xRest } = x;
    const { "title.text": yTitle, ...yRest } = y;
    out[axisName("x", i)] = {
      ...common,
      ...xRest,
      title: { text: xTitle, standoff: 6 },
      tickangle: n > 6 ? -60 : 0,
      anchor: axisRef("y", i),
    };
    out[axisName("y", i)] = {
      ...common,
      ...yRest,
      title: { text: yTitle, standoff: 6 },
      autorange: "reversed", // query 0 at the top
      anchor: axisRef("x", i),
      // Cells are square because every domain is laid out square in pixels (scaleanchor shrank the plot).
    };
  });
  return out;
}

/** The same as dotted relayout keys ("xaxis2.domain": …), which change only what differs between modes. */
function axesUpdate(d: HeatmapData, box: Box, only?: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  d.heads.forEach((_, i) => {
    const { x, y } = axisState(d, box, i, only);
    // A hidden subplot needs nothing but visible: false.
    const hidden = only !== undefined && only !== i;
    for (const [axis, state] of [["x", x], ["y", y]] as const) {
      for (const [key, value] of Object.entries(state)) {
        if (hidden && key !== "visible") continue;
        out[`${axisName(axis, i)}.${key}`] = value;
      }
    }
  });
  return out;
}

/**
 * The grey causal-mask triangle behind each heatmap (keys after the query), in the subplot's own category
 * coordinates. The straight diagonal halves the diagonal cells, but those have values and the heatmap paints
 * over them. With `only`, just that head's triangle is visible.
 */
function maskShapes(d: HeatmapData, only?: number): object[] {
  if (!d.causal) return [];
  const e = d.labels.length - 0.5;
  return d.heads.map((_, i) => ({
    type: "path",
    path: `M -0.5 -0.5 L ${e} -0.5 L ${e} ${e} Z`,
    xref: axisRef("x", i),
    yref: axisRef("y", i),
    fillcolor: EMPTY_FILL,
    line: { width: 0 },
    layer: "below",
    visible: only === undefined || only === i,
  }));
}

/** Titles above each small multiple. */
function panelTitles(d: HeatmapData, box: Box): object[] {
  const plotW = box.width - box.margin.l - box.margin.r;
  const plotH = box.height - box.margin.t - box.margin.b;
  const panel = panelSide(d.labels.length);
  return d.heads.map((h, i) => {
    const col = i % d.columns;
    const row = Math.floor(i / d.columns);
    return {
      text: `head ${h}`,
      showarrow: false,
      xref: "paper",
      yref: "paper",
      x: (col * (panel + GAP) + panel / 2) / plotW,
      y: 1 - (row * (panel + GAP)) / plotH,
      xanchor: "center",
      yanchor: "bottom",
      font: { size: 12 },
    };
  });
}

/** Plotly title attributes for `title` in a figure of `box`'s width. */
function titleLayout(d: HeatmapData, title: string, box: Box): Record<string, unknown> {
  return figureTitle(title, box.width, MODEBAR, d.subtitle).layout;
}

/** The Plotly figure: one heatmap trace per head, a shared 0..1 colour axis, a head dropdown for several heads. */
export function attentionFigure(d: HeatmapData): PlotlyFigure {
  const labels = d.labels.map(escapeHtml);
  const data = d.heads.map((h, i) => ({
    type: "heatmap",
    name: `head ${h}`,
    z: d.z[i],
    x: labels,
    y: labels,
    xaxis: axisRef("x", i),
    yaxis: axisRef("y", i),
    coloraxis: "coloraxis",
    hoverongaps: false, // the masked triangle has no value to report
    xgap: 0,
    ygap: 0,
    hovertemplate: `query %{y}<br>key %{x}<br>weight %{z:.3f}<extra>L${d.layer} H${h}</extra>`,
  }));
  const many = d.heads.length > 1;
  const box = many ? gridBox(d) : singleBox(d);
  const layout: Record<string, unknown> = {
    width: box.width,
    height: box.height,
    margin: box.margin,
    // Below the mode bar, which would otherwise cover it on narrow figures; wrapped when too long.
    title: titleLayout(d, many ? gridTitle(d) : headTitle(d, d.heads[0]), box),
    font: { family: "DejaVu Sans, Verdana, sans-serif", size: 11 },
    // Transparent: with the head selector, hidden subplots share the shown one's area and their
    // backgrounds would paint over it. The masked triangle is drawn by `maskShapes` instead.
    plot_bgcolor: "rgba(0,0,0,0)",
    shapes: maskShapes(d, many ? undefined : 0),
    paper_bgcolor: "white",
    coloraxis: {
      cmin: 0,
      cmax: 1,
      colorscale: plotlyColorscale(BLUES),
      colorbar: { title: { text: "weight" }, thickness: 14, len: many ? 0.6 : 0.8 },
    },
    annotations: many ? panelTitles(d, box) : [],
    ...axesLayout(d, box, many ? undefined : 0),
  };
  if (many) layout.updatemenus = [headSelector(d, box)];
  return { data, layout };
}

/** Dropdown "all heads" / "head h": toggles trace visibility and swaps the axes, size and titles. */
function headSelector(d: HeatmapData, grid: Box): Record<string, unknown> {
  const single = singleBox(d);
  // Panel titles and mask triangles are toggled one by one ("annotations[2].visible"), not re-sent.
  const toggles = (only?: number) => {
    const out: Record<string, boolean> = {};
    d.heads.forEach((_, i) => {
      out[`annotations[${i}].visible`] = only === undefined;
      if (d.causal) out[`shapes[${i}].visible`] = only === undefined || only === i;
    });
    return out;
  };
  const buttons = [
    {
      label: "all heads",
      method: "update",
      args: [
        { visible: d.heads.map(() => true) },
        {
          width: grid.width,
          height: grid.height,
          margin: grid.margin,
          "title.text": titleLayout(d, gridTitle(d), grid).text,
          ...toggles(),
          ...axesUpdate(d, grid),
        },
      ],
    },
    ...d.heads.map((h, i) => ({
      label: `head ${h}`,
      method: "update",
      args: [
        { visible: d.heads.map((_, j) => j === i) },
        {
          width: single.width,
          height: single.height,
          margin: single.margin,
          "title.text": titleLayout(d, headTitle(d, h), single).text,
          ...toggles(i),
          ...axesUpdate(d, single, i),
        },
      ],
    })),
  ];
  return {
    type: "dropdown",
    direction: "down",
    active: 0,
    showactive: true,
    x: 0,
    xref: "paper",
    xanchor: "left",
    y: 1,
    yref: "paper",
    yanchor: "bottom",
    pad: { b: SELECTOR_PAD },
    buttons,
  };
}

// ---------------------------------------------------------------- static picture (Vega-Lite)

/** The same chart for the static picture: rect marks only where there is a value, grey behind. */
export function attentionStaticSpec(d: HeatmapData): Record<string, unknown> {
  const n = d.labels.length;
  const values: { head: string; query: string; key: string; weight: number }[] = [];
  d.heads.forEach((h, i) =>
    d.z[i].forEach((row, q) =>
      row.forEach((w, k) => {
        if (w !== null) values.push({ head: `head ${h}`, query: d.labels[q], key: d.labels[k], weight: w });
      }),
    ),
  );
  const many = d.heads.length > 1;
  const cell = many ? Math.floor(panelSide(n) / n) : singleCell(n) - 1;
  const fontSize = many || n > 32 ? 9 : 11;
  const axis = (title: string) => ({
    title,
    labels: true,
    ticks: true,
    labelFontSize: fontSize,
    labelLimit: 140,
    labelOverlap: false,
    domain: false,
  });
  const unit = {
    width: n * cell,
    height: n * cell,
    mark: { type: "rect" },
    encoding: {
      x: { field: "key", type: "nominal", sort: null, scale: { domain: d.labels, paddingInner: 0 }, axis: { ...axis("key"), labelAngle: n > 6 ? -60 : 0 } },
      y: { field: "query", type: "nominal", sort: null, scale: { domain: d.labels, paddingInner: 0 }, axis: axis("query") },
      color: {
        field: "weight",
        type: "quantitative",
        scale: { domain: stops(0, 1, BLUES.length), range: BLUES, clamp: true },
        legend: { title: "weight", gradientLength: Math.min(200, Math.max(80, n * cell * 0.8)) },
      },
    },
  };
  const title = { text: d.title, ...(d.subtitle ? { subtitle: d.subtitle } : {}) };
  const config = baseConfig({ view: { fill: EMPTY_FILL, stroke: null }, header: { labelFontSize: 12, title: null } });
  if (!many) return { title, data: { values }, ...unit, config };
  return {
    title,
    data: { values },
    facet: { field: "head", type: "nominal", sort: d.heads.map((h) => `head ${h}`), header: { title: null } },
    columns: d.columns,
    spec: unit,
    resolve: { scale: { color: "shared" } },
    config,
  };
}

// ---------------------------------------------------------------- text/plain

/** Mean weight each head puts on the first token, the previous token and itself: what detectors look at. */
function headSummary(z: (number | null)[][]): string {
  const n = z.length;
  const mean = (f: (q: number) => number | null) => {
    const xs = Array.from({ length: n }, (_, q) => f(q)).filter((x): x is number => x !== null);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
  };
  const pct = (x: number) => (Number.isNaN(x) ? "–" : `${(100 * x).toFixed(0)}%`);
  return (
    `first token ${pct(mean((q) => z[q][0]))}, previous token ${pct(mean((q) => (q > 0 ? z[q][q - 1] : null)))}, ` +
    `self ${pct(mean((q) => z[q][q]))} (mean weight over queries)`
  );
}

function plainText(d: HeatmapData): string {
  const lines: string[] = [];
  if (d.subtitle) lines.push(d.subtitle);
  lines.push(
    `${d.labels.length} positions, query rows × key columns, weights 0..1` +
      (d.causal ? "; keys after the query are masked (empty)" : ""),
  );
  d.heads.forEach((h, i) => lines.push(`head ${h}: ${headSummary(d.z[i])}`));
  if (d.heads.length === 1) {
    lines.push("strongest key per query:");
    d.z[0].forEach((row, q) => {
      let best = 0;
      row.forEach((w, k) => {
        if (w !== null && w > (row[best] ?? -1)) best = k;
      });
      const pos = d.start + q;
      lines.push(`  ${String(pos).padStart(3)} ${d.fullLabels[q].padEnd(12)} → ${d.start + best} ${d.fullLabels[best]} (${(row[best] ?? 0).toFixed(3)})`);
    });
  }
  return lines.join("\n");
}

/**
 * Attention pattern heatmap (one head) or small multiples with a head selector (several heads).
 * Bundle: text/html (static PNG + interactive Plotly), application/vnd.plotly.v1+json, image/png, text/plain.
 * Inputs longer than `maxTokens` (64; 32 for more than two heads) are windowed; the dropped positions are stated
 * in the subtitle and in text/plain.
 */
export function attentionHeatmap(props: AttentionHeatmapProps): MimeBundle {
  const d = prepare(props);
  const picture = drawStatic(attentionStaticSpec(d));
  return plotlyBundle({
    figure: attentionFigure(d),
    picture,
    title: d.title,
    text: plainText(d),
    library: props.library,
  });
}

/** The text/plain of `attentionHeatmap(props)` alone (title and summary), without drawing anything. */
export function attentionText(props: AttentionHeatmapProps): string {
  const d = prepare(props);
  return `${d.title}\n${plainText(d)}`.trimEnd();
}

/** Exposed for tests and for views built on the same data. */
export const _internal = { prepare };
