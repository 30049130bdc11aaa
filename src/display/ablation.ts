/**
 * What an ablation does to each prediction: per-token loss clean vs ablated (grouped bars) above the change
 * (ablated − clean; red where the loss went up). The loss at position t scores the prediction of token t+1, so
 * there are tokens.length − 1 values and the x axis names the predicted tokens. Vega-Lite view.
 */
import { fail, show } from "../errors";
import { mean, round4, signed } from "./format";
import type { MimeBundle } from "./mime";
import { formatToken, truncate, uniqueLabels } from "./tokens";
import { checkInt, checkNumbers, checkTokens, optional } from "./validate";
import { baseConfig, vegaLiteBundle } from "./vegalite";

/** Most predictions drawn by default; later ones are dropped (means in the title still cover all). */
export const ABLATION_MAX_POSITIONS = 96;

export interface AblationComparisonProps {
  /** All string tokens of the input (n). */
  tokens: string[];
  /** Loss of the clean run at positions 0..n−2 (position t predicts token t+1): n − 1 values. */
  clean: number[];
  /** Loss with the ablation, same positions. */
  ablated: number[];
  /** Name of the ablated run in legend and text, e.g. "L1H3 zero-ablated" (default "ablated"). */
  label?: string;
  /** Chart title. Default: "Per-token loss: clean vs <label>". */
  title?: string;
  /** Axis title of the values (default "loss (nats)"; any per-prediction metric works, e.g. logit difference). */
  metric?: string;
  /** Most predictions drawn (default 96); later positions are dropped and counted in the subtitle. */
  maxPositions?: number;
}

const VIEW = "ablationComparisonView";
const CLEAN_COLOR = "#9ecae1";
const ABLATED_COLOR = "#08519c";

export function ablationComparisonView(props: AblationComparisonProps): MimeBundle {
  if (typeof props !== "object" || props === null) fail(`${VIEW}: expected a props object, got ${show(props)}`);
  const tokens = checkTokens(VIEW, props.tokens, 2);
  const n = tokens.length - 1;
  const clean = checkNumbers(VIEW, "clean", props.clean, n);
  const ablated = checkNumbers(VIEW, "ablated", props.ablated, n);
  const label = optional(VIEW, "label", props.label, "ablated");
  if (label === "clean") fail(`${VIEW}: label must differ from "clean", got ${show(label)}`);
  const metric = optional(VIEW, "metric", props.metric, "loss (nats)");
  const title = optional(VIEW, "title", props.title, `Per-token loss: clean vs ${label}`);
  const maxPositions = checkInt(VIEW, "maxPositions", optional(VIEW, "maxPositions", props.maxPositions, ABLATION_MAX_POSITIONS), 1);

  const shown = Math.min(n, maxPositions);
  // Position t predicts token t+1: label each prediction with the predicted token.
  const predicted = tokens.slice(1, shown + 1).map((t) => formatToken(t));
  const labels = uniqueLabels(predicted.map((t) => truncate(t, 14)));
  const rows = labels.map((lab, t) => ({
    predicted: lab,
    position: t,
    context: formatToken(tokens[t]),
    token: predicted[t],
    clean: round4(clean[t]),
    ablated: round4(ablated[t]),
    change: round4(ablated[t] - clean[t]),
  }));
  const meanClean = mean(clean);
  const meanAblated = mean(ablated);
  const summary = `mean ${metric}: clean ${meanClean.toFixed(3)}, ${label} ${meanAblated.toFixed(3)} (${signed(meanAblated - meanClean)})`;
  const note = shown < n ? `; first ${shown} of ${n} predictions drawn (maxPositions = ${maxPositions})` : "";

  // A fixed width (not {step}) so both panels line up: with xOffset, a step would size the inner bands.
  const width = shown * Math.max(10, Math.min(30, Math.floor(720 / shown)));
  const x = {
    field: "predicted",
    type: "nominal",
    sort: null,
    scale: { domain: labels },
    axis: { title: "predicted token", labelAngle: shown > 8 ? -60 : 0, labelFontSize: shown > 48 ? 9 : 11, labelOverlap: false },
  };
  const tooltip = [
    { field: "position", type: "quantitative", title: "position" },
    { field: "context", type: "nominal", title: "last input token" },
    { field: "token", type: "nominal", title: "predicted token" },
    { field: "clean", type: "quantitative", format: ".3f" },
    { field: "ablated", type: "quantitative", format: ".3f", title: label },
    { field: "change", type: "quantitative", format: "+.3f" },
  ];
  const spec = {
    title: { text: title, subtitle: summary + note },
    data: { values: rows },
    vconcat: [
      {
        width,
        height: 180,
        transform: [{ fold: ["clean", "ablated"], as: ["run", "value"] }],
        mark: { type: "bar" },
        encoding: {
          x: { ...x, axis: { ...x.axis, title: null, labels: false, ticks: false } },
          xOffset: { field: "run", type: "nominal", sort: ["clean", "ablated"] },
          y: { field: "value", type: "quantitative", axis: { title: metric } },
          color: {
            field: "run",
            type: "nominal",
            sort: ["clean", "ablated"],
            scale: { domain: ["clean", "ablated"], range: [CLEAN_COLOR, ABLATED_COLOR] },
            legend: { title: null, orient: "top", labelExpr: `datum.label === 'ablated' ? ${JSON.stringify(label)} : 'clean'` },
          },
          tooltip,
        },
      },
      {
        width,
        height: 110,
        mark: { type: "bar" },
        encoding: {
          x,
          y: { field: "change", type: "quantitative", axis: { title: `change (${label} − clean)` } },
          color: {
            condition: { test: "datum.change > 0", value: "#d6604d" },
            value: "#4393c3",
          },
          tooltip,
        },
      },
    ],
    spacing: 6,
    config: baseConfig({ view: { stroke: null } }),
  };
  const biggest = [...rows].sort((a, b) => b.change - a.change).slice(0, 5);
  const text = [
    title,
    summary + note,
    `largest increases: ${biggest.map((r) => `${r.position}→${r.token} ${signed(r.change)}`).join(", ")}`,
  ].join("\n");
  return vegaLiteBundle(spec, text);
}
