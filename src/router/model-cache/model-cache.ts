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
//
// Split models (llama.cpp's gguf-split) are cached part by part under the split names
// (`<name>-00001-of-00003.gguf`, ...): each part has its own checksum (catalog or pinned), its own
// upstream fetch (resumable) and is served on its own (`?part=N`); one job per model fetches the
// missing parts in order, so there is one upstream fetch per part however many nodes ask, and
// the progress shown is over the whole model. Before any upstream byte, the free disk space must
// hold what is still missing plus a margin.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import { EnvHttpProxyAgent, interceptors, type Dispatcher } from "undici";
import { ggufParts, partCount, splitPartPath, type GgufPart } from "../../catalog/split.js";
import { writeTinyModelParts } from "../../gguf/tiny-model.js";
import { Backoff, sleep } from "../../shared/backoff.js";
import { checkDiskSpace } from "../../shared/disk-space.js";
import type { Catalog, CatalogEntry } from "../../protocol/catalog.js";
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

/** One part of a split model in GET /api/cache (1-based `part`). */
export interface PartCacheStats {
  part: number;
  url?: string;
  state: CacheState;
  sizeBytes?: number;
  sha256?: string;
  sha256Origin?: ChecksumOrigin;
  upstream: { fetches: number; requests: number; bytes: number; failures: number };
}

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
  /** Split models only: each part's state, checksum and upstream counters (the model's are their sums). */
  parts?: PartCacheStats[];
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

/** Where a part's file, pin and stats are kept: the model id for the first (or only) part, `id#N` for part N ≥ 2. */
export function partKey(id: string, index: number): string {
  return index === 0 ? id : `${id}#${index + 1}`;
}

/** The upstream files of a catalog model (none for generated and Ollama-only models). */
function upstreamParts(entry: CatalogEntry): GgufPart[] {
  return entry.source.gguf && !entry.source.generate ? ggufParts(entry.source.gguf) : [];
}

