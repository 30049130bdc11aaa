/**
 * Seeded standard-normal samples, fast enough for billion-parameter random models.
 *
 * The ziggurat method (Marsaglia & Tsang 2000, 128 layers) over the mulberry32 stream: about 99% of samples
 * cost one 32-bit draw, a table lookup, a compare and a multiply, where Box–Muller costs a log, a square root
 * and a sine or cosine per pair (~60 s of CPU for 1.24 B values against a few seconds). The distribution is
 * exactly N(0, 1) up to the 2^-24 resolution of a draw within its layer, finer than float32 keeps.
 *
 * A draw's low 7 bits pick the layer and its high 25 bits (signed) the position in it, so the two never share
 * bits (Doornik 2005 showed the correlation of the original, which used the low bits for both).
 */
const LAYERS = 128;
/** Right edge of the base layer's rectangle; beyond it lies the tail. */
const R = 3.442619855899;
/** Area of every layer (rectangles and base strip with its tail alike). */
const AREA = 9.91256303526217e-3;
/** Positions within a layer are signed 25-bit integers: |j| < 2^24. */
const SCALE = 2 ** 24;

/**
 * Layer tables. For layer i: a sample is j·W[i]; it lies under the density for sure when |j| < K[i]; F[i] is
 * the density at the layer's outer edge (F[i - 1] at its top). Layer 0 is the base strip plus the tail.
 */
const K = new Int32Array(LAYERS); // integer bounds: |j| < K[i] compares two int32s in the hot loop
const W = new Float64Array(LAYERS);
const F = new Float64Array(LAYERS);
{
  let dn = R;
  let tn = R;
  const q = AREA / Math.exp(-0.5 * dn * dn); // width of the base strip's equal-area rectangle
  K[0] = (dn / q) * SCALE;
  K[1] = 0;
  W[0] = q / SCALE;
  W[LAYERS - 1] = dn / SCALE;
  F[0] = 1;
  F[LAYERS - 1] = Math.exp(-0.5 * dn * dn);
  for (let i = LAYERS - 2; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(AREA / dn + Math.exp(-0.5 * dn * dn)));
    K[i + 1] = (dn / tn) * SCALE;
    tn = dn;
    F[i] = Math.exp(-0.5 * dn * dn);
    W[i] = dn / SCALE;
  }
}

/** One seeded stream of normals; successive `fill` calls continue the same stream. */
export class NormalStream {
  /** mulberry32's state (the same integer steps as `mulberry32` in init.ts, inlined for speed). */
  private a: number;

  constructor(seed: number) {
    this.a = seed | 0; // the bits of seed >>> 0, kept as an int32 (V8 keeps the field unboxed)
  }

  /** The next 32-bit draw as a signed integer (the bits `mulberry32` would return, scaled by 2^32). */
  next32(): number {
    this.a = (this.a + 0x6d2b79f5) | 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return t ^ (t >>> 14);
  }

  /** Uniform in [0, 1) from the next draw (mulberry32's own value). */
  uniform(): number {
    return (this.next32() >>> 0) / 4294967296;
  }

  /** Uniform in (0, 1] (never 0, so its log is finite). */
  private open01(): number {
    return 1 - this.uniform();
  }

  /** Fills `out` with N(0, std²) samples and returns it. */
  fill(out: Float32Array, std = 1): Float32Array {
    const scaled = W.map((w) => w * std);
    const n = out.length;
    let a = this.a;
    for (let i = 0; i < n; i++) {
      // mulberry32, inlined: a function call per sample would cost more than the sample itself.
      a = (a + 0x6d2b79f5) | 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      const u = t ^ (t >>> 14);
      const layer = u & (LAYERS - 1);
      const j = u >> 7; // signed 25 bits
      const sign = j >> 31;
      if ((j ^ sign) - sign < K[layer]) {
        // |j| < K: inside the layer's rectangle, under the density for sure
        out[i] = j * scaled[layer];
      } else {
        this.a = a;
        out[i] = this.edge(j, layer) * std;
        a = this.a;
      }
    }
    this.a = a;
    return out;
  }

  /** The rare draws outside a layer's inner rectangle: the wedge test, the tail, or a fresh draw. */
  private edge(j: number, layer: number): number {
    for (;;) {
      const x = j * W[layer];
      if (layer === 0) {
        // The tail beyond R (Marsaglia's method): exponential proposals accepted under the normal's tail.
        let tx: number;
        let ty: number;
        do {
          tx = -Math.log(this.open01()) / R;
          ty = -Math.log(this.open01());
        } while (ty + ty < tx * tx);
        return j > 0 ? R + tx : -R - tx;
      }
      if (F[layer] + this.uniform() * (F[layer - 1] - F[layer]) < Math.exp(-0.5 * x * x)) return x;
      const u = this.next32();
      layer = u & (LAYERS - 1);
      j = u >> 7;
      if (Math.abs(j) < K[layer]) return j * W[layer];
    }
  }
}

