/**
 * Plotly views as one self-contained `display_data` bundle.
 *
 * `text/html` is what classic Notebook, JupyterLab (no Plotly extension), nbconvert and VS Code pick. It holds
 *  1. an `<img>` with the static PNG as a data URI — the picture that remains when scripts do not run
 *     (classic Notebook strips scripts from untrusted outputs and ignores the bundle's other images once it
 *     has chosen text/html; nbconvert pages opened with JavaScript off);
 *  2. a hidden `<div>` and a script that draws the interactive plot into it and then hides the picture;
 *  3. in one output per kernel session, the Plotly library itself (see `PlotlyLibraryMode`).
 *
 * The other keys: `application/vnd.plotly.v1+json` for frontends with a native Plotly renderer, `image/png`
 * for static viewers that skip HTML, `text/plain` for terminals.
 *
 * Constraints from the frontends: no CDN (notebooks must work offline), no require.js assumptions (classic
 * Notebook and Debian's nbconvert pages load require.js, whose AMD `define` captures a UMD bundle that checks
 * for it, as plotly.js builds before v3 did, instead of setting `window.Plotly`; we unset it while the library
 * runs. The 4.x builds installed today set `window.Plotly` unconditionally, so the guard is a safeguard for other
 * builds, checked by the classic-Notebook browser test only in that Plotly ends up global), and scripts may run
 * in any order (JupyterLab renders windowed outputs lazily), so plots wait in a queue until the library arrives.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomUUID } from "node:crypto";
import { fail } from "../errors";
import type { MimeBundle } from "./mime";
import { escapeHtml } from "./tokens";
import type { StaticPicture } from "./static";

/** HTML text with non-ASCII characters as numeric references (same reason as jsonForScript). */
function asciiHtml(s: string): string {
  return escapeHtml(s).replace(/[\u{7f}-\u{10ffff}]/gu, (c) => `&#${c.codePointAt(0)};`);
}

/** A Plotly figure as plotly.js takes it. */
export interface PlotlyFigure {
  data: object[];
  layout: Record<string, unknown>;
}

/**
 * Which Plotly outputs carry the library (~1.5 MB cartesian build, ~4.8 MB full build):
 * - "once" (default): the first Plotly output of the kernel process carries it, later ones reuse
 *   `window.Plotly`. If that first output is later cleared, the saved notebook no longer has the library:
 *   reopened, its plots show their static pictures (plus a note) until a cell is run with "always" or after
 *   `resetPlotlyLibrary()`.
 * - "always": this output carries it (an output that must work alone, e.g. a notebook with a single chart).
 * - "never": rely on a page that already has `window.Plotly`.
 * Whatever the mode, the injected script does nothing when `window.Plotly` already exists.
 */
export type PlotlyLibraryMode = "once" | "always" | "never";

/** Where the library comes from: the smallest installed build that has heatmap, bar and updatemenus. */
const LIBRARY_CANDIDATES = [
  // Cartesian partial bundle: heatmap, bar, scatter, contour, histogram, ...: 1.50 MB.
  "plotly.js-cartesian-dist-min",
  // Every trace type: 4.83 MB.
  "plotly.js-dist-min",
];

let librarySource: { name: string; file: string; js: string } | undefined;

/** The Plotly library to inline: the first installed candidate, read once. */
export function plotlyLibrary(): { name: string; file: string; bytes: number } {
  if (!librarySource) {
    for (const name of LIBRARY_CANDIDATES) {
      let pkgJson: string;
      try {
        pkgJson = require.resolve(`${name}/package.json`);
      } catch {
        continue;
      }
      const main = (JSON.parse(fs.readFileSync(pkgJson, "utf8")) as { main?: string }).main ?? "plotly.min.js";
      const file = path.join(path.dirname(pkgJson), main);
      librarySource = { name, file, js: fs.readFileSync(file, "utf8") };
      break;
    }
    if (!librarySource) fail(`no Plotly build installed: need one of ${LIBRARY_CANDIDATES.join(", ")}`);
  }
  return { name: librarySource.name, file: librarySource.file, bytes: Buffer.byteLength(librarySource.js) };
}

/** Set once an output of this process has carried the library (mode "once"). */
let libraryShipped = false;

/** Makes the next Plotly output carry the library again (e.g. after clearing the output that had it). */
export function resetPlotlyLibrary(): void {
  libraryShipped = false;
}

/** Whether this process has already put the library into an output. */
export function plotlyLibraryShipped(): boolean {
  return libraryShipped;
}

/**
 * JavaScript source made safe inside an HTML `<script>` element: `</script` would end the element and
 * `<!--` could switch the HTML tokenizer into its escaped state. `\x3C` is "<" inside strings, regexes and
 * template literals alike.
 */
export function scriptSafe(js: string): string {
  return js.replace(/<\/(script)/gi, "\\x3C/$1").replace(/<!--/g, "\\x3C!--");
}

/**
 * JSON that can sit inside a `<script>`: every "<" escaped (tokens are user text, "</script>" included), and
 * everything outside ASCII as \uXXXX so the figure survives a page served without a charset.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<\u007f-\uffff]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}

/** Name of the page-global queue shared by all outputs (plots waiting for the library). */
const QUEUE = "__arrakisPlotlyQueue";

