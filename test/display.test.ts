/** Unit tests of src/display: bundle shapes per view kind, PNGs, the causal mask, tokens, caps, the library. */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as zlib from "node:zlib";
import * as display from "../src/display";
import { ArrakisError } from "../src/errors";
import { jsonForScript, plotlyLibraryShipped, scriptSafe } from "../src/display/plotly";
import { svgToPng, vegaLiteToSvg, vegaLiteToSvgAsync } from "../src/display/static";

const PLOTLY = "application/vnd.plotly.v1+json";
const VEGALITE = "application/vnd.vegalite.v5+json";

const TOKENS = ["<|endoftext|>", "The", "Ġcat", "Ġsat", "Ġon", "Ġthe", "Ġmat", "."];

/** A causal pattern whose rows sum to 1, with non-zero junk above the diagonal (must not be drawn). */
function pattern(n: number, seed: number): number[][] {
  return Array.from({ length: n }, (_, q) => {
    const raw = Array.from({ length: n }, (_, k) => (k <= q ? Math.exp(Math.sin(q * 3 + k * seed) * 2) : 0));
    const sum = raw.reduce((a, b) => a + b, 0);
    return raw.map((x, k) => (k <= q ? x / sum : 0.5));
  });
}

/** Decodes PNG header and pixels (8-bit RGB/RGBA, non-interlaced: what resvg writes). */
function decodePng(b64: string): { width: number; height: number; pixels: Buffer; channels: number } {
  const buf = Buffer.from(b64, "base64");
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
  let off = 8;
  let width = 0, height = 0, colorType = 0;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString("ascii", off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[8], 8, "bit depth 8");
      colorType = data[9];
      assert.equal(data[12], 0, "not interlaced");
    } else if (type === "IDAT") idat.push(data);
    off += 12 + len;
  }
  const channels = colorType === 6 ? 4 : colorType === 2 ? 3 : colorType === 4 ? 2 : 1;
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[y * stride + x - channels] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels] : 0;
      const p = a + b - c;
      const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][filter];
      out[y * stride + x] = (line[x] + pred) & 0xff;
    }
  }
  return { width, height, pixels: out, channels };
}

/** Number of distinct colours (coarsely quantised) and share of non-white pixels: a blank image has 1 / 0. */
function imageStats(png: ReturnType<typeof decodePng>): { colours: number; inked: number } {
  const seen = new Set<number>();
  let inked = 0;
  const px = png.width * png.height;
  for (let i = 0; i < px; i++) {
    const o = i * png.channels;
    const [r, g, b] = [png.pixels[o], png.pixels[o + 1], png.pixels[o + 2]];
    seen.add(((r >> 4) << 8) | ((g >> 4) << 4) | (b >> 4));
    if (r < 240 || g < 240 || b < 240) inked++;
  }
  return { colours: seen.size, inked: inked / px };
}

function plotlyFigure(bundle: display.MimeBundle): { data: any[]; layout: any } {
  return bundle[PLOTLY] as { data: any[]; layout: any };
}

test("toMimeBundle: Displayable → its bundle; other values → text/plain via util.inspect", () => {
  const d = { toMimeBundle: () => ({ "text/plain": "hi", "text/html": "<b>hi</b>" }) };
  assert.ok(display.isDisplayable(d));
  assert.deepEqual(display.toMimeBundle(d), { "text/plain": "hi", "text/html": "<b>hi</b>" });
  assert.equal(display.isDisplayable({ toMimeBundle: 1 }), false);
  assert.equal(display.isDisplayable(null), false);
  assert.deepEqual(display.toMimeBundle({ a: [1, 2] }), { "text/plain": "{ a: [ 1, 2 ] }" });
  assert.deepEqual(display.toMimeBundle("text"), { "text/plain": "text" });
  // A bundle without text/plain gets one.
  const noText = { toMimeBundle: () => ({ "text/html": "<i>x</i>" }) };
  assert.equal(typeof display.toMimeBundle(noText)["text/plain"], "string");
  assert.throws(() => display.toMimeBundle({ toMimeBundle: () => null }), /must return an object/);
});

