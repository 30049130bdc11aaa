/**
 * The Arrakis kernel, tested by real Jupyter clients against a kernelspec installed into a temporary
 * prefix:
 *  - Jupyter's conformance suite (Debian's python3-jupyter-kernel-test), test/kernel/test_protocol.py;
 *  - interrupts, restart and bad cells through jupyter_client, test/kernel/test_lifecycle.py;
 *  - a notebook executed by nbconvert/nbclient from a folder outside the project;
 * plus unit tests of the pure pieces (await rewrite, history, wire format, kernelspec).
 * Python is /usr/bin/python3: the first python3 on PATH may not have Jupyter.
 * The kernel runs from dist/ (`npm run build` first; `npm test` does).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { repoRoot } from "./helpers";

const PYTHON = "/usr/bin/python3";
const CLI = path.join(repoRoot, "dist", "kernel", "cli.js");
const PY_TESTS = path.join(repoRoot, "test", "kernel");

let tmp: string;
let prefix: string;
let outside: string;

function jupyterEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    JUPYTER_PATH: path.join(prefix, "share", "jupyter"),
    // Keep the user's Jupyter config, data and runtime folders out of the tests.
    JUPYTER_CONFIG_DIR: path.join(tmp, "config"),
    JUPYTER_DATA_DIR: path.join(tmp, "data"),
    JUPYTER_RUNTIME_DIR: path.join(tmp, "runtime"),
    JUPYTER_PLATFORM_DIRS: "1",
    ARRAKIS_KERNEL_CWD: outside,
    PYTHONDONTWRITEBYTECODE: "1",
    PYTHONUNBUFFERED: "1",
  };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with a hard timeout (the whole process group is killed when it expires). */
function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
      reject(new Error(`${cmd} ${args.join(" ")} timed out after ${opts.timeoutMs} ms\n${stderr.slice(-4000)}`));
    }, opts.timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

type Outcomes = Record<string, { outcome: string; detail: string }>;

async function pythonSuite(module: string, timeoutMs: number): Promise<Outcomes> {
  const r = await run(PYTHON, [path.join(PY_TESTS, "run_suite.py"), module], { cwd: PY_TESTS, env: jupyterEnv(), timeoutMs });
  const last = r.stdout.trim().split("\n").pop() ?? "";
  let outcomes: Outcomes;
  try {
    outcomes = JSON.parse(last);
  } catch {
    throw new Error(`${module} produced no results (exit ${r.code})\n${r.stderr.slice(-6000)}`);
  }
  const bad = Object.entries(outcomes).filter(([, o]) => o.outcome === "fail" || o.outcome === "error");
  assert.deepEqual(bad, [], `${module} failures:\n${bad.map(([n, o]) => `${n}: ${o.detail}`).join("\n")}`);
  assert.equal(r.code, 0, `${module} exited with ${r.code}\n${r.stderr.slice(-4000)}`);
  return outcomes;
}

function assertPassed(outcomes: Outcomes, names: string[]): void {
  for (const name of names) assert.equal(outcomes[name]?.outcome, "ok", `${name}: ${JSON.stringify(outcomes[name])}`);
}

