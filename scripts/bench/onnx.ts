/**
 * A GPT-2 forward pass as an ONNX graph, written without any protobuf package (none is installed here): a
 * dozen lines of protobuf wire format cover the few ONNX messages needed. The graph computes exactly what
 * `HookedAutoModel.forward` computes for the gpt2 family (LayerNorm, Conv1D-style `x @ W + b` with `[in, out]`
 * weights, causal softmax attention with the additive mask, gelu_new, tied unembedding), from the same
 * weights, so the benchmark compares one computation.
 *
 * Message and field numbers follow onnx/onnx.proto (IR version 8, opset 17 for LayerNormalization).
 */

// ------------------------------------------------------------------ protobuf wire format

/**
 * A serialized message kept as a list of byte chunks, so that nesting the ~500 MB of weights into tensor,
 * graph and model messages never copies them: only the final `flatten` does, once.
 */
type Field = Uint8Array[];

function varint(n: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(n)); // negative int64 values are 10-byte two's complement varints
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

const size = (f: Field): number => f.reduce((s, p) => s + p.length, 0);

function flatten(f: Field): Uint8Array {
  const out = new Uint8Array(size(f));
  let at = 0;
  for (const p of f) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Varint field (wire type 0): int32, int64, enum. */
function int(field: number, value: number | bigint): Field {
  return [Uint8Array.from([...varint((field << 3) | 0), ...varint(value)])];
}

/** Length-delimited field (wire type 2): string, bytes, embedded message. */
function bytes(field: number, value: Uint8Array | Field): Field {
  const parts = value instanceof Uint8Array ? [value] : value;
  return [Uint8Array.from([...varint((field << 3) | 2), ...varint(size(parts))]), ...parts];
}

function str(field: number, value: string): Field {
  return bytes(field, new TextEncoder().encode(value));
}

/** 32-bit float field (wire type 5). */
function float(field: number, value: number): Field {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, value, true);
  return [Uint8Array.from(varint((field << 3) | 5)), b];
}

const message = (...fields: Field[]): Field => fields.flat();

// ------------------------------------------------------------------ ONNX messages

const FLOAT = 1;
const INT64 = 7;

/** TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9. */
function tensorProto(name: string, dims: number[], type: number, raw: Uint8Array): Field {
  return message(...dims.map((d) => int(1, d)), int(2, type), str(8, name), bytes(9, raw));
}

/** AttributeProto: name = 1, f = 2, i = 3, ints = 8, type = 20 (FLOAT 1, INT 2, INTS 7). */
type Attr = { name: string; f?: number; i?: number; ints?: number[] };
function attribute(a: Attr): Field {
  if (a.f !== undefined) return message(str(1, a.name), float(2, a.f), int(20, 1));
  if (a.i !== undefined) return message(str(1, a.name), int(3, a.i), int(20, 2));
  return message(str(1, a.name), ...(a.ints ?? []).map((v) => int(8, v)), int(20, 7));
}

/** NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5. */
function node(op: string, inputs: string[], outputs: string[], attrs: Attr[] = []): Field {
  return message(...inputs.map((s) => str(1, s)), ...outputs.map((s) => str(2, s)), str(3, `${op}_${outputs[0]}`), str(4, op), ...attrs.map((a) => bytes(5, attribute(a))));
}

/** ValueInfoProto (name = 1, type = 2) → TypeProto.tensor_type = 1 → elem_type = 1, shape = 2 → dim = 1 (dim_value 1 | dim_param 2). */
function valueInfo(name: string, type: number, dims: (number | string)[]): Field {
  const shape = message(...dims.map((d) => bytes(1, typeof d === "number" ? int(1, d) : str(2, d))));
  return message(str(1, name), bytes(2, bytes(1, message(int(1, type), bytes(2, shape)))));
}

// ------------------------------------------------------------------ the GPT-2 graph

export interface Gpt2Weights {
  nLayers: number;
  nHeads: number;
  eps: number;
  /** Every tensor by our parameter name ("wE", "wPos", "layers.0.attn.wQ", ...), row-major float32. */
  get(name: string): { shape: number[]; data: Float32Array };
}

/**
 * The serialized ModelProto. Inputs: `input_ids` int64 [1, T], `position_ids` int64 [T], `mask` float [T, T]
 * (0 where visible, -3.4e38 where not). Output: `logits` float [1, T, vocab].
 */
