// Downloads one model file from the router's cache (GET /api/models/:id/file) into the models
// directory: via a `.part` file, resumed with `Range: bytes=N-` when the router answers 206,
// sha256-verified, then renamed into place with a `.sha256` sidecar. A split model's parts are
// downloaded one after the other (`?part=N`) beside each other under llama.cpp's split names, each
// verified against its own checksum; the engine is given the first. Before any byte, the models
// directory must have room for what is still missing.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename } from "node:fs/promises";
import { basename } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import { request, type Dispatcher } from "undici";
import { partCount, splitPartPath } from "../catalog/split.js";
import type { CatalogEntry } from "../protocol/catalog.js";
import { FLEET_PATHS } from "../protocol/http.js";
import { MODEL_FILE_SHA256_HEADER } from "../protocol/node-api.js";
import { Backoff, sleep } from "../shared/backoff.js";
import type { RateLimiter } from "./rate-limiter.js";
import { formatBytes } from "../shared/byte-format.js";
import { checkDiskSpace } from "../shared/disk-space.js";
import { fileSize, hashFileInto, isVerified, modelFilePaths, removeQuietly, writeSidecar, type ModelFilePaths } from "./model-file-store.js";
import type { DownloadProgress } from "./model-status-board.js";
import type { RouterEndpoint } from "./router-endpoint.js";

/** A download that will not succeed by retrying (the model is then `failed`). */
export class DownloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DownloadError";
  }
}

/** A failure worth retrying later (router down, connection reset). */
class TransientDownloadError extends Error {}

/** The router is still fetching the file from upstream (503 model_caching): poll, not a failure. */
class RouterCachingError extends Error {
  constructor(
    message: string,
    readonly retryInMs: number,
  ) {
    super(message);
  }
}

export interface ModelDownloadOptions {
  entry: CatalogEntry;
  modelsDir: string;
  router: RouterEndpoint;
  dispatcher: Dispatcher;
  logger: Logger;
  signal: AbortSignal;
  /** The transfer itself starts (after any local file was found unusable). */
  onDownloading?: () => void;
  onProgress?: (progress: DownloadProgress) => void;
  /** A transient failure; the next attempt starts after `retryInMs`. */
  onRetry?: (reason: string, retryInMs: number) => void;
  /** The router is fetching the file from upstream first; asked again after `retryInMs`. */
  onWaiting?: (message: string, retryInMs: number) => void;
  /** Shared bandwidth limit of this node's downloads. */
  rateLimiter?: RateLimiter;
  /** Downloads whose checksum does not match before giving up (default 3). */
  maxChecksumAttempts?: number;
  /** Delay between transient failures (default 1 s doubling to 30 s, with jitter). */
  retryBackoff?: Backoff;
  /**
   * The first (or only) file is verified: its GGUF header can be read. Runs before the other parts
   * of a split model are downloaded; throwing stops the download (e.g. the model does not fit).
   */
  onFirstPart?: (path: string) => Promise<void>;
  /** Minimum interval between progress callbacks (default 250 ms). */
  progressIntervalMs?: number;
}

const DISK_ERRORS: Record<string, string> = {
  ENOSPC: "disk full",
  EDQUOT: "disk quota exceeded",
  EROFS: "models directory is read-only",
  EACCES: "permission denied",
  EPERM: "permission denied",
  ENOTDIR: "models directory path is not a directory",
  EISDIR: "model file path is a directory",
};

function diskError(err: unknown, path: string): DownloadError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const what = code ? DISK_ERRORS[code] : undefined;
  return what ? new DownloadError(`${what} while writing ${path} (${code})`) : undefined;
}

/** One file of a model: where it goes, its 0-based index and the checksum the catalog gives for it. */
interface PartFile {
  paths: ModelFilePaths;
  index: number;
  count: number;
  sha256?: string;
}

function partFiles(modelsDir: string, entry: CatalogEntry): PartFile[] {
  const base = modelFilePaths(modelsDir, entry.id);
  const count = partCount(entry);
  return Array.from({ length: count }, (_, index) => {
    const final = splitPartPath(base.final, index, count);
    const sha256 = entry.parts?.[index]?.sha256 ?? (index === 0 ? entry.sha256 : undefined);
    return { paths: { final, part: `${final}.part`, sidecar: `${final}.sha256` }, index, count, sha256 };
  });
}

