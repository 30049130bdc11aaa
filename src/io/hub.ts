/**
 * Loading checkpoints from the Hugging Face Hub into the cache that `huggingface_hub` (and so transformers)
 * uses, so files a Python user already downloaded are reused and ours are reused by Python.
 *
 * Layout (Hub docs, "Hub Local Cache"), under the cache folder (HF_HUB_CACHE, else $HF_HOME/hub):
 *   models--{org}--{name}/blobs/{etag}                 file contents, named by the Hub etag
 *                                                      (sha256 for LFS files, git sha1 for the others)
 *   models--{org}--{name}/blobs/{etag}.incomplete      a download in progress (resumed with a Range request)
 *   models--{org}--{name}/snapshots/{commit}/{file}    relative symlink to ../../blobs/{etag}
 *   models--{org}--{name}/refs/{revision}              the commit hash the branch/tag pointed to
 *   models--{org}--{name}/.no_exist/{commit}/{file}    empty marker: the optional file is not in that commit
 *
 * Protocol: `{endpoint}/{repo_id}/resolve/{revision}/{filename}`. A HEAD request tells the commit
 * (X-Repo-Commit), the etag (X-Linked-Etag, else ETag) and the size (X-Linked-Size, else Content-Length);
 * same-origin redirects (renamed repos) are followed, a cross-origin one (LFS files on a CDN) is where the
 * data is fetched from, without the token.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { ArrakisError, fail, show } from "../errors";
import { isPlainRelativeName } from "./relative-name";

export interface HubProgress {
  file: string;
  loaded: number;
  total: number | null;
}

export interface HubOptions {
  /** Branch, tag or commit; default "main". */
  revision?: string;
  /** Default: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Default: HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default: HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE=1). */
  offline?: boolean;
  /** Default: HF_TOKEN, else the token file under HF_HOME. */
  token?: string;
  /** Called as bytes arrive; nothing is printed by default. */
  onProgress?: (p: HubProgress) => void;
}

export const DEFAULT_ENDPOINT = "https://huggingface.co";
export const DEFAULT_REVISION = "main";
/** Fetched when present; a 404 on them is fine (recorded in .no_exist like huggingface_hub does). */
export const OPTIONAL_FILES: readonly string[] = ["tokenizer.json", "tokenizer_config.json"];
const SINGLE_WEIGHTS = "model.safetensors";
const WEIGHTS_INDEX = "model.safetensors.index.json";

/** Bounds: redirect hops per request, download attempts per file (each later one resumes). */
const MAX_REDIRECTS = 10;
const MAX_ATTEMPTS = 3;
/** huggingface_hub's defaults (HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT), in seconds. */
const DEFAULT_METADATA_TIMEOUT_S = 10;
const DEFAULT_DOWNLOAD_TIMEOUT_S = 10;
/** huggingface_hub's truthy spellings for boolean environment variables. */
const TRUE_VALUES = new Set(["1", "ON", "YES", "TRUE"]);

// ---------------------------------------------------------------------------------------------------------
// Settings: options first, then the environment read at call time (so tests and notebooks can change it).

interface Settings {
  revision: string;
  cacheDir: string;
  endpoint: string;
  offline: boolean;
  token: string | null;
  /** Where the token came from, for error messages (the token itself is never printed). */
  tokenSource: string | null;
  onProgress: ((p: HubProgress) => void) | null;
  metadataTimeoutMs: number;
  downloadTimeoutMs: number;
}

type Env = Record<string, string | undefined>;

function envValue(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === "" ? undefined : v;
}

function envFlag(env: Env, name: string): boolean {
  return TRUE_VALUES.has((envValue(env, name) ?? "").toUpperCase());
}

function expandHome(p: string): string {
  return p === "~" || p.startsWith("~/") ? path.join(os.homedir(), p.slice(1)) : p;
}

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (as huggingface_hub). */
export function hfHomeDir(env: Env = process.env): string {
  const home = envValue(env, "HF_HOME");
  if (home) return expandHome(home);
  return path.join(expandHome(envValue(env, "XDG_CACHE_HOME") ?? "~/.cache"), "huggingface");
}

