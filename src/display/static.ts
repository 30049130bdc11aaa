/**
 * Static pictures drawn in Node, without a browser: Vega-Lite spec → Vega → SVG (vega, vega-lite) → PNG
 * (@resvg/resvg-js). Every view carries one, so a notebook shows its charts where no JavaScript runs (GitHub,
 * an untrusted notebook, nbconvert with scripts off).
 *
 * Why the UMD builds are loaded by hand: `toMimeBundle()` is synchronous, but vega 6 and vega-lite 6 ship
 * only ES modules, and vega's Node entry has a top-level `await import("canvas")`, so Node refuses to
 * `require()` it (ERR_REQUIRE_ASYNC_MODULE) and this CommonJS package could only reach it through an async
 * `import()`. The packages also ship self-contained UMD files (build/vega.min.js, build/vega-lite.min.js);
 * we evaluate those once with a tiny CommonJS shim (the package.json "type": "module" stops plain `require`
 * from treating them as CommonJS). No canvas is needed: SVG output only needs the string renderer.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as vm from "node:vm";
import { fail } from "../errors";
import { viewFrame } from "../patches/vega-view-size";

/** The subset of the vega API we use (types are ours: the packages' own types are ESM-only). */
interface VegaView {
  run(): VegaView;
  padding(): { left: number; right: number; top: number; bottom: number };
  background(): string | null;
  loader(): unknown;
  scenegraph(): { root: unknown };
  toSVG(): Promise<string>;
  finalize(): void;
}
interface VegaModule {
  parse(spec: unknown, config?: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: "none"; logLevel?: number }) => VegaView;
  renderModule(type: "svg"): {
    headless: new (loader: unknown) => {
      initialize(el: null, width: number, height: number, origin: [number, number]): {
        background(bg: string | null): { render(scene: unknown): { svg(): string } };
      };
    };
  };
  Warn: number;
  Error: number;
  version?: string;
}
interface VegaLiteModule {
  compile(spec: unknown, options?: unknown): { spec: unknown };
  version: string;
}

let libs: { vega: VegaModule; vegaLite: VegaLiteModule } | undefined;

/** Directory of an installed package, found without loading its (ESM) entry point. */
function packageDir(name: string): string {
  try {
    return path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    // vega's "exports" map hides package.json: resolve through the node_modules chain instead.
    for (const dir of module.paths) {
      const candidate = path.join(dir, name);
      if (fs.existsSync(path.join(candidate, "package.json"))) return candidate;
    }
    return fail(`package "${name}" is not installed; static pictures need vega and vega-lite (npm dependencies)`);
  }
}

/** Evaluates a UMD file as CommonJS with the given modules for its `require`. */
function loadUmd(file: string, deps: Record<string, unknown>): unknown {
  const source = fs.readFileSync(file, "utf8");
  const wrapper = vm.runInThisContext(`(function (exports, require, module, define) {${source}\n})`, {
    filename: file,
  }) as (e: unknown, r: (id: string) => unknown, m: { exports: unknown }, d: undefined) => void;
  const mod = { exports: {} as unknown };
  const req = (id: string) => (id in deps ? deps[id] : fail(`${path.basename(file)} asked for module "${id}"`));
  wrapper(mod.exports, req, mod, undefined);
  return mod.exports;
}

/** vega and vega-lite, loaded on first use (about 100 ms). */
export function vegaLibs(): { vega: VegaModule; vegaLite: VegaLiteModule } {
  if (!libs) {
    const vega = loadUmd(path.join(packageDir("vega"), "build", "vega.min.js"), {}) as VegaModule;
    const vegaLite = loadUmd(path.join(packageDir("vega-lite"), "build", "vega-lite.min.js"), {
      vega,
    }) as VegaLiteModule;
    if (typeof vega.View !== "function" || typeof vegaLite.compile !== "function") {
      fail("the vega / vega-lite UMD builds did not load (unexpected package layout)");
    }
    libs = { vega, vegaLite };
  }
  return libs;
}

/** A Vega view for a Vega-Lite spec, run synchronously (specs here carry inline data, nothing to fetch). */
function viewOf(spec: object): VegaView {
  const { vega, vegaLite } = vegaLibs();
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none", logLevel: vega.Error });
  return view.run();
}

/**
 * SVG text for a Vega-Lite spec, synchronously. This is vega-view's `renderHeadless` without its awaits:
 * same width/height/origin (padding included; see `viewFrame`), same string renderer. A unit test checks it against the
 * asynchronous `view.toSVG()`.
 */
export function vegaLiteToSvg(spec: object): string {
  const { vega } = vegaLibs();
  const view = viewOf(spec);
  try {
    const { width, height, origin } = viewFrame(view, vega.version);
    const Renderer = vega.renderModule("svg").headless;
    return new Renderer(view.loader())
      .initialize(null, width, height, origin)
      .background(view.background())
      .render(view.scenegraph().root)
      .svg();
  } finally {
    view.finalize();
  }
}

/** The reference path (async, vega's own): used by the tests to pin vegaLiteToSvg. */
export async function vegaLiteToSvgAsync(spec: object): Promise<string> {
  const view = viewOf(spec);
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Font family of every chart: in DejaVu Sans, which covers the visible-whitespace glyphs of formatToken. */
export const CHART_FONT = "DejaVu Sans, Verdana, sans-serif";

interface ResvgModule {
  Resvg: new (
    svg: string,
    opts: object,
  ) => { render(): { asPng(): Buffer; width: number; height: number; pixels: Buffer } };
}
let resvg: ResvgModule | undefined;

/**
 * Rasterises SVG text to PNG bytes. Fonts come from the system (fontconfig folders): Debian's
 * `fonts-dejavu-core` provides DejaVu Sans; without any font, text would silently vanish from the picture.
 *
 * @param scale pixel density (2 = sharp on high-DPI screens, 4× the bytes of 1)
 */
export function svgToPng(svg: string, scale = 1): { png: Buffer; width: number; height: number } {
  resvg ??= require("@resvg/resvg-js") as ResvgModule;
  const renderer = new resvg.Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    background: "white",
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans", sansSerifFamily: "DejaVu Sans" },
  });
  const image = renderer.render();
  return { png: image.asPng(), width: image.width, height: image.height };
}

/** A rendered static picture of a Vega-Lite spec. */
export interface StaticPicture {
  svg: string;
  png: Buffer;
  /** Pixel size of the PNG. */
  width: number;
  height: number;
  /** CSS size to show it at (PNG size / scale). */
  cssWidth: number;
  cssHeight: number;
}

/**
 * Pixel density of the PNGs: 1, so every frontend shows them at the designed size (a bundle has no size
 * metadata and image/png is shown at its pixel size) and a 64-token heatmap stays near 100 kB. 1.5 was
 * sharper on high-DPI screens for twice the bytes, and that PNG is in every output twice.
 */
export const PNG_SCALE = 1;

export function drawStatic(spec: object, scale = PNG_SCALE): StaticPicture {
  const svg = vegaLiteToSvg(spec);
  const { png, width, height } = svgToPng(svg, scale);
  return { svg, png, width, height, cssWidth: Math.round(width / scale), cssHeight: Math.round(height / scale) };
}
