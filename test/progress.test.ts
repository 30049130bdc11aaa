/**
 * Progress reporting: nothing without a host; with a host (a fake notebook here: outputs are arrays of what
 * was shown, cells are numbers, the clock is ours) one output per kind of work and cell that ends as a single
 * summary line, nothing at 0 %, and nothing left behind by an async sweep whose await was forgotten.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { PROGRESS_INTERVAL_MS, progressBundle, setProgressFactory, setProgressHost, startProgress, type MimeBundle } from "../src/display";
import { AttentionTools, HookedAutoConfig, HookedAutoModel, initBackend } from "../src";

/** A notebook as the progress host sees it: the running cell, and the outputs opened in each cell. */
function fakeNotebook() {
  const nb = { cell: 1 as number | undefined, clock: 0, outputs: [] as { cell: number; shown: MimeBundle[] }[] };
  setProgressHost({
    cell: () => nb.cell,
    now: () => nb.clock,
    open: () => {
      const out = { cell: nb.cell as number, shown: [] as MimeBundle[] };
      nb.outputs.push(out);
      return { show: (b) => out.shown.push(b) };
    },
  });
  const last = (i = nb.outputs.length - 1) => String(nb.outputs[i].shown.at(-1)?.["text/plain"]);
  return { nb, last };
}

let model: HookedAutoModel;
let tools: AttentionTools;
const ids = [1, 2, 3, 4];

before(async () => {
  await initBackend();
  model = new HookedAutoModel(new HookedAutoConfig({ name: "gpt2", n_layer: 2, n_head: 2, n_embd: 16, vocab_size: 20, n_positions: 8 }), { seed: 1 });
  tools = new AttentionTools(model);
});

after(() => {
  setProgressHost();
  setProgressFactory();
  model?.dispose();
});

test("progressBundle: text and script-free HTML with the fraction, time left and a note", () => {
  const b = progressBundle("sweep", 3, 12, 1500);
  assert.equal(b["text/plain"], "sweep: 3/12 (25%) · 1.5 s · ~5 s left");
  assert.match(String(b["text/html"]), /width:25\.0%/);
  assert.doesNotMatch(String(b["text/html"]), /<script/);
  assert.match(String(progressBundle("sweep", 2, 12, 900, "stopped after 2 heads")["text/plain"]), /stopped after 2 heads$/);
});

test("without a host or factory nothing is shown and nothing breaks", () => {
  setProgressHost();
  setProgressFactory();
  const p = startProgress("nothing", 3);
  p.update(1);
  p.finish();
  assert.ok(tools.headAblationSweep(ids).values.length === 2);
});

test("a sweep is one output that ends as a one-line summary", () => {
  const { nb, last } = fakeNotebook();
  try {
    tools.headAblationSweep(ids);
    assert.equal(nb.outputs.length, 1, "one output");
    const shown = nb.outputs[0].shown;
    assert.ok(shown.length >= 2, "a bar, then the summary");
    assert.match(String(shown[0]["text/plain"]), /^head ablation sweep \(zero, 2×2 heads\): 1\/4 \(25%\)/, "the first thing shown is real progress, not 0 %");
    assert.equal(last(), "✓ head ablation sweep (zero, 2×2 heads): 4/4 done in 0.0 s");
    assert.doesNotMatch(String(shown.at(-1)!["text/html"]), /width:/, "no bar left: one line of text");
    assert.equal(last().split("\n").length, 1);
  } finally {
    setProgressHost();
  }
});

