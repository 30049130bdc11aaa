/**
 * A linked attention view in the manner of CircuitsVis: the input as text, a thumbnail of every head's
 * pattern to pick from (rows = layers), the selected head's pattern as a heatmap beside the text. Hovering a
 * token colours, for the selected head, where it attends (blue background, opacity = weight) and what attends
 * to it (red underline, opacity = weight), and names the strongest of each; hovering a heatmap row does the
 * same for that query.
 *
 * Self-contained HTML: no library, no network, so it works offline in a trusted notebook. Without scripts
 * (an untrusted notebook, GitHub, nbconvert with JavaScript off) the HTML is only the static heatmap of the
 * initially selected head, drawn in Node; the same picture is the image/png.
 */
import { randomUUID } from "node:crypto";
import { fail, show } from "../errors";
import { _internal as heatmap, attentionStaticSpec, attentionText } from "./attention";
import type { MimeBundle } from "./mime";
import { jsonForScript, scriptSafe } from "./plotly";
import { drawStatic } from "./static";
import { escapeHtml, formatToken } from "./tokens";

export interface LinkedAttentionProps {
  tokens: string[];
  /** The layer index of each entry of `patterns`. */
  layers: number[];
  /** `[layer entry][head][q][k]`. */
  patterns: number[][][][];
  /** Initially selected layer (one of `layers`) and head (default: the first layer, head 0). */
  layer?: number;
  head?: number;
  title?: string;
}

const VIEW = "linkedAttentionView";
/** Patterns are sent with 3 decimals: enough for colours and the hover text, a third of the bytes. */
const round = (x: number) => Math.round(x * 1000) / 1000;

function check(p: LinkedAttentionProps): { li: number; head: number; T: number; H: number } {
  if (typeof p !== "object" || p === null || !Array.isArray(p.tokens) || !Array.isArray(p.patterns) || !Array.isArray(p.layers)) fail(`${VIEW}: expected { tokens, layers, patterns }, got ${show(p)}`);
  const T = p.tokens.length;
  if (p.layers.length !== p.patterns.length || !p.patterns.length) fail(`${VIEW}: one pattern entry per layer expected, got ${p.patterns.length} for ${p.layers.length} layers`);
  const H = p.patterns[0].length;
  for (const heads of p.patterns) {
    if (heads.length !== H || heads.some((m) => m.length !== T || m.some((r) => r.length !== T))) fail(`${VIEW}: every layer needs ${H} heads of ${T}×${T} weights`);
  }
  const li = p.layer === undefined ? 0 : p.layers.indexOf(p.layer);
  if (li < 0) fail(`${VIEW}: layer ${show(p.layer)} is not among the layers shown (${p.layers.join(", ")})`);
  const head = p.head ?? 0;
  if (!Number.isInteger(head) || head < 0 || head >= H) fail(`${VIEW}: head must be an integer in [0, ${H - 1}], got ${show(head)}`);
  return { li, head, T, H };
}

/** Bundle: text/html (static picture, replaced by the live view when scripts run), image/png, text/plain. */
export function linkedAttentionView(p: LinkedAttentionProps): MimeBundle {
  const { li, head, T, H } = check(p);
  const title = p.title ?? `Attention, linked: ${p.layers.length} layer${p.layers.length > 1 ? "s" : ""} × ${H} heads, ${T} tokens`;
  const one = { tokens: p.tokens, patterns: [p.patterns[li][head]], heads: [head], layer: p.layers[li] };
  const picture = drawStatic(attentionStaticSpec(heatmap.prepare(one)));
  const png = picture.png.toString("base64");
  const id = randomUUID();
  const data = {
    tokens: p.tokens.map((t) => formatToken(t)),
    layers: p.layers,
    patterns: p.patterns.map((heads) => heads.map((m) => m.map((r) => r.map(round)))),
    layer: li,
    head,
  };
  const html =
    `<div class="arrakis-linked" data-arrakis-linked="${id}">` +
    `<img class="arrakis-static" alt="${escapeHtml(title)}" width="${picture.cssWidth}" height="${picture.cssHeight}" style="max-width:100%;height:auto" src="data:image/png;base64,${png}">` +
    `</div>\n<script type="text/javascript">\n${scriptSafe(liveScript(id, jsonForScript(data), jsonForScript(title)))}\n</script>`;
  const text = `${title} (hover a token to see where it attends and what attends to it)\nselected: layer ${p.layers[li]}, head ${head}\n${attentionText(one)}`;
  return { "text/html": html, "image/png": png, "text/plain": text };
}