test("formatToken makes tokenizer whitespace visible and decodes byte-level spellings", () => {
  assert.equal(display.formatToken("Ġcat"), "␣cat");
  assert.equal(display.formatToken("▁cat"), "␣cat");
  assert.equal(display.formatToken(" cat"), "␣cat");
  assert.equal(display.formatToken("Ċ"), "↵");
  assert.equal(display.formatToken("ĊĊ"), "↵↵");
  assert.equal(display.formatToken("\n"), "↵");
  assert.equal(display.formatToken("\t"), "⇥");
  assert.equal(display.formatToken("ĉ"), "⇥");
  assert.equal(display.formatToken("ĠĠ"), "␣␣");
  assert.equal(display.formatToken("ĠcafÃ©"), "␣café"); // GPT-2 bytes of "é"
  assert.equal(display.formatToken("é"), "é"); // a sentencepiece "é" stays
  assert.equal(display.formatToken("cat"), "cat");
  assert.equal(display.formatToken(""), "∅");
  assert.equal(display.formatToken("a\u200bb"), "a<U+200B>b");
  assert.equal(display.formatToken("\u0000"), "<U+0000>");
  assert.equal(display.formatToken("ðŁĺ"), "<0xF0><0x9F><0x98>"); // first 3 bytes of an emoji
  assert.equal(display.formatToken("<0x0A>"), "<0x0A>"); // sentencepiece byte fallback untouched
  assert.equal(display.formatToken("abcdefghij", 5), "abcd…");
});

test("uniqueLabels keeps repeated tokens apart without changing how they look", () => {
  const labels = display.uniqueLabels(["the", "cat", "the", "the"]);
  assert.equal(new Set(labels).size, 4);
  assert.deepEqual(labels.map((l) => l.replace(/\u200b/g, "")), ["the", "cat", "the", "the"]);
});

