/**
 * The size and origin of a Vega view, for drawing its SVG synchronously. vega-view's own `renderHeadless`
 * (behind the async `view.toSVG()`) sizes the picture from the view's private `_viewWidth`, `_viewHeight`
 * and `_origin` (stable since vega 3, but private); reading them gives the same picture as vega's own path.
 * On another vega version the size is computed from the scene's bounds instead (public scenegraph data),
 * which matches for the `pad` autosize our charts use: vega pads the bounds by half a pixel on each side.
 */
import { ApplyOptions, guarded, PatchSpec } from "./index";

export const VEGA_VIEW_SIZE: PatchSpec = {
  name: "vega-view-size",
  target: "vega",
  pinned: "6.4.0",
  does: "static chart pictures are sized exactly as vega's own toSVG() (private view size)",
  withoutIt: "static chart pictures are sized from the scene's bounds (may differ from vega's own toSVG() by a pixel)",
};

/** The view members read here (the private ones only on the pinned version). */
export interface VegaViewLike {
  padding(): { left: number; right: number; top: number; bottom: number };
  scenegraph(): { root: unknown };
  _viewWidth?: number;
  _viewHeight?: number;
  _origin?: [number, number];
}

export interface ViewFrame {
  /** Picture size, padding included. */
  width: number;
  height: number;
  /** Where the view's (0, 0) lands in the picture. */
  origin: [number, number];
}

/** The frame of a view that has run; `vegaVersion` is the loaded module's `version`. */
export function viewFrame(view: VegaViewLike, vegaVersion: string | undefined, opts: ApplyOptions = {}): ViewFrame {
  const pad = view.padding();
  const inner =
    guarded(VEGA_VIEW_SIZE, opts.version ?? vegaVersion, () => {
      if (typeof view._viewWidth !== "number" || typeof view._viewHeight !== "number" || !Array.isArray(view._origin)) {
        throw new Error("the view has no _viewWidth/_viewHeight/_origin");
      }
      return { width: view._viewWidth, height: view._viewHeight, origin: view._origin };
    }) ?? fromBounds(view);
  return {
    width: Math.max(0, inner.width + pad.left + pad.right),
    height: Math.max(0, inner.height + pad.top + pad.bottom),
    origin: [pad.left + inner.origin[0], pad.top + inner.origin[1]],
  };
}

type Bounds = { x1: number; y1: number; x2: number; y2: number };

/** The view size from the root group's bounds (vega's `pad` autosize: bounds minus the half-pixel stroke margin). */
function fromBounds(view: VegaViewLike): ViewFrame {
  const root = view.scenegraph().root as { bounds?: Bounds; items?: { bounds?: Bounds }[] };
  const b = root.bounds ?? root.items?.[0]?.bounds;
  if (!b || !Number.isFinite(b.x1) || !Number.isFinite(b.x2)) return { width: 0, height: 0, origin: [0, 0] };
  return {
    width: Math.round(b.x2 - b.x1 - 1),
    height: Math.round(b.y2 - b.y1 - 1),
    origin: [Math.round(-b.x1 - 0.5), Math.round(-b.y1 - 0.5)],
  };
}
