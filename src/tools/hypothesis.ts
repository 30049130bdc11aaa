/** The bench's hypothesis test: Welch's two-sample t-test (`@stdlib/stats-ttest2`) with a readable result. */
import ttest2 = require("@stdlib/stats-ttest2");
import type { Displayable, MimeBundle } from "../display";
import { fail, show } from "../errors";
import { fmt } from "./common";


export interface HypothesisOptions {
  /** Samples drawn from each function (default 20, at least 2). */
  nSamples?: number;
  /** Significance level (default 0.05). */
  alpha?: number;
  /** "two-sided" (default), "greater" (alternative mean higher) or "less". */
  alternative?: "two-sided" | "less" | "greater";
}

/** The outcome of a Welch two-sample t-test of the alternative's samples against the null's. */
export class HypothesisTest implements Displayable {
  constructor(
    /** Welch's t statistic (alternative − null). */
    readonly t: number,
    /** Welch–Satterthwaite degrees of freedom. */
    readonly df: number,
    readonly pValue: number,
    /** p < alpha. */
    readonly reject: boolean,
    readonly alpha: number,
    readonly alternative: "two-sided" | "less" | "greater",
    readonly meanNull: number,
    readonly meanAlt: number,
    /** 1 − alpha confidence interval of meanAlt − meanNull. */
    readonly ci: number[],
    readonly nullSamples: number[],
    readonly altSamples: number[],
    /** The library's name of the test ("Welch two-sample t-test"). */
    readonly method: string,
  ) {}

  toJSON(): object {
    const { t, df, pValue, reject, alpha, alternative, meanNull, meanAlt, ci, nullSamples, altSamples, method } = this;
    return { t, df, pValue, reject, alpha, alternative, meanNull, meanAlt, ci, nullSamples, altSamples, method };
  }

  toString(): string {
    return (
      `${this.method}: t = ${fmt(this.t)}, df = ${fmt(this.df, 2)}, p = ${this.pValue.toExponential(3)} → ${this.reject ? "reject" : "do not reject"} ` +
      `the null at alpha = ${this.alpha} (${this.alternative}; mean null ${fmt(this.meanNull)}, alternative ${fmt(this.meanAlt)}, n = ${this.nullSamples.length} + ${this.altSamples.length})`
    );
  }

  toMimeBundle(): MimeBundle {
    return { "text/plain": this.toString() };
  }
}

export function welch(nulls: number[], alts: number[], alpha: number, alternative: "two-sided" | "less" | "greater"): HypothesisTest {
  const check = (xs: number[], which: string) =>
    xs.forEach((x, i) => {
      if (typeof x !== "number" || !Number.isFinite(x)) fail(`testHypothesis: ${which} sample ${i} must be a finite number, got ${show(x)}`);
    });
  check(nulls, "null");
  check(alts, "alternative");
  const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);
  if (spread(nulls) === 0 && spread(alts) === 0) fail(`testHypothesis: both samples are constant (null ${nulls[0]}, alternative ${alts[0]}), so the t statistic is undefined; vary the inputs across samples`);
  const r = ttest2(alts, nulls, { alpha, alternative, variance: "unequal" });
  return new HypothesisTest(r.statistic, r.df, r.pValue, r.rejected, alpha, alternative, r.ymean, r.xmean, [...r.ci], nulls, alts, r.method);
}