test("attention heatmap (one head): Plotly bundle keys, masked upper triangle is null, fixed 0..1 scale", () => {
  const b = display.attentionHeatmap({ tokens: TOKENS, patterns: [pattern(8, 1)], heads: [3], layer: 1 });
  assert.deepEqual(Object.keys(b).sort(), ["application/vnd.plotly.v1+json", "image/png", "text/html", "text/plain"]);
  const fig = plotlyFigure(b);
  assert.equal(fig.data.length, 1);
  const z: (number | null)[][] = fig.data[0].z;
  assert.equal(z.length, 8);
  for (let q = 0; q < 8; q++) {
    for (let k = 0; k < 8; k++) {
      if (k > q) assert.equal(z[q][k], null, `z[${q}][${k}] above the diagonal must be null`);
      else assert.equal(typeof z[q][k], "number");
    }
    const rowSum = (z[q] as number[]).slice(0, q + 1).reduce((a, c) => a + c, 0);
    assert.ok(Math.abs(rowSum - 1) < 0.01, `row ${q} sums to ${rowSum}`);
  }
  assert.equal(fig.data[0].hoverongaps, false);
  assert.deepEqual([fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax], [0, 1]);
  assert.match(fig.data[0].hovertemplate, /query %\{y\}.*key %\{x\}.*weight %\{z/);
  // Readable, distinct labels: Ġ shown as ␣, the two "the"-like tokens stay apart.
  assert.equal(fig.data[0].x[2], "␣cat");
  assert.equal(new Set(fig.data[0].x).size, 8);
  assert.equal(fig.layout.yaxis.autorange, "reversed");
  assert.equal(fig.layout.updatemenus, undefined, "no selector for one head");
  const text = b["text/plain"] as string;
  assert.match(text, /layer 1 · head 3/);
  assert.match(text, /␣cat/);
});

test("attention heatmap PNG: decodes, has the chart's size and real content", () => {
  const b = display.attentionHeatmap({ tokens: TOKENS, patterns: [pattern(8, 1)], heads: [0], layer: 0 });
  const png = decodePng(b["image/png"] as string);
  assert.ok(png.width > 300 && png.width < 1200, `width ${png.width}`);
  assert.ok(png.height > 300 && png.height < 1200, `height ${png.height}`);
  const stats = imageStats(png);
  assert.ok(stats.colours > 20, `a heatmap has many colours, got ${stats.colours}`);
  assert.ok(stats.inked > 0.15 && stats.inked < 0.9, `inked share ${stats.inked}`);
  // The same PNG is the HTML fallback picture.
  assert.ok((b["text/html"] as string).includes(`src="data:image/png;base64,${b["image/png"]}"`));
});

test("attention heatmap (several heads): small multiples + head selector that toggles traces", () => {
  const heads = [0, 2, 5];
  const b = display.attentionHeatmap({ tokens: TOKENS, patterns: heads.map((h) => pattern(8, h + 1)), heads, layer: 2 });
  const fig = plotlyFigure(b);
  assert.equal(fig.data.length, 3);
  assert.deepEqual(fig.data.map((t) => [t.xaxis, t.yaxis]), [["x", "y"], ["x2", "y2"], ["x3", "y3"]]);
  // Distinct, non-overlapping subplot domains side by side.
  const domains = [fig.layout.xaxis.domain, fig.layout.xaxis2.domain, fig.layout.xaxis3.domain];
  for (let i = 1; i < 3; i++) assert.ok(domains[i][0] > domains[i - 1][1], `domain ${i} after ${i - 1}`);
  const menu = fig.layout.updatemenus[0];
  assert.deepEqual(menu.buttons.map((x: any) => x.label), ["all heads", "head 0", "head 2", "head 5"]);
  const head2 = menu.buttons[2].args;
  assert.deepEqual(head2[0].visible, [false, true, false]);
  assert.deepEqual(head2[1]["xaxis2.domain"], [0, 1]);
  assert.equal(head2[1]["xaxis.visible"], false);
  assert.equal(head2[1]["shapes[1].visible"], true);
  assert.equal(head2[1]["shapes[0].visible"], false);
  assert.deepEqual(menu.buttons[0].args[0].visible, [true, true, true]);
  assert.equal(fig.layout.shapes.length, 3, "one mask triangle per head");
  for (const t of fig.data) assert.equal(t.z[0][1], null);
  assert.match(b["text/plain"] as string, /head 5: first token \d+%/);
});

test("long inputs are windowed to the cap and the text says what was dropped", () => {
  const n = 100;
  const tokens = Array.from({ length: n }, (_, i) => `t${i}`);
  const b = display.attentionHeatmap({ tokens, patterns: [pattern(n, 1)], heads: [0], layer: 0 });
  const fig = plotlyFigure(b);
  assert.equal(fig.data[0].z.length, display.HEATMAP_MAX_TOKENS);
  assert.equal(fig.data[0].x.length, 64);
  assert.match(b["text/plain"] as string, /positions 0–63 of 100 shown .*36 later positions dropped/);
  // Several heads: smaller cap.
  const many = display.attentionHeatmap({ tokens, patterns: [1, 2, 3].map((s) => pattern(n, s)), heads: [0, 1, 2], layer: 0 });
  assert.equal(plotlyFigure(many).data[0].z.length, display.HEATMAP_MAX_TOKENS_MANY_HEADS);
  // A moved window keeps the positions in the labels of text/plain.
  const moved = display.attentionHeatmap({ tokens, patterns: [pattern(n, 1)], heads: [0], layer: 0, start: 50, maxTokens: 10 });
  assert.equal(plotlyFigure(moved).data[0].z.length, 10);
  assert.equal(plotlyFigure(moved).data[0].x[0], "t50");
  assert.match(moved["text/plain"] as string, /positions 50–59 of 100 shown.*50 earlier and 40 later/);
  // The output stays small: one heatmap of 64 tokens without the library is under 300 kB.
  const size = Buffer.byteLength(JSON.stringify({ ...b, "text/html": (b["text/html"] as string).replace(/<script[^]*?Plotly library[^]*?<\/script>/, "") }));
  assert.ok(size < 300_000, `64-token heatmap output is ${size} bytes`);
});

test("bad arguments are ArrakisErrors naming the value", () => {
  const ok = { tokens: TOKENS, patterns: [pattern(8, 1)], heads: [0], layer: 0 };
  assert.throws(() => display.attentionHeatmap({ ...ok, patterns: [pattern(7, 1)] }), (e: Error) => e instanceof ArrakisError && /patterns\[0\] must have 8 rows, got 7/.test(e.message));
  assert.throws(() => display.attentionHeatmap({ ...ok, heads: [0, 1] }), /one \[8, 8\] matrix per head \(2\), got 1/);
  assert.throws(() => display.attentionHeatmap({ ...ok, layer: -1 }), /layer must be an integer ≥ 0, got -1/);
  assert.throws(() => display.attentionHeatmap({ ...ok, tokens: [] }), /at least 1 entry/);
  const bad = pattern(8, 1);
  bad[3][2] = NaN;
  assert.throws(() => display.attentionHeatmap({ ...ok, patterns: [bad] }), /patterns\[0\]\[3\]\[2\] must be a finite number, got NaN/);
  assert.throws(() => display.ablationComparisonView({ tokens: TOKENS, clean: [1, 2], ablated: [1, 2] }), /clean must have 7 entries, got 2/);
  assert.throws(() => display.topAttendedView({ tokens: TOKENS, positions: [9], weights: [1], layer: 0, head: 0 }), /positions\[0\] must be an integer in \[0, 7\], got 9/);
  assert.throws(() => display.headGridView({ values: [[1, 2], [3]], title: "t", metricLabel: "m" }), /values\[1\] must have 2 entries, got 1/);
});

test("Vega-Lite views: spec + PNG + text, no text/html", () => {
  const top = display.topAttendedView({ tokens: TOKENS, positions: [0, 2, 5], weights: [3.1, 0.4, 1.2], layer: 1, head: 3 });
  assert.deepEqual(Object.keys(top).sort(), ["application/vnd.vegalite.v5+json", "image/png", "text/plain"]);
  const spec = top[VEGALITE] as any;
  assert.match(spec.$schema, /vega-lite\/v5/);
  assert.deepEqual(spec.data.values.map((v: any) => v.position), [0, 5, 2], "bars sorted by weight");
  assert.ok(imageStats(decodePng(top["image/png"] as string)).colours > 3);
  assert.match(top["text/plain"] as string, /^Most attended tokens · layer 1 · head 3\n\s+0\s+<\|endoftext\|>\s+3\.1000/);

  const clean = [2, 3, 1, 2.5, 2, 1.5, 3];
  const ablated = [2.5, 3, 2, 2.5, 1.5, 1.5, 4];
  const abl = display.ablationComparisonView({ tokens: TOKENS, clean, ablated, label: "L1H3 zero" });
  assert.deepEqual(Object.keys(abl).sort(), ["application/vnd.vegalite.v5+json", "image/png", "text/plain"]);
  const rows = (abl[VEGALITE] as any).data.values;
  assert.equal(rows.length, 7, "one row per prediction (tokens.length - 1)");
  assert.equal(rows[0].token, "The", "position 0 predicts token 1");
  assert.equal(rows[1].token, "␣cat");
  assert.equal(rows[6].change, 1);
  assert.match(abl["text/plain"] as string, /clean 2\.143, L1H3 zero 2\.429 \(\+0\.286\)/);
  const png = decodePng(abl["image/png"] as string);
  assert.ok(png.width > 200 && png.height > 200);
});

test("head grid view: layer × head Plotly heatmap, diverging when values are signed", () => {
  const values = [[0.1, -0.2, 0.05], [0.4, 0, -0.1]];
  const b = display.headGridView({ values, title: "Δ loss per ablated head", metricLabel: "Δ loss" });
  assert.deepEqual(Object.keys(b).sort(), ["application/vnd.plotly.v1+json", "image/png", "text/html", "text/plain"]);
  const t = plotlyFigure(b).data[0];
  assert.deepEqual(t.z, values);
  assert.deepEqual([t.zmin, t.zmax], [-0.4, 0.4], "symmetric around 0");
  assert.match(t.hovertemplate, /layer %\{y\} · head %\{x\}<br>Δ loss: %\{z:\.3f\}/);
  assert.match(b["text/plain"] as string, /highest: L1H0 0\.400/);
  const seq = display.headGridView({ values: [[0.2, 0.9]], title: "scores", metricLabel: "score" });
  assert.deepEqual([plotlyFigure(seq).data[0].zmin, plotlyFigure(seq).data[0].zmax], [0, 0.9]);
  assert.ok(imageStats(decodePng(seq["image/png"] as string)).colours > 3);
});

test("the Plotly library is inlined once per process, guarded, never from a CDN", () => {
  display.resetPlotlyLibrary();
  const args = { tokens: TOKENS, patterns: [pattern(8, 1)], heads: [0], layer: 0 };
  const first = display.attentionHeatmap(args)["text/html"] as string;
  const second = display.attentionHeatmap(args)["text/html"] as string;
  const grid = display.headGridView({ values: [[1]], title: "t", metricLabel: "m" })["text/html"] as string;
  const lib = display.plotlyLibrary();
  assert.ok(plotlyLibraryShipped());
  assert.ok(first.length > lib.bytes, `first output carries the library (${first.length} bytes)`);
  assert.ok(second.length < 200_000, `second output does not (${second.length} bytes)`);
  assert.ok(grid.length < 200_000);
  assert.match(first, /if \(!window\.Plotly\)/);
  assert.match(first, /window\.define = undefined/);
  assert.match(first, /window\.define = savedDefine/);
  // Our own markup (the library's code mentions map-tile CDNs that heatmaps never use).
  const ours = first.replace(/<script[^>]*>\s*\/\* Plotly library[^]*?<\/script>/, "");
  assert.ok(ours.length < 200_000, "library block found and removed");
  for (const html of [ours, second]) {
    assert.doesNotMatch(html, /<script[^>]+src=/i, "no external scripts");
    assert.doesNotMatch(html, /https?:\/\//, "no URLs at all");
    assert.doesNotMatch(html, /require\(\[/, "no require.js");
  }
  // "always" carries it again, "never" never; reset makes the next "once" carry it.
  assert.ok((display.attentionHeatmap({ ...args, library: "always" })["text/html"] as string).length > lib.bytes);
  display.resetPlotlyLibrary();
  assert.ok((display.attentionHeatmap({ ...args, library: "never" })["text/html"] as string).length < 200_000);
  assert.ok((display.attentionHeatmap(args)["text/html"] as string).length > lib.bytes);
});

test("user text cannot break out of the output's script", () => {
  const tokens = ["</script><script>alert(1)</script>", "<b>x</b>", "a"];
  const b = display.attentionHeatmap({ tokens, patterns: [pattern(3, 1)], heads: [0], layer: 0, library: "never" });
  const html = b["text/html"] as string;
  assert.equal((html.match(/<script/g) ?? []).length, 1, "only our drawing script");
  assert.equal((html.match(/<\/script>/g) ?? []).length, 1);
  assert.equal(JSON.parse(jsonForScript({ s: "</script>é😀" }) as string).s, "</script>é😀");
  assert.equal(scriptSafe("a='</script>'; b='<!--'"), "a='\\x3C/script>'; b='\\x3C!--'");
  // Plotly treats labels as HTML: they are escaped.
  assert.equal(plotlyFigure(b).data[0].x[1], "&lt;b&gt;x&lt;/b&gt;");
});

test("static pictures: synchronous SVG equals vega's own toSVG, and PNG text is drawn with a system font", async () => {
  const spec = {
    data: { values: [{ a: "x", b: 1 }, { a: "y", b: 2 }] },
    mark: "bar",
    encoding: { x: { field: "a", type: "nominal" }, y: { field: "b", type: "quantitative" } },
  };
  assert.equal(vegaLiteToSvg(spec), await vegaLiteToSvgAsync(spec));
  const text = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="5" y="28" font-family="sans-serif" font-size="24">␣cat ↵</text></svg>`;
  const { png } = svgToPng(text);
  const stats = imageStats(decodePng(png.toString("base64")));
  assert.ok(stats.inked > 0.03, `text must be drawn (no font found? install fonts-dejavu-core); inked ${stats.inked}`);
});