function newStats(entry: CatalogEntry): ModelCacheStats {
  const source = entry.source.generate ? "generate" : entry.source.gguf ? "gguf" : "none";
  const count = source === "none" ? 1 : partCount(entry);
  const urls = upstreamParts(entry);
  return {
    id: entry.id,
    source,
    ...(entry.source.gguf && !entry.source.generate ? { url: entry.source.gguf.url } : {}),
    state: "absent",
    upstream: { fetches: 0, requests: 0, bytes: 0, failures: 0 },
    served: { requests: 0, bytes: 0 },
    ...(count > 1
      ? {
          parts: Array.from({ length: count }, (_, i) => ({
            part: i + 1,
            ...(urls[i] ? { url: urls[i]!.url } : {}),
            state: "absent" as CacheState,
            upstream: { fetches: 0, requests: 0, bytes: 0, failures: 0 },
          })),
        }
      : {}),
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

  /** Part `index` (0-based) of a model: `<name>.gguf`, or `<name>-0000N-of-0000M.gguf` for a split model. */
  private pathOf(id: string, index = 0): string {
    const entry = this.entries.get(id);
    return splitPartPath(join(this.dir, modelFileName(id)), index, entry ? partCount(entry) : 1);
  }

  private partCount(entry: CatalogEntry): number {
    return this.stats.get(entry.id)?.parts?.length ?? 1;
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
      if (
        entry.source.gguf &&
        legacy !== this.pathOf(entry.id) &&
        legacyClaims.get(legacyFileName(entry.id)) === 1 &&
        !(await stat(this.pathOf(entry.id)).catch(() => null))
      ) {
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
        for (let i = 0; i < this.partCount(entry); i++) await this.indexPresentFile(entry, i);
      }
      this.annotate(entry);
    }
  }

  /** The checksum part `index` of a GGUF download must have: the catalog's, else the pinned one for its URL. */
  private expectedSha256(entry: CatalogEntry, index = 0): { sha256: string; origin: ChecksumOrigin } | undefined {
    const part = upstreamParts(entry)[index];
    if (!part) return undefined;
    if (part.sha256) return { sha256: part.sha256, origin: "catalog" };
    const pin = this.pins[partKey(entry.id, index)];
    if (pin && pin.url === part.url) return { sha256: pin.sha256, origin: "pinned" };
    return undefined;
  }

  private async generate(entry: CatalogEntry): Promise<void> {
    // The writer names the parts itself from the single-file path.
    const written = await writeTinyModelParts(entry.source.generate!, join(this.dir, modelFileName(entry.id)));
    for (const [i, { path, size, sha256 }] of written.entries()) {
      const { mtimeMs } = await stat(path);
      this.accept(entry, i, { path, size, sha256, mtimeMs }, "generated");
    }
  }

  private async writeSidecar(path: string, sha256: string): Promise<void> {
    await writeFile(`${path}.sha256`, `${sha256}  ${basename(path)}\n`);
  }

  /** A file already in the cache (earlier download, or put there by an operator). */
  private async indexPresentFile(entry: CatalogEntry, index: number): Promise<void> {
    const path = this.pathOf(entry.id, index);
    const present = await stat(path).catch(() => null);
    if (!present?.isFile()) return;
    const expected = this.expectedSha256(entry, index);
    let sha256 = await this.recordedSha256(path, present.mtimeMs);
    if (!sha256 || (expected && sha256 !== expected.sha256)) sha256 = await sha256OfFile(path);
    if (expected && sha256 !== expected.sha256) {
      this.logger.warn(
        { model: entry.id, path, expected: expected.sha256, actual: sha256 },
        `cache file does not match the ${expected.origin} sha256; deleting it`,
      );
      await rm(path, { force: true });
      await rm(`${path}.sha256`, { force: true });
      return;
    }
    if (!expected) await this.pin(entry, index, sha256, present.size);
    await this.writeSidecar(path, sha256);
    this.accept(entry, index, { path, size: present.size, sha256, mtimeMs: present.mtimeMs }, expected?.origin ?? "pinned");
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

  private async pin(entry: CatalogEntry, index: number, sha256: string, size: number): Promise<void> {
    this.pins[partKey(entry.id, index)] = { url: upstreamParts(entry)[index]!.url, sha256, size, pinnedAt: new Date().toISOString() };
    const tmp = `${this.pinsPath}.tmp`;
    await writeFile(tmp, JSON.stringify(this.pins, null, 2) + "\n");
    await rename(tmp, this.pinsPath);
    this.logger.info({ model: entry.id, part: index + 1, sha256 }, "no sha256 in the catalog: pinned the checksum of the first complete download");
  }

  private accept(entry: CatalogEntry, index: number, file: CachedFile, origin: ChecksumOrigin): void {
    this.verifiedAt.delete(partKey(entry.id, index));
    this.files.set(partKey(entry.id, index), file);
    const stats = this.stats.get(entry.id)!;
    const part = stats.parts?.[index];
    if (part) Object.assign(part, { state: "cached", sizeBytes: file.size, sha256: file.sha256, sha256Origin: origin });
    if (this.cachedParts(entry).length === this.partCount(entry)) {
      const first = this.files.get(entry.id)!;
      Object.assign(stats, { state: "cached", sizeBytes: this.cachedBytes(entry), sha256: first.sha256, sha256Origin: origin });
      delete stats.progress;
      delete stats.bytesDone;
      delete stats.bytesTotal;
      delete stats.lastError;
      this.retryAt.delete(entry.id);
    }
    this.annotate(entry);
  }

  private cachedParts(entry: CatalogEntry): CachedFile[] {
    const files: CachedFile[] = [];
    for (let i = 0; i < this.partCount(entry); i++) {
      const file = this.files.get(partKey(entry.id, i));
      if (file) files.push(file);
    }
    return files;
  }

  private cachedBytes(entry: CatalogEntry): number {
    return this.cachedParts(entry).reduce((sum, f) => sum + f.size, 0);
  }

  /** What nodes see in the catalog: the checksums to verify against and the real size. */
  private annotate(entry: CatalogEntry): void {
    const count = this.partCount(entry);
    const stats = this.stats.get(entry.id);
    const rows = Array.from({ length: count }, (_, i) => {
      const file = this.files.get(partKey(entry.id, i));
      if (file) return { sha256: file.sha256, sizeBytes: file.size };
      const expected = entry.source.generate ? undefined : this.expectedSha256(entry, i);
      const part = stats?.parts?.[i];
      if (part && !entry.source.generate) {
        part.sha256 = expected?.sha256;
        part.sha256Origin = expected?.origin;
      }
      return expected ? { sha256: expected.sha256 } : {};
    });
    if (rows[0]?.sha256) entry.sha256 = rows[0].sha256;
    if (count > 1) entry.parts = rows;
    if (this.cachedParts(entry).length === count) entry.sizeBytes = this.cachedBytes(entry);
    else if (stats && !entry.source.generate && stats.state !== "cached") {
      stats.sha256 = rows[0]?.sha256;
      stats.sha256Origin = entry.source.generate ? undefined : this.expectedSha256(entry, 0)?.origin;
    }
  }

  /** The verified file of a catalog model's part `index` (0-based), fetching or re-verifying it when needed. */
  async lookup(id: string, index = 0): Promise<FileLookup> {
    const entry = this.entries.get(id);
    if (!entry) return { status: "unavailable", message: `The model '${id}' is not in the catalog` };
    if (!entry.source.generate && !entry.source.gguf) {
      return { status: "unavailable", message: `The model '${id}' has no GGUF source (only an Ollama tag); nodes using the ollama engine pull it themselves` };
    }
    const count = this.partCount(entry);
    if (!Number.isInteger(index) || index < 0 || index >= count)
      return { status: "unavailable", message: `The model '${id}' has ${count} part(s); there is no part ${index + 1}` };
    const key = partKey(id, index);
    const file = this.files.get(key);
    if (file) {
      const now = await stat(file.path).catch(() => null);
      if (now && now.size === file.size && now.mtimeMs === file.mtimeMs) return { status: "ready", file };
      this.invalidate(key, now ? "cache file was modified after it was verified; verifying it again" : "cache file disappeared");
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
    const ready = this.files.get(key);
    if (ready) return { status: "ready", file: ready };
    if (stats.state === "failed") return { status: "failed", message: `the router could not get '${id}': ${stats.lastError}`, retryAfterS: 5 };
    const pct = stats.progress !== undefined ? ` (${Math.floor(stats.progress * 100)}%)` : "";
    return { status: "pending", message: `the router is fetching '${id}' from upstream${pct}; try again shortly`, retryAfterS: 2 };
  }

  /** Drops a file that can no longer be trusted (`key`: a model id, or `id#N` for part N); the next lookup verifies or fetches it again. */
  invalidate(key: string, reason: string): void {
    const file = this.files.get(key);
    if (!file) return;
    this.files.delete(key);
    const hash = key.lastIndexOf("#");
    const id = hash > 0 && !this.entries.has(key) ? key.slice(0, hash) : key;
    const stats = this.stats.get(id);
    if (stats) {
      stats.state = "absent";
      const part = hash > 0 && id !== key ? Number(key.slice(hash + 1)) - 1 : 0;
      if (stats.parts?.[part]) stats.parts[part]!.state = "absent";
    }
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

  /** Verifies files left in place, regenerates, or downloads the missing parts from upstream, in order. */
  private async fill(entry: CatalogEntry): Promise<void> {
    if (entry.source.generate) return this.generate(entry);
    const count = this.partCount(entry);
    const missing: number[] = [];
    for (let i = 0; i < count; i++) {
      if (this.files.has(partKey(entry.id, i))) continue;
      if (!(await this.verifyPresent(entry, i))) missing.push(i);
    }
    if (missing.length === 0) return;
    await this.checkSpace(entry, missing);
    for (const i of missing) await this.download(entry, i, this.pathOf(entry.id, i), this.expectedSha256(entry, i));
  }

  /** A part file already in place is accepted when it matches (or, without a checksum, pinned); else deleted. */
  private async verifyPresent(entry: CatalogEntry, index: number): Promise<boolean> {
    const path = this.pathOf(entry.id, index);
    const expected = this.expectedSha256(entry, index);
    const present = await stat(path).catch(() => null);
    if (!present?.isFile()) return false;
    const sha256 = await sha256OfFile(path);
    if (!expected || sha256 === expected.sha256) {
      if (!expected) await this.pin(entry, index, sha256, present.size);
      await this.writeSidecar(path, sha256);
      this.accept(entry, index, { path, size: present.size, sha256, mtimeMs: present.mtimeMs }, expected?.origin ?? "pinned");
      return true;
    }
    this.logger.warn(
      { model: entry.id, part: index + 1, expected: expected.sha256, actual: sha256 },
      `cache file failed verification (${expected.origin} sha256); deleting it and fetching it again`,
    );
    await rm(path, { force: true });
    await rm(`${path}.sha256`, { force: true });
    return false;
  }

  /**
   * Space before bytes: the parts still missing (their pinned sizes, else the catalog's size less
   * what is cached, shared evenly) less what their `.part` files already hold, plus a margin.
   */
  private async checkSpace(entry: CatalogEntry, missing: number[]): Promise<void> {
    const unknown = missing.filter((i) => !this.pins[partKey(entry.id, i)]);
    const knownBytes = missing.reduce((sum, i) => sum + (this.pins[partKey(entry.id, i)]?.size ?? 0), 0);
    const rest = Math.max(0, entry.sizeBytes - this.cachedBytes(entry) - knownBytes);
    let needed = knownBytes + (unknown.length > 0 ? rest : 0);
    for (const i of missing) needed -= (await stat(`${this.pathOf(entry.id, i)}.part`).catch(() => null))?.size ?? 0;
    const shortfall = await checkDiskSpace(this.dir, Math.max(0, needed));
    if (shortfall) throw new UpstreamError(shortfall, false);
  }

  private async download(entry: CatalogEntry, index: number, path: string, expected: { sha256: string; origin: ChecksumOrigin } | undefined): Promise<void> {
    const stats = this.stats.get(entry.id)!;
    const partStats = stats.parts?.[index];
    const url = upstreamParts(entry)[index]!.url;
    const part = `${path}.part`;
    const before = this.cachedBytes(entry);
    const count = this.partCount(entry);
    stats.upstream.fetches++;
    if (partStats) {
      partStats.upstream.fetches++;
      partStats.state = "fetching";
    }
    this.logger.info({ model: entry.id, ...(count > 1 ? { part: index + 1, parts: count } : {}), url }, "fetching model file from upstream");
    const startedAt = Date.now();
    let result: Awaited<ReturnType<typeof downloadFromUpstream>>;
    try {
      result = await downloadFromUpstream({
        url,
        partPath: part,
        dispatcher: this.dispatcher,
        logger: this.logger.child({ model: entry.id }),
        signal: this.closing.signal,
        backoff: new Backoff({ initialMs: this.opts.retryInitialMs ?? 1000, maxMs: this.opts.retryMaxMs ?? 60_000, jitter: 0.3 }),
        maxFailures: this.opts.maxFailures,
        onRequest: () => {
          stats.upstream.requests++;
          if (partStats) partStats.upstream.requests++;
        },
        onBytes: (n) => {
          stats.upstream.bytes += n;
          if (partStats) partStats.upstream.bytes += n;
        },
        onProgress: (done, total) => {
          // Over the whole model: the parts already cached, this one, and the catalog's size for the rest.
          const wholeTotal = total !== undefined ? Math.max(entry.sizeBytes, before + total) : undefined;
          stats.bytesDone = before + done;
          stats.bytesTotal = count > 1 ? wholeTotal : total;
          stats.progress = stats.bytesTotal ? Math.min(1, stats.bytesDone / stats.bytesTotal) : undefined;
        },
      });
    } catch (err) {
      stats.upstream.failures++;
      if (partStats) {
        partStats.upstream.failures++;
        partStats.state = "failed";
      }
      throw err;
    }
    if (expected && result.sha256 !== expected.sha256) {
      stats.upstream.failures++;
      if (partStats) {
        partStats.upstream.failures++;
        partStats.state = "failed";
      }
      await rm(part, { force: true });
      const which = count > 1 ? `part ${index + 1} of ${count}: ` : "";
      throw new UpstreamError(`${which}sha256 mismatch: the upstream file is ${result.sha256}, the ${expected.origin} checksum is ${expected.sha256}`, true);
    }
    await rename(part, path);
    await this.writeSidecar(path, result.sha256);
    if (!expected) await this.pin(entry, index, result.sha256, result.size);
    const { mtimeMs } = await stat(path);
    const seconds = Math.max(0.001, (Date.now() - startedAt) / 1000);
    this.logger.info(
      {
        model: entry.id,
        ...(count > 1 ? { part: index + 1, parts: count } : {}),
        bytes: result.size,
        seconds: Math.round(seconds * 10) / 10,
        sha256: result.sha256,
      },
      "model file cached",
    );
    this.accept(entry, index, { path, size: result.size, sha256: result.sha256, mtimeMs }, expected?.origin ?? "pinned");
  }

  /**
   * The bytes of a cached file for one response, counted into the served totals. A response of
   * the whole file starts a check of the cached copy — in a worker thread, one at a time, at most
   * hourly per file, never once per node — and a mismatch (the file rotted without its mtime
   * changing) drops it from the cache, so the nodes' retries get a fresh copy.
   */
  openForServing(id: string, file: CachedFile, range?: { start: number; end: number }, index = 0): Readable {
    const stats = this.stats.get(id);
    if (stats) stats.served.requests++;
    if (!range) this.verifyServed(id, file, index);
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
  verifyServed(id: string, file: CachedFile, index = 0): Promise<void> {
    const key = partKey(id, index);
    const running = this.verifying.get(key);
    if (running) return running;
    if (Date.now() - (this.verifiedAt.get(key) ?? 0) < SERVE_VERIFY_INTERVAL_MS) return Promise.resolve();
    this.verifiedAt.set(key, Date.now());
    const stats = this.stats.get(id);
    if (stats) stats.verifications = (stats.verifications ?? 0) + 1;
    const job = sha256InWorker(file.path)
      .then(
        (sha256) => {
          if (sha256 !== file.sha256 && this.files.get(key) === file)
            this.invalidate(key, "cache file no longer matches its sha256 while being served; it will be fetched again");
        },
        (err: Error) => this.logger.warn({ model: id, err: err.message }, "could not re-check a served cache file"),
      )
      .finally(() => this.verifying.delete(key));
    this.verifying.set(key, job);
    return job;
  }

  /** One line per node download request: operators (and tests) see resumes as Range requests. */
  logRequest(id: string, range: string | undefined, status: number, part?: number): void {
    this.logger.info({ model: id, ...(part !== undefined ? { part } : {}), range, status }, "model file request");
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
