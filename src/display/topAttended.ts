/**
 * Top-attended tokens of one head as horizontal bars, strongest first, value printed at the end of each bar
 * so the static picture carries the numbers. Vega-Lite view (tooltips in JupyterLab / VS Code).
 */
import { fail, show } from "../errors";
import { round4 } from "./format";
import type { MimeBundle } from "./mime";
import { formatToken, truncate, uniqueLabels } from "./tokens";
import { checkInt, checkNumbers, checkTokens, optional } from "./validate";
import { baseConfig, vegaLiteBundle } from "./vegalite";

/** Most bars drawn by default; the weakest beyond it are dropped (and counted in text/plain). */
export const TOP_ATTENDED_MAX_BARS = 32;

export interface TopAttendedProps {
  /** All string tokens of the input (positions index into it). */
  tokens: string[];
  /** Key positions that receive the most attention, one bar each (order irrelevant: bars are sorted). */
  positions: number[];
  /** Attention each position receives, same length as `positions`. */
  weights: number[];
  layer: number;
  head: number;
  /** Chart title. Default: "Most attended tokens · layer L · head H". */
  title?: string;
  /** Axis title of the weights (default "attention received"; say "summed over queries" when it is). */
  weightLabel?: string;
  /** Most bars drawn (default 32); the weakest beyond are dropped. */
  maxBars?: number;
}

const VIEW = "topAttendedView";

export function topAttendedView(props: TopAttendedProps): MimeBundle {
  if (typeof props !== "object" || props === null) fail(`${VIEW}: expected a props object, got ${show(props)}`);
  const tokens = checkTokens(VIEW, props.tokens);
  const positions = (Array.isArray(props.positions) ? props.positions : fail(`${VIEW}: positions must be an array, got ${show(props.positions)}`))
    .map((p, i) => checkInt(VIEW, `positions[${i}]`, p, 0, tokens.length - 1));
  const weights = checkNumbers(VIEW, "weights", props.weights, positions.length);
  if (positions.length === 0) fail(`${VIEW}: positions must not be empty`);
  const layer = checkInt(VIEW, "layer", props.layer);
  const head = checkInt(VIEW, "head", props.head);
  const maxBars = checkInt(VIEW, "maxBars", optional(VIEW, "maxBars", props.maxBars, TOP_ATTENDED_MAX_BARS), 1);
  const title = optional(VIEW, "title", props.title, `Most attended tokens · layer ${layer} · head ${head}`);
  const weightLabel = optional(VIEW, "weightLabel", props.weightLabel, "attention received");

  const bars = positions
    .map((position, i) => ({ position, token: formatToken(tokens[position]), weight: weights[i] }))
    .sort((a, b) => b.weight - a.weight || a.position - b.position);
  const shown = bars.slice(0, maxBars);
  const dropped = bars.length - shown.length;
  const labels = uniqueLabels(shown.map((b) => `${b.position}: ${truncate(b.token, 20)}`));
  const values = shown.map((b, i) => ({ label: labels[i], position: b.position, token: b.token, weight: round4(b.weight) }));
  const note = dropped > 0 ? `${dropped} weaker position${dropped === 1 ? "" : "s"} not drawn (maxBars = ${maxBars})` : "";

  const spec = {
    title: { text: title, ...(note ? { subtitle: note } : {}) },
    data: { values },
    width: 360,
    height: { step: 22 },
    encoding: {
      y: { field: "label", type: "nominal", sort: null, scale: { domain: labels }, axis: { title: "position: key token", labelLimit: 200 } },
      x: { field: "weight", type: "quantitative", axis: { title: weightLabel, grid: true }, scale: { zero: true } },
      tooltip: [
        { field: "position", type: "quantitative" },
        { field: "token", type: "nominal" },
        { field: "weight", type: "quantitative", format: ".4f" },
      ],
    },
    layer: [
      { mark: { type: "bar", color: "#4292c6" } },
      { mark: { type: "text", align: "left", dx: 3, fontSize: 10, color: "#222" }, encoding: { text: { field: "weight", type: "quantitative", format: ".3f" } } },
    ],
    config: baseConfig({ view: { stroke: null } }),
  };
  const text = [
    title,
    ...(note ? [note] : []),
    ...shown.map((b) => `  ${String(b.position).padStart(4)}  ${b.token.padEnd(16)} ${b.weight.toFixed(4)}`),
  ].join("\n");
  return vegaLiteBundle(spec, text);
}
