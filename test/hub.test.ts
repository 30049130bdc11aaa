/**
 * Hub loading (src/io/hub.ts) against a fake Hub on 127.0.0.1 (test/hub-server.ts) serving the gpt2 fixture
 * and a sharded copy of it. Every test uses its own temporary cache; HF_HOME points at a temporary folder so
 * nothing reads or writes ~/.cache.
 */
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { hfFixture } from "./helpers";
import { FakeHub, fakeCommit, filesOf, gitBlobSha1, sha256 } from "./hub-server";
import { isHubId, resolvePretrained, type HubOptions, type HubProgress } from "../src/io/hub";
import { readSafetensors, encodeSafetensors, type TensorToWrite } from "../src/io/safetensors";
import { ArrakisError } from "../src/errors";

const ENV_VARS = [
  "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
  "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "XDG_CACHE_HOME", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT",
];
const GPT2 = "openai-community/gpt2";
const SHARDED = "test-org/gpt2-sharded";
const MAIN = fakeCommit("gpt2 main");
const V2 = fakeCommit("gpt2 v2");
const SHARDED_MAIN = fakeCommit("sharded main");

let hub: FakeHub;
let scratch: string;
let savedEnv: Record<string, string | undefined>;
let gpt2Files: Record<string, Buffer>;
let shardedFiles: Record<string, Buffer>;

function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(scratch, `${name}-`));
}

function opts(cacheDir: string, extra: HubOptions = {}): HubOptions {
  return { endpoint: hub.endpoint, cacheDir, ...extra };
}

function repoDir(cacheDir: string, id: string): string {
  return path.join(cacheDir, `models--${id.replace("/", "--")}`);
}

/** Splits the fixture's tensors into two safetensors shards plus the index transformers writes. */
function shardFixture(file: string): Record<string, Buffer> {
  const { tensors } = readSafetensors(file);
  const names = [...tensors.keys()].sort();
  const half = Math.ceil(names.length / 2);
  const shardFiles = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
  const out: Record<string, Buffer> = {};
  const weightMap: Record<string, string> = {};
  let total = 0;
  shardFiles.forEach((shard, i) => {
    const part: Record<string, TensorToWrite> = {};
    for (const n of names.slice(i * half, (i + 1) * half)) {
      const t = tensors.get(n)!;
      part[n] = { shape: t.shape, data: t.data };
      weightMap[n] = shard;
      total += t.data.byteLength;
    }
    out[shard] = Buffer.from(encodeSafetensors(part));
  });
  out["model.safetensors.index.json"] = Buffer.from(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return out;
}

before(async () => {
  savedEnv = Object.fromEntries(ENV_VARS.map((k) => [k, process.env[k]]));
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "arrakis-hub-test-"));
  hub = await FakeHub.start();
  const fixture = hfFixture("gpt2");
  const tokenizer = Buffer.from(JSON.stringify({ version: "1.0", model: { type: "BPE", vocab: { a: 0 }, merges: [] } }));
  gpt2Files = { ...filesOf(fixture, ["config.json", "model.safetensors", "reference.json"]), "tokenizer.json": tokenizer };
  const v2Config = Buffer.from(JSON.stringify({ ...JSON.parse(gpt2Files["config.json"].toString()), arrakis_test_revision: "v2" }));
  const gpt2Repo = {
    refs: { main: MAIN, v2: V2 },
    commits: {
      [MAIN]: gpt2Files,
      [V2]: { "config.json": v2Config, "model.safetensors": gpt2Files["model.safetensors"] },
    },
  };
  hub.addRepo(GPT2, gpt2Repo);
  hub.addRepo("gpt2", gpt2Repo);
  shardedFiles = { "config.json": gpt2Files["config.json"], ...shardFixture(path.join(fixture, "model.safetensors")) };
  hub.addRepo(SHARDED, { refs: { main: SHARDED_MAIN }, commits: { [SHARDED_MAIN]: shardedFiles } });
  hub.addRepo("test-org/private", { ...gpt2Repo, access: "private" });
  hub.addRepo("test-org/gated", { ...gpt2Repo, access: "gated" });
  hub.addRepo("test-org/no-config", { refs: { main: MAIN }, commits: { [MAIN]: { "model.safetensors": gpt2Files["model.safetensors"] } } });
  hub.addRepo("test-org/no-weights", { refs: { main: MAIN }, commits: { [MAIN]: { "config.json": gpt2Files["config.json"] } } });
  hub.renamed.set("old-org/gpt2", GPT2);
});