/** The Hub cache folder: HF_HUB_CACHE (or its old name HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub. */
export function hubCacheDir(env: Env = process.env): string {
  const direct = envValue(env, "HF_HUB_CACHE") ?? envValue(env, "HUGGINGFACE_HUB_CACHE");
  return direct ? expandHome(direct) : path.join(hfHomeDir(env), "hub");
}

/** Token from the option, HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the file `hf auth login` writes. */
function findToken(opts: HubOptions, env: Env): { token: string | null; source: string | null } {
  if (opts.token !== undefined) return { token: opts.token.trim() || null, source: "the token option" };
  for (const name of ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]) {
    const v = envValue(env, name)?.trim();
    if (v) return { token: v, source: name };
  }
  const file = expandHome(envValue(env, "HF_TOKEN_PATH") ?? path.join(hfHomeDir(env), "token"));
  try {
    const v = fs.readFileSync(file, "utf8").trim();
    if (v) return { token: v, source: `the token file ${file}` };
  } catch {
    // No token file: anonymous access, which is what public repos need.
  }
  return { token: null, source: null };
}

function timeoutMs(env: Env, name: string, fallbackS: number): number {
  const raw = envValue(env, name);
  const s = raw === undefined ? NaN : Number(raw);
  return (Number.isFinite(s) && s > 0 ? s : fallbackS) * 1000;
}

function checkEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    fail(`Hub endpoint ${show(endpoint)} is not a URL; expected e.g. "https://huggingface.co" (option endpoint or HF_ENDPOINT)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    fail(`Hub endpoint ${show(endpoint)} must be an http(s) URL (option endpoint or HF_ENDPOINT)`);
  }
  return endpoint.replace(/\/+$/, "");
}

function hubSettings(opts: HubOptions, env: Env = process.env): Settings {
  const revision = opts.revision ?? DEFAULT_REVISION;
  checkRelativeName("revision", revision);
  if (opts.cacheDir !== undefined && (typeof opts.cacheDir !== "string" || opts.cacheDir === "")) {
    fail(`cacheDir must be a non-empty folder path, got ${show(opts.cacheDir)}`);
  }
  const { token, source } = findToken(opts, env);
  return {
    revision,
    cacheDir: path.resolve(opts.cacheDir !== undefined ? expandHome(opts.cacheDir) : hubCacheDir(env)),
    endpoint: checkEndpoint(opts.endpoint ?? envValue(env, "HF_ENDPOINT") ?? DEFAULT_ENDPOINT),
    offline: opts.offline ?? (envFlag(env, "HF_HUB_OFFLINE") || envFlag(env, "TRANSFORMERS_OFFLINE")),
    token,
    tokenSource: source,
    onProgress: opts.onProgress ?? null,
    metadataTimeoutMs: timeoutMs(env, "HF_HUB_ETAG_TIMEOUT", DEFAULT_METADATA_TIMEOUT_S),
    downloadTimeoutMs: timeoutMs(env, "HF_HUB_DOWNLOAD_TIMEOUT", DEFAULT_DOWNLOAD_TIMEOUT_S),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Names. Everything that becomes a path inside the cache is checked, so a hostile server or index file
// cannot write outside the repo folder.

/**
 * True for a Hub model id, "name" or "org/name": parts of letters, digits, "_", "-", ".", starting and ending
 * with a letter, digit or "_", no "--" or "..", name at most 96 characters (the Hub's own rules). A pure
 * syntax check: `resolvePretrained` prefers an existing local directory of the same name.
 */
export function isHubId(s: string): boolean {
  if (typeof s !== "string") return false;
  const m = /^(?:([\w.-]+)\/)?([\w.-]+)$/.exec(s);
  if (!m) return false;
  if (s.includes("--") || s.includes("..") || s.endsWith(".git")) return false;
  const part = /^\w(?:[\w.-]*\w)?$/;
  return (m[1] === undefined || part.test(m[1])) && part.test(m[2]) && m[2].length <= 96;
}

/** A relative path with "/" separators and no empty, "." or ".." parts (revision names, repo file names). */
function checkRelativeName(what: string, name: unknown): string {
  if (!isPlainRelativeName(name)) fail(`${what} ${show(name)} is not a valid relative name (expected e.g. "main", "v1.0" or "refs/pr/1")`);
  return name;
}

/** One path component we got from the server (commit hash, etag). */
function checkServerToken(what: string, value: string, url: URL): string {
  if (!/^[A-Za-z0-9._-]+$/.test(value) || value === "." || value === "..") {
    fail(`the Hub at ${url.origin} sent ${what} ${show(value)} for ${url.pathname}; expected a hex hash`);
  }
  return value;
}

/** "openai-community/gpt2" -> "models--openai-community--gpt2" (the repo type pluralised, "/" -> "--"). */
export function repoFolderName(repoId: string): string {
  return ["models", ...repoId.split("/")].join("--");
}

function isCommitHash(s: string): boolean {
  return /^[0-9a-f]{40}$/.test(s);
}

/** ETag normalisation as huggingface_hub: drop a weak "W/" prefix and the quotes. */
function normalizeEtag(raw: string): string {
  return raw.trim().replace(/^W\//, "").replace(/^"+|"+$/g, "");
}

// ---------------------------------------------------------------------------------------------------------
// Cache paths and small file helpers.

interface Ctx {
  repoId: string;
  settings: Settings;
  repoDir: string;
  /** The commit the revision resolved to, learnt from the first response; later files are fetched at it. */
  commit: string | null;
}

function snapshotDir(ctx: Ctx, commit: string): string {
  return path.join(ctx.repoDir, "snapshots", commit);
}

function inSnapshot(ctx: Ctx, commit: string, file: string): string {
  return path.join(snapshotDir(ctx, commit), ...file.split("/"));
}

function noExistMarker(ctx: Ctx, commit: string, file: string): string {
  return path.join(ctx.repoDir, ".no_exist", commit, ...file.split("/"));
}

function refFile(ctx: Ctx): string {
  return path.join(ctx.repoDir, "refs", ...ctx.settings.revision.split("/"));
}

function sizeOrNull(p: string): number | null {
  try {
    return fs.statSync(p).size;
  } catch {
    return null;
  }
}

function readTextOrNull(p: string): string | null {
  try {
    return fs.readFileSync(p, "utf8");
  } catch {
    return null;
  }
}

/** Writes a small file atomically (temporary name, then rename), so readers never see half of it. */
function writeAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function where(ctx: Ctx): string {
  return `Hub repo ${show(ctx.repoId)} (revision ${show(ctx.settings.revision)}) at ${ctx.settings.endpoint}`;
}

// ---------------------------------------------------------------------------------------------------------
// HTTP.

/** The endpoint could not be reached at all (DNS, refused, timeout): distinct so we may fall back to the cache. */
class HubNetworkError extends ArrakisError {}
/** A transfer stopped half-way: the .incomplete file is kept and the next attempt resumes from it. */
class HubInterruptedError extends ArrakisError {}

function describeFailure(e: unknown): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === "TimeoutError" || err?.name === "AbortError") return "timed out";
  return err?.cause?.message ?? err?.cause?.code ?? err?.message ?? String(e); // "connect ECONNREFUSED 127.0.0.1:80"
}

function networkError(ctx: Ctx, url: URL, file: string, e: unknown): HubNetworkError {
  const host = url.origin === new URL(ctx.settings.endpoint).origin ? "" : ` (while contacting ${url.origin})`;
  return new HubNetworkError(
    `cannot reach the Hugging Face Hub at ${ctx.settings.endpoint}${host}: ${describeFailure(e)}, ` +
      `fetching ${show(file)} of Hub repo ${show(ctx.repoId)}. Check the network or HF_ENDPOINT; ` +
      `to use only files already in the cache set HF_HUB_OFFLINE=1 or pass { offline: true }.`,
  );
}

function requestHeaders(ctx: Ctx, url: URL, extra: Record<string, string>): Record<string, string> {
  // identity: sizes must match the bytes on disk, so no transparent decompression.
  const h: Record<string, string> = { "User-Agent": "arrakis-ts (huggingface_hub cache compatible)", "Accept-Encoding": "identity", ...extra };
  // The token only goes to the endpoint itself, never to a CDN it redirects to.
  if (ctx.settings.token && url.origin === new URL(ctx.settings.endpoint).origin) h.Authorization = `Bearer ${ctx.settings.token}`;
  return h;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

interface Fetched {
  response: Response;
  /** The URL that answered. */
  url: URL;
  /** Set when we stopped at a cross-origin redirect: where the data lives. */
  location: URL | null;
}

/**
 * One request with redirects handled by hand: `fetch` would follow them all and lose the Hub's headers
 * (X-Repo-Commit etc. come with the redirect to the CDN) and we decide where the token may go.
 */
async function request(
  ctx: Ctx,
  file: string,
  start: URL,
  init: { method: "HEAD" | "GET"; headers?: Record<string, string>; signal: AbortSignal; stopAtOtherOrigin: boolean },
): Promise<Fetched> {
  let url = start;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    let response: Response;
    try {
      response = await fetch(url, { method: init.method, headers: requestHeaders(ctx, url, init.headers ?? {}), redirect: "manual", signal: init.signal });
    } catch (e) {
      throw networkError(ctx, url, file, e);
    }
    const location = response.headers.get("location");
    if (!isRedirect(response.status) || location === null) return { response, url, location: null };
    const next = new URL(location, url);
    await response.body?.cancel();
    if (init.stopAtOtherOrigin && next.origin !== url.origin) return { response, url, location: next };
    url = next;
  }
  fail(`more than ${MAX_REDIRECTS} redirects fetching ${show(file)} from ${where(ctx)}, last at ${url.href}`);
}

function tokenHint(ctx: Ctx): string {
  return ctx.settings.token
    ? `A token was sent (from ${ctx.settings.tokenSource}) but it does not give access to this repository.`
    : "No token was sent: set HF_TOKEN, log in with `hf auth login` (writes $HF_HOME/token), or pass { token }.";
}

/** Turns an HTTP error into a message naming the repo, revision or file (X-Error-Code tells them apart). */
function httpError(ctx: Ctx, file: string, response: Response, url: URL): never {
  const code = response.headers.get("x-error-code");
  const status = response.status;
  if (status === 401 || status === 403) {
    const gated = code === "GatedRepo" || status === 403;
    const what = gated
      ? `the repository is gated or private: accept its conditions at ${ctx.settings.endpoint}/${ctx.repoId} and use a token of that account.`
      : "the repository does not exist, or it is private or gated and needs a token.";
    fail(`HTTP ${status} for ${show(file)} from ${where(ctx)}: ${what} ${tokenHint(ctx)}`);
  }
  if (status === 404 && code === "RepoNotFound") {
    fail(`Hub repo ${show(ctx.repoId)} not found at ${ctx.settings.endpoint} (HTTP 404). Check the id ("org/name"); if the repository is private, pass a token.`);
  }
  if (status === 404 && code === "RevisionNotFound") {
    fail(`revision ${show(ctx.settings.revision)} not found in Hub repo ${show(ctx.repoId)} at ${ctx.settings.endpoint} (HTTP 404); expected an existing branch, tag or commit hash`);
  }
  if (status === 404) {
    const which = code === "EntryNotFound" ? `file ${show(file)} is not in the repository` : "the repository, revision or file does not exist";
    fail(`HTTP 404 for ${url.href}: ${which} (${where(ctx)})`);
  }
  const detail = response.headers.get("x-error-message");
  fail(`HTTP ${status} ${response.statusText} for ${url.href} while fetching ${show(file)} from ${where(ctx)}${detail ? `: ${detail}` : ""}`);
}

function resolveUrl(ctx: Ctx, revision: string, file: string): URL {
  // The revision is one path segment ("refs/pr/1" -> "refs%2Fpr%2F1"); the file keeps its "/".
  const encodedFile = file.split("/").map(encodeURIComponent).join("/");
  return new URL(`${ctx.settings.endpoint}/${ctx.repoId}/resolve/${encodeURIComponent(revision)}/${encodedFile}`);
}

interface FileMeta {
  commit: string;
  etag: string;
  size: number | null;
  /** Where to GET the bytes. */
  location: URL;
}

function parseSize(raw: string | null): number | null {
  if (raw === null || !/^\d+$/.test(raw.trim())) return null;
  return Number(raw.trim());
}

/** HEAD: the file's commit, etag and size; null when the file is not in the repository (404). */
async function fileMetadata(ctx: Ctx, revision: string, file: string): Promise<FileMeta | null> {
  const start = resolveUrl(ctx, revision, file);
  const signal = AbortSignal.timeout(ctx.settings.metadataTimeoutMs);
  const { response, url, location } = await request(ctx, file, start, { method: "HEAD", signal, stopAtOtherOrigin: true });
  const notFound = response.status === 404;
  const entryMissing = response.headers.get("x-error-code") === "EntryNotFound" || (ctx.commit !== null && !response.headers.get("x-error-code"));
  if (notFound && entryMissing) return null; // the repo and revision exist (known or said), the file does not
  if (!response.ok && location === null) httpError(ctx, file, response, url);
  const h = response.headers;
  const commit = h.get("x-repo-commit");
  const etag = h.get("x-linked-etag") ?? h.get("etag");
  if (!commit || !etag) {
    fail(`${url.href} answered without ${!commit ? "X-Repo-Commit" : "an ETag"}: is ${ctx.settings.endpoint} a Hugging Face Hub (HF_ENDPOINT)?`);
  }
  return {
    commit: checkServerToken("commit", commit, url),
    etag: checkServerToken("etag", normalizeEtag(etag), url),
    size: parseSize(h.get("x-linked-size") ?? h.get("content-length")),
    location: location ?? url,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Downloading one blob: into blobs/{etag}.incomplete, resumed with Range, size- and hash-checked, renamed.

/** Aborts the transfer when no byte arrived for `ms` (a stalled connection would otherwise hang forever). */
function stallWatchdog(ms: number): { signal: AbortSignal; poke: () => void; stop: () => void } {
  const ac = new AbortController();
  let timer = setTimeout(() => ac.abort(), ms);
  return {
    signal: ac.signal,
    poke: () => {
      clearTimeout(timer);
      timer = setTimeout(() => ac.abort(), ms);
    },
    stop: () => clearTimeout(timer),
  };
}

/** Start offset of a 206 answer ("bytes 100-199/200"), null if the header is missing or malformed. */
function contentRangeStart(response: Response): number | null {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
  return m ? Number(m[1]) : null;
}

async function streamToFile(ctx: Ctx, file: string, meta: FileMeta, response: Response, partial: string, offset: number, poke: () => void): Promise<void> {
  const body = response.body ?? fail(`empty response body for ${show(file)} from ${where(ctx)}`);
  const report = ctx.settings.onProgress;
  const fd = fs.openSync(partial, offset > 0 ? "a" : "w");
  let loaded = offset;
  try {
    report?.({ file, loaded, total: meta.size });
    const reader = body.getReader();
    // Ends with the body; the watchdog aborts a stall, and the size guard stops a body longer than announced.
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new HubInterruptedError(
          `download of ${show(file)} from ${where(ctx)} was interrupted after ${loaded} of ${meta.size ?? "?"} bytes ` +
            `(${describeFailure(e)}); the partial file ${partial} is kept and the next call resumes from it`,
        );
      }
      if (chunk.done) break;
      fs.writeSync(fd, chunk.value);
      loaded += chunk.value.byteLength;
      poke();
      report?.({ file, loaded, total: meta.size });
      if (meta.size !== null && loaded > meta.size) {
        await reader.cancel();
        break; // verifyBlob reports the mismatch and removes the file
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** One GET of the remaining bytes (Range from what the .incomplete file already holds). */
async function downloadAttempt(ctx: Ctx, file: string, meta: FileMeta, partial: string): Promise<void> {
  let offset = sizeOrNull(partial) ?? 0;
  if (meta.size !== null && offset > meta.size) offset = 0; // longer than the file: stale, start over
  if (meta.size !== null && offset === meta.size) return; // all bytes already there
  const watchdog = stallWatchdog(ctx.settings.downloadTimeoutMs);
  try {
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    const { response, url } = await request(ctx, file, meta.location, { method: "GET", headers, signal: watchdog.signal, stopAtOtherOrigin: false });
    if (response.status === 416) {
      await response.body?.cancel();
      fs.rmSync(partial, { force: true }); // the server cannot continue this file: the next attempt starts over
      throw new HubInterruptedError(`the server refused to resume ${show(file)} at byte ${offset} (HTTP 416)`);
    }
    if (!response.ok) httpError(ctx, file, response, url);
    // 200 to a Range request: the server sends the whole file, so we rewrite it from the start.
    const start = response.status === 206 ? contentRangeStart(response) : 0;
    if (start !== 0 && start !== offset) {
      await response.body?.cancel();
      fail(`${url.href} answered the range bytes=${offset}- with Content-Range ${show(response.headers.get("content-range"))}`);
    }
    await streamToFile(ctx, file, meta, response, partial, start ?? 0, watchdog.poke);
  } finally {
    watchdog.stop();
  }
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Size (always, when announced) and sha256 (LFS etags are the content's sha256); a bad file is deleted. */
async function verifyBlob(ctx: Ctx, file: string, meta: FileMeta, partial: string): Promise<void> {
  const got = sizeOrNull(partial) ?? 0;
  if (meta.size !== null && got !== meta.size) {
    fs.rmSync(partial, { force: true });
    fail(`${show(file)} from ${where(ctx)}: received ${got} bytes but the server announced ${meta.size}; the download was discarded and nothing was cached, try again`);
  }
  if (/^[0-9a-f]{64}$/.test(meta.etag)) {
    const sha = await sha256File(partial);
    if (sha !== meta.etag) {
      fs.rmSync(partial, { force: true });
      fail(`${show(file)} from ${where(ctx)}: content sha256 ${sha} does not match the Hub's ${meta.etag}; the download was discarded and nothing was cached, try again`);
    }
  }
}