/** Bytes each part is expected to have: the router's figure, else the catalog's size shared among the unknown ones. */
function expectedPartSizes(entry: CatalogEntry, count: number): number[] {
  const known = Array.from({ length: count }, (_, i) => entry.parts?.[i]?.sizeBytes);
  const unknown = known.filter((k) => k === undefined).length;
  const rest = Math.max(0, entry.sizeBytes - known.reduce<number>((sum, k) => sum + (k ?? 0), 0));
  return known.map((k) => k ?? (count === 1 ? entry.sizeBytes : Math.ceil(rest / Math.max(1, unknown))));
}

/** Returns the path of the verified model file (a split model's first part), downloading what is missing. */
export async function downloadModel(opts: ModelDownloadOptions): Promise<string> {
  const { entry, logger } = opts;
  const parts = partFiles(opts.modelsDir, entry);
  const sizes = expectedPartSizes(entry, parts.length);
  const missing: PartFile[] = [];
  let doneBytes = 0;
  try {
    await mkdir(opts.modelsDir, { recursive: true });
    for (const part of parts) {
      if (await reuseExistingFile(part, entry, logger)) doneBytes += (await fileSize(part.paths.final)) ?? 0;
      else missing.push(part);
    }
    if (missing[0]?.index !== 0) await opts.onFirstPart?.(parts[0]!.paths.final);
    if (missing.length === 0) return parts[0]!.paths.final;
    let needed = 0;
    for (const part of missing) needed += Math.max(0, sizes[part.index]! - ((await fileSize(part.paths.part)) ?? 0));
    const shortfall = await checkDiskSpace(opts.modelsDir, needed);
    if (shortfall) throw new DownloadError(shortfall);
  } catch (err) {
    throw diskError(err, parts[0]!.paths.final) ?? err;
  }

  opts.onDownloading?.();
  for (const part of missing) {
    await downloadPart(opts, part, doneBytes);
    doneBytes += (await fileSize(part.paths.final)) ?? 0;
    if (part.index === 0) await opts.onFirstPart?.(part.paths.final);
  }
  return parts[0]!.paths.final;
}

/** Downloads one file (retrying, resuming) until it is verified; `before` is what earlier parts hold, for progress. */
async function downloadPart(opts: ModelDownloadOptions, file: PartFile, before: number): Promise<void> {
  const { entry, logger } = opts;
  const paths = file.paths;
  const backoff = opts.retryBackoff ?? new Backoff({ initialMs: 1000, maxMs: 30_000, jitter: 0.3 });
  const maxChecksumAttempts = opts.maxChecksumAttempts ?? 3;
  const which = file.count > 1 ? `part ${file.index + 1} of ${file.count}: ` : "";
  let checksumFailures = 0;
  for (;;) {
    if (opts.signal.aborted) throw opts.signal.reason ?? new Error("aborted");
    try {
      const outcome = await transferOnce(opts, file, before);
      if (outcome === "verified") {
        logger.info(
          { model: entry.id, path: paths.final, ...(file.count > 1 ? { part: file.index + 1, parts: file.count } : {}) },
          "model file downloaded and verified",
        );
        return;
      }
      if (outcome === "restart") continue;
      checksumFailures++;
      if (checksumFailures >= maxChecksumAttempts) {
        throw new DownloadError(`${which}sha256 mismatch: the downloaded file did not match the catalog checksum ${checksumFailures} times`);
      }
      logger.warn(
        { model: entry.id, part: file.index + 1, attempt: checksumFailures },
        "downloaded file failed sha256 verification; deleted, downloading again",
      );
    } catch (err) {
      if (opts.signal.aborted) throw opts.signal.reason ?? err;
      if (err instanceof DownloadError) throw err;
      if (err instanceof RouterCachingError) {
        opts.onWaiting?.(err.message, err.retryInMs);
        await sleep(err.retryInMs, opts.signal);
        continue;
      }
      const disk = diskError(err, paths.part);
      if (disk) {
        // Free the space of the partial file: other models (and the OS) need it more than a resume.
        await removeQuietly(paths.part);
        throw disk;
      }
      const reason = err instanceof TransientDownloadError ? err.message : `download interrupted: ${(err as Error).message}`;
      const wait = backoff.next();
      logger.warn({ model: entry.id, retryInMs: wait }, `${reason}; retrying`);
      opts.onRetry?.(reason, wait);
      await sleep(wait, opts.signal);
      if (!opts.signal.aborted) opts.onDownloading?.();
    }
  }
}

