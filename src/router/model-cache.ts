// The router's model file cache: the weights nodes download, so a fleet fetches each file from
// outside once. Generated (demo) models are written here at start-up; GGUF files are fetched
// from the catalog's URL on first demand, one upstream download per model however many nodes
// ask (single flight). A node asking while the fetch runs is held for up to `holdMs` and then
// told `503 model_caching` with the progress and a Retry-After; it polls until the file is here.
//
// Checksums: the catalog's `source.gguf.sha256` when given; otherwise the hash of the first
// complete download is pinned in `pins.json` (trust on first use) and every later download or
// re-verification must match it. `<file>.sha256` beside each file records the hash it was
// verified with; the file is trusted without hashing while it is not modified after that record.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import { EnvHttpProxyAgent, interceptors, type Dispatcher } from "undici";
import { writeTinyModel } from "../gguf/tiny-model.js";
import { Backoff, sleep } from "../node/backoff.js";
import type { Catalog, CatalogEntry } from "../protocol/catalog.js";
import { downloadFromUpstream, UpstreamError } from "./upstream-download.js";

export interface CachedFile {
  path: string;
  size: number;
  sha256: string;
  /** mtime when the file was verified: a later change means it must be verified again. */
  mtimeMs: number;
}

export type CacheState = "absent" | "fetching" | "cached" | "failed";
export type ChecksumOrigin = "catalog" | "pinned" | "generated";

/** One model's row in GET /api/cache. */
export interface ModelCacheStats {
  id: string;
  source: "generate" | "gguf" | "none";
  url?: string;
  state: CacheState;
  sizeBytes?: number;
  sha256?: string;
  sha256Origin?: ChecksumOrigin;
  /** While fetching: 0..1 when the upstream sent a length. */
  progress?: number;
  bytesDone?: number;
  bytesTotal?: number;
  lastError?: string;
  upstream: { fetches: number; requests: number; bytes: number; failures: number };
  served: { requests: number; bytes: number };
  /** Whole-file checks of the cached copy while serving it (in a worker thread, at most hourly). */
  verifications?: number;
}

export type FileLookup =
  | { status: "ready"; file: CachedFile }
  | { status: "pending"; message: string; retryAfterS: number }
  | { status: "failed"; message: string; retryAfterS: number }
  | { status: "unavailable"; message: string };

export interface ModelCacheOptions {
  /** For upstream downloads (default: honours HTTP(S)_PROXY/NO_PROXY, follows redirects). */
  dispatcher?: Dispatcher;
  /** How long a request waits for a running fetch before it is answered 503 (default 1 s). */
  holdMs?: number;
  /** After a failed fetch, demands within this time get the error instead of a new fetch (default 30 s). */
  failureCooldownMs?: number;
  /** Upstream retry delays (default 1 s doubling to 60 s) and attempts without progress (default 8). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  maxFailures?: number;
}

interface Pin {
  url: string;
  sha256: string;
  size: number;
  pinnedAt: string;
}

/**
 * A file name that cannot escape the cache directory, whatever the model id holds. Ids may hold
 * ":" and "/", replaced by "_"; when that changed the id, a short hash of the id keeps distinct
 * ids ("a/b", "a:b", "a_b") apart (the node's store names its files the same way).
 */
export function modelFileName(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_");
  if (safe === id) return `${safe}.gguf`;
  return `${safe}-${createHash("sha256").update(id).digest("hex").slice(0, 8)}.gguf`;
}

/** The name before ids were kept apart (a cache written by an older router). */
function legacyFileName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, "_") + ".gguf";
}

/** A served file is verified again (off the main thread) at most this often. */
const SERVE_VERIFY_INTERVAL_MS = 3_600_000;

