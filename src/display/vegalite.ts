/**
 * Vega-Lite views: `application/vnd.vegalite.v5+json` (drawn natively, with tooltips, by JupyterLab's
 * vega5 extension, VS Code and nbviewer-style renderers) + `image/png` drawn in Node (classic Notebook and
 * static viewers) + `text/plain`. Deliberately no `text/html`: JupyterLab ranks text/html above its vega
 * renderer, so HTML would shadow the native view, and untrusted HTML with scripts shows nothing.
 *
 * Specs must compile with Vega-Lite 5 (what JupyterLab 4 bundles) as well as 6 (what draws the PNG here),
 * so they stick to long-standing features.
 */
import type { MimeBundle } from "./mime";
import { CHART_FONT, drawStatic, type StaticPicture } from "./static";

export const VEGALITE_MIME = "application/vnd.vegalite.v5+json";
export const VEGALITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";

/**
 * Sequential colour scale for weights in [0, 1] (ColorBrewer "Blues", the stops of d3/vega's "blues"
 * scheme), shared by the Plotly and Vega-Lite views so the interactive and static pictures match.
 */
export const BLUES = [
  "#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b",
];
/** Diverging scale (ColorBrewer "RdBu" reversed: negative blue, positive red), for signed effects. */
export const RED_BLUE = [
  "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b",
];
/** Fill of cells that have no value (the causal mask): light grey, distinct from a weight of 0. */
export const EMPTY_FILL = "#e4e4e4";

/** Evenly spaced domain stops for a colour list over [lo, hi]. */
export function stops(lo: number, hi: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
}

/** Plotly colorscale from a colour list. */
export function plotlyColorscale(colors: string[]): [number, string][] {
  return colors.map((c, i) => [i / (colors.length - 1), c]);
}

/** Chart-wide config: one font (covers formatToken's glyphs), white background, quiet axes. */
export function baseConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    font: CHART_FONT,
    background: "white",
    axis: { labelFontSize: 11, titleFontSize: 12, labelColor: "#333", titleColor: "#333" },
    legend: { labelFontSize: 11, titleFontSize: 11 },
    title: { fontSize: 14, fontWeight: "normal", anchor: "start", subtitleFontSize: 11, subtitleColor: "#666" },
    ...extra,
  };
}

/** A Vega-Lite view's bundle: the spec, its PNG, its text. */
export function vegaLiteBundle(spec: Record<string, unknown>, text: string): MimeBundle {
  const full = { $schema: VEGALITE_SCHEMA, ...spec };
  const picture: StaticPicture = drawStatic(full);
  return {
    [VEGALITE_MIME]: full,
    "image/png": picture.png.toString("base64"),
    "text/plain": text,
  };
}