before(async () => {
  // A stale build would test old code without saying so.
  assert.ok(fs.existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
  const newest = Math.max(...fs.readdirSync(path.join(repoRoot, "kernel")).map((f) => fs.statSync(path.join(repoRoot, "kernel", f)).mtimeMs));
  assert.ok(fs.statSync(CLI).mtimeMs >= newest - 1000 || process.env.ARRAKIS_ALLOW_STALE_BUILD, "dist/kernel is older than kernel/: run `npm run build`");
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "arrakis-kernel-"));
  prefix = path.join(tmp, "prefix");
  outside = path.join(tmp, "notebooks");
  fs.mkdirSync(outside);
  const r = await run(process.execPath, [CLI, "install", "--prefix", prefix], { cwd: tmp, timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("kernelspec", () => {
  test("install writes an absolute-path kernel.json that Jupyter lists", async () => {
    const dir = path.join(prefix, "share", "jupyter", "kernels", "arrakis-ts");
    const spec = JSON.parse(fs.readFileSync(path.join(dir, "kernel.json"), "utf8"));
    assert.equal(spec.display_name, "Arrakis (TypeScript)");
    assert.equal(spec.language, "typescript");
    assert.equal(spec.interrupt_mode, "message");
    // large weights in huge pages on Linux (glibc reads the tunable at process start, so the spec sets it)
    assert.deepEqual(spec.env, process.platform === "linux" ? { GLIBC_TUNABLES: "glibc.malloc.hugetlb=1" } : {});
    assert.equal(spec.argv[0], process.execPath);
    assert.ok(path.isAbsolute(spec.argv[1]) && fs.existsSync(spec.argv[1]), spec.argv[1]);
    assert.deepEqual(spec.argv.slice(2), ["kernel", "--connection-file", "{connection_file}"]);
    const list = await run(PYTHON, ["-m", "jupyter_client.kernelspecapp", "list", "--json"], { cwd: tmp, env: jupyterEnv(), timeoutMs: 30_000 });
    const specs = JSON.parse(list.stdout).kernelspecs;
    assert.equal(specs["arrakis-ts"]?.resource_dir, dir);
  });

  test("--model goes into argv (folders made absolute); uninstall removes the spec", async () => {
    const other = path.join(tmp, "other");
    fs.mkdirSync(path.join(tmp, "some-model"));
    fs.writeFileSync(path.join(tmp, "some-model", "config.json"), "{}");
    let r = await run(process.execPath, [CLI, "install", "--prefix", other, "--model", "some-model"], { cwd: tmp, timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    const file = path.join(other, "share", "jupyter", "kernels", "arrakis-ts", "kernel.json");
    assert.deepEqual(JSON.parse(fs.readFileSync(file, "utf8")).argv.slice(-2), ["--model", path.join(tmp, "some-model")]);
    r = await run(process.execPath, [CLI, "install", "--prefix", other, "--model", "gpt2"], { cwd: tmp, timeoutMs: 30_000 });
    assert.deepEqual(JSON.parse(fs.readFileSync(file, "utf8")).argv.slice(-2), ["--model", "gpt2"]);
    r = await run(process.execPath, [CLI, "uninstall", "--prefix", other], { cwd: tmp, timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!fs.existsSync(path.dirname(file)));
    r = await run(process.execPath, [CLI, "install", "--user", "--prefix", other], { cwd: tmp, timeoutMs: 30_000 });
    assert.notEqual(r.code, 0, "conflicting locations must be refused");
  });
});

describe("command line", () => {
  const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) => run(process.execPath, [CLI, ...args], { cwd: tmp, env, timeoutMs: 30_000 });

  test("--help, -h, help and --version exit 0", async () => {
    const version = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")).version;
    for (const args of [["--help"], ["-h"], ["help"], ["install", "--help"]]) {
      const r = await cli(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, /^usage:\n {2}arrakis-ts install/, args.join(" "));
    }
    const r = await cli(["--version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `arrakis-ts ${version}`);
    assert.notEqual((await cli([])).code, 0, "no command is a usage error");
  });

  test("install --model is checked when installing", async () => {
    const other = path.join(tmp, "checked");
    fs.mkdirSync(path.join(tmp, "not-a-model"), { recursive: true });
    fs.writeFileSync(path.join(tmp, "a-file.txt"), "");
    const cases: [string, RegExp][] = [
      ["./missing-folder", /no such folder/],
      ["not a hub id", /not a Hugging Face Hub id/],
      ["org/name/extra", /no such folder.*not a Hugging Face Hub id/s],
      ["not-a-model", /has no config\.json/],
      ["a-file.txt", /is a file/],
    ];
    for (const [model, why] of cases) {
      const r = await cli(["install", "--prefix", other, "--model", model]);
      assert.equal(r.code, 2, `--model ${model} should be refused`);
      assert.match(r.stderr, why, model);
    }
    assert.ok(!fs.existsSync(path.join(other, "share")), "nothing is installed when --model is refused");
    const hub = await cli(["install", "--prefix", other, "--model", "openai-community/gpt2"]);
    assert.equal(hub.code, 0, hub.stderr);
    assert.match(hub.stdout, /Hub id: the kernel downloads it on first start/);
  });

  test("install --sys-prefix without an active environment says where and why, and installs nothing", async () => {
    const env = { ...process.env };
    delete env.VIRTUAL_ENV;
    delete env.CONDA_PREFIX;
    const r = await cli(["install", "--sys-prefix"], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no virtual environment is active/);
    assert.match(r.stderr, /share\/jupyter\/kernels/);
    assert.match(r.stderr, /--user/);
    const venv = path.join(tmp, "venv");
    const ok = await cli(["install", "--sys-prefix"], { ...env, VIRTUAL_ENV: venv });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(fs.existsSync(path.join(venv, "share", "jupyter", "kernels", "arrakis-ts", "kernel.json")));
  });
});

describe("kernel through Jupyter clients", () => {
  test("jupyter_kernel_test conformance suite", { timeout: 150_000 }, async () => {
    const outcomes = await pythonSuite("test_protocol", 140_000);
    assertPassed(outcomes, [
      "test_kernel_info",
      "test_execute_stdout",
      "test_execute_stderr",
      "test_error",
      "test_execute_result",
      "test_display_data",
      "test_completion",
      "test_inspect",
      "test_is_complete",
      "test_history",
      "test_clear_output",
    ]);
  });

  test("interrupt, restart and bad cells through jupyter_client", { timeout: 200_000 }, async () => {
    const outcomes = await pythonSuite("test_lifecycle", 190_000);
    assertPassed(outcomes, [
      "test_interrupt_async_loop_runs_finally",
      "test_interrupt_synchronous_tfjs_loop_runs_finally",
      "test_interrupt_pure_javascript_loop",
      "test_interrupt_never_resolving_await",
      "test_interrupt_resets_hooks_left_by_terminated_code",
      "test_interrupt_head_sweep_leaves_no_ablation",
      "test_bad_cells_leave_kernel_working",
      "test_error_aborts_only_requests_sent_before_it",
      "test_top_level_for_await",
      "test_failed_cell_keeps_its_declarations",
      "test_z_restart",
    ]);
  });

  test("frontend requests: Shift+Tab inside calls, TypeScript editor mode, completion at start, resetPlotlyLibrary", { timeout: 200_000 }, async () => {
    const outcomes = await pythonSuite("test_frontend", 190_000);
    assertPassed(outcomes, [
      "test_completion_waits_for_the_prelude",
      "test_inspect_right_after_open_paren",
      "test_inspect_inside_the_arguments",
      "test_inspect_innermost_call_and_code_after_it",
      "test_inspect_counts_code_points",
      "test_inspect_on_a_name_and_outside_calls",
      "test_codemirror_mode_is_typescript_for_every_frontend",
      "test_reset_plotly_library_as_the_note_says",
    ]);
  });

  test("no lost output, aborts by arrival order, replays refused, process.exit refused, background errors shown", { timeout: 300_000 }, async () => {
    const outcomes = await pythonSuite("test_reliability", 290_000);
    assertPassed(outcomes, [
      "test_burst_of_100000_lines_arrives_in_order_then_idle",
      "test_stdout_and_stderr_interleaved_keep_their_order",
      "test_abort_by_arrival_with_client_clock_30s_behind_without_timezone",
      "test_abort_by_arrival_with_client_clock_in_another_zone_and_ahead",
      "test_replayed_signed_message_is_rejected",
      "test_unsigned_message_is_dropped_with_one_log_line",
      "test_process_exit_is_refused",
      "test_background_errors_reach_the_next_cell",
      "test_a_normal_start_logs_one_line",
      "test_preloaded_objects_complete_with_the_library_types",
      "test_z_callback_looping_after_its_cell_is_recovered_by_restart",
    ]);
  });

  test("nbconvert executes a notebook from a folder outside the project", { timeout: 150_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(outside, "nb-"));
    fs.writeFileSync(path.join(dir, "data.txt"), "next to the notebook");
    const cells = [
      `console.log(model.cfg.nLayers, "layers");\nattention.attentionPatterns([1, 2, 3, 4, 5, 6], 0, 0)`,
      `display({ toMimeBundle: () => ({ "text/plain": "a bar", "image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg'/>" }) })`,
      `import * as fs from "fs";\nfs.writeFileSync("written-by-cell.txt", "hi");\nfs.readFileSync("data.txt", "utf8")`,
      `import { HookedAutoModel } from "arrakis-ts";\nmodel instanceof HookedAutoModel`,
      `throw new RangeError("bad head")`,
      `const wrong: number = "text";`,
      `const six = 6;`,
      `({ six }).six * 7`, // shorthand property naming an earlier cell's variable
    ];
    const nb = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: "arrakis-ts", display_name: "Arrakis (TypeScript)", language: "typescript" } },
      cells: cells.map((source, i) => ({ cell_type: "code", id: `c${i}`, metadata: {}, execution_count: null, outputs: [], source })),
    };
    fs.writeFileSync(path.join(dir, "in.ipynb"), JSON.stringify(nb));
    const r = await run(
      PYTHON,
      ["-m", "nbconvert", "--to", "notebook", "--execute", "--allow-errors", "--ExecutePreprocessor.timeout=120", "--output", "out.ipynb", "in.ipynb"],
      { cwd: dir, env: jupyterEnv(), timeoutMs: 140_000 },
    );
    assert.equal(r.code, 0, r.stderr.slice(-4000));
    const out = JSON.parse(fs.readFileSync(path.join(dir, "out.ipynb"), "utf8"));
    type Output = { output_type: string; name?: string; text?: string | string[]; data?: Record<string, unknown>; ename?: string; evalue?: string; traceback?: string[] };
    const outputs: Output[][] = out.cells.map((c: { outputs: Output[] }) => c.outputs);
    const text = (x: string | string[] | unknown) => (Array.isArray(x) ? x.join("") : String(x));

    assert.deepEqual(out.cells.map((c: { execution_count: number }) => c.execution_count), [1, 2, 3, 4, 5, 6, 7, 8]);
    // Cell 1: the preloaded model and attention tools, and a rich bundle with several MIME types.
    // Only the cell's own line: the prelude's log stays in the kernel log.
    const streams = outputs[0].filter((o) => o.output_type === "stream").map((o) => text(o.text)).join("");
    assert.match(streams, /^\d+ layers\n$/);
    const rich = outputs[0].find((o) => o.output_type === "execute_result");
    assert.ok(rich?.data, JSON.stringify(outputs[0]).slice(0, 500));
    assert.ok("text/plain" in rich.data);
    assert.ok(Object.keys(rich.data).length >= 3, `expected a rich bundle, got ${Object.keys(rich.data)}`);
    // display(): one display_data with the whole bundle.
    assert.deepEqual(outputs[1].map((o) => [o.output_type, Object.keys(o.data ?? {}).sort()]), [["display_data", ["image/svg+xml", "text/plain"]]]);
    // Relative paths are relative to the notebook's folder; `arrakis-ts` resolves from anywhere.
    assert.equal(text(outputs[2][0].data?.["text/plain"]), "next to the notebook");
    assert.ok(fs.existsSync(path.join(dir, "written-by-cell.txt")));
    assert.equal(text(outputs[3][0].data?.["text/plain"]), "true");
    // Errors are proper error outputs, and execution continues after them.
    assert.deepEqual(outputs[4].map((o) => [o.output_type, o.ename, o.evalue]), [["error", "RangeError", "bad head"]]);
    assert.ok(Array.isArray(outputs[4][0].traceback) && outputs[4][0].traceback.length >= 1);
    assert.deepEqual(outputs[5].map((o) => [o.output_type, o.ename]), [["error", "TSError"]]);
    assert.equal(text(outputs[7][0].data?.["text/plain"]), "42", JSON.stringify(outputs[7]).slice(0, 500));
  });
});

describe("kernel units", () => {
  // Loaded lazily so the Jupyter tests above do not depend on these imports.
  const ts = () => require(require.resolve("@tslab/typescript-for-tslab", { paths: [path.join(repoRoot, "node_modules", "tslab")] }));

  test("shorthand properties naming earlier cells' values are qualified, shadowed ones are not", async () => {
    const { createConverters } = await import("../kernel/converters");
    const converters = createConverters(ts()).set;
    try {
      const first = converters.node.convert("", "const a = 1;\nfunction f() { return 2; }\nconst { p, q: [r] } = { p: 3, q: [4] };");
      const second = converters.node.convert(first.declOutput ?? "", "const x = 5;\nconst g = (a: number) => ({ a });\n({ a, f, p, r, x, g })");
      assert.deepEqual(second.diagnostics, []);
      assert.match(second.output ?? "", /\(\{ a: exports\.a, f: exports\.f, p: exports\.p, r: exports\.r, x, g \}\)/);
      assert.match(second.output ?? "", /\(a\) => \(\{ a \}\)/);
    } finally {
      converters.close();
    }
  });

  test("rewritten async code keeps its meaning", async () => {
    const { rewriteAwaits, CoroutineRuntime } = await import("../kernel/coroutine");
    const { InterruptState } = await import("../kernel/interrupt-state");
    new CoroutineRuntime(new InterruptState()).install();
    const js = [
      "async function f(x) { await null; return x * 2 + arguments.length; }",
      "const h = async (y) => (await f(y)) + 1;",
      "class C extends Object { async m() { return super.toString === Object.prototype.toString; } async n() { return await this.k(); } k() { return 5; } }",
      "const g = async () => { let s = 0; for await (const z of [1, 2]) s += z; return s; };",
      "exports.out = [await h(2), await new C().m(), await new C().n(), await g()];",
    ].join("\n");
    const { output: out, topLevelAwait } = rewriteAwaits(ts(), js);
    assert.equal(topLevelAwait, true);
    assert.match(out, /__arrakis__\.co\(this, arguments, function\* \(\)/);
    assert.match(out, /async m\(\)/, "a method using super stays native");
    assert.match(out, /for await/, "for await stays in a native async function");
    const exportsObj: Record<string, unknown> = {};
    await new Function("exports", "require", out)(exportsObj, require);
    assert.deepEqual(exportsObj.out, [6, true, 5, 3]);
    assert.deepEqual(rewriteAwaits(ts(), "exports.x = 1;"), { output: "exports.x = 1;", topLevelAwait: false }, "code without await is untouched");
    // tslab does not flag a top-level `for await` as top-level await; the rewrite does.
    const forAwait = rewriteAwaits(ts(), "let s = 0; for await (const z of [1, 2]) s += z; exports.s = s;");
    assert.equal(forAwait.topLevelAwait, true);
    const ex: Record<string, unknown> = {};
    await new Function("exports", "require", forAwait.output)(ex, require);
    assert.equal(ex.s, 3);
    // An await only inside a nested function leaves the top level synchronous.
    const nested = rewriteAwaits(ts(), "exports.f = async () => await 1;");
    assert.equal(nested.topLevelAwait, false);
    assert.match(nested.output, /^function __arrakis_cell__/);
  });

  test("an interrupt is thrown into a suspended coroutine, whose finally runs", async () => {
    const { rewriteAwaits, CoroutineRuntime, InterruptError } = await import("../kernel/coroutine");
    const { InterruptState } = await import("../kernel/interrupt-state");
    const state = new InterruptState();
    const rt = new CoroutineRuntime(state);
    rt.install();
    rt.currentExec = state.running = 7;
    const log: string[] = [];
    const js = "try { await new Promise(() => {}); } finally { log.push('finally'); }";
    const p = new Function("exports", "require", "log", rewriteAwaits(ts(), js).output)({}, require, log) as Promise<unknown>;
    state.requestInterrupt();
    assert.equal(rt.interruptSuspended(7), 1);
    await assert.rejects(p, InterruptError);
    assert.deepEqual(log, ["finally"]);
    assert.equal(rt.interruptSuspended(7), 0, "a request is delivered once");
  });

  test("tf.js ops are interrupt points", async () => {
    const { installOpInterrupts } = await import("../kernel/tf-interrupt");
    const { InterruptState } = await import("../kernel/interrupt-state");
    const { InterruptError } = await import("../kernel/coroutine");
    const state = new InterruptState();
    const engine = { runKernel: (name: string) => `ran ${name}` };
    // A stand-in for tfjs-core 4.22.0's engine: the wrapper is a version-pinned patch (src/patches/tf-run-kernel).
    installOpInterrupts({ engine: () => engine, version_core: "4.22.0" }, state);
    state.running = 3;
    assert.equal(engine.runKernel("MatMul"), "ran MatMul");
    state.requestInterrupt();
    assert.throws(() => engine.runKernel("MatMul"), InterruptError);
    assert.equal(engine.runKernel("Add"), "ran Add", "cleanup code may use tf.js after the one delivery");
    assert.equal(state.inKernel, false);
  });

  test("history: tail, range and glob search", async () => {
    const { History } = await import("../kernel/history");
    const h = new History();
    ["a = 1", "6 * 7", "b = 2", "6 * 7"].forEach((code, i) => h.record(i + 1, code, i === 1 ? "42" : null));
    assert.deepEqual(h.query({ hist_access_type: "tail", n: 2 }), [[1, 3, "b = 2"], [1, 4, "6 * 7"]]);
    assert.deepEqual(h.query({ hist_access_type: "range", session: 0, start: 2, stop: 3, output: true }), [[1, 2, ["6 * 7", "42"]]]);
    assert.equal(h.query({ hist_access_type: "search", pattern: "6 ? 7" }).length, 2);
    assert.deepEqual(h.query({ hist_access_type: "search", pattern: "6*", unique: true }), [[1, 4, "6 * 7"]]);
    assert.deepEqual(h.query({ hist_access_type: "search", pattern: "[ab] = *", n: 1 }), [[1, 3, "b = 2"]]);
    h.record(5, "big", "x".repeat(1e6));
    const [[, , [, kept]]] = h.query({ hist_access_type: "tail", n: 1, output: true }) as [number, number, [string, string]][];
    assert.equal(kept.length, 10_001, "a huge output is not kept whole");
  });

  test("wire format: signed round trip, tampering rejected", async () => {
    const { WireCodec } = await import("../kernel/wire");
    const codec = new WireCodec("secret");
    const msg = codec.make("execute_request", { code: "1" }, undefined, [Buffer.from("id")]);
    const frames = codec.encode(msg);
    const back = codec.decode(frames);
    assert.deepEqual([back.header, back.content, back.identities.map(String)], [msg.header, { code: "1" }, ["id"]]);
    assert.throws(() => codec.decode(frames), /duplicate signature/, "the same signed frames again are a replay");
    const other = codec.encode(codec.make("execute_request", { code: "1" }));
    other[other.length - 1] = Buffer.from(JSON.stringify({ code: "2" }));
    assert.throws(() => codec.decode(other), /invalid message signature/);
  });

  test("one mime module: the kernel sends the library's bundles, made JSON-safe", async () => {
    const kernelDisplay = fs.readFileSync(path.join(repoRoot, "kernel", "display.ts"), "utf8");
    assert.match(kernelDisplay, /from "\.\.\/src\/display\/mime"/);
    assert.ok(!fs.existsSync(path.join(repoRoot, "kernel", "mime.ts")), "a second mime module is back");
    const { toMimeBundle, completeBundle } = await import("../src/display/mime");
    const png = new Uint8Array([137, 80, 78, 71]);
    assert.deepEqual(toMimeBundle({ toMimeBundle: () => ({ "image/png": png, "text/html": undefined }) }), {
      "image/png": Buffer.from(png).toString("base64"),
      "text/plain": "{ toMimeBundle: [Function: toMimeBundle] }",
    });
    assert.deepEqual(toMimeBundle("as is"), { "text/plain": "as is" });
    assert.equal((toMimeBundle(Array.from({ length: 500 }, (_, i) => i))["text/plain"] as string).includes("... 400 more items"), true);
    assert.throws(() => completeBundle([], () => ""), /must return an object/);
  });

  test("kernel log: debug lines only at ARRAKIS_LOG_LEVEL=debug, warnings always", async () => {
    const snippet = `const l = require(${JSON.stringify(path.join(repoRoot, "dist", "kernel", "log.js"))}); l.kernelLog("detail"); l.kernelInfo("ready"); l.kernelWarn("trouble");`;
    const levels = async (level?: string) => {
      const env = { ...process.env, ARRAKIS_LOG_LEVEL: level ?? "" };
      const r = await run(process.execPath, ["-e", snippet], { cwd: repoRoot, env, timeoutMs: 30_000 });
      return r.stderr.split("\n").filter(Boolean).map((l) => l.replace(/^\[arrakis-ts \S+ (\w+)\] /, "$1 "));
    };
    assert.deepEqual(await levels(), ["info ready", "warn trouble"]);
    assert.deepEqual(await levels("debug"), ["debug detail", "info ready", "warn trouble"]);
    assert.deepEqual(await levels("warn"), ["warn trouble"]);
  });

  test("iopub: stream writes coalesce in order around other messages", async () => {
    const { IopubChannel } = await import("../kernel/iopub");
    const { WireCodec } = await import("../kernel/wire");
    const codec = new WireCodec("k");
    const sent: { type: string; content: { name?: string; text?: string } }[] = [];
    const socket = { send: async (frames: Buffer[]) => void sent.push((({ header, content }) => ({ type: header.msg_type, content }))(codec.decode(frames))) };
    const ch = new IopubChannel(socket, new WireCodec("k"), "id", 10_000);
    for (let i = 0; i < 1000; i++) ch.publish("stream", { name: "stdout", text: `${i}\n` });
    ch.publish("stream", { name: "stderr", text: "warn\n" });
    ch.publish("display_data", { data: {} });
    ch.publish("stream", { name: "stdout", text: "after\n" });
    await ch.flush();
    assert.deepEqual(
      sent.map((m) => [m.type, m.content.name, m.content.text]),
      [
        ["stream", "stdout", Array.from({ length: 1000 }, (_, i) => `${i}\n`).join("")],
        ["stream", "stderr", "warn\n"],
        ["display_data", undefined, undefined],
        ["stream", "stdout", "after\n"],
      ],
    );
  });

  test("iopub: a subscriber slower than the high-water mark still gets every message, in order", { timeout: 60_000 }, async () => {
    const zmq = require(require.resolve("zeromq", { paths: [path.join(repoRoot, "node_modules", "tslab")] }));
    const { IopubChannel, configurePublisher } = await import("../kernel/iopub");
    const { WireCodec } = await import("../kernel/wire");
    const pub = new zmq.Publisher();
    configurePublisher(pub);
    pub.sendHighWaterMark = 5; // tiny, so the queue is full almost at once
    const sub = new zmq.Subscriber({ receiveHighWaterMark: 5 });
    try {
      await pub.bind("tcp://127.0.0.1:*");
      sub.connect(pub.lastEndpoint);
      sub.subscribe();
      const n = 3000;
      const ch = new IopubChannel(pub, new WireCodec("k"), "id");
      const codec = new WireCodec("k");
      const seen: number[] = [];
      let probes = 0;
      // One slow reader for the whole test (zeromq allows one pending receive per socket).
      const reader = (async () => {
        while (seen.length < n) {
          const msg = codec.decode((await sub.receive()) as Buffer[]);
          if (msg.header.msg_type === "probe") probes++;
          else seen.push(msg.content.i);
          if (seen.length % 100 === 99) await new Promise((r) => setTimeout(r, 1));
        }
      })();
      // A PUB socket drops what it sends before the subscription reaches it: probe until one arrives.
      while (probes === 0) {
        ch.publish("probe", {});
        await new Promise((r) => setTimeout(r, 20));
      }
      for (let i = 0; i < n; i++) ch.publish("display_data", { i });
      await reader;
      assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i));
      await ch.flush();
    } finally {
      sub.close();
      pub.close();
    }
  });
});
