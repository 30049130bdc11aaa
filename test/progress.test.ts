/** Progress reporting: a no-op without a host, one updated display with the kernel's factory. */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { progressBundle, setProgressFactory, startProgress } from "../src/display";
import { AttentionTools, HookedAutoConfig, HookedAutoModel, initBackend } from "../src";

test("progressBundle: text and script-free HTML with the fraction, time left and a note", () => {
  const b = progressBundle("sweep", 3, 12, 1500);
  assert.equal(b["text/plain"], "sweep: 3/12 (25%) · 1.5 s · ~5 s left");
  assert.match(String(b["text/html"]), /width:25\.0%/);
  assert.doesNotMatch(String(b["text/html"]), /<script/);
  assert.match(String(progressBundle("sweep", 2, 12, 900, "stopped after 2 heads")["text/plain"]), /stopped after 2 heads$/);
});

test("a head sweep reports every step to the installed host and finishes it, also when stopped", async () => {
  await initBackend();
  const model = new HookedAutoModel(new HookedAutoConfig({ name: "gpt2", n_layer: 2, n_head: 2, n_embd: 16, vocab_size: 20, n_positions: 8 }), { seed: 1 });
  const tools = new AttentionTools(model);
  const events: string[] = [];
  setProgressFactory((label, total) => {
    events.push(`start ${label} ${total}`);
    return { update: (d) => events.push(`update ${d}`), finish: (note) => events.push(`finish ${note ?? ""}`) };
  });
  try {
    assert.equal(startProgress("x", 1) !== undefined, true);
    events.length = 0;
    tools.headAblationSweep([1, 2, 3, 4]);
    assert.deepEqual(events, ["start head ablation sweep (zero, 2×2 heads) 4", "update 0", "update 1", "update 2", "update 3", "update 4", "finish "]);
    events.length = 0;
    const ac = new AbortController();
    await assert.rejects(tools.headAblationSweepAsync([1, 2, 3, 4], { signal: ac.signal, onProgress: (d) => d === 2 && ac.abort() }), /aborted after 2 of 4 heads/);
    assert.equal(events.at(-1), "finish stopped after 2 heads");
  } finally {
    setProgressFactory();
    model.dispose();
  }
  const none = startProgress("nothing", 3);
  none.update(1);
  none.finish();
});
