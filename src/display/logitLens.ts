/**
 * Logit lens view: rows are the residual stream after the embeddings and after each layer, columns the
 * positions; each cell names the top decoded token and is coloured by the probability the row gives the
 * true next token (grey at the last position, where nothing follows). Hover: the top tokens with their
 * probabilities and the next token's rank.
 */
import { labelGridBundle } from "./labelGrid";
import type { MimeBundle } from "./mime";
import { formatToken } from "./tokens";

export interface LogitLensViewProps {
  rows: string[];
  tokens: string[];
  top: { token: string; prob: number }[][][];
  targetRank: (number | null)[][];
  targetProb: (number | null)[][];
  title: string;
}

export function logitLensView(p: LogitLensViewProps): MimeBundle {
  const T = p.tokens.length;
  const columns = p.tokens.map((t, i) => `${i} ${formatToken(t, 12)}`);
  const next = (i: number) => (i + 1 < T ? formatToken(p.tokens[i + 1], 12) : "—");
  const hover = p.rows.map((r, i) =>
    p.tokens.map((_, j) => {
      const tops = p.top[i][j].map((e) => `${formatToken(e.token, 16)} ${(100 * e.prob).toFixed(1)}%`).join("\n");
      const rank = p.targetRank[i][j];
      return `${r} · position ${j} (${formatToken(p.tokens[j], 16)})\n${tops}` + (rank === null ? "" : `\nnext token ${next(j)}: rank ${rank}, ${(100 * (p.targetProb[i][j] ?? 0)).toFixed(1)}%`);
    }),
  );
  const text = [
    "cell: top decoded token (#rank of the true next token); colour: probability of the true next token",
    ...p.rows.map((r, i) => r.padEnd(6) + p.top[i].map((k, j) => `${formatToken(k[0].token, 8)}${p.targetRank[i][j] === null ? "" : `#${p.targetRank[i][j]}`}`.padEnd(12)).join("")),
  ].join("\n");
  return labelGridBundle("logitLensView", {
    z: p.targetProb,
    rows: p.rows,
    columns,
    rowTitle: "residual stream after",
    columnTitle: "position (input token)",
    title: p.title,
    subtitle: "cell: top decoded token; colour: probability of the true next token",
    colorLabel: "p(next token)",
    domain: [0, 1],
    diverging: false,
    cellText: p.top.map((r) => r.map((k) => formatToken(k[0].token, 7))),
    hover,
    text,
    cellWidth: 52,
  });
}
