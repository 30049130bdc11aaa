/**
 * The display bundles in real frontends, driven by headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core): classic Notebook 6 trusted and untrusted, nbconvert HTML with JavaScript on and off, and
 * JupyterLab 4's own output area + MIME renderers (JupyterLab itself is not installable here). The notebooks
 * are written directly as .ipynb JSON whose outputs are our bundles, so no kernel is needed; one test opens the
 * committed notebooks/attention-tour.ipynb as a reader of the repository gets it.
 * Screenshots go to artifacts/screenshots/.
 */
import { after, before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Browser, Page } from "playwright-core";
import * as display from "../src/display";
import {
  CHROMIUM, CHROMIUM_ARGS, jupyterEnv, notebookOf, runPython, screenshotPath, startClassicNotebook, tmpDir,
  trustNotebook,
} from "./display-pages";

const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
const SKIP = HAVE_CHROMIUM ? false : `${CHROMIUM} not found (Debian package chromium): browser tests skipped`;

const TOKENS = ["<|endoftext|>", "The", "Ġcat", "Ġsat", "Ġon", "Ġthe", "Ġmat", "."];
const N = TOKENS.length;

function pattern(seed: number): number[][] {
  return Array.from({ length: N }, (_, q) => {
    const raw = Array.from({ length: N }, (_, k) => (k <= q ? Math.exp(Math.sin(q * 3 + k * seed) * 2) : 0));
    const sum = raw.reduce((a, b) => a + b, 0);
    return raw.map((x) => x / sum);
  });
}

/** The cell the hover tests point at, and what its tooltip must say. */
const HOVER = { q: 5, k: 1, query: "␣the", key: "The", weight: pattern(1)[5][1].toFixed(3) };

/** Outputs of the test notebook: 3 Plotly views (the first carries the library) and 2 Vega-Lite views. */
function bundles(): { all: display.MimeBundle[]; plotly: number; vegaLite: number } {
  display.resetPlotlyLibrary();
  const all = [
    display.attentionHeatmap({ tokens: TOKENS, patterns: [pattern(1)], heads: [3], layer: 1 }),
    display.attentionHeatmap({ tokens: TOKENS, patterns: [pattern(1), pattern(2), pattern(3)], heads: [0, 1, 2], layer: 1 }),
    display.topAttendedView({ tokens: TOKENS, positions: [0, 2, 5], weights: [3.2, 1.1, 0.4], layer: 1, head: 3 }),
    display.ablationComparisonView({
      tokens: TOKENS,
      clean: [2, 3, 1, 2.5, 2, 1.5, 3],
      ablated: [2.5, 3, 2, 2.5, 1.5, 1.5, 4],
      label: "L1H3 zero",
    }),
    display.headGridView({ values: [[0.1, -0.2, 0.05], [0.4, 0, -0.1]], title: "Δ loss per ablated head", metricLabel: "Δ loss" }),
  ];
  return { all, plotly: 3, vegaLite: 2 };
}

let work: string;
let browser: Browser;
let outputs: ReturnType<typeof bundles>;

before(async () => {
  if (!HAVE_CHROMIUM) return;
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  work = tmpDir("arrakis-display-");
  outputs = bundles();
  fs.mkdirSync(path.join(work, "nb"));
  // Different metadata so the signatures differ: signing one must not make its copy trusted.
  fs.writeFileSync(path.join(work, "nb", "trusted.ipynb"), JSON.stringify(notebookOf(outputs.all, "trusted")));
  fs.writeFileSync(path.join(work, "nb", "untrusted.ipynb"), JSON.stringify(notebookOf(outputs.all, "untrusted")));
  // A notebook whose library-carrying output was cleared: only an output made with library "never" is left.
  display.resetPlotlyLibrary();
  const cleared = [display.attentionHeatmap({ tokens: TOKENS, patterns: [pattern(1)], heads: [3], layer: 1, library: "never" })];
  fs.writeFileSync(path.join(work, "nb", "cleared.ipynb"), JSON.stringify(notebookOf(cleared, "cleared")));
  // One nbconvert run for both HTML exports (each Python start costs seconds).
  const env = jupyterEnv(path.join(work, "jupyter"));
  runPython(["nbconvert", "--to", "html", "--output-dir", path.join(work, "html"),
    path.join(work, "nb", "trusted.ipynb"), path.join(work, "nb", "cleared.ipynb")], env);
});