async function downloadBlob(ctx: Ctx, file: string, meta: FileMeta, blob: string): Promise<void> {
  fs.mkdirSync(path.dirname(blob), { recursive: true });
  const partial = `${blob}.incomplete`;
  for (let attempt = 1; ; attempt++) {
    try {
      await downloadAttempt(ctx, file, meta, partial);
      break;
    } catch (e) {
      const transient = e instanceof HubInterruptedError || e instanceof HubNetworkError;
      if (!transient || attempt >= MAX_ATTEMPTS) throw e;
    }
  }
  await verifyBlob(ctx, file, meta, partial);
  fs.renameSync(partial, blob); // atomic: the final name only ever holds a complete, checked file
}

/** snapshots/{commit}/{file} -> relative link to the blob; a copy where symlinks are not allowed. */
function linkSnapshot(ctx: Ctx, commit: string, file: string, blob: string): void {
  const pointer = inSnapshot(ctx, commit, file);
  fs.mkdirSync(path.dirname(pointer), { recursive: true });
  const target = path.relative(path.dirname(pointer), blob);
  try {
    if (fs.readlinkSync(pointer) === target) return;
  } catch {
    // missing or not a link: (re)create below
  }
  const tmp = `${pointer}.tmp-${process.pid}-${Date.now()}`;
  try {
    fs.symlinkSync(target, tmp);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "EACCES" && code !== "ENOTSUP") throw e;
    fs.copyFileSync(blob, tmp); // huggingface_hub's degraded mode on filesystems without symlinks
  }
  fs.renameSync(tmp, pointer);
}

