/**
 * A symbolic ONNX graph: nodes kept as plain records so one stage of the model (embeddings, a block, the
 * unembedding) can be serialised whole or cut into segments at hook points. Serialisation goes through the
 * `onnx-proto` package (the ONNX protobuf schema compiled for protobufjs); large initializers are written as
 * external data into one side buffer handed to onnxruntime in memory, so no model hits protobuf's 2 GB limit.
 */
import { onnx } from "onnx-proto";

export type Attr = { name: string; f?: number; i?: number; ints?: number[] };
export interface NodeRec {
  op: string;
  inputs: string[];
  output: string;
  attrs: Attr[];
}
/** A symbolic dimension is a string ("B", "T"); a fixed one a number. */
export type Dim = number | string;
export interface ValueInfo {
  name: string;
  /** Undefined when not known (the shape is then left to onnxruntime's inference). */
  dims: Dim[] | undefined;
  type: "float32" | "int64";
}
export interface Initializer {
  dims: number[];
  data: Float32Array | BigInt64Array;
}

/** Initializers at least this large go to the external-data buffer; smaller ones stay inline. */
const EXTERNAL_MIN_BYTES = 1024;
/** The name the external-data buffer is given in the model and in the session options. */
export const EXTERNAL_FILE = "weights.bin";
const OPSET = 17;

export class Graph {
  readonly nodes: NodeRec[] = [];
  readonly inits = new Map<string, Initializer>();
  readonly inputs: ValueInfo[] = [];
  readonly dims = new Map<string, Dim[]>();
  /** Weights passed as graph inputs instead of initializers (name → values), fed at every run without a copy. */
  readonly weightFeeds = new Map<string, Initializer>();
  private k = 0;

  /** Adds a node; returns its output name (`out` when given, else a fresh one). */
  op(op: string, inputs: string[], attrs: Attr[] = [], out?: string, dims?: Dim[]): string {
    const o = out ?? `_${op.toLowerCase()}${this.k++}`;
    this.nodes.push({ op, inputs, output: o, attrs });
    if (dims) this.dims.set(o, dims);
    return o;
  }

  init(name: string, dims: number[], data: Float32Array | BigInt64Array): string {
    this.inits.set(name, { dims, data });
    return name;
  }

  /** A float32 scalar constant (shared by value). */
  f(v: number): string {
    const name = `_f${Math.fround(v)}`;
    return this.inits.has(name) ? name : this.init(name, [], Float32Array.of(v));
  }

  /** An int64 vector constant (shared by value). */
  i64(v: number[]): string {
    const name = `_i[${v.join(",")}]`;
    return this.inits.has(name) ? name : this.init(name, [v.length], BigInt64Array.from(v.map(BigInt)));
  }

  input(name: string, dims: Dim[], type: ValueInfo["type"] = "float32"): string {
    this.inputs.push({ name, dims, type });
    this.dims.set(name, dims);
    return name;
  }

  info(name: string): ValueInfo {
    const input = this.inputs.find((i) => i.name === name);
    return input ?? { name, dims: this.dims.get(name), type: "float32" };
  }
}

/** A serialised (sub)graph: the model bytes and the external-data buffer its large initializers live in. */
export interface Serialized {
  model: Uint8Array;
  external: Uint8Array;
}

/** Serialises the given nodes with the initializers they use, as a model with these inputs and outputs. */
export function serialize(g: Graph, nodes: NodeRec[], inputs: ValueInfo[], outputs: ValueInfo[]): Serialized {
  const used = new Set(nodes.flatMap((n) => n.inputs));
  const big: { name: string; t: Initializer }[] = [];
  const initializer: onnx.ITensorProto[] = [];
  let offset = 0;
  for (const [name, t] of g.inits) {
    if (!used.has(name)) continue;
    const type = t.data instanceof Float32Array ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.INT64;
    const bytes = t.data.byteLength;
    if (bytes >= EXTERNAL_MIN_BYTES) {
      const entry = (key: string, value: string) => ({ key, value });
      initializer.push({
        name,
        dims: t.dims,
        dataType: type,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [entry("location", EXTERNAL_FILE), entry("offset", String(offset)), entry("length", String(bytes))],
      });
      big.push({ name, t });
      offset += bytes;
    } else {
      initializer.push({ name, dims: t.dims, dataType: type, rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, bytes).slice() });
    }
  }
  const external = new Uint8Array(offset);
  let at = 0;
  for (const { t } of big) {
    external.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  const valueInfo = (v: ValueInfo): onnx.IValueInfoProto => ({
    name: v.name,
    type: {
      tensorType: {
        elemType: v.type === "float32" ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.INT64,
        shape: v.dims ? { dim: v.dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) } : undefined,
      },
    },
  });
  const node = (n: NodeRec): onnx.INodeProto => ({
    input: n.inputs,
    output: [n.output],
    name: n.output,
    opType: n.op,
    attribute: n.attrs.map(attribute),
  });
  const model = onnx.ModelProto.encode({
    irVersion: 8,
    producerName: "arrakis-ts",
    opsetImport: [{ domain: "", version: OPSET }],
    graph: { name: "stage", node: nodes.map(node), initializer, input: inputs.map(valueInfo), output: outputs.map(valueInfo) },
  }).finish();
  return { model, external };
}

