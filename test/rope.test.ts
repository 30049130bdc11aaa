/**
 * RoPE scaling: config parsing (both spellings and both places HF keeps it), hand-checkable frequencies, and
 * proof that every scaled checkpoint in the parity suite really exercises its variant (its reference output
 * moves when the scaling is removed), so the parity figures of families.test.ts mean something.
 */
import { after, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HookedAutoConfig } from "../src";
import { scaledInvFreq } from "../src/model/rope";
import { type FamilyCase, INPUT_IDS, laterCases, writeCheckpoint } from "./reference/checkpoints";
import { referenceForward } from "./reference/hf-reference";
import { maxAbsDiff } from "./helpers";

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "arrakis-rope-"));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

const LLAMA = { name: "llama", hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, vocab_size: 512, max_position_embeddings: 128 };

describe("rope_scaling is read as Hugging Face reads it", () => {
  test("rope_type and the older type, in rope_scaling or in rope_parameters, give the same scaling", () => {
    const a = new HookedAutoConfig({ ...LLAMA, rope_scaling: { type: "linear", factor: 2 } }).dims.ropeScaling;
    const b = new HookedAutoConfig({ ...LLAMA, rope_scaling: { rope_type: "linear", factor: 2 } }).dims.ropeScaling;
    const c = new HookedAutoConfig({ ...LLAMA, rope_theta: undefined, rope_parameters: { rope_type: "linear", factor: 2, rope_theta: 10000 } }).dims;
    assert.deepEqual(a, b);
    assert.deepEqual(c.ropeScaling, a);
    assert.equal(c.rotaryBase, 10000);
    assert.equal(new HookedAutoConfig({ ...LLAMA, rope_scaling: { rope_type: "default" } }).dims.ropeScaling, undefined);
  });

  test("yarn and longrope derive factor and attention factor from the lengths, as HF does", () => {
    const yarn = new HookedAutoConfig({ ...LLAMA, rope_scaling: { rope_type: "yarn", factor: 2, original_max_position_embeddings: 32 } }).dims.ropeScaling!;
    assert.equal(yarn.factor, 4); // 128 / 32 overrides the stated factor
    assert.ok(Math.abs(yarn.attentionFactor - (0.1 * Math.log(4) + 1)) < 1e-15);
    const phi = new HookedAutoConfig({
      name: "phi3", hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, vocab_size: 512,
      max_position_embeddings: 131072, original_max_position_embeddings: 4096,
      rope_scaling: { type: "longrope", short_factor: new Array(8).fill(1), long_factor: new Array(8).fill(2) },
    }).dims.ropeScaling!;
    assert.equal(phi.factor, 32);
    assert.ok(Math.abs(phi.attentionFactor - Math.sqrt(1 + Math.log(32) / Math.log(4096))) < 1e-15); // Phi-3.5-mini: 1.1902
  });

  test("llama3 on Llama 3.2's own numbers: fast frequencies kept, slow ones divided by 32", () => {
    const s = new HookedAutoConfig({ ...LLAMA, hidden_size: 2048, num_attention_heads: 32, max_position_embeddings: 131072, rope_theta: 500000, rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: "llama3" } }).dims;
    const inv = scaledInvFreq(s.ropeScaling!, 64, 500000, 16);
    assert.equal(inv[0], 1); // wavelength 2π < 8192 / 4: unchanged
    const plainLast = Math.fround(1 / Math.fround(Math.pow(500000, Math.fround(62 / 64))));
    assert.ok(Math.abs(inv[31] - plainLast / 32) <= 1e-6 * plainLast); // wavelength ≈ 2.1e6 > 8192: divided
  });

  test("dynamic NTK leaves sequences within max_position_embeddings alone and grows the base beyond", () => {
    const s = new HookedAutoConfig({ ...LLAMA, max_position_embeddings: 8, rope_scaling: { type: "dynamic", factor: 2 } }).dims.ropeScaling!;
    const plain = scaledInvFreq({ ...s, kind: "linear", factor: 1 }, 16, 10000, 8);
    assert.deepEqual(Array.from(scaledInvFreq(s, 16, 10000, 8)), Array.from(plain));
    const grown = scaledInvFreq(s, 16, 10000, 16); // base · (2·16/8 − 1)^(16/14)
    assert.equal(grown[0], 1);
    assert.ok(grown[7] < plain[7] * 0.5);
  });
});

/** Writes a case's checkpoint, optionally with config fields replaced. */
function write(c: FamilyCase, name: string, change: Record<string, unknown> = {}): string {
  const dir = path.join(tmpRoot, name);
  writeCheckpoint({ ...c, config: { ...c.config, ...change } }, dir, 4242);
  return dir;
}

/** Case label → config changes that switch its feature off; the reference logits must move. */
const SWITCHED_OFF: [string, Record<string, unknown>][] = [
  ["llama (rope linear)", { rope_scaling: null }],
  ["llama (rope dynamic)", { rope_scaling: null }],
  ["llama (rope yarn)", { rope_scaling: null }],
  ["llama (rope llama3)", { rope_scaling: null }],
  ["phi3 (longrope, long factors)", { original_max_position_embeddings: 32 }], // short factors instead of long
  ["phi3 (longrope, short factors)", { rope_scaling: null }],
  ["gpt-neox (rope dynamic, partial rotary)", { rope_scaling: null }],
  ["gemma2", { attn_logit_softcapping: null }],
  ["gemma2", { final_logit_softcapping: null }],
  ["gemma2", { query_pre_attn_scalar: 16 }],
  ["gemma2", { sliding_window: 4096 }],
  ["gemma3 (sliding_window_pattern)", { rope_local_base_freq: 1000000.0 }],
  ["gemma3 (sliding_window_pattern)", { rope_scaling: null }],
  ["olmo (clip_qkv 1.0)", { clip_qkv: null }],
];

describe("every feature of the parity checkpoints changes the reference output", () => {
  const cases = laterCases();
  SWITCHED_OFF.forEach(([label, change], i) => {
    test(`${label}: ${JSON.stringify(change)}`, () => {
      const c = cases.find((x) => x.label === label);
      assert.ok(c, `case ${label} exists`);
      const on = referenceForward(write(c, `on-${i}`), INPUT_IDS).logits;
      const off = referenceForward(write(c, `off-${i}`, change), INPUT_IDS).logits;
      assert.ok(maxAbsDiff(on, off) > 1e-3, `switching off moves the logits by ${maxAbsDiff(on, off)}`);
    });
  });
});