function writeRef(ctx: Ctx, commit: string): void {
  if (ctx.settings.revision === commit) return; // a commit needs no ref (as huggingface_hub)
  const file = refFile(ctx);
  if (readTextOrNull(file)?.trim() === commit) return;
  writeAtomic(file, commit);
}

// ---------------------------------------------------------------------------------------------------------
// Files of a model.

type Need = "required" | "optional";

/**
 * Makes `file` present in the snapshot. Returns false when the Hub says it does not exist (allowed only for
 * optional files). Cached files cost one HEAD (to learn the commit a branch points to now) or nothing once
 * the commit is known.
 */
async function fetchFile(ctx: Ctx, file: string, need: Need): Promise<boolean> {
  if (ctx.commit !== null) {
    // Snapshots of a commit never change: what is there (or known absent) needs no request.
    if (fs.existsSync(inSnapshot(ctx, ctx.commit, file))) return true;
    if (need === "optional" && fs.existsSync(noExistMarker(ctx, ctx.commit, file))) return false;
  }
  const meta = await fileMetadata(ctx, ctx.commit ?? ctx.settings.revision, file);
  if (meta === null) {
    if (need === "required") fail(`file ${show(file)} is not in ${where(ctx)}; expected a transformers model repository`);
    if (ctx.commit !== null) writeAtomic(noExistMarker(ctx, ctx.commit, file), "");
    return false;
  }
  ctx.commit ??= meta.commit;
  const blob = path.join(ctx.repoDir, "blobs", meta.etag);
  const have = sizeOrNull(blob);
  if (have === null || (meta.size !== null && have !== meta.size)) await downloadBlob(ctx, file, meta, blob);
  linkSnapshot(ctx, meta.commit, file, blob);
  return true;
}