beforeEach(() => {
  for (const k of ENV_VARS) delete process.env[k];
  process.env.HF_HOME = tempDir("hf-home"); // no default token file or cache from the real home
  hub.requests.length = 0;
  hub.faults = { drops: 0, dropAfterBytes: 0, sizeDelta: 0, corrupt: false };
});

after(async () => {
  for (const k of ENV_VARS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
  await hub?.close();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

test("isHubId accepts Hub ids and rejects paths and malformed names", () => {
  for (const id of ["gpt2", GPT2, "EleutherAI/pythia-70m", "Qwen/Qwen2.5-0.5B", "a_b.c", "_x/y_"]) assert.equal(isHubId(id), true, id);
  for (const s of ["", "./gpt2", "/abs/gpt2", "a/b/c", "org--x/y", "a..b", "-x", "x-", "../x", "org/", "/x", "~/m", "a b", "x.git", "x".repeat(97)]) {
    assert.equal(isHubId(s), false, s);
  }
  assert.equal(isHubId("y".repeat(96)), true);
});

test("a local directory is returned unchanged without any request", async () => {
  const dir = hfFixture("gpt2");
  assert.equal(await resolvePretrained(dir, opts(tempDir("cache"))), dir);
  assert.equal(hub.requests.length, 0);
  await assert.rejects(resolvePretrained(path.join(dir, "config.json")), /is a file; expected a model directory/);
  await assert.rejects(resolvePretrained("./no/such/dir"), /neither an existing directory nor a Hub id/);
  assert.equal(hub.requests.length, 0);
});

test("downloads a single-file checkpoint into the huggingface_hub cache layout", async () => {
  const cache = tempDir("cache");
  const events: HubProgress[] = [];
  const dir = await resolvePretrained(GPT2, opts(cache, { onProgress: (p) => events.push(p) }));
  const repo = repoDir(cache, GPT2);
  assert.equal(dir, path.join(repo, "snapshots", MAIN));

  const expected: Record<string, string> = {
    "config.json": gitBlobSha1(gpt2Files["config.json"]),
    "model.safetensors": sha256(gpt2Files["model.safetensors"]), // LFS: X-Linked-Etag, not the pointer ETag
    "tokenizer.json": gitBlobSha1(gpt2Files["tokenizer.json"]),
  };
  for (const [file, etag] of Object.entries(expected)) {
    assert.ok(fs.readFileSync(path.join(dir, file)).equals(gpt2Files[file]), `${file} byte-identical`);
    assert.ok(fs.lstatSync(path.join(dir, file)).isSymbolicLink(), `${file} is a symlink`);
    assert.equal(fs.readlinkSync(path.join(dir, file)), `../../blobs/${etag}`);
  }
  assert.deepEqual(fs.readdirSync(path.join(repo, "blobs")).sort(), Object.values(expected).sort());
  assert.deepEqual(fs.readdirSync(dir).sort(), Object.keys(expected).sort()); // reference.json is not fetched
  assert.equal(fs.readFileSync(path.join(repo, "refs", "main"), "utf8"), MAIN);
  assert.equal(fs.readFileSync(path.join(repo, ".no_exist", MAIN, "tokenizer_config.json"), "utf8"), "");

  const weights = events.filter((e) => e.file === "model.safetensors");
  const size = gpt2Files["model.safetensors"].length;
  assert.ok(weights.length >= 2);
  assert.deepEqual(weights.at(-1), { file: "model.safetensors", loaded: size, total: size });
  assert.ok(weights.every((e, i) => i === 0 || e.loaded >= weights[i - 1].loaded), "progress is monotonic");
  assert.ok(hub.requests.every((r) => r.authorization === null), "no token configured, none sent");
});

test("a second call makes no data request; a commit revision makes no request at all", async () => {
  const cache = tempDir("cache");
  const first = await resolvePretrained(GPT2, opts(cache));
  assert.equal(hub.dataRequests().length, 3);
  hub.requests.length = 0;
  assert.equal(await resolvePretrained(GPT2, opts(cache)), first);
  assert.equal(hub.dataRequests().length, 0);
  assert.deepEqual(hub.requests.map((r) => r.method), ["HEAD"]); // one HEAD learns where main points now
  hub.requests.length = 0;
  assert.equal(await resolvePretrained(GPT2, opts(cache, { revision: MAIN })), first);
  assert.equal(hub.requests.length, 0);
  assert.deepEqual(fs.readdirSync(path.join(repoDir(cache, GPT2), "refs")), ["main"], "a commit revision needs no ref");
});

test("a revision option fetches that branch, writes its ref and shares unchanged blobs", async () => {
  const cache = tempDir("cache");
  await resolvePretrained(GPT2, opts(cache));
  const dir = await resolvePretrained(GPT2, opts(cache, { revision: "v2" }));
  const repo = repoDir(cache, GPT2);
  assert.equal(dir, path.join(repo, "snapshots", V2));
  assert.equal(fs.readFileSync(path.join(repo, "refs", "v2"), "utf8"), V2);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")).arrakis_test_revision, "v2");
  assert.equal(fs.readlinkSync(path.join(dir, "model.safetensors")), fs.readlinkSync(path.join(repo, "snapshots", MAIN, "model.safetensors")));
  assert.equal(hub.requests.filter((r) => r.server === "cdn").length, 1, "the weights were downloaded once");
  await assert.rejects(resolvePretrained(GPT2, opts(cache, { revision: "../escape" })), /revision "..\/escape" is not a valid relative name/);
});

test("a Hub id without an org is cached as models--{name}", async () => {
  assert.equal(fs.existsSync("gpt2"), false, "no local ./gpt2 folder may shadow the id");
  const cache = tempDir("cache");
  const dir = await resolvePretrained("gpt2", opts(cache));
  assert.equal(dir, path.join(cache, "models--gpt2", "snapshots", MAIN));
});

test("a sharded checkpoint fetches the index and every shard, byte-identical", async () => {
  const cache = tempDir("cache");
  const dir = await resolvePretrained(SHARDED, opts(cache));
  assert.deepEqual(fs.readdirSync(dir).sort(), Object.keys(shardedFiles).sort());
  for (const [file, data] of Object.entries(shardedFiles)) assert.ok(fs.readFileSync(path.join(dir, file)).equals(data), file);
  assert.ok(fs.existsSync(path.join(repoDir(cache, SHARDED), ".no_exist", SHARDED_MAIN, "model.safetensors")));
  // The shards together hold exactly the fixture's tensors.
  const names = Object.keys(shardedFiles).filter((f) => f.startsWith("model-")).flatMap((f) => [...readSafetensors(path.join(dir, f)).tensors.keys()]);
  assert.deepEqual(names.sort(), [...readSafetensors(path.join(hfFixture("gpt2"), "model.safetensors")).tensors.keys()].sort());
  hub.requests.length = 0;
  await resolvePretrained(SHARDED, opts(cache));
  assert.equal(hub.requests.length, 1, "a second call only asks where main points");
});

test("offline mode (option, HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE) resolves from the cache with no request", async () => {
  const cache = tempDir("cache");
  const dir = await resolvePretrained(SHARDED, opts(cache));
  hub.requests.length = 0;
  assert.equal(await resolvePretrained(SHARDED, opts(cache, { offline: true })), dir);
  process.env.HF_HUB_OFFLINE = "1";
  assert.equal(await resolvePretrained(SHARDED, opts(cache)), dir);
  delete process.env.HF_HUB_OFFLINE;
  process.env.TRANSFORMERS_OFFLINE = "true";
  assert.equal(await resolvePretrained(SHARDED, opts(cache)), dir);
  assert.equal(hub.requests.length, 0);
  assert.equal(await resolvePretrained(SHARDED, opts(cache, { offline: false })), dir, "the option beats the environment");
  assert.equal(hub.requests.length, 1);
});

test("offline mode fails clearly when the revision is not cached or incomplete", async () => {
  const cache = tempDir("cache");
  const err = await resolvePretrained(GPT2, opts(cache, { offline: true })).catch((e: unknown) => e);
  assert.ok(err instanceof ArrakisError);
  for (const part of [GPT2, '"main"', cache, "HF_HUB_OFFLINE"]) assert.ok(err.message.includes(part), `${part} in: ${err.message}`);
  assert.equal(hub.requests.length, 0);

  const dir = await resolvePretrained(SHARDED, opts(cache));
  fs.rmSync(path.join(dir, "model-00002-of-00002.safetensors"));
  await assert.rejects(resolvePretrained(SHARDED, opts(cache, { offline: true })), /lacks model-00002-of-00002\.safetensors/);
  await assert.rejects(resolvePretrained(SHARDED, opts(cache, { offline: true, revision: "v9" })), /revision "v9" is not in the cache/);
});

test("404 errors name the repo, the revision or the file", async () => {
  const cache = tempDir("cache");
  await assert.rejects(resolvePretrained("test-org/nope", opts(cache)), /Hub repo "test-org\/nope" not found at http:\/\/127\.0\.0\.1/);
  await assert.rejects(resolvePretrained(GPT2, opts(cache, { revision: "no-such-branch" })), /revision "no-such-branch" not found in Hub repo "openai-community\/gpt2"/);
  await assert.rejects(resolvePretrained("test-org/no-config", opts(cache)), /file "config.json" is not in Hub repo "test-org\/no-config"/);
  await assert.rejects(resolvePretrained("test-org/no-weights", opts(cache)), /"test-org\/no-weights".* has neither model\.safetensors nor model\.safetensors\.index\.json/);
  assert.equal(fs.existsSync(path.join(repoDir(cache, "test-org/no-weights"), "refs")), false, "no ref to an incomplete snapshot");
});

test("401/403 on private and gated repos mention the token; a valid token works and never reaches the CDN", async () => {
  const cache = tempDir("cache");
  await assert.rejects(resolvePretrained("test-org/private", opts(cache)), /HTTP 401 .*"test-org\/private".*needs a token\. No token was sent: set HF_TOKEN/);
  await assert.rejects(resolvePretrained("test-org/gated", opts(cache)), /HTTP 401 .*"test-org\/gated".*gated/);
  await assert.rejects(resolvePretrained("test-org/gated", opts(cache, { token: "hf_wrong" })), /HTTP 403 .*gated.*A token was sent \(from the token option\)/);
  const err = await resolvePretrained("test-org/gated", opts(cache, { token: "hf_wrong" })).catch((e: Error) => e);
  assert.ok(!String(err).includes("hf_wrong"), "the token is never printed");

  hub.requests.length = 0;
  await resolvePretrained("test-org/private", opts(cache, { token: hub.token }));
  assert.ok(hub.requests.filter((r) => r.server === "hub").every((r) => r.authorization === `Bearer ${hub.token}`));
  const cdn = hub.requests.filter((r) => r.server === "cdn");
  assert.ok(cdn.length > 0 && cdn.every((r) => r.authorization === null), "the token stays with the endpoint");

  process.env.HF_TOKEN = hub.token;
  await resolvePretrained("test-org/gated", opts(tempDir("cache")));
  delete process.env.HF_TOKEN;
  fs.writeFileSync(path.join(process.env.HF_HOME!, "token"), `${hub.token}\n`); // what `hf auth login` writes
  await resolvePretrained("test-org/gated", opts(tempDir("cache")));
});

/** A loopback URL where nothing listens. */
async function deadEndpoint(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

test("no network: the error names the endpoint and suggests HF_HUB_OFFLINE; a cached revision is used instead", async () => {
  const cache = tempDir("cache");
  const endpoint = await deadEndpoint();
  const err = await resolvePretrained(GPT2, { cacheDir: cache, endpoint }).catch((e: unknown) => e);
  assert.ok(err instanceof ArrakisError);
  assert.match(err.message, /cannot reach the Hugging Face Hub at http:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/);
  assert.ok(err.message.includes(endpoint) && err.message.includes("HF_HUB_OFFLINE") && err.message.includes(GPT2));

  const dir = await resolvePretrained(GPT2, opts(cache));
  assert.equal(await resolvePretrained(GPT2, { cacheDir: cache, endpoint }), dir);
});

test("an interrupted download leaves nothing under the final name and the next call resumes with Range", async () => {
  const cache = tempDir("cache");
  const blobs = path.join(repoDir(cache, GPT2), "blobs");
  const etag = sha256(gpt2Files["model.safetensors"]);
  hub.faults = { ...hub.faults, drops: 100, dropAfterBytes: 100_000 };
  await assert.rejects(resolvePretrained(GPT2, opts(cache)), /download of "model.safetensors" .* was interrupted after \d+ of 566856 bytes/);
  assert.equal(fs.existsSync(path.join(blobs, etag)), false);
  const partial = fs.statSync(path.join(blobs, `${etag}.incomplete`)).size;
  assert.ok(partial > 0 && partial < gpt2Files["model.safetensors"].length, `partial size ${partial}`);
  assert.equal(fs.existsSync(path.join(repoDir(cache, GPT2), "snapshots", MAIN, "model.safetensors")), false);
  assert.equal(fs.existsSync(path.join(repoDir(cache, GPT2), "refs", "main")), false);
  assert.equal(hub.requests.filter((r) => r.server === "cdn").length, 3, "bounded: three attempts");

  hub.faults.drops = 0;
  hub.requests.length = 0;
  const dir = await resolvePretrained(GPT2, opts(cache));
  const cdn = hub.requests.filter((r) => r.server === "cdn");
  assert.deepEqual(cdn.map((r) => r.range), [`bytes=${partial}-`]);
  assert.ok(fs.readFileSync(path.join(dir, "model.safetensors")).equals(gpt2Files["model.safetensors"]));
  assert.deepEqual(fs.readdirSync(blobs).filter((f) => f.endsWith(".incomplete")), []);
});

test("a connection dropped once is resumed within the same call", async () => {
  const cache = tempDir("cache");
  hub.faults = { ...hub.faults, drops: 1, dropAfterBytes: 200_000 };
  const dir = await resolvePretrained(GPT2, opts(cache));
  const cdn = hub.requests.filter((r) => r.server === "cdn");
  assert.equal(cdn.length, 2);
  assert.equal(cdn[0].range, null);
  assert.match(cdn[1].range ?? "", /^bytes=[1-9]\d*-$/);
  assert.ok(fs.readFileSync(path.join(dir, "model.safetensors")).equals(gpt2Files["model.safetensors"]));
});

test("a wrong size or wrong content is detected and nothing is cached under the final name", async () => {
  const cache = tempDir("cache");
  const blobs = path.join(repoDir(cache, GPT2), "blobs");
  const size = gpt2Files["model.safetensors"].length;
  hub.faults.sizeDelta = 7;
  await assert.rejects(resolvePretrained(GPT2, opts(cache)), new RegExp(`received ${size} bytes but the server announced ${size + 7}; .*nothing was cached`));
  hub.faults.sizeDelta = -7; // announced smaller than what arrives
  await assert.rejects(resolvePretrained(GPT2, opts(cache)), new RegExp(`but the server announced ${size - 7}`));
  hub.faults.sizeDelta = 0;
  hub.faults.corrupt = true;
  await assert.rejects(resolvePretrained(GPT2, opts(cache)), /content sha256 [0-9a-f]{64} does not match the Hub's/);
  assert.deepEqual(fs.readdirSync(blobs).filter((f) => f.startsWith(sha256(gpt2Files["model.safetensors"]))), []);
  assert.equal(fs.existsSync(path.join(repoDir(cache, GPT2), "snapshots", MAIN, "model.safetensors")), false);
  hub.faults.corrupt = false;
  await resolvePretrained(GPT2, opts(cache)); // and a clean retry succeeds
});

test("HF_HUB_CACHE, HF_HOME and HF_ENDPOINT are read at call time; the cacheDir option wins", async () => {
  const a = tempDir("hub-cache");
  process.env.HF_ENDPOINT = hub.endpoint;
  process.env.HF_HUB_CACHE = a;
  assert.ok((await resolvePretrained(GPT2)).startsWith(path.join(a, "models--openai-community--gpt2")));
  delete process.env.HF_HUB_CACHE;
  const home = tempDir("hf-home");
  process.env.HF_HOME = home;
  assert.ok((await resolvePretrained(GPT2)).startsWith(path.join(home, "hub", "models--openai-community--gpt2")));
  process.env.HF_HUB_CACHE = a;
  const c = tempDir("option-cache");
  assert.ok((await resolvePretrained(GPT2, { cacheDir: c })).startsWith(c));
  process.env.HF_ENDPOINT = "ftp://example.invalid";
  await assert.rejects(resolvePretrained(GPT2, { cacheDir: c }), /Hub endpoint "ftp:\/\/example.invalid" must be an http\(s\) URL/);
});

test("a renamed repo's relative redirect is followed and the files are cached under the requested id", async () => {
  const cache = tempDir("cache");
  const dir = await resolvePretrained("old-org/gpt2", opts(cache));
  assert.equal(dir, path.join(repoDir(cache, "old-org/gpt2"), "snapshots", MAIN));
  assert.ok(fs.readFileSync(path.join(dir, "config.json")).equals(gpt2Files["config.json"]));
  assert.ok(hub.requests.some((r) => r.path.startsWith("/openai-community/gpt2/resolve/")));
});

test("files a Python user already downloaded (same layout, written by hand here) are reused", async () => {
  const cache = tempDir("cache");
  const repo = repoDir(cache, GPT2);
  fs.mkdirSync(path.join(repo, "blobs"), { recursive: true });
  fs.mkdirSync(path.join(repo, "snapshots", MAIN), { recursive: true });
  fs.mkdirSync(path.join(repo, "refs"), { recursive: true });
  for (const file of ["config.json", "model.safetensors", "tokenizer.json"]) {
    const etag = file.endsWith(".safetensors") ? sha256(gpt2Files[file]) : gitBlobSha1(gpt2Files[file]);
    fs.writeFileSync(path.join(repo, "blobs", etag), gpt2Files[file]);
    fs.symlinkSync(`../../blobs/${etag}`, path.join(repo, "snapshots", MAIN, file));
  }
  fs.writeFileSync(path.join(repo, "refs", "main"), MAIN);
  assert.equal(await resolvePretrained(GPT2, opts(cache, { offline: true })), path.join(repo, "snapshots", MAIN));
  assert.equal(await resolvePretrained(GPT2, opts(cache)), path.join(repo, "snapshots", MAIN));
  assert.equal(hub.dataRequests().length, 0);
});
