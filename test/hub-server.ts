/**
 * A small stand-in for the Hugging Face Hub on 127.0.0.1, speaking the parts of its protocol that
 * `src/io/hub.ts` relies on:
 *   HEAD/GET /{repo}/resolve/{revision}/{file}
 *     - regular files: 200, ETag = git blob sha1, X-Repo-Commit, Content-Length
 *     - LFS files (*.safetensors): 302 to a second server (another origin, like the CDN) with
 *       X-Linked-Etag = sha256, X-Linked-Size, X-Repo-Commit
 *     - errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo)
 *     - a renamed repo answers 307 with a relative Location
 *   GET /lfs/{sha256} on the CDN server, with Range support (206 + Content-Range)
 * and records every request so tests can count them. Faults (dropped connections, a wrong announced size,
 * corrupted bytes) are switched on per test.
 */
import * as http from "node:http";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AddressInfo } from "node:net";
import { createHash } from "node:crypto";

export interface FakeRepo {
  /** Branch or tag name -> commit hash. */
  refs: Record<string, string>;
  /** Commit hash -> file name -> contents. */
  commits: Record<string, Record<string, Buffer>>;
  access?: "public" | "private" | "gated";
}

export interface RecordedRequest {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
}

export interface Faults {
  /** Number of CDN GETs still to cut off after `dropAfterBytes` bytes of the body. */
  drops: number;
  dropAfterBytes: number;
  /** Added to the X-Linked-Size the Hub announces (the body stays right). */
  sizeDelta: number;
  /** Flip one byte of every CDN body (same size, wrong content). */
  corrupt: boolean;
}

export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Git's blob id, which the Hub sends as the ETag of files not stored in LFS. */
export function gitBlobSha1(data: Buffer): string {
  return createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
}

/** A stable fake commit hash. */
export function fakeCommit(seed: string): string {
  return createHash("sha1").update(seed).digest("hex");
}

/** Reads the named files of a folder into a file map. */
export function filesOf(dir: string, names: string[]): Record<string, Buffer> {
  return Object.fromEntries(names.map((n) => [n, fs.readFileSync(path.join(dir, n))]));
}

const isLfs = (file: string) => file.endsWith(".safetensors");

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  /** Old repo id -> new repo id (the Hub redirects renamed repositories). */
  readonly renamed = new Map<string, string>();
  readonly requests: RecordedRequest[] = [];
  faults: Faults = { drops: 0, dropAfterBytes: 0, sizeDelta: 0, corrupt: false };
  /** The token private and gated repos accept. */
  token = "hf_fake_token_for_tests";
  private readonly blobs = new Map<string, Buffer>();
  private hub!: http.Server;
  private cdn!: http.Server;
  endpoint = "";
  cdnOrigin = "";

  static async start(): Promise<FakeHub> {
    const f = new FakeHub();
    f.hub = http.createServer((req, res) => f.serveHub(req, res));
    f.cdn = http.createServer((req, res) => f.serveCdn(req, res));
    f.endpoint = await listen(f.hub);
    f.cdnOrigin = await listen(f.cdn);
    return f;
  }

  addRepo(id: string, repo: FakeRepo): void {
    this.repos.set(id, repo);
    for (const files of Object.values(repo.commits)) for (const data of Object.values(files)) this.blobs.set(sha256(data), data);
  }

  /** GET requests that carry file contents (not redirects, not HEAD). */
  dataRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === "GET");
  }

  async close(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }

  private record(server: "hub" | "cdn", req: http.IncomingMessage): void {
    const h = req.headers;
    this.requests.push({
      server,
      method: req.method ?? "",
      path: req.url ?? "",
      range: typeof h.range === "string" ? h.range : null,
      authorization: typeof h.authorization === "string" ? h.authorization : null,
    });
  }

  private serveHub(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record("hub", req);
    const raw = req.url ?? "";
    const at = raw.indexOf("/resolve/");
    if (at < 0) return end(res, 404, {}, "not a resolve URL");
    const repoId = raw.slice(1, at);
    const rest = raw.slice(at + "/resolve/".length);
    const renamedTo = this.renamed.get(repoId);
    if (renamedTo) return end(res, 307, { Location: `/${renamedTo}/resolve/${rest}` });
    const repo = this.repos.get(repoId);
    if (!repo) return end(res, 404, { "X-Error-Code": "RepoNotFound" });
    const denied = this.checkAccess(repo, req.headers.authorization);
    if (denied) return end(res, denied.status, { "X-Error-Code": denied.code });
    const slash = rest.indexOf("/");
    const revision = decodeURIComponent(rest.slice(0, slash));
    const file = rest.slice(slash + 1).split("/").map(decodeURIComponent).join("/");
    const commit = repo.refs[revision] ?? (repo.commits[revision] ? revision : undefined);
    if (!commit) return end(res, 404, { "X-Error-Code": "RevisionNotFound" });
    const data = repo.commits[commit][file];
    if (!data) return end(res, 404, { "X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit });
    if (isLfs(file)) {
      // Like the Hub: the LFS file lives elsewhere; its identity comes with the redirect.
      return end(res, 302, {
        Location: `${this.cdnOrigin}/lfs/${sha256(data)}`,
        "X-Repo-Commit": commit,
        "X-Linked-Etag": `"${sha256(data)}"`,
        "X-Linked-Size": String(data.length + this.faults.sizeDelta),
        ETag: `"${gitBlobSha1(Buffer.from("pointer " + file))}"`, // the pointer's etag, must not be used
      });
    }
    res.writeHead(200, { "X-Repo-Commit": commit, ETag: `"${gitBlobSha1(data)}"`, "Content-Length": data.length });
    res.end(req.method === "HEAD" ? undefined : data);
  }

  private checkAccess(repo: FakeRepo, auth: string | undefined): { status: number; code: string } | null {
    const ok = auth === `Bearer ${this.token}`;
    if (repo.access === "private" && !ok) return { status: 401, code: "RepoNotFound" };
    if (repo.access === "gated" && !ok) return auth ? { status: 403, code: "GatedRepo" } : { status: 401, code: "GatedRepo" };
    return null;
  }

  private serveCdn(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record("cdn", req);
    const m = /^\/lfs\/([0-9a-f]{64})$/.exec(req.url ?? "");
    const data = m ? this.blobs.get(m[1]) : undefined;
    if (!data) return end(res, 404, {});
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const from = range ? Number(range[1]) : 0;
    if (from > data.length) return end(res, 416, { "Content-Range": `bytes */${data.length}` });
    let body = data.subarray(from);
    if (this.faults.corrupt && body.length > 0) {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    const headers: http.OutgoingHttpHeaders = { "Content-Length": body.length, "Accept-Ranges": "bytes" };
    if (range) headers["Content-Range"] = `bytes ${from}-${data.length - 1}/${data.length}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === "HEAD") return void res.end();
    if (this.faults.drops > 0) {
      // Send part of the body, then cut the connection as a flaky network would.
      this.faults.drops--;
      res.write(body.subarray(0, this.faults.dropAfterBytes), () => res.socket?.destroy());
      return;
    }
    res.end(body);
  }
}

function end(res: http.ServerResponse, status: number, headers: http.OutgoingHttpHeaders, body = ""): void {
  res.writeHead(status, { ...headers, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}
