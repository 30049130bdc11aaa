/**
 * The display layer: the one display protocol (`Displayable.toMimeBundle`) and the views that tool results
 * render with. Views take plain data (arrays of numbers and strings, no tensors) and return a MIME bundle.
 *
 * | view                    | kind      | MIME types                                                              |
 * |-------------------------|-----------|-------------------------------------------------------------------------|
 * | attentionHeatmap        | Plotly    | text/html, application/vnd.plotly.v1+json, image/png, text/plain         |
 * | headGridView            | Plotly    | text/html, application/vnd.plotly.v1+json, image/png, text/plain         |
 * | topAttendedView         | Vega-Lite | application/vnd.vegalite.v5+json, image/png, text/plain                 |
 * | ablationComparisonView  | Vega-Lite | application/vnd.vegalite.v5+json, image/png, text/plain                 |
 *
 * See README.md in this folder for why, and for the sizes.
 */
export { type MimeBundle, type Displayable, isDisplayable, toMimeBundle } from "./mime";
export { formatToken, uniqueLabels, VISIBLE } from "./tokens";
export { attentionHeatmap, attentionText, type AttentionHeatmapProps, HEATMAP_MAX_TOKENS, HEATMAP_MAX_TOKENS_MANY_HEADS } from "./attention";
export { topAttendedView, type TopAttendedProps, TOP_ATTENDED_MAX_BARS } from "./topAttended";
export { ablationComparisonView, type AblationComparisonProps, ABLATION_MAX_POSITIONS } from "./ablation";
export { headGridText, headGridView, type HeadGridProps } from "./headGrid";
export { resetPlotlyLibrary, plotlyLibrary, plotlyLibraryShipped, type PlotlyLibraryMode } from "./plotly";
export { VEGALITE_MIME } from "./vegalite";

/** MIME type of Plotly figures ({data, layout}). */
export const PLOTLY_MIME = "application/vnd.plotly.v1+json";
export { labelGridBundle, type LabelGridProps } from "./labelGrid";
export { patchingView, type PatchingViewProps } from "./patching";
export { logitLensView, type LogitLensViewProps } from "./logitLens";
export { attributionView, type AttributionViewProps } from "./attribution";
export { linkedAttentionView, type LinkedAttentionProps } from "./linkedAttention";
export { startProgress, setProgressFactory, setProgressHost, progressBundle, PROGRESS_INTERVAL_MS, type Progress, type ProgressFactory, type ProgressHost, type ProgressOutput } from "./progress";