/** The shard file names an index names (unique, sorted), checked to stay inside the snapshot. */
function shardNames(indexFile: string, label: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(indexFile, "utf8"));
  } catch (e) {
    fail(`${label}: cannot read ${WEIGHTS_INDEX} (${(e as Error).message}); expected JSON with a "weight_map"`);
  }
  const map = (parsed as { weight_map?: unknown })?.weight_map;
  if (map === null || typeof map !== "object" || Array.isArray(map)) {
    fail(`${label}: ${WEIGHTS_INDEX} has no "weight_map" object mapping tensor names to shard files`);
  }
  const names = new Set<string>();
  for (const v of Object.values(map as Record<string, unknown>)) names.add(checkRelativeName(`shard file in ${WEIGHTS_INDEX}`, v));
  if (names.size === 0) fail(`${label}: ${WEIGHTS_INDEX} names no shard files`);
  return [...names].sort();
}

async function fetchWeights(ctx: Ctx): Promise<void> {
  // transformers' order: the single file first, then the sharded index.
  if (await fetchFile(ctx, SINGLE_WEIGHTS, "optional")) return;
  if (!(await fetchFile(ctx, WEIGHTS_INDEX, "optional"))) {
    fail(`${where(ctx)} has neither ${SINGLE_WEIGHTS} nor ${WEIGHTS_INDEX}; only safetensors checkpoints can be loaded (not pytorch_model.bin)`);
  }
  const commit = ctx.commit ?? fail(`internal: no commit known for ${where(ctx)}`);
  for (const shard of shardNames(inSnapshot(ctx, commit, WEIGHTS_INDEX), where(ctx))) await fetchFile(ctx, shard, "required");
}

