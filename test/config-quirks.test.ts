/**
 * config.json files as transformers 4.4x–4.5x (and 5.x) write them: `dtype` beside or instead of `torch_dtype`,
 * `"head_dim": null`, Gemma 2's unused `hidden_act` beside `hidden_activation`, `layer_types`, `rope_parameters`
 * (flat, or per layer type), harmless unknown fields ignored, and fields that change the forward pass but are not
 * implemented refused by name.
 */
import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { HookedAutoConfig } from "../src";

const fromFile = (hf: Record<string, unknown>) => new HookedAutoConfig({ ...hf, name: String(hf.model_type) }, { strict: false });
const LLAMA = { model_type: "llama", hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 128, vocab_size: 512 };
const GEMMA3 = { model_type: "gemma3_text", hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, head_dim: 16, intermediate_size: 128, vocab_size: 512 };

describe("fields as transformers writes them", () => {
  test("dtype (4.56+) and torch_dtype are both accepted and change nothing", () => {
    const a = fromFile({ ...LLAMA, torch_dtype: "bfloat16" }).dims;
    const b = fromFile({ ...LLAMA, dtype: "bfloat16" }).dims;
    assert.deepEqual(a, b);
    assert.deepEqual(new HookedAutoConfig({ ...LLAMA, name: "llama", dtype: "float32" }).ignoredKeys, []); // known, even strict
  });

  test('"head_dim": null falls back to hidden_size / num_attention_heads', () => {
    for (const type of ["llama", "mistral", "qwen3"]) assert.equal(fromFile({ ...LLAMA, model_type: type, head_dim: null }).dims.dHead, 16, type);
    assert.equal(fromFile({ ...LLAMA, head_dim: 24 }).dims.dHead, 24);
  });

  test("Gemma 2's hidden_act beside hidden_activation: hidden_activation decides, as in modeling_gemma2", () => {
    const c = fromFile({ ...GEMMA3, model_type: "gemma2", hidden_act: "silu", hidden_activation: "gelu_pytorch_tanh" });
    assert.equal(c.dims.act, "gelu_pytorch_tanh");
  });

  test("layer_types decides the sliding layers; sliding_window_pattern or the Gemma 2 rule otherwise", () => {
    const types = ["full_attention", "sliding_attention"];
    assert.deepEqual(fromFile({ ...GEMMA3, sliding_window: 4, layer_types: types }).dims.windows, [null, 4]);
    assert.deepEqual(fromFile({ ...GEMMA3, sliding_window: 4, sliding_window_pattern: 2 }).dims.windows, [4, null]);
    assert.deepEqual(fromFile({ ...GEMMA3, model_type: "gemma2", sliding_window: 4 }).dims.windows, [4, null]);
    assert.throws(() => fromFile({ ...GEMMA3, layer_types: ["full_attention"] }), /gemma3: layer_types has 1 entries but num_hidden_layers is 2/);
  });

  test("rope_parameters (transformers 5) replaces rope_theta, rope_scaling and partial_rotary_factor", () => {
    const c = fromFile({ ...LLAMA, rope_parameters: { rope_type: "llama3", rope_theta: 500000, factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }).dims;
    assert.equal(c.rotaryBase, 500000); // not LlamaConfig's default 10000
    assert.equal(c.ropeScaling?.kind, "llama3");
    const neox = fromFile({ model_type: "gpt_neox", hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, vocab_size: 512, rope_parameters: { rope_type: "default", rope_theta: 500, partial_rotary_factor: 0.5 } }).dims;
    assert.deepEqual([neox.rotaryBase, neox.rotaryDim], [500, 8]);
  });

  test("Gemma 3's rope_parameters per layer type give the global scaling and the local base", () => {
    const c = fromFile({
      ...GEMMA3,
      rope_parameters: { full_attention: { rope_type: "linear", factor: 8.0, rope_theta: 1000000 }, sliding_attention: { rope_type: "default", rope_theta: 5000 } },
    }).dims;
    assert.deepEqual([c.rotaryBase, c.rotaryBaseLocal, c.ropeScaling?.kind, c.ropeScaling?.factor], [1000000, 5000, "linear", 8]);
  });
});

describe("unknown fields", () => {
  test("harmless ones (training, tooling, other libraries) are ignored and listed", () => {
    const c = fromFile({ ...LLAMA, is_llama_config: true, unsloth_fixed: true, auto_map: { AutoConfig: "x" }, rope_interleaved: false });
    assert.deepEqual(c.ignoredKeys.sort(), ["auto_map", "is_llama_config", "rope_interleaved", "unsloth_fixed"]);
  });

  test("ones that change the forward pass are refused by name", () => {
    assert.throws(() => fromFile({ ...LLAMA, attn_logit_softcapping: 50 }), /llama: config field attn_logit_softcapping=50 changes the forward pass and is not implemented for this family/);
    assert.throws(() => fromFile({ ...LLAMA, rope_interleaved: true }), /rope_interleaved=true/);
    assert.throws(() => fromFile({ ...LLAMA, num_local_experts: 8 }), /num_local_experts=8/);
    assert.throws(() => fromFile({ ...GEMMA3, model_type: "qwen2", sliding_window: 4, query_pre_attn_scalar: 16 }), /query_pre_attn_scalar=16/);
    assert.throws(() => fromFile({ ...GEMMA3, use_bidirectional_attention: true }), /use_bidirectional_attention=true is not supported/);
    assert.throws(() => fromFile({ model_type: "gemma3", text_config: { hidden_size: 64 } }), /unknown architecture "gemma3"|text_config/);
    assert.throws(() => fromFile({ ...LLAMA, model_type: "olmo2", clip_qkv: 8 }), /olmo2: clip_qkv=8 is not supported/);
  });
});
