/**
 * The guarded patches of other packages' internals (src/patches): each one is applied on the version it was
 * written for and changes what it says, and is skipped with a stated reason (and leaves the package alone)
 * when the installed version is faked to differ. This file sets the wasm backend up itself (no
 * `initBackend()`), so the order of "skipped" then "applied" is under the test's control.
 *
 *   node --test --import tsx test/patches.test.ts
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import * as ts from "@tslab/typescript-for-tslab";
import { ArrakisError } from "../src/errors";
import { guarded, patchReport, patchStatus } from "../src/patches";
import { closeOpenScopes, scopeDepth } from "../src/patches/tf-engine-state";
import { wrapRunKernel } from "../src/patches/tf-run-kernel";
import { redirectTsSys } from "../src/patches/ts-sys";
import { setTslabDisplaySink } from "../src/patches/tslab-display";
import { viewFrame } from "../src/patches/vega-view-size";
import { applyWasmHeapGuard, withWasmStderr } from "../src/patches/wasm-heap-guard";
import { applyWasmSliceKernels } from "../src/patches/wasm-slice-kernels";
import { startThreadedWasm } from "../src/patches/wasm-threads";
import { vegaLibs } from "../src/display/static";

const FAKE = "0.0.1-fake";

/** The status line must say the patch was skipped, for which version, and what is lost. */
function assertSkipped(name: string, pinned: string): void {
  const s = patchStatus(name);
  assert.ok(s, `${name} was never tried`);
  assert.equal(s.applied, false);
  assert.equal(s.installed, FAKE);
  assert.match(s.reason, new RegExp(`^skipped: written for ${s.target.replace(/[/.@-]/g, "\\$&")} ${pinned.replace(/\./g, "\\.")}, found ${FAKE.replace(/\./g, "\\.")}; .+`));
  assert.ok(patchReport().some((l) => l.startsWith(`patch ${name} `) && l.includes("NOT applied")));
}

function assertApplied(name: string): void {
  const s = patchStatus(name);
  assert.ok(s?.applied, `${name}: ${s?.reason ?? "never tried"}`);
  assert.equal(s.installed, s.pinned);
}

describe("guarded()", () => {
  const spec = { name: "demo", target: "some-pkg", pinned: "1.2.3", does: "does it", withoutIt: "nothing lost" };
  test("applies on the pinned version, skips with the reason otherwise, and records a failing apply", () => {
    let calls = 0;
    assert.equal(guarded(spec, "1.2.4", () => ++calls), undefined);
    assert.equal(calls, 0);
    assert.equal(patchStatus("demo")?.reason, "skipped: written for some-pkg 1.2.3, found 1.2.4; nothing lost");
    assert.equal(guarded(spec, null, () => ++calls), undefined);
    assert.match(patchStatus("demo")!.reason, /found an unknown version/);
    assert.equal(guarded(spec, "1.2.3", () => ++calls), 1);
    assert.deepEqual(patchStatus("demo"), { name: "demo", target: "some-pkg", pinned: "1.2.3", installed: "1.2.3", applied: true, reason: "does it" });
    assert.equal(
      guarded(spec, "1.2.3", () => {
        throw new Error("layout changed\nsecond line");
      }),
      undefined,
    );
    assert.equal(patchStatus("demo")?.reason, "skipped: applying it failed (layout changed); nothing lost");
  });
});

describe("@tensorflow/tfjs-backend-wasm patches", () => {
  before(async () => {
    // withWasmStderr on a faked version must not touch console.warn while the module is created.
    const warn = console.warn;
    let seen: unknown;
    await withWasmStderr(
      async () => {
        seen = console.warn;
        assert.ok(await tf.setBackend("wasm"));
      },
      { version: FAKE },
    );
    assert.equal(seen, warn);
  });

  test("wasm-slice-kernels: skipped keeps the stock kernels; applied replaces them, same values", () => {
    const stock = tf.getKernel("Slice", "wasm")!.kernelFunc;
    assert.equal(applyWasmSliceKernels({ version: FAKE }), false);
    assertSkipped("wasm-slice-kernels", "4.22.0");
    assert.equal(tf.getKernel("Slice", "wasm")!.kernelFunc, stock);
    assert.equal(applyWasmSliceKernels(), true);
    assertApplied("wasm-slice-kernels");
    assert.notEqual(tf.getKernel("Slice", "wasm")!.kernelFunc, stock);
    const parts = tf.tidy(() => tf.unstack(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]), 1).map((t) => Array.from(t.dataSync())));
    assert.deepEqual(parts, [[1, 4], [2, 5], [3, 6]]);
  });

  test("wasm-heap-guard: skipped leaves kernels and _malloc alone; applied makes a failed _malloc an ArrakisError", () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const wasm = (tf.engine().findBackend("wasm") as any).wasm;
    const stock = tf.getKernel("BatchMatMul", "wasm")!.kernelFunc;
    assert.equal(applyWasmHeapGuard({ version: FAKE }), false);
    assertSkipped("wasm-heap-guard", "4.22.0");
    assert.equal(tf.getKernel("BatchMatMul", "wasm")!.kernelFunc, stock);
    const tooBig = 2 ** 32 - 2 ** 17; // more than the heap can ever hold: malloc returns 0 without growing
    assert.equal(wasm._malloc(tooBig), 0);
    assert.equal(applyWasmHeapGuard(), true);
    assertApplied("wasm-heap-guard");
    assert.notEqual(tf.getKernel("BatchMatMul", "wasm")!.kernelFunc, stock);
    assert.throws(() => wasm._malloc(tooBig), (e: unknown) => e instanceof ArrakisError && /wasm heap: it is full.*ARRAKIS_ENGINE=ort/.test(e.message));
    const product = tf.tidy(() => Array.from(tf.matMul(tf.tensor2d([1, 2], [1, 2]), tf.tensor2d([3, 4, 5, 6], [2, 2])).dataSync()));
    assert.deepEqual(product, [13, 16]);
  });

  test("wasm-threads: skipped starts nothing; applied starts the threaded module", async () => {
    let spawned = false;
    assert.equal(startThreadedWasm(2, () => (spawned = true), (start) => start(), { version: FAKE }), null);
    assertSkipped("wasm-threads", "4.22.0");
    assert.equal(spawned, false);
    let stop = () => {};
    const started = startThreadedWasm(2, (s) => (stop = s), (start) => start());
    assertApplied("wasm-threads");
    try {
      const module = await started!;
      assert.equal(typeof module.makeBackend, "function");
    } finally {
      stop();
    }
  });
});