/** What a snapshot lacks to be loadable (config and all weights); empty when complete. */
function missingFiles(dir: string): string[] {
  const missing: string[] = [];
  if (!fs.existsSync(path.join(dir, "config.json"))) missing.push("config.json");
  if (fs.existsSync(path.join(dir, SINGLE_WEIGHTS))) return missing;
  const index = path.join(dir, WEIGHTS_INDEX);
  if (!fs.existsSync(index)) return [...missing, `${SINGLE_WEIGHTS} (or ${WEIGHTS_INDEX})`];
  for (const shard of shardNames(index, dir)) if (!fs.existsSync(path.join(dir, ...shard.split("/")))) missing.push(shard);
  return missing;
}

/** Resolves from the cache alone: refs/{revision} -> snapshots/{commit}, which must be complete. */
function resolveFromCache(ctx: Ctx): string {
  const rev = ctx.settings.revision;
  const commit = isCommitHash(rev) ? rev : readTextOrNull(refFile(ctx))?.trim();
  const cacheHint = "Run once with network access (HF_HUB_OFFLINE unset), or point HF_HUB_CACHE / HF_HOME at a cache that has it.";
  if (!commit) {
    fail(`offline mode (HF_HUB_OFFLINE): Hub repo ${show(ctx.repoId)} at revision ${show(rev)} is not in the cache ${ctx.settings.cacheDir} (no ${refFile(ctx)}). ${cacheHint}`);
  }
  checkRelativeName("commit in the refs file", commit);
  const dir = snapshotDir(ctx, commit);
  const missing = missingFiles(dir);
  if (missing.length > 0) {
    fail(`offline mode (HF_HUB_OFFLINE): the cached snapshot of Hub repo ${show(ctx.repoId)} at revision ${show(rev)} (${dir}) lacks ${missing.join(", ")}. ${cacheHint}`);
  }
  return dir;
}