/** A final file is used when its sidecar names the catalog checksum, or when hashing it proves it. */
async function reuseExistingFile(file: PartFile, entry: CatalogEntry, logger: Logger): Promise<boolean> {
  const { paths, sha256 } = file;
  const size = await fileSize(paths.final);
  if (size === undefined) return false;
  if (sha256) {
    if (await isVerified(paths, sha256)) {
      logger.info({ model: entry.id, path: paths.final }, "model file already present and verified");
      return true;
    }
    const hash = createHash("sha256");
    await hashFileInto(paths.final, hash);
    if (hash.digest("hex") === sha256) {
      await writeSidecar(paths, sha256, basename(paths.final));
      logger.info({ model: entry.id, path: paths.final }, "model file already present; checksum verified");
      return true;
    }
  }
  logger.info({ model: entry.id, path: paths.final }, "existing model file does not match the catalog checksum; downloading again");
  await removeQuietly(paths.final, paths.sidecar);
  return false;
}

type TransferOutcome = "verified" | "mismatch" | "restart";

async function transferOnce(opts: ModelDownloadOptions, file: PartFile, before: number): Promise<TransferOutcome> {
  const { entry } = opts;
  const paths = file.paths;
  let offset = (await fileSize(paths.part)) ?? 0;

  const url = opts.router.resolve(FLEET_PATHS.modelFile(entry.id, file.index + 1));
  const headers = opts.router.headers(offset > 0 ? { range: `bytes=${offset}-` } : {});
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, { dispatcher: opts.dispatcher, headers, signal: opts.signal, headersTimeout: 120_000, bodyTimeout: 120_000 });
  } catch (err) {
    throw new TransientDownloadError(`router unreachable: ${(err as Error).message}`);
  }

  if (res.statusCode === 416) {
    // Nothing after `offset`: the partial file may already be complete; verify it before starting over.
    await res.body.dump();
    const total = /^bytes \*\/(\d+)$/.exec(headerValue(res.headers["content-range"]) ?? "")?.[1];
    const expected = file.sha256 ?? headerValue(res.headers[MODEL_FILE_SHA256_HEADER])?.toLowerCase();
    if (expected && total !== undefined && Number(total) === offset) {
      const hash = createHash("sha256");
      await hashFileInto(paths.part, hash);
      if (hash.digest("hex") === expected) return finish(paths, expected);
    }
    await removeQuietly(paths.part);
    return "restart";
  }
  if (res.statusCode !== 200 && res.statusCode !== 206) {
    const { detail, code } = errorDetail(await res.body.text().catch(() => ""));
    if (res.statusCode === 503 && code === "model_caching") {
      const retryAfter = Number(headerValue(res.headers["retry-after"]));
      throw new RouterCachingError(
        detail || "the router is fetching the file from upstream",
        Math.min(30, Math.max(1, Number.isFinite(retryAfter) ? retryAfter : 2)) * 1000,
      );
    }
    const message = `router answered HTTP ${res.statusCode} for the model file${detail ? `: ${detail}` : ""}`;
    if (res.statusCode >= 500 || res.statusCode === 408 || res.statusCode === 429) throw new TransientDownloadError(message);
    throw new DownloadError(message);
  }

  const expected = file.sha256 ?? headerValue(res.headers[MODEL_FILE_SHA256_HEADER])?.toLowerCase();
  if (!expected || !/^[0-9a-f]{64}$/.test(expected)) {
    await res.body.dump();
    throw new DownloadError("no sha256 for the model file (neither in the catalog nor in the router's response)");
  }

  const hash = createHash("sha256");
  let append = false;
  if (res.statusCode === 206) {
    const start = /^bytes (\d+)-/.exec(headerValue(res.headers["content-range"]) ?? "")?.[1];
    if (start === undefined || Number(start) !== offset) {
      await res.body.dump();
      await removeQuietly(paths.part);
      return "restart";
    }
    await hashFileInto(paths.part, hash);
    append = true;
    opts.logger.info(
      { model: entry.id, resumeAt: offset, ...(file.count > 1 ? { part: file.index + 1, parts: file.count } : {}) },
      `resuming download at ${formatBytes(offset)}${file.count > 1 ? ` of part ${file.index + 1}` : ""}`,
    );
  } else {
    offset = 0;
  }

  const length = Number(headerValue(res.headers["content-length"]));
  const partTotal = Number.isFinite(length) && length >= 0 ? offset + length : undefined;
  // Progress is over the whole model: the parts before this one count as done.
  const total = file.count === 1 ? (partTotal ?? Math.max(entry.sizeBytes, offset)) : Math.max(entry.sizeBytes, before + (partTotal ?? offset));
  const meter = new ProgressMeter(entry.id, before + offset, total, opts);
  const limiter = opts.rateLimiter;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      meter.add(chunk.length);
      if (!limiter) return done(null, chunk);
      limiter.take(chunk.length, opts.signal).then(() => done(null, chunk), done);
    },
  });
  await pipeline(res.body, counter, createWriteStream(paths.part, { flags: append ? "a" : "w" }), { signal: opts.signal });
  meter.finish();

  if (hash.digest("hex") !== expected) {
    await removeQuietly(paths.part);
    return "mismatch";
  }
  return finish(paths, expected);
}

