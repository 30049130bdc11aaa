/**
 * `npm run bench`: speed and memory of the hooked model, side by side with the engines a user could pick
 * instead, in one run, on identical deterministic weights at GPT-2-small dimensions (issue 7).
 *
 *   ours      HookedAutoModel.forward and runWithCache (all hook points) on each engine: the onnxruntime engine
 *             (ARRAKIS_ORT_THREADS, default 1 here, so it compares with PyTorch on 1 thread) and TF.js
 *   ORT       the same forward as one plain ONNX graph (scripts/bench/onnx.ts) in onnxruntime-node, in a child process
 *   PyTorch   the same forward in plain torch ops (scripts/bench/torch_gpt2.py), Debian python3-torch: 1 thread,
 *             default threads, all cores
 *
 * Each row: warm-up, then the median of N timed runs (min and max beside it), GFLOP/s from the matmul FLOPs
 * of the computation (the same count for every engine, so the ratios are time ratios), ours/peer, the
 * max-abs difference of the peer's logits from ours (same computation check), and peak RSS of the process
 * that ran it. The peers are persistent child processes driven run by run, and the engines take turns
 * (ours, ORT, PyTorch, ... for each repetition), so load from other work on the machine hits them alike. Then: a head-ablation sweep at 64 tokens, runWithCache at 1,024 tokens (memory), and the time
 * from kernel start to the first rendered heatmap. Never used by tests: timings are printed, not asserted.
 *
 *   npm run bench [-- --reps 5 --tokens 32,128,512 --skip tfjs,profile,ort,torch,sweep,memory,kernel]
 *   npm run bench -- --only sweep            (one part alone: forward, tfjs, profile, ort, torch, sweep, memory, kernel)
 *   ARRAKIS_WASM_THREADS=0 npm run bench     (single-threaded wasm)
 *   GLIBC_TUNABLES= npm run bench            (without huge pages; by default the run restarts itself with them, as the kernel runs)
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, wasmThreads } from "../../src/backend";
import { backendReport, engineName, engineReport } from "../../src/engine/engine";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "../../src/io/safetensors";
import { HookedAutoConfig } from "../../src/model/config";
import { HookedAutoModel } from "../../src/model/hooked-model";
import { hugePagesState } from "../../src/engine/huge-pages";
import { runWithHugePages } from "../run-with-huge-pages";
import { gpt2Onnx } from "./onnx";

const GPT2_SMALL = { name: "gpt2", n_layer: 12, n_head: 12, n_embd: 768, vocab_size: 50257, n_positions: 1024 };
const SEED = 0;
/** The parts a run can skip; `forward` is the per-length timing of our engines (it gives `--only` its meaning). */
const PARTS = ["forward", "tfjs", "profile", "ort", "torch", "sweep", "memory", "kernel"];
const PYTHON = "/usr/bin/python3"; // Debian's python3-torch; the first python3 on PATH may be another one

/** The benchmark's token ids: deterministic, spread over the vocabulary (the peers compute the same). */
function tokenIds(T: number, vocab: number): number[] {
  return Array.from({ length: T }, (_, i) => (i * 7919 + 13) % vocab);
}

interface Options {
  reps: number;
  tokens: number[];
  skip: Set<string>;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { reps: 5, tokens: [32, 128, 512], skip: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? "";
    if (flag === "--reps") o.reps = Math.max(1, Number(value()) | 0);
    else if (flag === "--tokens") o.tokens = value().split(",").map(Number).filter((t) => t > 0 && t <= 1024);
    else if (flag === "--skip") value().split(",").forEach((s) => o.skip.add(s.trim()));
    else if (flag === "--only") {
      const keep = value().split(",").map((s) => s.trim());
      PARTS.filter((p) => !keep.includes(p)).forEach((p) => o.skip.add(p));
    } else throw new Error(`unknown argument ${argv[i]} (expected --reps N, --tokens 32,128,512, --skip or --only ${PARTS.join(",")})`);
  }
  const unknown = [...o.skip].filter((p) => !PARTS.includes(p));
  if (unknown.length) throw new Error(`unknown part ${unknown.join(", ")} (expected ${PARTS.join(", ")})`);
  // Without the forward timings the per-length loop has nothing to do.
  if (o.skip.has("forward")) o.tokens = [];
  return o;
}

// ------------------------------------------------------------------ figures