async function resolveOnline(ctx: Ctx): Promise<string> {
  if (isCommitHash(ctx.settings.revision)) ctx.commit = ctx.settings.revision;
  try {
    await fetchFile(ctx, "config.json", "required");
  } catch (e) {
    if (!(e instanceof HubNetworkError)) throw e;
    // As huggingface_hub: unreachable Hub but the revision is cached -> use the cache.
    try {
      return resolveFromCache(ctx);
    } catch {
      throw e;
    }
  }
  await fetchWeights(ctx);
  for (const file of OPTIONAL_FILES) await fetchFile(ctx, file, "optional");
  const commit = ctx.commit ?? fail(`internal: no commit known for ${where(ctx)}`);
  writeRef(ctx, commit); // last, so a ref only ever names a complete snapshot
  return snapshotDir(ctx, commit);
}

/**
 * A local directory is returned unchanged (never touches the network); a Hub id "org/name" or "name" is
 * downloaded into the standard cache layout and the snapshot folder is returned.
 */
export async function resolvePretrained(dirOrId: string, opts: HubOptions = {}): Promise<string> {
  if (typeof dirOrId !== "string" || dirOrId === "") {
    fail(`expected a local model directory or a Hub id like "openai-community/gpt2", got ${show(dirOrId)}`);
  }
  const stat = fs.statSync(dirOrId, { throwIfNoEntry: false });
  if (stat?.isDirectory()) return dirOrId;
  if (stat) fail(`${show(dirOrId)} is a file; expected a model directory (with config.json) or a Hub id like "openai-community/gpt2"`);
  if (!isHubId(dirOrId)) {
    fail(`${show(dirOrId)} is neither an existing directory nor a Hub id ("name" or "org/name" of letters, digits, "-", "_", ".")`);
  }
  const settings = hubSettings(opts);
  const ctx: Ctx = { repoId: dirOrId, settings, repoDir: path.join(settings.cacheDir, repoFolderName(dirOrId)), commit: null };
  return settings.offline ? resolveFromCache(ctx) : resolveOnline(ctx);
}