/** The live view, built in the page from the data (plain DOM and canvas, no library). */
function liveScript(id: string, data: string, title: string): string {
  return `(function () {
  var root = document.querySelector('[data-arrakis-linked="${id}"]');
  if (!root || root.getAttribute("data-arrakis-live")) return;
  var D = ${data}, TITLE = ${title}, T = D.tokens.length, H = D.patterns[0].length;
  var sel = { l: D.layer, h: D.head }, hovered = null;
  function el(tag, css, text) { var e = document.createElement(tag); if (css) e.style.cssText = css; if (text !== undefined) e.textContent = text; return e; }
  function blue(w) { return "rgba(33,102,172," + w + ")"; }
  function draw(canvas, m, size, row) {
    var c = canvas.getContext("2d"), s = size / T;
    c.clearRect(0, 0, size, size);
    for (var q = 0; q < T; q++) for (var k = 0; k < T; k++) {
      c.fillStyle = k > q ? "#e4e4e4" : blue(m[q][k]);
      c.fillRect(k * s, q * s, Math.ceil(s), Math.ceil(s));
    }
    if (row !== null && row !== undefined) { c.strokeStyle = "#d6604d"; c.lineWidth = 2; c.strokeRect(1, row * s, size - 2, s); }
  }
  var box = el("div", "font-family:DejaVu Sans,Verdana,sans-serif;font-size:13px;color:#222;max-width:980px");
  box.appendChild(el("div", "font-size:14px;margin-bottom:6px", TITLE));
  var thumbs = el("div", "display:grid;grid-template-columns:auto repeat(" + H + ",auto);gap:3px;align-items:center;justify-content:start;margin-bottom:8px");
  var thumbCanvases = [];
  thumbs.appendChild(el("div", ""));
  for (var h0 = 0; h0 < H; h0++) thumbs.appendChild(el("div", "font-size:11px;color:#666;text-align:center", "H" + h0));
  D.layers.forEach(function (layer, li) {
    thumbs.appendChild(el("div", "font-size:11px;color:#666;padding-right:4px", "L" + layer));
    for (var h = 0; h < H; h++) (function (h) {
      var cv = el("canvas", "width:48px;height:48px;cursor:pointer;border:2px solid transparent");
      cv.width = 48; cv.height = 48; cv.title = "layer " + layer + ", head " + h;
      cv.setAttribute("data-layer", String(li)); cv.setAttribute("data-head", String(h));
      draw(cv, D.patterns[li][h], 48, null);
      cv.addEventListener("click", function () { sel = { l: li, h: h }; update(); });
      thumbCanvases.push(cv); thumbs.appendChild(cv);
    })(h);
  });
  box.appendChild(thumbs);
  var main = el("div", "display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap");
  var big = el("canvas", "width:240px;height:240px;border:1px solid #ccc;cursor:crosshair");
  big.width = 240; big.height = 240; big.className = "arrakis-linked-heatmap";
  var right = el("div", "flex:1;min-width:280px");
  var heading = el("div", "font-weight:bold;margin-bottom:4px");
  var text = el("div", "line-height:2.1;font-family:DejaVu Sans Mono,monospace;font-size:13px");
  var info = el("div", "margin-top:6px;color:#444;min-height:2.6em");
  info.className = "arrakis-linked-info";
  var spans = D.tokens.map(function (t, i) {
    var s = el("span", "padding:2px 1px;margin:0 1px;border-radius:2px;cursor:default;white-space:pre", t);
    s.className = "arrakis-token"; s.setAttribute("data-i", String(i));
    s.addEventListener("mouseenter", function () { hovered = i; paint(); });
    s.addEventListener("mouseleave", function () { hovered = null; paint(); });
    text.appendChild(s); return s;
  });
  big.addEventListener("mousemove", function (e) { var r = big.getBoundingClientRect(); var q = Math.floor((e.clientY - r.top) / r.height * T); hovered = Math.max(0, Math.min(T - 1, q)); paint(); });
  big.addEventListener("mouseleave", function () { hovered = null; paint(); });
  right.appendChild(heading); right.appendChild(text); right.appendChild(info);
  right.appendChild(el("div", "margin-top:4px;font-size:11px;color:#777", "blue background: where the hovered token attends; red underline: what attends to it (opacity = weight). Click a thumbnail to pick a head."));
  main.appendChild(big); main.appendChild(right); box.appendChild(main);
  function best(xs, skip) { var b = -1; for (var i = 0; i < xs.length; i++) if (xs[i] !== null && (b < 0 || xs[i] > xs[b])) b = i; return b; }
  function paint() {
    var m = D.patterns[sel.l][sel.h];
    draw(big, m, 240, hovered);
    spans.forEach(function (s, j) {
      var to = hovered !== null && j <= hovered ? m[hovered][j] : 0;
      var from = hovered !== null && j >= hovered ? m[j][hovered] : 0;
      s.style.background = to > 0 ? blue(to) : "transparent";
      s.style.color = to > 0.55 ? "white" : "#222";
      s.style.boxShadow = from > 0 ? "inset 0 -4px 0 rgba(214,96,77," + from + ")" : "none";
      s.style.outline = j === hovered ? "2px solid #111" : "none";
      s.setAttribute("data-attend", String(to)); s.setAttribute("data-attended-by", String(from));
    });
    if (hovered === null) { info.textContent = "Hover a token (or a heatmap row)."; return; }
    var row = m[hovered].slice(0, hovered + 1), col = [];
    for (var q = hovered; q < T; q++) col.push(m[q][hovered]);
    var k = best(row), q2 = best(col) + hovered;
    info.textContent = D.tokens[hovered] + " (" + hovered + ") attends most to " + D.tokens[k] + " (" + k + ") " + row[k].toFixed(3) +
      "; attended most by " + D.tokens[q2] + " (" + q2 + ") " + m[q2][hovered].toFixed(3);
  }
  function update() {
    heading.textContent = "Layer " + D.layers[sel.l] + ", head " + sel.h;
    thumbCanvases.forEach(function (cv) { var on = Number(cv.getAttribute("data-layer")) === sel.l && Number(cv.getAttribute("data-head")) === sel.h; cv.style.borderColor = on ? "#d6604d" : "transparent"; });
    root.setAttribute("data-selected", D.layers[sel.l] + "." + sel.h);
    paint();
  }
  var img = root.querySelector("img.arrakis-static");
  if (img) img.style.display = "none";
  root.appendChild(box);
  root.setAttribute("data-arrakis-live", "1");
  update();
})();`;
}