/**
 * The library wrapped so that it sets `window.Plotly` even under require.js and only once per page,
 * then flushes the queue of plots that rendered before it.
 */
function libraryScript(): string {
  plotlyLibrary();
  const js = scriptSafe(librarySource!.js);
  return `<script type="text/javascript">
/* Plotly library (${librarySource!.name}), inlined once per notebook by arrakis-ts */
(function () {
  if (!window.Plotly) {
    var savedDefine = window.define;
    window.define = undefined; /* require.js would otherwise capture Plotly's UMD */
    try {
${js}
    } finally {
      window.define = savedDefine;
    }
  }
  var queue = window.${QUEUE} || [];
  window.${QUEUE} = { push: function (draw) { draw(); } };
  for (var i = 0; i < queue.length; i++) { try { queue[i](); } catch (e) { console.error(e); } }
}).call(window);
</script>`;
}

/**
 * The drawing script of one output. Finds its elements by a per-output id (document.currentScript is
 * null in classic Notebook, which evaluates scripts through jQuery), draws every copy not yet drawn (an
 * output can be shown twice in one page), and hides the static picture only after Plotly succeeded. The
 * plot's container and the "library missing" note are created here, not in the HTML, so an output whose
 * scripts were stripped (untrusted) holds nothing but its picture.
 */
function drawScript(id: string, figure: PlotlyFigure, height: number): string {
  return `<script type="text/javascript">
(function () {
  var figure = ${jsonForScript(figure)};
  function roots() { return document.querySelectorAll('[data-arrakis-plot="${id}"]'); }
  function draw() {
    var all = roots();
    for (var i = 0; i < all.length; i++) {
      var root = all[i];
      if (root.getAttribute("data-arrakis-drawn")) continue;
      root.setAttribute("data-arrakis-drawn", "pending");
      var picture = root.querySelector(".arrakis-static");
      var note = root.querySelector(".arrakis-note");
      if (note) note.style.display = "none";
      var target = document.createElement("div");
      target.className = "arrakis-interactive";
      /* No fixed height: the head selector changes the figure's size. Wide figures scroll sideways. */
      target.style.minHeight = "${height}px";
      target.style.maxWidth = "100%";
      target.style.overflowX = "auto";
      root.appendChild(target);
      (function (root, target, picture) {
        window.Plotly.newPlot(target, figure.data, figure.layout, { displaylogo: false, responsive: true })
          .then(function () {
            picture.style.display = "none";
            root.setAttribute("data-arrakis-drawn", "interactive");
          }, function (err) {
            target.style.display = "none";
            root.setAttribute("data-arrakis-drawn", "failed");
            console.error("arrakis-ts: Plotly could not draw this output", err);
          });
      })(root, target, picture);
    }
  }
  if (window.Plotly) { draw(); return; }
  (window.${QUEUE} = window.${QUEUE} || []).push(draw);
  /* Still no library once the page has settled (the output that carried it was cleared): say so. */
  setTimeout(function () {
    if (window.Plotly) return;
    var all = roots();
    for (var i = 0; i < all.length; i++) {
      if (all[i].querySelector(".arrakis-note")) continue;
      var note = document.createElement("div");
      note.className = "arrakis-note";
      note.style.cssText = "font-size:12px;color:#777";
      note.textContent = "Static picture: the output that carried the Plotly library is gone. " +
        "Run display.resetPlotlyLibrary() and re-run this cell for the interactive view.";
      all[i].appendChild(note);
    }
  }, 3000);
})();
</script>`;
}

export interface PlotlyBundleParts {
  figure: PlotlyFigure;
  picture: StaticPicture;
  /** Alt text of the static picture and first line of text/plain. */
  title: string;
  /** Body of text/plain (after the title). */
  text: string;
  library?: PlotlyLibraryMode;
}

/** Whether this output carries the library, updating the per-process flag. */
function takeLibrary(mode: PlotlyLibraryMode): boolean {
  if (mode === "never") return false;
  if (mode === "always" || !libraryShipped) {
    libraryShipped = true;
    return true;
  }
  return false;
}

/** Assembles the bundle of a Plotly view. */
export function plotlyBundle(parts: PlotlyBundleParts): MimeBundle {
  const { figure, picture, title } = parts;
  const mode = parts.library ?? "once";
  if (!["once", "always", "never"].includes(mode)) {
    fail(`library must be "once", "always" or "never", got ${JSON.stringify(mode)}`);
  }
  const id = randomUUID();
  const pngBase64 = picture.png.toString("base64");
  const height = Number(figure.layout.height) || picture.cssHeight;
  const html = [
    takeLibrary(mode) ? libraryScript() : "",
    `<div class="arrakis-plot" data-arrakis-plot="${id}">` +
      `<img class="arrakis-static" alt="${asciiHtml(title)}" width="${picture.cssWidth}"` +
      ` height="${picture.cssHeight}" style="max-width:100%;height:auto" src="data:image/png;base64,${pngBase64}">` +
      `</div>`,
    drawScript(id, figure, height),
  ].join("\n");
  return {
    "text/html": html,
    "application/vnd.plotly.v1+json": figure,
    "image/png": pngBase64,
    "text/plain": `${title}\n${parts.text}`.trimEnd(),
  };
}