/** Matmul FLOPs of one GPT-2 forward at T tokens as our model computes it (full T×T attention products). */
function forwardFlops(T: number, m: HookedAutoModel): number {
  const { nLayers: L, nHeads: H, dModel: D, dHead: dh, dMlp: F, dVocab: V } = m.cfg;
  const perLayer = 2 * T * D * (3 * H * dh) + 2 * T * H * dh * D + 2 * 2 * T * D * F + 2 * 2 * H * T * T * dh;
  return L * perLayer + 2 * T * D * V;
}

interface Stats {
  median: number;
  min: number;
  max: number;
}

function stats(ms: number[]): Stats {
  const s = [...ms].sort((a, b) => a - b);
  return { median: s[Math.floor((s.length - 1) / 2)], min: s[0], max: s[s.length - 1] };
}

function time(fn: () => void, reps: number): Stats {
  fn(); // warm-up: XNNPACK packs each weight matrix on first use
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return stats(ms);
}

const GB = 2 ** 30;
const peakRss = () => process.resourceUsage().maxRSS * 1024; // bytes
const fmtGB = (b: number | undefined) => (b === undefined ? "–" : `${(b / GB).toFixed(2)} GB`);
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");

/** Bytes of the wasm heap (it only grows); undefined on other backends. Reads a tfjs-backend-wasm internal. */
function wasmHeapBytes(): number | undefined {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return NaN;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

interface Row {
  engine: string;
  T: number;
  s: Stats;
  flops: number;
  ratio?: number;
  diff?: number;
  rss?: number;
}

function printRows(rows: Row[], reps: number): void {
  const head = ["engine", "tokens", `ms median of ${reps} (min–max)`, "GFLOP/s", "ours/peer", "max|Δlogits|", "peak RSS"];
  const cells = rows.map((r) => [
    r.engine,
    String(r.T),
    `${r.s.median.toFixed(0)} (${r.s.min.toFixed(0)}–${r.s.max.toFixed(0)})`,
    (r.flops / r.s.median / 1e6).toFixed(1),
    r.ratio === undefined ? "" : r.ratio.toFixed(2),
    r.diff === undefined ? "" : r.diff.toExponential(1),
    fmtGB(r.rss),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i < 1 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join("  ");
  console.log(line(head));
  for (const c of cells) console.log(line(c));
}

// ------------------------------------------------------------------ peers (child processes)

/**
 * A peer engine in its own process, driven by JSON lines: `{"run": T}` → `{"ms", "peak_rss"}`,
 * `{"logits": T}` → `{"file"}`. The first line it prints describes it (or carries `error`).
 */
class Peer {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffered = "";
  private stderr = "";
  private waiting: ((line: Record<string, unknown>) => void)[] = [];
  private failed: Error | null = null;
  info: Record<string, unknown> = {};
  peakRss = 0;
  readonly ms = new Map<number, number[]>();
  /** CPU time of each recorded run (the peer's process), when it reports it. */
  readonly cpu = new Map<number, number[]>();

  constructor(readonly name: string, cmd: string, args: string[]) {
    this.child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.on("data", (d) => {
      this.buffered += d;
      let nl: number;
      while ((nl = this.buffered.indexOf("\n")) >= 0) {
        const line = this.buffered.slice(0, nl).trim();
        this.buffered = this.buffered.slice(nl + 1);
        if (line.startsWith("{")) this.waiting.shift()?.(JSON.parse(line));
      }
    });
    this.child.stderr.on("data", (d) => (this.stderr = (this.stderr + d).slice(-4000)));
    this.child.on("close", (code, signal) => {
      this.failed = new Error(`${name} exited with ${signal ?? code}: ${this.stderr.trim().split("\n").slice(-3).join(" | ")}`);
      for (const w of this.waiting.splice(0)) w({ error: this.failed.message });
    });
    this.child.on("error", (e) => {
      this.failed = e;
      for (const w of this.waiting.splice(0)) w({ error: e.message });
    });
  }

  private next(timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      this.waiting.push((line) => {
        clearTimeout(timer);
        if (line.error) reject(new Error(String(line.error)));
        else resolve(line);
      });
    });
  }

  /** Waits for the child's first line (it has loaded the weights). */
  async ready(timeoutMs = 10 * 60_000): Promise<this> {
    this.info = await this.next(timeoutMs);
    return this;
  }

  private async ask(cmd: Record<string, unknown>, timeoutMs = 10 * 60_000): Promise<Record<string, unknown>> {
    const answer = this.next(timeoutMs);
    this.child.stdin.write(JSON.stringify(cmd) + "\n");
    return answer;
  }

  async run(T: number, record: boolean): Promise<void> {
    const a = await this.ask({ run: T });
    this.peakRss = Math.max(this.peakRss, Number(a.peak_rss) || 0);
    if (record) this.ms.set(T, [...(this.ms.get(T) ?? []), Number(a.ms)]);
    if (record && a.cpu_ms !== undefined) this.cpu.set(T, [...(this.cpu.get(T) ?? []), Number(a.cpu_ms)]);
  }

  async logits(T: number): Promise<Float32Array> {
    const a = await this.ask({ logits: T });
    return readLogits(String(a.file));
  }

  close(): void {
    this.child.stdin.end();
    setTimeout(() => this.child.kill("SIGKILL"), 5000).unref();
  }
}

/** Runs a child process that prints JSON lines; resolves with the parsed lines (or rejects with its stderr). */
function runJsonLines(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err = (err + d).slice(-4000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const lines = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
      if (code === 0) resolve(lines);
      else reject(new Error(`${path.basename(cmd)} exited with ${signal ?? code}${signal === "SIGKILL" ? ` (timeout ${timeoutMs / 1000} s)` : ""}: ${err.trim().split("\n").slice(-3).join(" | ")}`));
    });
  });
}