/** sha256 of a file, computed in a worker thread so the router's event loop stays free. */
function sha256InWorker(path: string): Promise<string> {
  const code = `
    const { createHash } = require("node:crypto");
    const { createReadStream } = require("node:fs");
    const { parentPort, workerData } = require("node:worker_threads");
    const hash = createHash("sha256");
    createReadStream(workerData).on("data", (c) => hash.update(c)).on("error", (e) => { throw e; }).on("end", () => parentPort.postMessage(hash.digest("hex")));
  `;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: path });
    worker.once("message", (hex: string) => resolve(hex));
    worker.once("error", reject);
    worker.once("exit", (code) => code !== 0 && reject(new Error(`hash worker exited with ${code}`)));
  });
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function newStats(entry: CatalogEntry): ModelCacheStats {
  const source = entry.source.generate ? "generate" : entry.source.gguf ? "gguf" : "none";
  return {
    id: entry.id,
    source,
    ...(entry.source.gguf && !entry.source.generate ? { url: entry.source.gguf.url } : {}),
    state: "absent",
    upstream: { fetches: 0, requests: 0, bytes: 0, failures: 0 },
    served: { requests: 0, bytes: 0 },
  };
}

export class ModelCache {
  private readonly files = new Map<string, CachedFile>();
  private readonly entries = new Map<string, CatalogEntry>();
  private readonly stats = new Map<string, ModelCacheStats>();
  private readonly jobs = new Map<string, Promise<void>>();
  private readonly retryAt = new Map<string, number>();
  private pins: Record<string, Pin> = {};
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly closing = new AbortController();

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
    private readonly opts: ModelCacheOptions = {},
  ) {
    this.ownsDispatcher = !opts.dispatcher;
    this.dispatcher = opts.dispatcher ?? new EnvHttpProxyAgent({ connect: { timeout: 30_000 } }).compose(interceptors.redirect({ maxRedirections: 10 }));
  }

  private get pinsPath(): string {
    return join(this.dir, "pins.json");
  }

  private pathOf(id: string): string {
    return join(this.dir, modelFileName(id));
  }

  /** Writes the generated models and indexes files already present; fills sha256/size in the catalog. */
  async prepare(catalog: Catalog): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.pins = await readFile(this.pinsPath, "utf8").then(
      (text) => JSON.parse(text) as Record<string, Pin>,
      () => ({}),
    );
    const legacyClaims = new Map<string, number>();
    for (const entry of catalog.models) legacyClaims.set(legacyFileName(entry.id), (legacyClaims.get(legacyFileName(entry.id)) ?? 0) + 1);
    for (const entry of catalog.models) {
      // A file an older router cached under the shared name moves to the id's own name, when no
      // other id of the catalog could claim it.
      const legacy = join(this.dir, legacyFileName(entry.id));
      if (entry.source.gguf && legacy !== this.pathOf(entry.id) && legacyClaims.get(legacyFileName(entry.id)) === 1 && !(await stat(this.pathOf(entry.id)).catch(() => null))) {
        await rename(legacy, this.pathOf(entry.id)).then(
          () => rm(`${legacy}.sha256`, { force: true }),
          () => undefined,
        );
      }
      this.entries.set(entry.id, entry);
      this.stats.set(entry.id, newStats(entry));
      if (entry.source.generate) {
        await this.generate(entry);
      } else if (entry.source.gguf) {
        await this.indexPresentFile(entry);
      }
      this.annotate(entry);
    }
  }

  /** The checksum a GGUF download must have: the catalog's, else the pinned one for this URL. */
  private expectedSha256(entry: CatalogEntry): { sha256: string; origin: ChecksumOrigin } | undefined {
    if (entry.source.gguf?.sha256) return { sha256: entry.source.gguf.sha256, origin: "catalog" };
    const pin = this.pins[entry.id];
    if (pin && pin.url === entry.source.gguf?.url) return { sha256: pin.sha256, origin: "pinned" };
    return undefined;
  }

  private async generate(entry: CatalogEntry): Promise<void> {
    const path = this.pathOf(entry.id);
    const { sha256, size } = await writeTinyModel(entry.source.generate!, path);
    const { mtimeMs } = await stat(path);
    this.accept(entry, { path, size, sha256, mtimeMs }, "generated");
  }

  /** A file already in the cache (earlier download, or put there by an operator). */
  private async indexPresentFile(entry: CatalogEntry): Promise<void> {
    const path = this.pathOf(entry.id);
    const present = await stat(path).catch(() => null);
    if (!present?.isFile()) return;
    const expected = this.expectedSha256(entry);
    let sha256 = await this.recordedSha256(path, present.mtimeMs);
    if (!sha256 || (expected && sha256 !== expected.sha256)) sha256 = await sha256OfFile(path);
    if (expected && sha256 !== expected.sha256) {
      this.logger.warn({ model: entry.id, path, expected: expected.sha256, actual: sha256 }, `cache file does not match the ${expected.origin} sha256; deleting it`);
      await rm(path, { force: true });
      await rm(`${path}.sha256`, { force: true });
      return;
    }
    if (!expected) await this.pin(entry, sha256, present.size);
    await writeFile(`${path}.sha256`, `${sha256}  ${modelFileName(entry.id)}\n`);
    this.accept(entry, { path, size: present.size, sha256, mtimeMs: present.mtimeMs }, expected?.origin ?? "pinned");
  }

  /** The sidecar's checksum, when the file has not been modified since the sidecar was written. */
  private async recordedSha256(path: string, fileMtimeMs: number): Promise<string | undefined> {
    try {
      const sidecar = `${path}.sha256`;
      const { mtimeMs } = await stat(sidecar);
      if (fileMtimeMs > mtimeMs) return undefined;
      const recorded = (await readFile(sidecar, "utf8")).trim().split(/\s+/)[0];
      return recorded && /^[0-9a-f]{64}$/.test(recorded) ? recorded : undefined;
    } catch {
      return undefined;
    }
  }

  private async pin(entry: CatalogEntry, sha256: string, size: number): Promise<void> {
    this.pins[entry.id] = { url: entry.source.gguf!.url, sha256, size, pinnedAt: new Date().toISOString() };
    const tmp = `${this.pinsPath}.tmp`;
    await writeFile(tmp, JSON.stringify(this.pins, null, 2) + "\n");
    await rename(tmp, this.pinsPath);
    this.logger.info({ model: entry.id, sha256 }, "no sha256 in the catalog: pinned the checksum of the first complete download");
  }

  private accept(entry: CatalogEntry, file: CachedFile, origin: ChecksumOrigin): void {
    this.verifiedAt.delete(entry.id);
    this.files.set(entry.id, file);
    const stats = this.stats.get(entry.id)!;
    Object.assign(stats, { state: "cached", sizeBytes: file.size, sha256: file.sha256, sha256Origin: origin });
    delete stats.progress;
    delete stats.bytesDone;
    delete stats.bytesTotal;
    delete stats.lastError;
    this.retryAt.delete(entry.id);
    this.annotate(entry);
  }

  /** What nodes see in the catalog: the checksum to verify against and the real size. */
  private annotate(entry: CatalogEntry): void {
    const file = this.files.get(entry.id);
    if (file) {
      entry.sha256 = file.sha256;
      entry.sizeBytes = file.size;
    } else if (!entry.source.generate) {
      const expected = this.expectedSha256(entry);
      if (expected) entry.sha256 = expected.sha256;
      const stats = this.stats.get(entry.id);
      if (stats) {
        stats.sha256 = expected?.sha256;
        stats.sha256Origin = expected?.origin;
      }
    }
  }

  /** The verified file of a catalog model, fetching or re-verifying it when needed. */
  async lookup(id: string): Promise<FileLookup> {
    const entry = this.entries.get(id);
    if (!entry) return { status: "unavailable", message: `The model '${id}' is not in the catalog` };
    if (!entry.source.generate && !entry.source.gguf) {
      return { status: "unavailable", message: `The model '${id}' has no GGUF source (only an Ollama tag); nodes using the ollama engine pull it themselves` };
    }
    const file = this.files.get(id);
    if (file) {
      const now = await stat(file.path).catch(() => null);
      if (now && now.size === file.size && now.mtimeMs === file.mtimeMs) return { status: "ready", file };
      this.invalidate(id, now ? "cache file was modified after it was verified; verifying it again" : "cache file disappeared");
    }
    const stats = this.stats.get(id)!;
    if (!this.jobs.has(id)) {
      const retryAt = this.retryAt.get(id) ?? 0;
      if (stats.state === "failed" && Date.now() < retryAt) {
        const retryAfterS = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
        return { status: "failed", message: `the router could not get '${id}': ${stats.lastError}; next attempt in ${retryAfterS}s`, retryAfterS };
      }
      this.startJob(entry);
    }
    await Promise.race([this.jobs.get(id), sleep(this.opts.holdMs ?? 1000, this.closing.signal)]);
    const ready = this.files.get(id);
    if (ready) return { status: "ready", file: ready };
    if (stats.state === "failed") return { status: "failed", message: `the router could not get '${id}': ${stats.lastError}`, retryAfterS: 5 };
    const pct = stats.progress !== undefined ? ` (${Math.floor(stats.progress * 100)}%)` : "";
    return { status: "pending", message: `the router is fetching '${id}' from upstream${pct}; try again shortly`, retryAfterS: 2 };
  }

  /** Drops a file that can no longer be trusted; the next lookup verifies or fetches it again. */
  invalidate(id: string, reason: string): void {
    const file = this.files.get(id);
    if (!file) return;
    this.files.delete(id);
    const stats = this.stats.get(id);
    if (stats) stats.state = "absent";
    this.logger.warn({ model: id, path: file.path }, reason);
  }

  private startJob(entry: CatalogEntry): void {
    const stats = this.stats.get(entry.id)!;
    stats.state = "fetching";
    delete stats.lastError;
    const job = this.fill(entry)
      .catch((err: unknown) => {
        stats.state = "failed";
        stats.lastError = (err as Error).message;
        this.retryAt.set(entry.id, Date.now() + (this.opts.failureCooldownMs ?? 30_000));
        this.logger.error({ model: entry.id, err: (err as Error).message }, "model cache could not get the file");
      })
      .finally(() => this.jobs.delete(entry.id));
    this.jobs.set(entry.id, job);
  }

  /** Verifies a file left in place, regenerates, or downloads from upstream. */
  private async fill(entry: CatalogEntry): Promise<void> {
    const path = this.pathOf(entry.id);
    if (entry.source.generate) return this.generate(entry);
    const expected = this.expectedSha256(entry);
    const present = await stat(path).catch(() => null);
    if (present?.isFile()) {
      const sha256 = await sha256OfFile(path);
      if (!expected || sha256 === expected.sha256) {
        if (!expected) await this.pin(entry, sha256, present.size);
        await writeFile(`${path}.sha256`, `${sha256}  ${modelFileName(entry.id)}\n`);
        return this.accept(entry, { path, size: present.size, sha256, mtimeMs: present.mtimeMs }, expected?.origin ?? "pinned");
      }
      this.logger.warn({ model: entry.id, expected: expected.sha256, actual: sha256 }, `cache file failed verification (${expected.origin} sha256); deleting it and fetching it again`);
      await rm(path, { force: true });
      await rm(`${path}.sha256`, { force: true });
    }
    await this.download(entry, path, expected);
  }

  private async download(entry: CatalogEntry, path: string, expected: { sha256: string; origin: ChecksumOrigin } | undefined): Promise<void> {
    const stats = this.stats.get(entry.id)!;
    const url = entry.source.gguf!.url;
    const part = `${path}.part`;
    stats.upstream.fetches++;
    this.logger.info({ model: entry.id, url }, "fetching model file from upstream");
    const startedAt = Date.now();
    let result;
    try {
      result = await downloadFromUpstream({
        url,
        partPath: part,
        dispatcher: this.dispatcher,
        logger: this.logger.child({ model: entry.id }),
        signal: this.closing.signal,
        backoff: new Backoff({ initialMs: this.opts.retryInitialMs ?? 1000, maxMs: this.opts.retryMaxMs ?? 60_000, jitter: 0.3 }),
        maxFailures: this.opts.maxFailures,
        onRequest: () => stats.upstream.requests++,
        onBytes: (n) => (stats.upstream.bytes += n),
        onProgress: (done, total) => {
          stats.bytesDone = done;
          stats.bytesTotal = total;
          stats.progress = total ? Math.min(1, done / total) : undefined;
        },
      });
    } catch (err) {
      stats.upstream.failures++;
      throw err;
    }
    if (expected && result.sha256 !== expected.sha256) {
      stats.upstream.failures++;
      await rm(part, { force: true });
      throw new UpstreamError(`sha256 mismatch: the upstream file is ${result.sha256}, the ${expected.origin} checksum is ${expected.sha256}`, true);
    }
    await rename(part, path);
    await writeFile(`${path}.sha256`, `${result.sha256}  ${modelFileName(entry.id)}\n`);
    if (!expected) await this.pin(entry, result.sha256, result.size);
    const { mtimeMs } = await stat(path);
    const seconds = Math.max(0.001, (Date.now() - startedAt) / 1000);
    this.logger.info({ model: entry.id, bytes: result.size, seconds: Math.round(seconds * 10) / 10, sha256: result.sha256 }, "model file cached");
    this.accept(entry, { path, size: result.size, sha256: result.sha256, mtimeMs }, expected?.origin ?? "pinned");
  }

  /**
   * The bytes of a cached file for one response, counted into the served totals. A response of
   * the whole file starts a check of the cached copy — in a worker thread, one at a time, at most
   * hourly per file, never once per node — and a mismatch (the file rotted without its mtime
   * changing) drops it from the cache, so the nodes' retries get a fresh copy.
   */
  openForServing(id: string, file: CachedFile, range?: { start: number; end: number }): Readable {
    const stats = this.stats.get(id);
    if (stats) stats.served.requests++;
    if (!range) this.verifyServed(id, file);
    const meter = new Transform({
      transform(chunk: Buffer, _enc, next) {
        if (stats) stats.served.bytes += chunk.length;
        next(null, chunk);
      },
    });
    const source = createReadStream(file.path, range ?? {});
    source.on("error", (err) => meter.destroy(err));
    return source.pipe(meter);
  }

  private readonly verifiedAt = new Map<string, number>();
  private readonly verifying = new Map<string, Promise<void>>();

  /** Background re-check of a served file (see openForServing); resolves when it is done. */
  verifyServed(id: string, file: CachedFile): Promise<void> {
    const running = this.verifying.get(id);
    if (running) return running;
    if (Date.now() - (this.verifiedAt.get(id) ?? 0) < SERVE_VERIFY_INTERVAL_MS) return Promise.resolve();
    this.verifiedAt.set(id, Date.now());
    const stats = this.stats.get(id);
    if (stats) stats.verifications = (stats.verifications ?? 0) + 1;
    const job = sha256InWorker(file.path)
      .then(
        (sha256) => {
          if (sha256 !== file.sha256 && this.files.get(id) === file) this.invalidate(id, "cache file no longer matches its sha256 while being served; it will be fetched again");
        },
        (err: Error) => this.logger.warn({ model: id, err: err.message }, "could not re-check a served cache file"),
      )
      .finally(() => this.verifying.delete(id));
    this.verifying.set(id, job);
    return job;
  }

  /** One line per node download request: operators (and tests) see resumes as Range requests. */
  logRequest(id: string, range: string | undefined, status: number): void {
    this.logger.info({ model: id, range, status }, "model file request");
  }

  get(id: string): CachedFile | undefined {
    return this.files.get(id);
  }

  snapshot(): ModelCacheStats[] {
    return [...this.stats.values()].map((s) => structuredClone(s));
  }

  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    await Promise.allSettled([...this.jobs.values()]);
    if (this.ownsDispatcher) await this.dispatcher.close();
  }
}