test("twenty sweeps in a loop leave one output (per cell), saying how many ran; a new cell gets its own", () => {
  const { nb, last } = fakeNotebook();
  try {
    for (let i = 0; i < 20; i++) {
      tools.headAblationSweep(ids);
      nb.clock += 100;
    }
    assert.equal(nb.outputs.length, 1, "twenty sweeps, one output");
    assert.match(last(), /^✓ head ablation sweep \(zero, 2×2 heads\) × 20 runs \(0\.0 s in all\), the last: 4\/4 done/);
    tools.patchHeads([1, 2, 3, 4], [1, 5, 3, 4], { metric: "loss" }); // other work in the same cell: its own output
    assert.equal(nb.outputs.length, 2);
    nb.cell = 2;
    tools.headAblationSweep(ids);
    assert.equal(nb.outputs.length, 3, "the next cell's sweep does not rewrite the previous cell's output");
    assert.equal(nb.outputs[2].cell, 2);
    assert.match(last(2), /^✓ head ablation sweep \(zero, 2×2 heads\): 4\/4 done/);
  } finally {
    setProgressHost();
  }
});

test("redraws are throttled, the end is always shown", () => {
  const { nb, last } = fakeNotebook();
  try {
    const p = startProgress("work", 100);
    for (let i = 1; i <= 100; i++) {
      nb.clock += 10; // 100 steps of 10 ms: a redraw every PROGRESS_INTERVAL_MS at most
      p.update(i);
    }
    p.finish();
    const bars = nb.outputs[0].shown.length - 1;
    assert.ok(bars <= 1000 / PROGRESS_INTERVAL_MS + 2 && bars >= 3, `${bars} redraws for 1 s of work`);
    assert.match(String(nb.outputs[0].shown.at(-2)!["text/plain"]), /^work: 100\/100/);
    assert.equal(last(), "✓ work: 100/100 done in 1.0 s");
  } finally {
    setProgressHost();
  }
});

test("a forgotten await leaves no bar stuck at 0 %: nothing opens before a step is done, and not in another cell", async () => {
  const { nb, last } = fakeNotebook();
  try {
    // The cell starts an async sweep without awaiting it and ends; the next cell starts before the first step.
    const running = tools.headAblationSweepAsync(ids);
    assert.equal(nb.outputs.length, 0, "nothing shown at 0 %");
    nb.cell = 2;
    await running;
    assert.equal(nb.outputs.length, 0, "the sweep finished in the background without drawing into the next cell");
    // Without a new cell, the background sweep's output opens in its own (finished) cell and still ends as a line.
    nb.cell = 3;
    const again = tools.headAblationSweepAsync(ids);
    await again;
    assert.equal(nb.outputs.length, 1);
    assert.equal(nb.outputs[0].cell, 3);
    assert.match(last(), /^✓ head ablation sweep .*: 4\/4 done/);
  } finally {
    setProgressHost();
  }
});

test("a stopped sweep ends as one line that says where it stopped", async () => {
  const { nb, last } = fakeNotebook();
  try {
    const ac = new AbortController();
    await assert.rejects(tools.headAblationSweepAsync(ids, { signal: ac.signal, onProgress: (d) => d === 2 && ac.abort() }), /aborted after 2 of 4 heads/);
    assert.equal(nb.outputs.length, 1);
    assert.equal(last(), "■ head ablation sweep (zero, 2×2 heads): stopped after 2 heads (2/4) in 0.0 s");
  } finally {
    setProgressHost();
  }
});

test("a factory (no host) receives every report as it is", async () => {
  const events: string[] = [];
  setProgressFactory((label, total) => {
    events.push(`start ${label} ${total}`);
    return { update: (d) => events.push(`update ${d}`), finish: (note) => events.push(`finish ${note ?? ""}`) };
  });
  try {
    tools.headAblationSweep(ids);
    assert.deepEqual(events, ["start head ablation sweep (zero, 2×2 heads) 4", "update 0", "update 1", "update 2", "update 3", "update 4", "finish "]);
    events.length = 0;
    const ac = new AbortController();
    await assert.rejects(tools.headAblationSweepAsync(ids, { signal: ac.signal, onProgress: (d) => d === 2 && ac.abort() }), /aborted after 2 of 4 heads/);
    assert.equal(events.at(-1), "finish stopped after 2 heads");
  } finally {
    setProgressFactory();
  }
});