function readLogits(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** `--child-ort WEIGHTS OUT_DIR`: the onnxruntime-node peer (see Peer for the protocol). */
async function childOrt(argv: string[]): Promise<void> {
  const [weights, outDir] = argv;
  const say = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + "\n");
  let ort: typeof import("onnxruntime-node");
  try {
    ort = require("onnxruntime-node");
  } catch (e) {
    say({ error: `onnxruntime-node not loadable: ${String((e as Error).message).split("\n")[0]}` });
    process.exit(3);
  }
  const file = SafetensorsFile.open(weights);
  const meta = file.header.metadata;
  const cache = new Map<string, { shape: number[]; data: Float32Array }>();
  const bytes = gpt2Onnx({
    nLayers: Number(meta.n_layer),
    nHeads: Number(meta.n_head),
    eps: Number(meta.eps),
    get: (name) => {
      if (!cache.has(name)) {
        const t = file.read(name);
        cache.set(name, { shape: t.shape, data: t.data as Float32Array });
      }
      return cache.get(name)!;
    },
  });
  file.close();
  cache.clear();
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: "all" });
  say({ ort: require("onnxruntime-node/package.json").version, session_ms: performance.now() - t0, onnx_bytes: bytes.length });
  const V = Number(meta.vocab);
  const feedsFor = (T: number) => {
    const mask = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -3.4028234663852886e38;
    return {
      input_ids: new ort.Tensor("int64", BigInt64Array.from(tokenIds(T, V).map(BigInt)), [1, T]),
      position_ids: new ort.Tensor("int64", BigInt64Array.from({ length: T }, (_, i) => BigInt(i)), [T]),
      mask: new ort.Tensor("float32", mask, [T, T]),
    };
  };
  const lines = require("node:readline").createInterface({ input: process.stdin });
  for await (const line of lines as AsyncIterable<string>) {
    const cmd = JSON.parse(line) as { run?: number; logits?: number };
    if (cmd.run) {
      const feeds = feedsFor(cmd.run);
      const s = performance.now();
      await session.run(feeds);
      say({ ms: performance.now() - s, peak_rss: process.resourceUsage().maxRSS * 1024 });
    } else if (cmd.logits) {
      const data = (await session.run(feedsFor(cmd.logits))).logits.data as Float32Array;
      const out = path.join(outDir, `ort_logits_${cmd.logits}.bin`);
      fs.writeFileSync(out, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      say({ file: out });
    } else break;
  }
  await session.release();
}