after(async () => {
  await browser?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Bundles the JupyterLab output-area page (display-lab-page.ts) for the browser into `dir/page.js`. */
async function bundleLabPage(dir: string): Promise<void> {
  const esbuild = await import("esbuild");
  await esbuild.build({
    entryPoints: [path.join(__dirname, "display-lab-page.ts")],
    bundle: true,
    format: "iife",
    platform: "browser",
    outfile: path.join(dir, "page.js"),
    define: { "process.env.NODE_ENV": '"production"' },
    loader: { ".svg": "text", ".css": "empty" },
    logLevel: "error",
  });
}

/**
 * The notebook server of these tests has no Arrakis kernelspec (only the outputs are under test), so the classic
 * Notebook opens a modal "Kernel not found" dialog once it has listed the kernels; it covers the outputs and
 * swallows the mouse, so it is dismissed as a reader would.
 */
async function continueWithoutKernel(page: Page): Promise<void> {
  const button = page.getByRole("button", { name: "Continue Without Kernel" });
  try {
    await button.waitFor({ timeout: 10_000 });
  } catch {
    return; // no dialog (a server that has the kernel, or a frontend that does not ask)
  }
  await button.click();
  await page.locator(".modal-dialog").waitFor({ state: "hidden", timeout: 10_000 });
}

async function newPage(opts: { javaScriptEnabled?: boolean } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, ...opts });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e}`));
  return page;
}

/** Every Plotly output drew its interactive plot and hid its picture. */
async function expectInteractive(page: Page, count: number): Promise<void> {
  await page.waitForFunction(
    (n) => document.querySelectorAll('[data-arrakis-drawn="interactive"]').length === n,
    count,
    { timeout: 30_000 },
  );
  const state = await page.evaluate(() =>
    Array.from(document.querySelectorAll("[data-arrakis-plot]")).map((root) => ({
      svgs: root.querySelectorAll("svg.main-svg").length,
      pictureHidden: getComputedStyle(root.querySelector("img.arrakis-static")!).display === "none",
    })),
  );
  assert.equal(state.length, count);
  for (const s of state) {
    assert.ok(s.svgs > 0, "svg.main-svg drawn");
    assert.ok(s.pictureHidden, "static picture hidden once the plot is drawn");
  }
}

/** Hovers the HOVER cell of the first (single-head, 8-token) heatmap and returns the tooltip text. */
async function hoverFirstHeatmap(page: Page): Promise<string> {
  const drag = page.locator("[data-arrakis-plot] .nsewdrag").first();
  await drag.scrollIntoViewIfNeeded();
  const box = (await drag.boundingBox())!;
  await page.mouse.move(box.x + (box.width * (HOVER.k + 0.5)) / N, box.y + (box.height * (HOVER.q + 0.5)) / N);
  const tip = page.locator(".hoverlayer .hovertext").first();
  await tip.waitFor({ timeout: 5000 });
  return (await tip.textContent()) ?? "";
}

function expectTooltip(text: string): void {
  assert.ok(text.includes(`query ${HOVER.query}`), `tooltip names the query token: ${JSON.stringify(text)}`);
  assert.ok(text.includes(`key ${HOVER.key}`), `tooltip names the key token: ${JSON.stringify(text)}`);
  assert.ok(text.includes(`weight ${HOVER.weight}`), `tooltip gives the weight ${HOVER.weight}: ${JSON.stringify(text)}`);
}

/** Every static picture in the page is loaded and shown at a real size; nothing interactive was drawn. */
async function expectStaticPictures(page: Page, count: number): Promise<void> {
  const pictures = await page.evaluate(() =>
    Array.from(document.querySelectorAll("img.arrakis-static")).map((img) => {
      const i = img as HTMLImageElement;
      const r = i.getBoundingClientRect();
      return { complete: i.complete, natural: i.naturalWidth, width: r.width, height: r.height, display: getComputedStyle(i).display };
    }),
  );
  assert.equal(pictures.length, count, "one static picture per Plotly output");
  for (const p of pictures) {
    assert.ok(p.complete && p.natural > 100, `picture decoded (naturalWidth ${p.natural})`);
    assert.ok(p.width > 100 && p.height > 100, `picture visible at ${p.width}×${p.height}`);
    assert.notEqual(p.display, "none");
  }
  assert.equal(await page.locator("svg.main-svg").count(), 0, "no interactive plot without scripts");
}

describe("display in browsers", { skip: SKIP }, () => {
  test("classic Notebook 6: trusted draws interactive Plotly (hover works), untrusted shows the static pictures", async () => {
    const env = jupyterEnv(path.join(work, "jupyter"));
    trustNotebook(path.join(work, "nb", "trusted.ipynb"), env);
    const server = await startClassicNotebook(path.join(work, "nb"), env);
    try {
      const page = await newPage();
      await page.goto(`${server.url}/notebooks/trusted.ipynb`);
      await page.waitForSelector(".output_area", { timeout: 30_000 });
      assert.equal(await page.locator("#notification_trusted").textContent(), "Trusted");
      await expectInteractive(page, outputs.plotly);
      expectTooltip(await hoverFirstHeatmap(page));
      // require.js is on this page; Plotly still registered globally thanks to the define guard.
      assert.equal(await page.evaluate(() => typeof (window as any).define), "function");
      assert.equal(await page.evaluate(() => typeof (window as any).Plotly), "object");
      // The Vega-Lite views: classic Notebook has no vega renderer and shows their image/png.
      const pngs = await page.evaluate(() =>
        Array.from(document.querySelectorAll(".output_png img")).map((i) => (i as HTMLImageElement).naturalWidth),
      );
      assert.equal(pngs.length, outputs.vegaLite);
      for (const w of pngs) assert.ok(w > 200, `Vega-Lite PNG shown (${w}px wide)`);
      await page.locator(".cell").first().scrollIntoViewIfNeeded();
      await page.screenshot({ path: screenshotPath("classic-trusted.png"), fullPage: true });

      const untrusted = await newPage();
      await untrusted.goto(`${server.url}/notebooks/untrusted.ipynb`);
      await untrusted.waitForSelector(".output_area", { timeout: 30_000 });
      assert.equal(await untrusted.locator("#notification_trusted").textContent(), "Not Trusted");
      await untrusted.waitForFunction(() => document.querySelectorAll("img.arrakis-static").length > 0);
      await untrusted.waitForTimeout(1000); // any script that slipped through would have drawn by now
      await expectStaticPictures(untrusted, outputs.plotly);
      assert.equal(await untrusted.evaluate(() => typeof (window as any).Plotly), "undefined");
      await untrusted.screenshot({ path: screenshotPath("classic-untrusted.png"), fullPage: true });
    } finally {
      await server.stop();
    }
  });

  test("nbconvert HTML: JavaScript on draws interactive Plotly; off shows the static pictures", async () => {
    const url = "file://" + path.join(work, "html", "trusted.html");

    const on = await newPage();
    await on.goto(url);
    await expectInteractive(on, outputs.plotly);
    expectTooltip(await hoverFirstHeatmap(on));
    // Head grid (third Plotly output): hovering layer 1, head 0 gives its value.
    const grid = on.locator("[data-arrakis-plot]").nth(2).locator(".nsewdrag");
    await grid.scrollIntoViewIfNeeded();
    const g = (await grid.boundingBox())!;
    await on.mouse.move(g.x + g.width / 6, g.y + (g.height * 3) / 4);
    const gridTip = on.locator(".hoverlayer .hovertext").first();
    await gridTip.waitFor({ timeout: 5000 });
    assert.equal(await gridTip.textContent(), "layer 1 · head 0Δ loss: 0.400");
    await on.screenshot({ path: screenshotPath("nbconvert-js-on.png"), fullPage: true });
    // Head selector of the three-head heatmap (second Plotly output): "head 2" leaves one heatmap, full size.
    const multi = on.locator("[data-arrakis-plot]").nth(1);
    await on.mouse.move(0, 0);
    await multi.locator(".updatemenu-header").click();
    await multi.locator(".updatemenu-dropdown-button", { hasText: "head 2" }).click();
    await on.waitForFunction(() => {
      const gd = document.querySelectorAll("[data-arrakis-plot]")[1].querySelector(".js-plotly-plot") as any;
      return gd && gd.data.map((t: any) => t.visible).join() === "false,false,true";
    }, undefined, { timeout: 5000 });
    const shown = await multi.evaluate((root) => {
      const gd = root.querySelector(".js-plotly-plot") as any;
      return { domain: gd._fullLayout.xaxis3.domain, hidden: gd._fullLayout.xaxis.visible, title: gd._fullLayout.title.text };
    });
    assert.deepEqual(shown.domain, [0, 1]);
    assert.equal(shown.hidden, false);
    assert.match(shown.title, /head 2/);
    await multi.screenshot({ path: screenshotPath("nbconvert-head-selector.png") });

    const off = await newPage({ javaScriptEnabled: false });
    await off.goto(url);
    await expectStaticPictures(off, outputs.plotly);
    // nbconvert has no Vega-Lite renderer either: the image/png of those views is in the page.
    const pngImgs = await off.evaluate(() =>
      Array.from(document.querySelectorAll(".jp-RenderedImage img, .output_png img")).map((i) => (i as HTMLImageElement).naturalWidth),
    );
    assert.equal(pngImgs.length, outputs.vegaLite);
    for (const w of pngImgs) assert.ok(w > 200);
    await off.screenshot({ path: screenshotPath("nbconvert-js-off.png"), fullPage: true });
  });

  test("library gone (its output cleared): later outputs keep their static picture and say why", async () => {
    const page = await newPage();
    await page.goto("file://" + path.join(work, "html", "cleared.html"));
    await page.locator(".arrakis-note").waitFor({ timeout: 10_000 });
    assert.match((await page.locator(".arrakis-note").textContent()) ?? "", /resetPlotlyLibrary/);
    await expectStaticPictures(page, 1);
  });

  test("the committed tour notebook in classic Notebook: as shared (untrusted) pictures, trusted interactive with the induction stripe", async () => {
    // The .ipynb a reader gets from the repository, not a synthetic one: its six Plotly views must show as
    // pictures before trust and draw after it, and hovering the induction head's heatmap must show the stripe.
    const dir = path.join(work, "tour");
    fs.mkdirSync(dir, { recursive: true });
    const source = path.join(__dirname, "..", "notebooks", "attention-tour.ipynb");
    fs.copyFileSync(source, path.join(dir, "shared.ipynb"));
    const nb = JSON.parse(fs.readFileSync(source, "utf8"));
    nb.metadata.arrakisTest = "trusted copy"; // a different signature from the shared copy
    fs.writeFileSync(path.join(dir, "trusted.ipynb"), JSON.stringify(nb));
    const plotlyViews = (nb.cells as { outputs?: { data?: Record<string, string> }[] }[])
      .flatMap((c) => c.outputs ?? []).filter((o) => String(o.data?.["text/html"] ?? "").includes("data-arrakis-plot")).length;
    assert.equal(plotlyViews, 6, "the tour has six Plotly views (two detector grids, three heatmaps, the sweep)");
    const env = jupyterEnv(path.join(work, "jupyter"));
    trustNotebook(path.join(dir, "trusted.ipynb"), env);
    const server = await startClassicNotebook(dir, env);
    try {
      const shared = await newPage();
      await shared.goto(`${server.url}/notebooks/shared.ipynb`);
      await shared.waitForSelector(".output_area", { timeout: 30_000 });
      assert.equal(await shared.locator("#notification_trusted").textContent(), "Not Trusted");
      await shared.waitForFunction(() => document.querySelectorAll("img.arrakis-static").length > 0);
      await shared.waitForTimeout(1000);
      await expectStaticPictures(shared, plotlyViews);
      await shared.screenshot({ path: screenshotPath("tour-shared.png"), fullPage: true });

      const page = await newPage();
      await page.goto(`${server.url}/notebooks/trusted.ipynb`);
      await page.waitForSelector(".output_area", { timeout: 30_000 });
      await continueWithoutKernel(page);
      await expectInteractive(page, plotlyViews);
      // Third Plotly view: the induction head on "<bos> w1..w17 w1..w17". Query "king" of the second copy
      // (position 20) should look at "gave" (position 4), the token after the first "king".
      const heatmap = page.locator("[data-arrakis-plot]").nth(2);
      const gd = await heatmap.evaluate((root) => {
        const g = root.querySelector(".js-plotly-plot") as any;
        return { n: g.data[0].z.length, weight: g.data[0].z[20][4] as number };
      });
      assert.equal(gd.n, 35);
      assert.ok(gd.weight > 0.5, `induction weight from the second "king" to "gave": ${gd.weight}`);
      const drag = heatmap.locator(".nsewdrag").first();
      await drag.scrollIntoViewIfNeeded();
      const box = (await drag.boundingBox())!;
      const tip = heatmap.locator(".hoverlayer .hovertext").first();
      // Plotly binds its hover handlers after drawing; the first move can come too early, so move off and
      // back until a tooltip shows (bounded).
      for (let attempt = 0; ; attempt++) {
        await page.mouse.move(box.x - 50, box.y - 50);
        await page.mouse.move(box.x + (box.width * 4.5) / gd.n, box.y + (box.height * 20.5) / gd.n, { steps: 4 });
        try {
          await tip.waitFor({ timeout: 5000 });
          break;
        } catch (e) {
          if (attempt >= 5) throw e;
        }
      }
      // The tooltip names the hovered cell's query and key tokens and its weight, as the figure's data holds them.
      const hovered = await heatmap.evaluate((root) => {
        const g = root.querySelector(".js-plotly-plot") as any;
        const [q, k] = g._hoverdata[0].pointNumber as [number, number];
        return { q, k, weight: g.data[0].z[q][k] as number };
      });
      const text = (await tip.textContent()) ?? "";
      assert.ok(text.includes(`weight ${hovered.weight.toFixed(3)}`), `tooltip ${JSON.stringify(text)} for cell ${JSON.stringify(hovered)}`);
      assert.match(text, /query .+key .+weight /, "the tooltip names query, key and weight");
      await heatmap.screenshot({ path: screenshotPath("tour-induction-heatmap.png") });
    } finally {
      await server.stop();
    }
  });

  test("JupyterLab 4 output area: text/html for Plotly views, native vega for Vega-Lite, trusted and untrusted", async () => {
    const dir = path.join(work, "lab");
    await bundleLabPage(dir);
    const saved = JSON.parse(fs.readFileSync(path.join(work, "nb", "trusted.ipynb"), "utf8")) as {
      cells: { outputs: unknown[] }[];
    };
    const savedOutputs = saved.cells.map((c) => c.outputs[0]);
    fs.writeFileSync(
      path.join(dir, "index.html"),
      `<!doctype html><html><head><meta charset="utf-8"></head><body>` +
        `<script>window.__OUTPUTS__ = ${JSON.stringify(savedOutputs).replace(/</g, "\\u003c")};</script>` +
        `<script src="page.js"></script></body></html>`,
    );
    const page = await newPage();
    await page.goto("file://" + path.join(dir, "index.html"));
    await page.waitForFunction(() => (window as any).__RENDERED__ === true, undefined, { timeout: 30_000 });
    const cases = (await page.evaluate(() => (window as any).__CASES__)) as { id: string; trusted: boolean; chosen: string }[];
    const kinds = outputs.all.map((b) => (b["text/html"] ? "plotly" : "vegalite"));
    assert.equal(cases.length, 2 * kinds.length);
    for (const c of cases) {
      const i = Number(c.id.split("-")[1]);
      const expected = kinds[i] === "plotly" ? "text/html" : display.VEGALITE_MIME;
      assert.equal(c.chosen, expected, `${c.id} rendered as ${c.chosen}`);
    }
    // Trusted Plotly outputs run their scripts; untrusted ones show the picture; vega draws either way.
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-case^="trusted"] [data-arrakis-drawn="interactive"]').length === n,
      outputs.plotly,
      { timeout: 30_000 },
    );
    await page.waitForFunction(
      (n) => document.querySelectorAll(".jp-RenderedVegaLite canvas, .jp-RenderedVegaLite svg.marks").length >= n,
      2 * outputs.vegaLite,
      { timeout: 30_000 },
    );
    const drawn = await page.evaluate(() =>
      Array.from(document.querySelectorAll("[data-case]")).map((area) => {
        const visible = Array.from(area.querySelectorAll("img, svg.main-svg, canvas, svg.marks"))
          .map((e) => e.getBoundingClientRect())
          .filter((r) => r.width > 100 && r.height > 50).length;
        return {
          id: area.getAttribute("data-case")!,
          visible,
          interactive: area.querySelectorAll("svg.main-svg").length,
          picture: Array.from(area.querySelectorAll("img.arrakis-static")).some((i) => (i as HTMLImageElement).naturalWidth > 100 && getComputedStyle(i).display !== "none"),
          vega: area.querySelectorAll(".jp-RenderedVegaLite").length,
        };
      }),
    );
    for (const d of drawn) {
      const i = Number(d.id.split("-")[1]);
      assert.ok(d.visible > 0, `${d.id}: something visible was drawn`);
      if (kinds[i] === "vegalite") assert.equal(d.vega, 1, `${d.id}: vega renderer`);
      else if (d.id.startsWith("trusted")) assert.ok(d.interactive > 0 && !d.picture, `${d.id}: interactive`);
      else assert.ok(d.interactive === 0 && d.picture, `${d.id}: static picture`);
    }
    await page.screenshot({ path: screenshotPath("jupyterlab-outputarea.png"), fullPage: true });
  });
});

// ------------------------------------------------------------------ the circuit views

/** The circuit views' notebook: the linked attention view, patching and logit-lens grids (Plotly), DLA bars (Vega-Lite). */
function circuitBundles(): display.MimeBundle[] {
  display.resetPlotlyLibrary();
  const layers = [[pattern(1), pattern(2)], [pattern(3), pattern(4)]];
  return [
    display.linkedAttentionView({ tokens: TOKENS, layers: [0, 1], patterns: layers, layer: 1, head: 0 }),
    display.patchingView({
      values: [[0, 1, 0.2, 0], [0, 0.9, -0.1, 0.3]],
      raw: [[1, 2, 1.2, 1], [1, 1.9, 0.9, 1.3]],
      columns: ["0 The", "1 cat / dog", "2 sat", "3 on"],
      columnTitle: "position",
      title: "Activation patching",
      subtitle: "(patched − corrupted) / (clean − corrupted)",
      metricLabel: "restored fraction",
    }),
    display.logitLensView({
      rows: ["embed", "L0", "L1"],
      tokens: TOKENS,
      top: [0, 1, 2].map((r) => TOKENS.map((_, p) => [{ token: TOKENS[(p + r) % N], prob: 0.5 }, { token: "x", prob: 0.1 }])),
      targetRank: [0, 1, 2].map((r) => TOKENS.map((_, p) => (p < N - 1 ? r * 3 + p : null))),
      targetProb: [0, 1, 2].map((r) => TOKENS.map((_, p) => (p < N - 1 ? (r + 1) / 4 : null))),
      title: "Logit lens",
    }),
    display.attributionView({ names: ["embed", "L0H0", "L1H1", "L1 MLP"], values: [0.5, -0.2, 2.5, 0.1], title: "Direct logit attribution", subtitle: "sum 2.9" }),
  ];
}

describe("circuit views in browsers", { skip: SKIP }, () => {
  let dir: string;
  before(() => {
    if (!HAVE_CHROMIUM) return;
    dir = path.join(work, "circuits");
    fs.mkdirSync(dir, { recursive: true });
    const all = circuitBundles();
    fs.writeFileSync(path.join(dir, "trusted.ipynb"), JSON.stringify(notebookOf(all, "circuits trusted")));
    fs.writeFileSync(path.join(dir, "untrusted.ipynb"), JSON.stringify(notebookOf(all, "circuits untrusted")));
    runPython(["nbconvert", "--to", "html", "--output-dir", path.join(dir, "html"), path.join(dir, "trusted.ipynb")], jupyterEnv(path.join(work, "jupyter")));
  });

  /** Hovers token `i` of the linked view and returns what the page shows for every token and the info line. */
  async function hoverToken(page: Page, i: number) {
    const span = page.locator(".arrakis-token").nth(i);
    await span.scrollIntoViewIfNeeded();
    await span.hover();
    return page.evaluate(() => ({
      attend: Array.from(document.querySelectorAll(".arrakis-token")).map((s) => Number(s.getAttribute("data-attend"))),
      attendedBy: Array.from(document.querySelectorAll(".arrakis-token")).map((s) => Number(s.getAttribute("data-attended-by"))),
      background: getComputedStyle(document.querySelectorAll(".arrakis-token")[1]).backgroundColor,
      info: document.querySelector(".arrakis-linked-info")!.textContent,
    }));
  }

  test("nbconvert HTML, JavaScript on: the linked view links tokens both ways and switches heads; the grids are interactive", async () => {
    const page = await newPage();
    await page.goto("file://" + path.join(dir, "html", "trusted.html"));
    await page.waitForSelector("[data-arrakis-live]", { timeout: 10_000 });
    assert.equal(await page.locator(".arrakis-linked img.arrakis-static").evaluate((i) => getComputedStyle(i).display), "none", "static picture hidden");
    assert.equal(await page.locator(".arrakis-token").count(), N, "tokens as text");
    assert.equal(await page.locator(".arrakis-linked canvas[data-head]").count(), 4, "a thumbnail per head");
    // Selected layer 1 head 0 = pattern(3): token 5 attends to keys 0..5 with row 5, and is attended by rows 5..7.
    const p = pattern(3);
    const seen = await hoverToken(page, 5);
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    assert.deepEqual(seen.attend, TOKENS.map((_, k) => (k <= 5 ? r3(p[5][k]) : 0)));
    assert.deepEqual(seen.attendedBy, TOKENS.map((_, q) => (q >= 5 ? r3(p[q][5]) : 0)));
    assert.match(seen.background, /rgba\(33, 102, 172/);
    const best = p[5].slice(0, 6).indexOf(Math.max(...p[5].slice(0, 6)));
    assert.ok(seen.info!.includes(`attends most to ${display.formatToken(TOKENS[best])} (${best}) ${r3(p[5][best]).toFixed(3)}`), seen.info!);
    // Another head: click its thumbnail, and the same hover reads that head's pattern.
    await page.locator('.arrakis-linked canvas[data-layer="0"][data-head="1"]').click();
    assert.equal(await page.locator("[data-arrakis-linked]").getAttribute("data-selected"), "0.1");
    const other = await hoverToken(page, 5);
    assert.deepEqual(other.attend, TOKENS.map((_, k) => (k <= 5 ? r3(pattern(2)[5][k]) : 0)));
    await page.locator(".arrakis-linked").screenshot({ path: screenshotPath("circuits-linked-view.png") });
    // The patching and logit-lens grids draw with Plotly; the logit lens hover names the next token's rank.
    await expectInteractive(page, 2);
    const lens = page.locator("[data-arrakis-plot]").nth(1).locator(".nsewdrag");
    await lens.scrollIntoViewIfNeeded();
    const box = (await lens.boundingBox())!;
    await page.mouse.move(box.x + (box.width * 2.5) / N, box.y + (box.height * 1.5) / 3);
    const tip = page.locator(".hoverlayer .hovertext").first();
    await tip.waitFor({ timeout: 5000 });
    assert.match((await tip.textContent()) ?? "", /L0 · position 2.*rank 5, 50\.0%/);
    await page.screenshot({ path: screenshotPath("circuits-js-on.png"), fullPage: true });
  });

  test("nbconvert HTML, JavaScript off: every circuit view shows its static picture", async () => {
    const page = await newPage({ javaScriptEnabled: false });
    await page.goto("file://" + path.join(dir, "html", "trusted.html"));
    await expectStaticPictures(page, 3); // linked view + two grids
    assert.equal(await page.locator(".arrakis-token").count(), 0, "no live view without scripts");
    const pngs = await page.evaluate(() => Array.from(document.querySelectorAll(".jp-RenderedImage img, .output_png img")).map((i) => (i as HTMLImageElement).naturalWidth));
    assert.equal(pngs.length, 1, "the attribution bars as image/png");
    assert.ok(pngs[0] > 200);
    await page.screenshot({ path: screenshotPath("circuits-js-off.png"), fullPage: true });
  });

  test("JupyterLab 4 output area: the linked view is live when trusted and its picture when not; the grids and bars render either way", async () => {
    const lab = path.join(dir, "lab");
    await bundleLabPage(lab);
    const saved = JSON.parse(fs.readFileSync(path.join(dir, "trusted.ipynb"), "utf8")) as { cells: { outputs: unknown[] }[] };
    fs.writeFileSync(
      path.join(lab, "index.html"),
      `<!doctype html><html><head><meta charset="utf-8"></head><body>` +
        `<script>window.__OUTPUTS__ = ${JSON.stringify(saved.cells.map((c) => c.outputs[0])).replace(/</g, "\\u003c")};</script>` +
        `<script src="page.js"></script></body></html>`,
    );
    const page = await newPage();
    await page.goto("file://" + path.join(lab, "index.html"));
    await page.waitForFunction(() => (window as any).__RENDERED__ === true, undefined, { timeout: 30_000 });
    const cases = (await page.evaluate(() => (window as any).__CASES__)) as { id: string; chosen: string }[];
    assert.deepEqual(cases.map((c) => c.chosen), [
      "text/html", "text/html", "text/html", display.VEGALITE_MIME, // trusted
      "text/html", "text/html", "text/html", display.VEGALITE_MIME, // untrusted: sanitised HTML, scripts removed
    ]);
    await page.waitForSelector('[data-case="trusted-0"] [data-arrakis-live]', { timeout: 10_000 });
    const trustedTokens = await page.locator('[data-case="trusted-0"] .arrakis-token').count();
    assert.equal(trustedTokens, N, "the trusted linked view is live");
    const untrusted = await page.evaluate(() => {
      const area = document.querySelector('[data-case="untrusted-0"]')!;
      const img = area.querySelector("img") as HTMLImageElement | null;
      return { live: area.querySelectorAll("[data-arrakis-live]").length, width: img?.naturalWidth ?? 0 };
    });
    assert.equal(untrusted.live, 0);
    assert.ok(untrusted.width > 100, `the untrusted linked view shows its picture (${untrusted.width}px)`);
    await page.screenshot({ path: screenshotPath("circuits-jupyterlab.png"), fullPage: true });
  });

  test("classic Notebook: the linked view is live in a trusted notebook (offline, no library) and a picture in an untrusted one", async () => {
    const env = jupyterEnv(path.join(work, "jupyter"));
    trustNotebook(path.join(dir, "trusted.ipynb"), env);
    const server = await startClassicNotebook(dir, env);
    try {
      const page = await newPage();
      await page.route(/^https?:\/\/(?!127\.0\.0\.1|localhost)/, (route) => route.abort()); // nothing from the network
      await page.goto(`${server.url}/notebooks/trusted.ipynb`);
      await page.waitForSelector("[data-arrakis-live]", { timeout: 30_000 });
      const seen = await hoverToken(page, 3);
      assert.equal(seen.attend[0], Math.round(pattern(3)[3][0] * 1000) / 1000);
      const untrusted = await newPage();
      await untrusted.goto(`${server.url}/notebooks/untrusted.ipynb`);
      await untrusted.waitForSelector(".arrakis-linked img.arrakis-static", { timeout: 30_000 });
      await untrusted.waitForTimeout(1000);
      assert.equal(await untrusted.locator("[data-arrakis-live]").count(), 0);
      const img = await untrusted.locator(".arrakis-linked img.arrakis-static").evaluate((i) => ({ w: (i as HTMLImageElement).naturalWidth, display: getComputedStyle(i).display }));
      assert.ok(img.w > 100 && img.display !== "none", `static picture shown (${img.w}px)`);
    } finally {
      await server.stop();
    }
  });
});