export function gpt2Onnx(w: Gpt2Weights): Uint8Array {
  const nodes: Field[] = [];
  const inits: Field[] = [];
  const n = (op: string, inputs: string[], out: string, attrs: Attr[] = []) => {
    nodes.push(node(op, inputs, [out], attrs));
    return out;
  };
  const init = (name: string) => {
    const t = w.get(name);
    inits.push(tensorProto(name, t.shape, FLOAT, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)));
    return name;
  };
  const constF = (name: string, v: number) => {
    inits.push(tensorProto(name, [], FLOAT, new Uint8Array(Float32Array.of(v).buffer)));
    return name;
  };
  const constI64 = (name: string, v: number[]) => {
    inits.push(tensorProto(name, [v.length], INT64, new Uint8Array(BigInt64Array.from(v.map(BigInt)).buffer)));
    return name;
  };
  const D = w.get("wE").shape[1];
  const H = w.nHeads;
  const dh = D / H;
  const eps = w.eps;
  const ln = (x: string, p: string, out: string) => n("LayerNormalization", [x, init(`${p}.w`), init(`${p}.b`)], out, [{ name: "axis", i: -1 }, { name: "epsilon", f: eps }]);
  const linear = (x: string, wName: string, bName: string, out: string) => n("Add", [n("MatMul", [x, init(wName)], `${out}_mm`), init(bName)], out);

  const headsShape = constI64("shape_heads", [1, -1, H, dh]);
  const flatShape = constI64("shape_flat", [1, -1, D]);
  const scale = constF("attn_scale", 1 / Math.sqrt(dh));
  const half = constF("half", 0.5);
  const one = constF("one", 1);
  const c1 = constF("gelu_c", 0.044715);
  const c2 = constF("sqrt_2_over_pi", Math.sqrt(2 / Math.PI));

  let x = n("Add", [n("Gather", [init("wE"), "input_ids"], "tok_emb", [{ name: "axis", i: 0 }]), n("Gather", [init("wPos"), "position_ids"], "pos_emb", [{ name: "axis", i: 0 }])], "resid_0");
  for (let l = 0; l < w.nLayers; l++) {
    const p = `layers.${l}`;
    const h = ln(x, `${p}.ln1`, `${p}.ln1_out`);
    const split = (which: "Q" | "K" | "V", perm: number[]) =>
      n("Transpose", [n("Reshape", [linear(h, `${p}.attn.w${which}`, `${p}.attn.b${which}`, `${p}.${which}`), headsShape], `${p}.${which}_heads`)], `${p}.${which}_t`, [{ name: "perm", ints: perm }]);
    const q = split("Q", [0, 2, 1, 3]); // [1, head, T, d_head]
    const kT = split("K", [0, 2, 3, 1]); // [1, head, d_head, T]
    const v = split("V", [0, 2, 1, 3]); // [1, head, T, d_head]
    const scores = n("Add", [n("Mul", [n("MatMul", [q, kT], `${p}.qk`), scale], `${p}.scaled`), "mask"], `${p}.scores`);
    const pattern = n("Softmax", [scores], `${p}.pattern`, [{ name: "axis", i: -1 }]);
    const z = n("Reshape", [n("Transpose", [n("MatMul", [pattern, v], `${p}.pv`)], `${p}.z_t`, [{ name: "perm", ints: [0, 2, 1, 3] }]), flatShape], `${p}.z`);
    x = n("Add", [x, linear(z, `${p}.attn.wO`, `${p}.attn.bO`, `${p}.attn_out`)], `${p}.resid_mid`);
    const h2 = ln(x, `${p}.ln2`, `${p}.ln2_out`);
    const pre = linear(h2, `${p}.mlp.wIn`, `${p}.mlp.bIn`, `${p}.mlp_pre`);
    // gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    const cube = n("Mul", [n("Mul", [pre, pre], `${p}.sq`), pre], `${p}.cube`);
    const inner = n("Mul", [n("Add", [pre, n("Mul", [cube, c1], `${p}.cube_c`)], `${p}.inner0`), c2], `${p}.inner`);
    const post = n("Mul", [n("Mul", [pre, half], `${p}.half_x`), n("Add", [one, n("Tanh", [inner], `${p}.tanh`)], `${p}.one_plus`)], `${p}.mlp_post`);
    x = n("Add", [x, linear(post, `${p}.mlp.wOut`, `${p}.mlp.bOut`, `${p}.mlp_out`)], `${p}.resid_post`);
  }
  const normed = ln(x, "lnFinal", "ln_final");
  const wU = n("Transpose", ["wE"], "wU", [{ name: "perm", ints: [1, 0] }]); // tied unembedding, folded once by ORT
  n("MatMul", [normed, wU], "logits");

  const V = w.get("wE").shape[0];
  const graph = message(
    ...nodes.map((b) => bytes(1, b)),
    str(2, "gpt2"),
    ...inits.map((b) => bytes(5, b)),
    bytes(11, valueInfo("input_ids", INT64, [1, "T"])),
    bytes(11, valueInfo("position_ids", INT64, ["T"])),
    bytes(11, valueInfo("mask", FLOAT, ["T", "T"])),
    bytes(12, valueInfo("logits", FLOAT, [1, "T", V])),
  );
  // ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8 (domain 1, version 2).
  return flatten(message(int(1, 8), str(2, "arrakis-ts bench"), bytes(7, graph), bytes(8, message(str(1, ""), int(2, 17)))));
}