/** Spawns this file again in child mode, with the same loader (tsx or compiled). */
function selfArgs(): string[] {
  return [...process.execArgv, __filename];
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--child-ort") return childOrt(argv.slice(1));
  const opts = parseArgs(argv);
  const startLoad = load();
  // Our onnxruntime engine on one thread unless asked otherwise: the goals compare it with PyTorch on one thread.
  process.env.ARRAKIS_ORT_THREADS ??= "1";
  const backendName = await initBackend();

  const cpus = os.cpus();
  const flags = fs.existsSync("/proc/cpuinfo") ? fs.readFileSync("/proc/cpuinfo", "utf8") : "";
  const th = wasmThreads();
  console.log("arrakis-ts benchmark (issue 7)");
  console.log(`machine: ${cpus[0]?.model ?? "?"}, ${cpus.length} logical cores, AVX-512 ${/\bavx512f\b/.test(flags) ? "yes" : "no"}, ${(os.totalmem() / GB).toFixed(0)} GB RAM; ${os.platform()} ${os.release()}`);
  console.log(`node ${process.version}, tfjs ${tf.version.tfjs}`);
  console.log(backendReport().split("\n").map((l) => "  " + l).join("\n"));
  if (backendName === "wasm") console.log(`  threaded wasm: ${th.used ? `used, ${th.count} threads (started in ${th.startMs} ms)` : `not used (${th.reason})`}`);
  console.log(`huge pages: ${hugePagesState()} (every engine's process alike)`);
  console.log(`load average at start (1/5/15 min): ${startLoad}  — other work on this machine makes timings noisy`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "arrakis-bench-"));
  try {
    const model = new HookedAutoModel(new HookedAutoConfig(GPT2_SMALL), { seed: SEED, engine: "tfjs" });
    const ortModel = engineName() === "ort" ? new HookedAutoModel(new HookedAutoConfig(GPT2_SMALL), { seed: SEED, engine: "ort" }) : null;
    if (!ortModel) console.log(`our onnxruntime engine: not available (${engineReport()})`);
    const c = model.cfg;
    console.log(`model: GPT-2-small dims (${c.nLayers} layers, ${c.nHeads} heads, d_model ${c.dModel}, vocab ${c.dVocab}), random weights seed ${SEED}, batch 1\n`);

    // Identical weights for the peers: our parameters, by our names, in a safetensors file.
    const weightsFile = path.join(tmp, "weights.safetensors");
    writeWeights(model, weightsFile);

    // ---- the engines, taking turns run by run
    const notes: string[] = [];
    const peers: Peer[] = [];
    const start = async (p: Peer) => {
      try {
        peers.push(await p.ready());
      } catch (e) {
        notes.push(`${p.name} skipped: ${(e as Error).message}`);
        p.close();
      }
    };
    if (!opts.skip.has("ort")) await start(new Peer("onnxruntime-node forward", process.execPath, [...selfArgs(), "--child-ort", weightsFile, tmp]));
    if (!opts.skip.has("torch")) {
      await start(new Peer("PyTorch forward (1 thread)", PYTHON, [path.join(__dirname, "torch_gpt2.py"), weightsFile, tmp, "1"]));
      await start(new Peer("PyTorch forward (default threads)", PYTHON, [path.join(__dirname, "torch_gpt2.py"), weightsFile, tmp, "0"]));
      if (peers.some((p) => p.name.startsWith("PyTorch"))) await start(new Peer(`PyTorch forward (${cpus.length} threads)`, PYTHON, [path.join(__dirname, "torch_gpt2.py"), weightsFile, tmp, String(cpus.length)]));
    }
    for (const p of peers) {
      if (p.info.ort) notes.push(`onnxruntime-node ${p.info.ort}: CPU execution provider, default threads, graph optimisation "all" (session created in ${Number(p.info.session_ms).toFixed(0)} ms)`);
      if (p.info.torch && p.name.includes("default")) notes.push(`PyTorch ${p.info.torch} (${PYTHON}; default threads = ${p.info.threads}), BLAS as Debian ships it`);
    }
    console.log(`peers ready: ${peers.map((p) => p.name).join(", ") || "none"} (load ${load()})`);

    // V8 first runs wasm through its baseline compiler and optimises hot functions in the background (slowly
    // when the cores are busy): a few forwards before any timing, so the rows measure optimised code.
    const jitWarm = tokenIds(32, c.dVocab);
    for (let i = 0; i < 3; i++) model.forward(jitWarm).dispose();
    const ortLabel = `ours (onnxruntime engine, ${process.env.ARRAKIS_ORT_THREADS} thr)`;
    const ortMs = new Map<number, number[]>();
    const ortCpu = new Map<number, number[]>();
    /** CPU milliseconds of this process while fn runs (onnxruntime on one thread runs on the calling thread). */
    const cpuMs = (fn: () => void): number => {
      const c0 = process.cpuUsage();
      fn();
      const d = process.cpuUsage(c0);
      return (d.user + d.system) / 1000;
    };

    const rows: Row[] = [];
    const ours = new Map<number, { s: Stats; logits: Float32Array }>();
    const label = backendName === "wasm" ? `ours (wasm, ${th.count} thr)` : `ours (${backendName})`;
    for (const T of opts.tokens) {
      const ids = tokenIds(T, c.dVocab);
      const ourMs: number[] = [];
      const ourRun = (record: boolean) => {
        if (record && opts.skip.has("tfjs")) return; // TF.js engine not timed (it still gives the reference logits)
        const t0 = performance.now();
        model.forward(ids).dispose();
        if (record) ourMs.push(performance.now() - t0);
      };
      const ortRun = (record: boolean) => {
        if (!ortModel) return;
        const t0 = performance.now();
        const c = cpuMs(() => ortModel.forward(ids).dispose());
        if (record) ortMs.set(T, [...(ortMs.get(T) ?? []), performance.now() - t0]);
        if (record) ortCpu.set(T, [...(ortCpu.get(T) ?? []), c]);
      };
      ourRun(false); // warm-up (XNNPACK packs each weight matrix on first use)
      ortRun(false); // warm-up (sessions are made on first use)
      for (const p of peers) await p.run(T, false);
      for (let r = 0; r < opts.reps; r++) {
        // Rotate who goes first, so no engine always runs right after the same neighbour.
        const turn: (() => Promise<void> | void)[] = [() => ourRun(true), () => ortRun(true), ...peers.map((p) => () => p.run(T, true))];
        for (let i = 0; i < turn.length; i++) await turn[(i + r) % turn.length]();
      }
      const logits = model.forward(ids);
      const mine = logits.dataSync() as Float32Array;
      logits.dispose();
      const s = opts.skip.has("tfjs") ? stats(ortMs.get(T) ?? [NaN]) : stats(ourMs);
      ours.set(T, { s, logits: mine });
      if (!opts.skip.has("tfjs")) rows.push({ engine: `${label} forward`, T, s, flops: forwardFlops(T, model), rss: peakRss() });
      if (ortModel) {
        const y = ortModel.forward(ids);
        rows.push({ engine: `${ortLabel} forward`, T, s: stats(ortMs.get(T)!), flops: forwardFlops(T, model), ratio: s.median / stats(ortMs.get(T)!).median, diff: maxAbsDiff(mine, y.dataSync()), rss: peakRss() });
        y.dispose();
      }
      for (const p of peers) {
        try {
          const ps = stats(p.ms.get(T) ?? []);
          rows.push({ engine: p.name.replace("(default threads)", `(default: ${p.info.threads} thr)`), T, s: ps, flops: forwardFlops(T, model), ratio: s.median / ps.median, diff: maxAbsDiff(mine, await p.logits(T)), rss: p.peakRss });
        } catch (e) {
          notes.push(`${p.name} at ${T} tokens: ${(e as Error).message}`);
        }
      }
      console.log(`${T} tokens done (load ${load()})`);
    }
    for (const p of peers) p.close();
    const cpuRows: string[] = [];
    for (const T of opts.tokens) {
      const ids = tokenIds(T, c.dVocab);
      const s = opts.skip.has("tfjs") ? ours.get(T)!.s : time(() => {
        const { logits, cache } = model.runWithCache(ids);
        logits.dispose();
        cache.dispose();
      }, opts.reps);
      if (!opts.skip.has("tfjs")) rows.push({ engine: `${label} runWithCache (all ${model.hookNames.length} hooks)`, T, s, flops: forwardFlops(T, model), ratio: s.median / ours.get(T)!.s.median, rss: peakRss() });
      if (ortModel) {
        const cacheCpu: number[] = [];
        const so = time(() => {
          cacheCpu.push(
            cpuMs(() => {
              const { logits, cache } = ortModel.runWithCache(ids);
              logits.dispose();
              cache.dispose();
            }),
          );
        }, opts.reps);
        cpuRows.push(`  CPU time at ${T} tokens: onnxruntime engine forward ${stats(ortCpu.get(T) ?? [NaN]).median.toFixed(0)} ms, runWithCache (all hooks) ${stats(cacheCpu.slice(1)).median.toFixed(0)} ms; ` +
          peers.filter((p) => p.cpu.has(T)).map((p) => `${p.name} ${stats(p.cpu.get(T)!).median.toFixed(0)} ms`).join(", "));
        rows.push({ engine: `${ortLabel} runWithCache (all hooks)`, T, s: so, flops: forwardFlops(T, model), ratio: so.median / stats(ortMs.get(T)!).median, rss: peakRss() });
      }
    }
    console.log(`runWithCache done (load ${load()}); wasm heap ${fmtGB(wasmHeapBytes())}`);
    if (!opts.skip.has("profile")) await profileRows(model, 128);
    console.log("");
    printRows(rows, opts.reps);
    for (const n of notes) console.log(`  ${n}`);
    const torchBest = rows.filter((r) => r.engine.startsWith("PyTorch") && r.T === 128).sort((a, b) => a.s.median - b.s.median)[0];
    const o128 = ours.get(128);
    if (torchBest && o128) {
      console.log(`  at 128 tokens: ours ${o128.s.median.toFixed(0)} ms vs fastest PyTorch ${torchBest.s.median.toFixed(0)} ms → ours/PyTorch ${(o128.s.median / torchBest.s.median).toFixed(2)} (${o128.s.median <= torchBest.s.median ? "not slower" : "slower"})`);
    }
    const torch1 = rows.find((r) => r.engine.startsWith("PyTorch forward (1 thread)") && r.T === 128);
    const ort128 = rows.find((r) => r.engine === `${ortLabel} forward` && r.T === 128);
    const ortCache128 = rows.find((r) => r.engine === `${ortLabel} runWithCache (all hooks)` && r.T === 128);
    if (torch1 && ort128 && ortCache128) {
      console.log(`  at 128 tokens, onnxruntime engine / PyTorch 1 thread: forward ${(ort128.s.median / torch1.s.median).toFixed(2)} (goal <= 0.75), runWithCache with every hook ${(ortCache128.s.median / torch1.s.median).toFixed(2)} (goal <= 1.0)`);
    }
    if (cpuRows.length) console.log(["CPU time (median; robust to other load on the machine, the fairest comparison of 1-thread engines):", ...cpuRows].join("\n"));
    // One line per length with the three engines the goals compare (our onnxruntime engine, plain onnxruntime, PyTorch on 1 thread).
    const summary = opts.tokens.map((T) => {
      const med = (name: (r: Row) => boolean) => rows.find((r) => r.T === T && name(r))?.s.median;
      const mine = med((r) => r.engine === `${ortLabel} forward`);
      const cache = med((r) => r.engine === `${ortLabel} runWithCache (all hooks)`);
      const plain = med((r) => r.engine.startsWith("onnxruntime-node forward"));
      const torch = med((r) => r.engine.startsWith("PyTorch forward (1 thread)"));
      const ms = (v: number | undefined) => (v === undefined ? "–" : `${v.toFixed(0)} ms`);
      const ratio = (v: number | undefined) => (v === undefined || torch === undefined ? "" : ` (${(v / torch).toFixed(2)}× PyTorch)`);
      return `  ${String(T).padStart(4)} tokens: our onnxruntime engine forward ${ms(mine)}${ratio(mine)}, runWithCache (all hooks) ${ms(cache)}${ratio(cache)}; plain onnxruntime-node ${ms(plain)}${ratio(plain)}; PyTorch 1 thread ${ms(torch)}`;
    });
    console.log(["wall medians per length:", ...summary].join("\n"));
    console.log(`  ours/peer = our forward median / the peer's median at the same length (< 1: we are faster); for runWithCache rows, runWithCache / our forward`);
    console.log(`  GFLOP/s counts the matmuls of the computation (${(forwardFlops(128, model) / 1e9).toFixed(1)} GFLOP at 128 tokens), the same for every engine`);

    if (!opts.skip.has("sweep")) await sweepRows(ortModel ?? model);
    if (!opts.skip.has("memory")) memoryRow(model);
    model.dispose();
    if (!opts.skip.has("kernel")) await kernelRow(tmp);
    console.log(`\nload average at end (1/5/15 min): ${load()}; peak RSS of this process ${fmtGB(peakRss())}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Where one forward's time goes, per kernel (tf.profile times each kernel synchronously on wasm), grouped
 * into the products with weights, the per-head attention products, GELU's elementwise kernels and the rest.
 */
async function profileRows(model: HookedAutoModel, T: number): Promise<void> {
  const ids = tokenIds(T, model.cfg.dVocab);
  model.forward(ids).dispose();
  const info = await tf.profile(() => {
    model.forward(ids).dispose();
  });
  const byKey = new Map<string, { ms: number; n: number }>();
  const groups = new Map<string, number>();
  let total = 0;
  const dh = model.cfg.dHead;
  for (const k of info.kernels) {
    const ms = Number(k.kernelTimeMs) || 0;
    total += ms;
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const e = byKey.get(key) ?? { ms: 0, n: 0 };
    e.ms += ms;
    e.n++;
    byKey.set(key, e);
    const shapes = k.inputShapes as number[][];
    const group =
      k.name === "BatchMatMul" || k.name === "_FusedMatMul"
        ? (shapes[1]?.[0] === dh && shapes[1]?.[1] === T) || (shapes[1]?.[0] === T && shapes[1]?.[1] === dh)
          ? "per-head attention matmuls"
          : "matmuls with weights (incl. unembedding)"
        : k.name === "Pow" || k.name === "Tanh"
          ? "GELU pow + tanh"
          : "everything else";
    groups.set(group, (groups.get(group) ?? 0) + ms);
  }
  console.log(`
per-kernel profile of one forward at ${T} tokens (sum of kernel times ${total.toFixed(0)} ms, ${info.kernels.length} kernels; load ${load()})`);
  for (const [g, ms] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`  ${((100 * ms) / total).toFixed(0).padStart(3)}%  ${ms.toFixed(0).padStart(6)} ms  ${g}`);
  console.log("  top kernels:");
  for (const [key, e] of [...byKey].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8)) console.log(`    ${e.ms.toFixed(0).padStart(6)} ms  ${String(e.n).padStart(4)}×  ${key}`);
}

/** Our parameter tree as flat safetensors entries ("layers.0.attn.wQ" ...); the tied wU is left out (= wEᵀ). */
function writeWeights(model: HookedAutoModel, file: string): void {
  const out: Record<string, TensorToWrite> = {};
  const walk = (node: unknown, prefix: string) => {
    if (node instanceof tf.Tensor) {
      if (prefix !== "wU") out[prefix] = { shape: node.shape, data: node.dataSync() as Float32Array };
    } else if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${prefix}.${i}`));
    else if (node && typeof node === "object") for (const [k, v] of Object.entries(node)) walk(v, prefix ? `${prefix}.${k}` : k);
  };
  walk(model.params, "");
  const c = model.cfg;
  if (!c.tiedEmbeddings) throw new Error("the benchmark's peers assume GPT-2's tied unembedding");
  writeSafetensors(file, out, { format: "pt", n_layer: String(c.nLayers), n_head: String(c.nHeads), eps: String(c.normEps), vocab: String(c.dVocab) });
}

