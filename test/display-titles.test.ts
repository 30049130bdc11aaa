/**
 * Charts a reader can read, measured in a real browser (Debian's Chromium, Plotly drawing the figures the
 * views produce): Plotly titles are never cut, at any head-grid size from 2 × 2 to 32 × 32 and for long sweep
 * titles; head-grid cells stay square and at least 14 px; the all-heads attention view labels every query and
 * key with its token, as the one-head view does. Plotly clips a title at the figure's edge and thins out
 * category labels it finds crowded, so both are checked on the drawn SVG, not on the layout numbers.
 */
import { after, before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import type { Browser, Page } from "playwright-core";
import * as display from "../src/display";
import { attentionFigure, attentionStaticSpec, _internal as heatmapInternal } from "../src/display/attention";
import { headGridFigure, headGridStaticSpec } from "../src/display/headGrid";
import type { PlotlyFigure } from "../src/display/plotly";
import { TITLE_MAX_WIDTH } from "../src/display/titles";
import { CHROMIUM, CHROMIUM_ARGS } from "./display-pages";

const SKIP = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (Debian package chromium): browser tests skipped`;

/** The tour's detector title and the ablation notebook's sweep title (both were cut before). */
const DETECTOR_TITLE = "Previous-token heads (4 generated sequences [bos] A A, |A| = 20, seed 0)";
const SWEEP_TITLE = "Change in log p(next) on repeat when each head is zero-ablated (clean -2.980)";
const LONG_TITLE = Array.from({ length: 12 }, (_, i) => `clause ${i} of a title far too long for one line`).join(", ");

/** Deterministic values in 0..1. */
function grid(layers: number, heads: number): number[][] {
  return Array.from({ length: layers }, (_, l) => Array.from({ length: heads }, (_, h) => ((l * 7 + h * 13) % 17) / 17));
}

function gridFigure(layers: number, heads: number, title: string): PlotlyFigure {
  const bundle = display.headGridView({ values: grid(layers, heads), title, metricLabel: "score", domain: [0, 1], library: "never" });
  return bundle["application/vnd.plotly.v1+json"] as PlotlyFigure;
}

const WORDS = ["the", "old", "king", "gave", "the", "young", "girl", "a", "red", "apple", "under", "the", "big", "tree", "near", "the"];
function tokens(n: number): string[] {
  return ["<|endoftext|>", ...Array.from({ length: n - 1 }, (_, i) => `Ġ${WORDS[i % WORDS.length]}${i >= WORDS.length ? i : ""}`)];
}
function causalUniform(n: number): number[][] {
  return Array.from({ length: n }, (_, q) => Array.from({ length: n }, (_, k) => (k <= q ? 1 / (q + 1) : 0)));
}
function heatmapFigure(n: number, heads: number): PlotlyFigure {
  return attentionFigure(heatmapInternal.prepare(heatmapProps(n, heads)));
}
function heatmapProps(n: number, heads: number) {
  return { tokens: tokens(n), patterns: Array.from({ length: heads }, () => causalUniform(n)), heads: Array.from({ length: heads }, (_, h) => h), layer: 1 };
}

let browser: Browser;
let page: Page;

before(async () => {
  if (SKIP) return;
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1600, height: 1200 } });
  await page.setContent(`<html><body style="margin:0"><div id="plot"></div></body></html>`);
  await page.addScriptTag({ path: display.plotlyLibrary().file });
});

after(async () => {
  await browser?.close();
});

interface Drawn {
  width: number;
  titleLeft: number;
  titleRight: number;
  titleLines: number;
  /** Tick label texts per axis ("xaxis", "yaxis2", ...) as drawn. */
  ticks: Record<string, string[]>;
}

/** Draws `figure` with Plotly and measures the title and the tick labels. */
async function draw(figure: PlotlyFigure): Promise<Drawn> {
  return page.evaluate(async (fig) => {
    const el = document.getElementById("plot")!;
    const Plotly = (window as unknown as { Plotly: { purge(e: Element): void; newPlot(e: Element, d: object[], l: object): Promise<void> } }).Plotly;
    Plotly.purge(el);
    await Plotly.newPlot(el, fig.data, fig.layout);
    const svg = el.querySelector("svg.main-svg")!.getBoundingClientRect();
    const title = el.querySelector(".g-gtitle text")!;
    const box = title.getBoundingClientRect();
    // Tick labels per subplot ("xy", "x2y2", ...): x labels of its x axis, y labels of its y axis.
    const ticks: Record<string, string[]> = {};
    for (const sub of el.querySelectorAll("g.subplot")) {
      const name = [...sub.classList].find((c) => c !== "subplot") ?? "";
      ticks[`x:${name}`] = [...sub.querySelectorAll(".xaxislayer-above text")].map((t) => t.textContent ?? "");
      ticks[`y:${name}`] = [...sub.querySelectorAll(".yaxislayer-above text")].map((t) => t.textContent ?? "");
    }
    return {
      width: svg.width,
      titleLeft: box.left - svg.left,
      titleRight: box.right - svg.left,
      titleLines: Math.max(1, title.querySelectorAll("tspan.line").length),
      ticks,
    };
  }, figure);
}

describe("Plotly titles are never cut", { skip: SKIP }, () => {
  for (const [layers, heads, title] of [
    [2, 2, DETECTOR_TITLE],
    [2, 2, SWEEP_TITLE],
    [4, 4, DETECTOR_TITLE],
    [12, 12, SWEEP_TITLE],
    [32, 32, DETECTOR_TITLE],
  ] as const) {
    test(`${layers} × ${heads} head grid: "${title.slice(0, 30)}…" fits, cells square`, async () => {
      const figure = gridFigure(layers, heads, title);
      const drawn = await draw(figure);
      assert.ok(drawn.titleLeft >= 0 && drawn.titleRight <= drawn.width, `title spans ${drawn.titleLeft}..${drawn.titleRight} px of a ${drawn.width} px figure`);
      assert.equal(drawn.titleLines, 1, "a title that fits in the widest figure stays on one line");
      const { width, height, margin } = figure.layout as { width: number; height: number; margin: { l: number; r: number; t: number; b: number } };
      const cellW = (width - margin.l - margin.r) / heads;
      const cellH = (height - margin.t - margin.b) / layers;
      assert.ok(Math.abs(cellW - cellH) < 0.5, `cells ${cellW} × ${cellH} px`);
      assert.ok(cellW >= 14, `cells of ${cellW} px are too small to read`);
    });
  }

  test("a title longer than the widest figure wraps onto several lines, all inside", async () => {
    const drawn = await draw(gridFigure(2, 2, LONG_TITLE));
    assert.ok(drawn.titleLines >= 3, `${drawn.titleLines} lines`);
    assert.ok(drawn.width <= TITLE_MAX_WIDTH + 1, `figure ${drawn.width} px wide`);
    assert.ok(drawn.titleLeft >= 0 && drawn.titleRight <= drawn.width, `title spans ${drawn.titleLeft}..${drawn.titleRight} of ${drawn.width} px`);
    // The grid moved down to make room: the plot area starts below the last title line.
    const layout = gridFigure(2, 2, LONG_TITLE).layout as { margin: { t: number } };
    assert.ok(layout.margin.t > (gridFigure(2, 2, "short").layout as { margin: { t: number } }).margin.t + 2 * 15);
  });

  test("attention heatmap titles with a window subtitle fit too", async () => {
    const props = { tokens: tokens(80), patterns: [causalUniform(80)], heads: [0], layer: 1, title: LONG_TITLE };
    const drawn = await draw(attentionFigure(heatmapInternal.prepare(props)));
    assert.ok(drawn.titleRight <= drawn.width && drawn.titleLeft >= 0, `title spans ${drawn.titleLeft}..${drawn.titleRight} of ${drawn.width} px`);
  });
});

describe("the all-heads attention view labels its axes with tokens", { skip: SKIP }, () => {
  for (const [n, heads] of [[8, 2], [33, 2], [33, 12], [64, 2]] as const) {
    test(`${heads} heads × ${n} tokens: every query and key labelled, as in the one-head view`, async () => {
      const figure = heatmapFigure(n, heads);
      // The labels of the positions drawn (more than two heads draw a window of 32).
      const labels = heatmapInternal.prepare(heatmapProps(n, heads)).labels;
      assert.equal(labels.length, Math.min(n, heads > 2 ? 32 : 64));
      const drawn = await draw(figure);
      const shown = (axis: string) => Object.entries(drawn.ticks).filter(([k, t]) => k.startsWith(axis) && t.length > 0).map(([, t]) => t);
      // Sorted: the drawing order of the y axis is reversed (query 0 at the top).
      const clean = (t: string[]) => t.map((s) => s.replace(/\u200b/g, "")).sort();
      // Query labels on the first column's y axes, key labels on the last row's x axes.
      const columns = Math.min(heads, 4);
      assert.equal(shown("y:").length, Math.ceil(heads / Math.min(columns, shown("x:").length)), JSON.stringify(Object.keys(drawn.ticks)));
      assert.ok(shown("x:").length >= 1);
      for (const t of [...shown("y:"), ...shown("x:")]) assert.deepEqual(clean(t), clean(labels));
    });
  }

  test("the static picture of the all-heads view has token labels too", () => {
    const d = heatmapInternal.prepare({ tokens: tokens(33), patterns: [causalUniform(33), causalUniform(33)], heads: [0, 1], layer: 1 });
    const spec = attentionStaticSpec(d) as { spec: { encoding: { x: { axis: { labels: boolean } }; y: { axis: { labels: boolean } } }; width: number } };
    assert.equal(spec.spec.encoding.x.axis.labels, true);
    assert.equal(spec.spec.encoding.y.axis.labels, true);
    assert.ok(spec.spec.width / 33 >= 11, `${spec.spec.width / 33} px per token`);
  });
});

describe("head grid layout numbers", () => {
  test("cell size and square plot area from 2 × 2 to 48 × 32", () => {
    for (const [layers, heads] of [[2, 2], [12, 12], [32, 32], [48, 32]]) {
      const fig = headGridFigure({ values: grid(layers, heads), layers, heads, title: DETECTOR_TITLE, metric: "score", diverging: false, digits: 3, domain: [0, 1] });
      const { width, height, margin } = fig.layout as { width: number; height: number; margin: { l: number; r: number; t: number; b: number } };
      assert.equal((width - margin.l - margin.r) / heads, (height - margin.t - margin.b) / layers, `${layers} × ${heads}`);
    }
  });
});

test("the static head grid keeps the whole metric name in its legend title", () => {
  const metric = "Δ log p(next) on repeat";
  const spec = headGridStaticSpec({ values: grid(2, 2), layers: 2, heads: 2, title: SWEEP_TITLE, metric, diverging: true, digits: 3, domain: [-1, 1] }) as {
    layer: { encoding?: { color?: { title?: string; legend?: { titleLimit?: number } } } }[];
  };
  const color = spec.layer[0].encoding!.color!;
  assert.equal(color.title, metric);
  // Vega-Lite cuts legend titles at 180 px by default; this one is ~190 px in the 11 px bold legend font.
  assert.ok((color.legend?.titleLimit ?? 180) >= 300, JSON.stringify(color.legend));
});