describe("@tensorflow/tfjs-core patches", () => {
  test("tf-run-kernel: skipped leaves engine.runKernel; applied runs code around every kernel", () => {
    const engine = tf.engine() as unknown as { runKernel: unknown };
    const stock = engine.runKernel;
    let calls = 0;
    const around = (call: () => unknown) => {
      calls++;
      return call();
    };
    assert.equal(wrapRunKernel(tf, around, { version: FAKE }), false);
    assertSkipped("tf-run-kernel", "4.22.0");
    assert.equal(engine.runKernel, stock);
    assert.equal(wrapRunKernel(tf, around), true);
    assertApplied("tf-run-kernel");
    const sum = tf.tidy(() => tf.add(tf.scalar(2), tf.scalar(3)).dataSync()[0]);
    assert.equal(sum, 5);
    assert.ok(calls >= 1, "the wrapper did not see the Add kernel");
  });

  test("tf-engine-state: skipped leaves open scopes; applied closes them back to the baseline", () => {
    const engine = tf.engine();
    const base = scopeDepth(tf);
    engine.startScope();
    engine.startScope();
    assert.equal(scopeDepth(tf), base + 2);
    assert.equal(closeOpenScopes(tf, base, { version: FAKE }), null);
    assertSkipped("tf-engine-state", "4.22.0");
    assert.equal(scopeDepth(tf), base + 2);
    assert.equal(closeOpenScopes(tf, base), 2);
    assertApplied("tf-engine-state");
    assert.equal(scopeDepth(tf), base);
  });
});

describe("tslab patches", () => {
  test("ts-sys: skipped leaves ts.sys; applied redirects lookups through the map", () => {
    const here = path.join(__dirname, "helpers.ts");
    const virtual = "/nonexistent-project/node_modules/pkg/helpers.ts";
    const map = (p: string) => (p === virtual ? here : p);
    const host = { version: ts.version, sys: Object.create(ts.sys) as typeof ts.sys };
    assert.equal(redirectTsSys(host, map, { version: FAKE }), false);
    assertSkipped("ts-sys", "5.0.4");
    assert.equal(host.sys.fileExists(virtual), false);
    assert.equal(redirectTsSys(host, map), true);
    assertApplied("ts-sys");
    assert.equal(host.sys.fileExists(virtual), true);
    assert.equal(host.sys.readFile(virtual), fs.readFileSync(here, "utf8"));
    assert.equal(host.sys.realpath!(virtual), fs.realpathSync.native(here));
  });

  test("tslab-display: skipped leaves tslab's display sink; applied sets it", () => {
    // The module object itself (as the kernel's compiled CommonJS sees it), not an import namespace copy.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require("tslab/dist/jupyter") as { lastWriteDisplayData: unknown };
    const before = mod.lastWriteDisplayData;
    const sink = () => {};
    assert.equal(setTslabDisplaySink(mod, sink, { version: FAKE }), false);
    assertSkipped("tslab-display", "1.0.22");
    assert.equal(mod.lastWriteDisplayData, before);
    assert.equal(setTslabDisplaySink(mod, sink), true, patchStatus("tslab-display")?.reason);
    assertApplied("tslab-display");
    assert.equal(mod.lastWriteDisplayData, sink);
    mod.lastWriteDisplayData = before;
  });
});

describe("vega patch", () => {
  test("vega-view-size: applied reads the view's size; skipped sizes from the scene bounds, same frame", () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const { vega, vegaLite } = vegaLibs() as any;
    const specs = [
      { data: { values: [{ a: 1, b: 2 }, { a: 2, b: 5 }] }, mark: "bar", encoding: { x: { field: "a", type: "ordinal" }, y: { field: "b", type: "quantitative" } } },
      { width: 300, height: 100, title: "T", data: { values: [{ a: 1, b: 2, c: "x" }] }, mark: "rect", encoding: { x: { field: "a", type: "ordinal" }, y: { field: "b", type: "ordinal" }, color: { field: "c" } } },
    ];
    for (const spec of specs) {
      const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "none", logLevel: vega.Error }).run();
      try {
        const exact = viewFrame(view, vega.version);
        assertApplied("vega-view-size");
        const pad = view.padding();
        assert.deepEqual(exact, { width: view._viewWidth + pad.left + pad.right, height: view._viewHeight + pad.top + pad.bottom, origin: [pad.left + view._origin[0], pad.top + view._origin[1]] });
        const fallback = viewFrame(view, vega.version, { version: FAKE });
        assertSkipped("vega-view-size", "6.4.0");
        assert.deepEqual(fallback, exact);
      } finally {
        view.finalize();
      }
    }
  });
});
