/** Number formatting shared by the views. */

/** Three decimals: what the attention hover shows (weights in 0..1), and a third less JSON than four. */
export function round3(x: number): number {
  return Math.round(x * 1e3) / 1e3;
}

/** Four decimals are plenty for a colour and a 3-decimal hover, and halve the JSON of a 64×64 pattern. */
export function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

/** Fixed decimals with an explicit sign ("+0.120", "−0.050"), for changes. */
export function signed(x: number, digits = 3): string {
  const s = Math.abs(x).toFixed(digits);
  return (x > 0 ? "+" : x < 0 ? "−" : "±") + s;
}

/** Mean of a non-empty array (NaN for an empty one). */
export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