interface SweepLike {
  headAblationSweep(input: number[], options?: Record<string, unknown>): unknown;
}

async function sweepRows(model: HookedAutoModel): Promise<void> {
  const T = 64;
  const ids = tokenIds(T, model.cfg.dVocab);
  const { nLayers: L, nHeads: H } = model.cfg;
  console.log(`\nhead ablation over all ${L * H} heads at ${T} tokens (load ${load()})`);
  model.forward(ids).dispose(); // warm-up at this length
  let tools: { AttentionTools?: new (m: HookedAutoModel) => SweepLike } = {};
  try {
    tools = require("../../src/tools/attention");
  } catch {
    /* not written yet */
  }
  if (tools.AttentionTools) {
    const attention = new tools.AttentionTools(model);
    const cpu = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    const fwdCpu: number[] = [];
    const fwdMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const [t, c] = [performance.now(), cpu()];
      model.forward(ids).dispose();
      fwdMs.push(performance.now() - t);
      fwdCpu.push(cpu() - c);
    }
    // Two sweeps, each followed by 5 more plain forwards: the first pays for growing each session's memory to
    // the batched size, the second shows the steady cost; all forwards of the run are the unit.
    const sweeps: { ms: number; cpu: number }[] = [];
    for (let k = 0; k < 2; k++) {
      const [t0, c0] = [performance.now(), cpu()];
      attention.headAblationSweep(ids);
      sweeps.push({ ms: performance.now() - t0, cpu: cpu() - c0 });
      for (let i = 0; i < 5; i++) {
        const [t, c] = [performance.now(), cpu()];
        model.forward(ids).dispose();
        fwdMs.push(performance.now() - t);
        fwdCpu.push(cpu() - c);
      }
    }
    const [fm, fc] = [stats(fwdMs).median, stats(fwdCpu).median];
    console.log(`  plain forward at ${T} tokens: ${fm.toFixed(0)} ms wall, ${fc.toFixed(0)} ms CPU (median of ${fwdMs.length}, taken before and after each sweep)`);
    sweeps.forEach(({ ms, cpu: cms }, k) =>
      console.log(`  attention.headAblationSweep ${k === 0 ? "first" : "second"} (zero ablation, loss metric, ${L * H} heads): ${(ms / 1000).toFixed(1)} s wall = ${(ms / fm).toFixed(0)} plain forwards; CPU ${(cms / 1000).toFixed(1)} s = ${(cms / fc).toFixed(0)} forwards' CPU`),
    );
    console.log(`  (load ${load()}; onnxruntime threads: ${process.env.ARRAKIS_ORT_THREADS})`);
    return;
  }
  // Until the attention tools exist: the same work by hand, a zeroing hook on hook_z per head.
  const t0 = performance.now();
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const keep = tf.tidy(() => tf.oneHot(h, H).reshape([1, 1, H, 1]).sub(1).neg()); // 0 at head h, 1 elsewhere
      model.runWithHooks(ids, [[`blocks.${l}.attn.hook_z`, (z: tf.Tensor) => tf.mul(z, keep)]]).dispose();
      keep.dispose();
    }
  }
  const ms = performance.now() - t0;
  console.log(`  attention.headAblationSweep: pending (src/tools/attention.ts not available); ${L * H} forwards with a zeroing hook on hook_z: ${(ms / 1000).toFixed(1)} s (${(ms / (L * H)).toFixed(0)} ms each)`);
}