async function finish(paths: ModelFilePaths, sha256: string): Promise<"verified"> {
  await rename(paths.part, paths.final);
  await writeSidecar(paths, sha256, basename(paths.final));
  return "verified";
}

/** The message (and code) of an OpenAI-shaped error body, else the text itself. */
function errorDetail(text: string): { detail: string; code?: string } {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown; code?: unknown } };
    if (typeof parsed.error?.message === "string") {
      return { detail: parsed.error.message.slice(0, 300), code: typeof parsed.error.code === "string" ? parsed.error.code : undefined };
    }
  } catch {
    // not JSON
  }
  return { detail: text.slice(0, 200).trim() };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Progress callbacks (throttled), a smoothed speed, and a log line every 10 %. */
class ProgressMeter {
  private done: number;
  private readonly startedAt = Date.now();
  private lastEmit = 0;
  private lastSampleAt = Date.now();
  private lastSampleBytes: number;
  private speed = 0;
  private lastLoggedDecile: number;

  constructor(
    private readonly id: string,
    private readonly offset: number,
    private readonly total: number,
    private readonly opts: ModelDownloadOptions,
  ) {
    this.done = offset;
    this.lastSampleBytes = offset;
    this.lastLoggedDecile = total > 0 ? Math.floor((offset / total) * 10) : 0;
    this.emit();
  }

  add(bytes: number): void {
    this.done += bytes;
    const now = Date.now();
    const elapsed = now - this.lastSampleAt;
    if (elapsed >= 500) {
      const instant = ((this.done - this.lastSampleBytes) * 1000) / elapsed;
      this.speed = this.speed === 0 ? instant : this.speed * 0.7 + instant * 0.3;
      this.lastSampleAt = now;
      this.lastSampleBytes = this.done;
    }
    if (now - this.lastEmit >= (this.opts.progressIntervalMs ?? 250)) this.emit();
    const decile = this.total > 0 ? Math.floor((this.done / this.total) * 10) : 0;
    if (decile > this.lastLoggedDecile && decile < 10) {
      this.lastLoggedDecile = decile;
      this.opts.logger.info(
        { model: this.id, progress: decile / 10, bytesDone: this.done, bytesTotal: this.total, speed: Math.round(this.currentSpeed()) },
        `downloading ${this.id}: ${decile * 10}% of ${formatBytes(this.total)} at ${formatBytes(this.currentSpeed())}/s`,
      );
    }
  }

  finish(): void {
    if (this.speed === 0) this.speed = this.averageSpeed();
    this.emit();
  }

  private averageSpeed(): number {
    const seconds = (Date.now() - this.startedAt) / 1000;
    return seconds > 0 ? (this.done - this.offset) / seconds : 0;
  }

  private currentSpeed(): number {
    return this.speed || this.averageSpeed();
  }

  private emit(): void {
    this.lastEmit = Date.now();
    const total = Math.max(this.total, this.done);
    this.opts.onProgress?.({
      progress: total > 0 ? this.done / total : 0,
      bytesDone: this.done,
      bytesTotal: total,
      speed: Math.max(0, Math.round(this.currentSpeed())),
    });
  }
}
