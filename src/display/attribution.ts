/**
 * Direct logit attribution view: one horizontal bar per component (the largest by |value|, the rest summed
 * into one bar), red for pushing towards the answer, blue for against, the value printed beside each bar so
 * the static picture carries the numbers. Vega-Lite (see vegalite.ts for why bar charts are Vega-Lite).
 */
import { fail, show } from "../errors";
import { round4 } from "./format";
import type { MimeBundle } from "./mime";
import { baseConfig, vegaLiteBundle } from "./vegalite";

export interface AttributionViewProps {
  names: string[];
  values: number[];
  title: string;
  subtitle: string;
  /** Most bars drawn (default 24); the rest are summed into one. */
  maxBars?: number;
}

const VIEW = "attributionView";

export function attributionView(p: AttributionViewProps): MimeBundle {
  if (typeof p !== "object" || p === null || !Array.isArray(p.names) || !Array.isArray(p.values) || p.names.length !== p.values.length) {
    fail(`${VIEW}: expected names and values of equal length, got ${show(p)}`);
  }
  const max = p.maxBars ?? 24;
  const order = p.values.map((v, i) => i).sort((a, b) => Math.abs(p.values[b]) - Math.abs(p.values[a]));
  const shown = order.slice(0, max);
  const rest = order.slice(max);
  const bars = shown.map((i) => ({ name: p.names[i], value: round4(p.values[i]) }));
  if (rest.length) bars.push({ name: `${rest.length} others (sum)`, value: round4(rest.reduce((s, i) => s + p.values[i], 0)) });
  bars.sort((a, b) => b.value - a.value);
  const spec = {
    title: { text: p.title, subtitle: p.subtitle },
    data: { values: bars },
    width: 420,
    height: { step: 18 },
    encoding: {
      y: { field: "name", type: "nominal", sort: null, axis: { title: null } },
      x: { field: "value", type: "quantitative", axis: { title: "direct contribution to the logit difference" } },
    },
    layer: [
      { mark: { type: "bar" }, encoding: { color: { condition: { test: "datum.value >= 0", value: "#d6604d" }, value: "#4393c3" }, tooltip: [{ field: "name" }, { field: "value", format: ".4f" }] } },
      { mark: { type: "text", align: "left", dx: 3, fontSize: 10 }, encoding: { text: { field: "value", format: ".3f" }, color: { value: "#222" } } },
    ],
    config: baseConfig({ view: { stroke: null } }),
  };
  const text = [p.title, p.subtitle, ...bars.map((b) => `${b.name.padEnd(28)} ${b.value >= 0 ? "+" : ""}${b.value.toFixed(4)}`)].join("\n");
  return vegaLiteBundle(spec, text);
}