function memoryRow(model: HookedAutoModel): void {
  const T = 1024;
  const ids = tokenIds(T, model.cfg.dVocab);
  console.log(`\nmemory: runWithCache at ${T} tokens, all hook points (load ${load()})`);
  const t0 = performance.now();
  const { logits, cache } = model.runWithCache(ids);
  const ms = performance.now() - t0;
  console.log(`  completed in ${(ms / 1000).toFixed(1)} s: ${cache.names.length} activations, ${(cache.bytes / GB).toFixed(2)} GB held outside the backend; wasm heap ${fmtGB(wasmHeapBytes())} (cap 4 GiB); peak RSS ${fmtGB(peakRss())}`);
  logits.dispose();
  cache.dispose();
  const names = ["blocks.0.attn.hook_pattern", "ln_final.hook_normalized"];
  const some = model.runWithCache(ids.slice(0, 16), { names });
  const ok = some.cache.names.length === names.length && names.every((n) => some.cache.has(n));
  console.log(`  runWithCache with names [${names.join(", ")}] keeps ${some.cache.names.length} of ${model.hookNames.length}: ${ok ? "ok" : "WRONG: " + some.cache.names.join(", ")}`);
  some.logits.dispose();
  some.cache.dispose();
}

/** Kernel start → first heatmap through a real Jupyter client (kernelspec from dist/, installed in a temp prefix). */
async function kernelRow(tmp: string): Promise<void> {
  const root = path.resolve(__dirname, "..", "..");
  const repo = fs.existsSync(path.join(root, "package.json")) ? root : path.resolve(root, "..");
  const cli = path.join(repo, "dist", "kernel", "cli.js");
  console.log(`\nkernel start → first rendered heatmap (load ${load()})`);
  if (!fs.existsSync(path.join(repo, "kernel")) || !fs.existsSync(path.join(repo, "src", "display"))) {
    console.log("  pending (kernel/ or src/display not written yet)");
    return;
  }
  if (!fs.existsSync(cli)) {
    console.log("  pending: dist/kernel/cli.js not built (npm run build)");
    return;
  }
  const built = fs.statSync(cli).mtimeMs;
  const newer = ["src", "kernel"].some((d) => newestMtime(path.join(repo, d)) > built);
  const prefix = path.join(tmp, "prefix");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JUPYTER_PATH: path.join(prefix, "share", "jupyter"),
    JUPYTER_CONFIG_DIR: path.join(tmp, "jconfig"),
    JUPYTER_DATA_DIR: path.join(tmp, "jdata"),
    JUPYTER_RUNTIME_DIR: path.join(tmp, "jruntime"),
    JUPYTER_PLATFORM_DIRS: "1",
    PYTHONDONTWRITEBYTECODE: "1",
  };
  try {
    await runJsonLines(process.execPath, [cli, "install", "--prefix", prefix], env, 60_000).catch((e) => {
      throw new Error(`kernelspec install failed: ${(e as Error).message}`);
    });
    const [r] = await runJsonLines(PYTHON, [path.join(__dirname, "kernel_first_heatmap.py"), "240"], env, 300_000);
    if (r.error || r.heatmap_s === undefined) {
      console.log(`  no heatmap: ${r.error ?? `cell status ${r.status}`} (model ${r.model})`);
    } else {
      console.log(`  kernel ready ${Number(r.ready_s).toFixed(1)} s, first heatmap ${Number(r.heatmap_s).toFixed(1)} s after start (${(r.mime as string[]).join(", ")}); model: ${r.model}`);
    }
    if (newer) console.log("  note: dist/ is older than the sources; npm run build for current figures");
  } catch (e) {
    console.log(`  skipped: ${(e as Error).message}`);
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith(".ts")) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

runWithHugePages(main);
