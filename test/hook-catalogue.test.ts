/**
 * The hook catalogue (`hookPointsFor`) is the one list of hook points: for every family and every flag that adds
 * or removes points, a forward pass reports exactly the catalogue's names in the catalogue's order, and a name
 * outside it is refused where it is reported.
 */
import { before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { HookedAutoConfig, HookedAutoModel, implementedFamilies, initBackend } from "../src";
import { checkReportedPoint, hookPointsFor } from "../src/model/hooks";

before(async () => {
  await initBackend();
});

/** Small configs for every family, plus the variants whose flags change the list of points. */
function configs(): [string, HookedAutoConfig][] {
  const out: [string, HookedAutoConfig][] = implementedFamilies().map((f) => [f, HookedAutoConfig.small(f)]);
  out.push(["stable-lm qk_layernorm + parallel", HookedAutoConfig.small("stable-lm", { qk_layernorm: true, use_parallel_residual: true })]);
  out.push(["gpt-neox sequential", HookedAutoConfig.small("gpt-neox", { use_parallel_residual: false })]);
  out.push(["olmo clip_qkv", HookedAutoConfig.small("olmo", { clip_qkv: 2 })]);
  return out;
}

describe("a forward pass reports exactly the catalogue's points, in order", () => {
  for (const [label, config] of configs()) {
    test(label, () => {
      const model = new HookedAutoModel(config);
      const seen: string[] = [];
      const handle = model.addHook(() => true, (_x, ctx) => {
        seen.push(ctx.name);
      });
      const { logits, cache } = model.runWithCache([[1, 2, 3, 4]]);
      try {
        assert.deepEqual(seen, model.hookNames);
        assert.deepEqual([...cache.names].sort(), [...model.hookNames].sort());
      } finally {
        handle.remove();
        logits.dispose();
        cache.dispose();
        model.dispose();
      }
    });
  }
});

describe("points added by the later families", () => {
  const names = (name: string, o: Record<string, unknown> = {}) => hookPointsFor(HookedAutoConfig.small(name, o).dims).map((p) => p.name);
  test("q/k norms, post-norms, and no input norms in OLMo 2", () => {
    for (const f of ["qwen3", "gemma3", "olmo2"]) assert.ok(names(f).includes("blocks.1.attn.q_norm.hook_normalized"), f);
    assert.ok(names("stable-lm", { qk_layernorm: true }).includes("blocks.0.attn.k_norm.hook_normalized"));
    assert.ok(!names("llama").some((n) => n.includes("q_norm") || n.includes("_post.hook")));
    for (const f of ["gemma2", "gemma3", "olmo2"]) assert.ok(names(f).includes("blocks.0.ln2_post.hook_normalized"), f);
    assert.ok(!names("olmo2").some((n) => n.includes("ln1.hook") || n.includes("ln2.hook")));
    assert.ok(names("gemma2").includes("blocks.0.ln1.hook_normalized"));
  });
});

describe("a name outside the catalogue is refused where the forward pass reports it", () => {
  test("checkReportedPoint names the family and the point", () => {
    const dims = HookedAutoConfig.small("llama").dims;
    checkReportedPoint(dims, "blocks.1.attn.hook_z");
    assert.throws(() => checkReportedPoint(dims, "blocks.0.ln1_post.hook_normalized"), /llama forward pass reported hook point "blocks\.0\.ln1_post\.hook_normalized", which hookPointsFor does not list/);
  });
});
