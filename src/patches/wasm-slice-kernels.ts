/**
 * Heap-view `Slice`, `Unpack` and `SplitV` kernels for the wasm backend (see `install` below for why).
 */
import * as tf from "@tensorflow/tfjs";
import { ApplyOptions, guarded, PatchSpec } from "./index";
import { wasmVersion } from "./wasm-heap-guard";

export const WASM_SLICE_KERNELS: PatchSpec = {
  name: "wasm-slice-kernels",
  target: "@tensorflow/tfjs-backend-wasm",
  pinned: "4.22.0",
  does: "Slice/Unpack/SplitV copy only what they return, inside the wasm heap",
  withoutIt: "the stock kernels copy their whole input out of the heap per output (slow per-head attention on wasm, same values)",
};

let sliceKernelsInstalled = false;

/** Replaces the wasm Slice/Unpack/SplitV kernels (once per process); returns whether they are installed. */
export function applyWasmSliceKernels(opts: ApplyOptions = {}): boolean {
  if (sliceKernelsInstalled) return true;
  guarded(WASM_SLICE_KERNELS, opts.version ?? wasmVersion(), install);
  return sliceKernelsInstalled;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * Replaces the wasm `Slice`, `Unpack` and `SplitV` kernels with ones that read their input through a view
 * of the wasm heap. In @tensorflow/tfjs-backend-wasm 4.22.0, `Slice` starts with `backend.readSync(x)`, a
 * copy of the whole input out of the heap, on every call, and `Unpack` / `SplitV` call it once per output:
 * unstacking the 12 heads of a [12, 512, 512] pattern copied 150 MB (measured 1.4 s per block; the per-head
 * attention path unstacks 4 tensors per block). These versions copy only what they return, inside the heap.
 *
 * Relies on (tfjs 4.22.0): the kernel registry (`getKernel`/`unregisterKernel`/`registerKernel`, public), the
 * `BackendWasm` methods `makeOutput(shape, dtype)` and `typedArrayFromHeap(tensorInfo)` (public in its .d.ts),
 * and on views being taken after `makeOutput` (which may grow, and so detach, the heap). Strings go to the
 * original kernels. Values are copied unchanged, so results are bit-identical.
 */
function install(): void {
  if (sliceKernelsInstalled) return;
  const original = { Slice: tf.getKernel("Slice", "wasm"), Unpack: tf.getKernel("Unpack", "wasm"), SplitV: tf.getKernel("SplitV", "wasm") };
  if (!original.Slice || !original.Unpack || !original.SplitV) throw new Error("the wasm Slice, Unpack or SplitV kernel is not registered");
  sliceKernelsInstalled = true;
  const replace = (name: keyof typeof original, kernelFunc: (args: any) => any) => {
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc });
  };
  replace("Slice", (args) => {
    const { inputs: { x }, attrs: { begin, size }, backend } = args;
    if (x.dtype === "string") return original.Slice!.kernelFunc(args);
    const [b, sz] = tf.slice_util.parseSliceParams(x, begin, size);
    return sliceFromHeap(backend, x, b, sz);
  });
  replace("Unpack", (args) => {
    const { inputs: { value }, attrs, backend } = args;
    if (value.dtype === "string") return original.Unpack!.kernelFunc(args);
    const rank = value.shape.length;
    const axis = attrs.axis < 0 ? attrs.axis + rank : attrs.axis;
    const outShape = value.shape.filter((_: number, i: number) => i !== axis);
    const size = [...value.shape];
    size[axis] = 1;
    return Array.from({ length: value.shape[axis] }, (_, i) => {
      const begin = new Array(rank).fill(0);
      begin[axis] = i;
      const out = sliceFromHeap(backend, value, begin, size);
      return { dataId: out.dataId, dtype: out.dtype, shape: outShape };
    });
  });
  replace("SplitV", (args) => {
    const { inputs: { x }, attrs: { numOrSizeSplits, axis }, backend } = args;
    if (x.dtype === "string") return original.SplitV!.kernelFunc(args);
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, ax);
    const begin = new Array(x.shape.length).fill(0);
    return sizes.map((n: number) => {
      const size = [...x.shape];
      size[ax] = n;
      const out = sliceFromHeap(backend, x, [...begin], size);
      begin[ax] += n;
      return out;
    });
  });
}

/** out = x[begin : begin + size] for a numeric tensor on the wasm backend, copied heap to heap. */
function sliceFromHeap(backend: any, x: any, begin: number[], size: number[]): any {
  const out = backend.makeOutput(size, x.dtype); // may grow the heap: take views only after this
  const n = tf.util.sizeFromShape(size);
  if (n === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const strides = tf.util.computeStrides(x.shape);
  if (tf.slice_util.isSliceContinous(x.shape, begin, size)) {
    const offset = tf.slice_util.computeFlatOffset(begin, strides);
    dst.set(src.subarray(offset, offset + n));
    return out;
  }
  // Copy row by row: a row is a run along the last axis; an odometer walks the outer indices.
  const rank = size.length;
  const run = size[rank - 1];
  const idx = new Array(rank - 1).fill(0);
  for (let o = 0; o < n; o += run) {
    let from = begin[rank - 1];
    for (let d = 0; d < rank - 1; d++) from += (begin[d] + idx[d]) * strides[d];
    if (run >= 32) dst.set(src.subarray(from, from + run), o);
    else for (let j = 0; j < run; j++) dst[o + j] = src[from + j];
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}
/* eslint-enable @typescript-eslint/no-explicit-any */