function attribute(a: Attr): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (a.f !== undefined) return { name: a.name, f: a.f, type: T.FLOAT };
  if (a.i !== undefined) return { name: a.name, i: a.i, type: T.INT };
  return { name: a.name, ints: a.ints ?? [], type: T.INTS };
}

/**
 * One segment of a stage cut at hook points: the nodes it runs, the values it reads (graph inputs, earlier
 * segments' outputs, the possibly hooked cut values) and the values it returns.
 */
export interface Segment {
  nodes: NodeRec[];
  inputs: string[];
  outputs: string[];
  /** The hook point this segment ends at (its value is handed to the JS hooks), or null for the last one. */
  cut: string | null;
}

/**
 * Splits a graph at `cuts` (values in forward order) into cuts.length + 1 segments. Segment s computes what
 * cut s and the `wanted` values listed before it need (`order` gives each value's rank in forward order) and
 * nothing already computed; later segments read earlier values as inputs, and each cut value as its hooked
 * replacement. The last segment ends at `finals`.
 */
export function planSegments(g: Graph, cuts: string[], wanted: string[], finals: string[], order: Map<string, number>): Segment[] {
  const producer = new Map(g.nodes.map((n, i) => [n.output, i]));
  const assigned = new Map<number, number>(); // node index -> segment
  const targets: string[][] = [];
  const rank = (v: string) => order.get(v) ?? Infinity;
  for (let s = 0; s <= cuts.length; s++) {
    const lo = s === 0 ? -Infinity : rank(cuts[s - 1]);
    const hi = s === cuts.length ? Infinity : rank(cuts[s]);
    const t = s === cuts.length ? [...finals] : [cuts[s]];
    for (const w of wanted) if (rank(w) > lo && rank(w) < hi && !t.includes(w)) t.push(w);
    if (s === cuts.length) for (const w of wanted) if (rank(w) === Infinity && !t.includes(w)) t.push(w);
    targets.push(t);
    const visit = (v: string) => {
      const i = producer.get(v);
      if (i === undefined || assigned.has(i)) return;
      assigned.set(i, s);
      for (const input of g.nodes[i].inputs) visit(input);
    };
    for (const v of t) visit(v);
  }
  const segOf = (v: string) => {
    const i = producer.get(v);
    return i === undefined ? -1 : assigned.get(i)!;
  };
  const segments: Segment[] = targets.map((t, s) => ({
    nodes: g.nodes.filter((_, i) => assigned.get(i) === s),
    inputs: [],
    outputs: [],
    cut: s < cuts.length ? cuts[s] : null,
  }));
  segments.forEach((seg, s) => {
    const made = new Set(seg.nodes.map((n) => n.output));
    seg.inputs = [...new Set(seg.nodes.flatMap((n) => n.inputs))].filter((v) => !made.has(v) && !g.inits.has(v));
    // a target computed in an earlier segment is returned by that segment
    for (const v of targets[s]) {
      const from = segOf(v);
      const owner = from >= 0 ? segments[from] : null;
      if (owner && !owner.outputs.includes(v)) owner.outputs.push(v);
    }
  });
  // values read by later segments are returned by the segment that makes them
  for (const seg of segments) {
    for (const v of seg.inputs) {
      const from = segOf(v);
      if (from >= 0 && !segments[from].outputs.includes(v)) segments[from].outputs.push(v);
    }
  }
  return segments;
}
