/**
 * Plotly figure titles that are never cut. Plotly draws a title on one line and clips whatever runs past the
 * figure's width, and it does not wrap. So the views measure the title before choosing the figure's width: a
 * title that fits in the widest figure we draw widens the figure to hold it, a longer one is broken at spaces
 * into several lines, and the top margin grows by the extra lines.
 */
import { escapeHtml } from "./tokens";

/** Title font size (px). Set explicitly: Plotly's default derives it from the layout font. */
export const TITLE_FONT_SIZE = 14;
/** Height of one title line (px) at TITLE_FONT_SIZE. */
export const TITLE_LINE_HEIGHT = 19;
/** Inset of the title from the figure's left edge (px), the same on the right as slack. */
const TITLE_INSET = 10;
/**
 * Average advance of a character as a fraction of the font size, on the wide side: DejaVu Sans (the figures'
 * font) averages ~0.55 em over mixed text and Verdana, its fallback, ~0.58 em. Overestimating only costs a few
 * blank pixels; underestimating cuts the title.
 */
const CHAR_EM = 0.62;
/** Widest figure a long title may ask for (px); beyond that it wraps. */
export const TITLE_MAX_WIDTH = 900;

/** Estimated width in px of `s` at `size` px. */
export function textWidth(s: string, size: number): number {
  return Math.ceil(Array.from(s).length * size * CHAR_EM);
}

/** Breaks `text` at spaces into lines no wider than `maxWidth` px (a single overlong word keeps its own line). */
export function wrapText(text: string, maxWidth: number, size: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/ +/)) {
    const next = line ? `${line} ${word}` : word;
    if (line && textWidth(next, size) > maxWidth) {
      lines.push(line);
      line = word;
    } else {
      line = next;
    }
  }
  lines.push(line);
  return lines;
}

export interface FigureTitle {
  /** Plotly `title` attributes: left-aligned to the figure, below the mode bar (`top` px from the top). */
  layout: Record<string, unknown>;
  /** Plotly title text (escaped HTML with `<br>` between lines), for relayout calls that change only the text. */
  text: string;
  /** Figure width (px) the title needs. */
  width: number;
  /** Height of the title's lines (px). */
  height: number;
}

/** Subtitle font size (px) and line height: a smaller grey line under the title. */
const SUBTITLE_FONT_SIZE = 11;
const SUBTITLE_LINE_HEIGHT = 15;

/**
 * The title of a figure that is otherwise `figureWidth` px wide: widened up to TITLE_MAX_WIDTH to hold the
 * title on one line, wrapped beyond that. `top` is the space kept above it (the mode bar). An optional
 * subtitle goes under it in smaller grey type, wrapped the same way.
 */
export function figureTitle(title: string, figureWidth: number, top: number, subtitle = ""): FigureTitle {
  const room = Math.max(figureWidth, TITLE_MAX_WIDTH) - 2 * TITLE_INSET;
  const lines = wrapText(title, room, TITLE_FONT_SIZE);
  const sublines = subtitle ? wrapText(subtitle, room, SUBTITLE_FONT_SIZE) : [];
  const widest = Math.max(
    ...lines.map((l) => textWidth(l, TITLE_FONT_SIZE)),
    ...sublines.map((l) => textWidth(l, SUBTITLE_FONT_SIZE)),
  );
  const text = [
    ...lines.map(escapeHtml),
    ...sublines.map((l) => `<span style="font-size:${SUBTITLE_FONT_SIZE}px;color:#666">${escapeHtml(l)}</span>`),
  ].join("<br>");
  return {
    layout: {
      text,
      font: { size: TITLE_FONT_SIZE },
      x: 0,
      xref: "container",
      xanchor: "left",
      y: 1,
      yref: "container",
      yanchor: "top",
      pad: { l: TITLE_INSET, t: top },
    },
    text,
    width: Math.max(figureWidth, widest + 2 * TITLE_INSET),
    height: lines.length * TITLE_LINE_HEIGHT + sublines.length * SUBTITLE_LINE_HEIGHT,
  };
}
