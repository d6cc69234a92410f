// Fetches one model file from its upstream URL (the catalog's GGUF source) into a `.part` file:
// resumed with `Range` (guarded by `If-Range` with the validator the upstream gave, so a file
// that changed upstream is started over rather than spliced), retried with backoff on transport
// errors and 5xx, hashed while it streams.
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import { request, type Dispatcher } from "undici";
import { Backoff, sleep } from "../../shared/backoff.js";

/** Bytes and checksum of a completed download (the `.part` file holds them). */
export interface UpstreamResult {
  size: number;
  sha256: string;
}

export class UpstreamError extends Error {
  constructor(
    message: string,
    /** False for failures a later attempt may not repeat (an HTTP 404 is permanent until the catalog changes). */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "UpstreamError";
  }
}

export interface UpstreamDownloadOptions {
  url: string;
  /** Where the bytes go; resumed when it exists. `<partPath>.json` keeps the resume validator. */
  partPath: string;
  dispatcher: Dispatcher;
  logger: Logger;
  signal?: AbortSignal;
  /** Delay between failed attempts (default 1 s doubling to 60 s, with jitter). */
  backoff?: Backoff;
  /** Consecutive attempts that fail without receiving a byte before giving up (default 8). */
  maxFailures?: number;
  /** Stall detection: no header or no body bytes for this long fails the attempt (default 60 s). */
  idleTimeoutMs?: number;
  /** Every HTTP request made to the upstream (with its Range header, if any). */
  onRequest?: (range: string | undefined) => void;
  onBytes?: (bytes: number) => void;
  onProgress?: (bytesDone: number, bytesTotal: number | undefined) => void;
}

interface ResumeMeta {
  url: string;
  /** A strong ETag or a Last-Modified date: what If-Range needs to resume safely. */
  validator?: string;
}

const DISK_ERRORS: Record<string, string> = {
  ENOSPC: "disk full",
  EDQUOT: "disk quota exceeded",
  EROFS: "cache directory is read-only",
  EACCES: "permission denied",
  EPERM: "permission denied",
};

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}

async function readMeta(path: string): Promise<ResumeMeta | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as ResumeMeta;
  } catch {
    return undefined;
  }
}

async function hashExisting(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/** Downloads `url` completely into `partPath` and returns its size and sha256. */
export async function downloadFromUpstream(opts: UpstreamDownloadOptions): Promise<UpstreamResult> {
  const backoff = opts.backoff ?? new Backoff({ initialMs: 1000, maxMs: 60_000, jitter: 0.3 });
  const maxFailures = opts.maxFailures ?? 8;
  const metaPath = `${opts.partPath}.json`;
  let failures = 0;
  for (;;) {
    if (opts.signal?.aborted) throw new UpstreamError("download cancelled", true);
    let received = 0;
    try {
      return await attempt(opts, metaPath, (n) => (received += n));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code && DISK_ERRORS[code]) {
        // The space of the partial file is worth more to the machine than a resume.
        await rm(opts.partPath, { force: true });
        throw new UpstreamError(`${DISK_ERRORS[code]} while writing ${opts.partPath} (${code})`, false);
      }
      if (err instanceof UpstreamError && !err.retryable) throw err;
      if (opts.signal?.aborted) throw new UpstreamError("download cancelled", true);
      if (received > 0) {
        failures = 0;
        backoff.reset();
      }
      failures++;
      const reason = err instanceof UpstreamError ? err.message : `transfer failed: ${(err as Error).message}`;
      if (failures >= maxFailures) throw new UpstreamError(`${reason} (gave up after ${failures} attempts)`, true);
      const wait = backoff.next();
      opts.logger.warn({ url: opts.url, attempt: failures, retryInMs: wait }, `upstream download: ${reason}; retrying`);
      await sleep(wait, opts.signal);
    }
  }
}

async function attempt(opts: UpstreamDownloadOptions, metaPath: string, onReceived: (n: number) => void): Promise<UpstreamResult> {
  let offset = await sizeOf(opts.partPath);
  const meta = offset > 0 ? await readMeta(metaPath) : undefined;
  if (offset > 0 && meta?.url !== opts.url) {
    // A partial file from another URL (the catalog changed) cannot be continued.
    await rm(opts.partPath, { force: true });
    offset = 0;
  }
  const headers: Record<string, string> = { "user-agent": "drover-router" };
  if (offset > 0) {
    headers.range = `bytes=${offset}-`;
    if (meta?.validator) headers["if-range"] = meta.validator;
  }
  opts.onRequest?.(headers.range);
  const idle = opts.idleTimeoutMs ?? 60_000;
  let res: Dispatcher.ResponseData;
  try {
    res = await request(opts.url, { dispatcher: opts.dispatcher, headers, signal: opts.signal, headersTimeout: idle, bodyTimeout: idle });
  } catch (err) {
    throw new UpstreamError(`upstream unreachable: ${(err as Error).message}`, true);
  }

  const contentRange = header(res.headers["content-range"]);
  if (res.statusCode === 416) {
    await res.body.dump();
    // Nothing after `offset`: the partial file is complete when the upstream's size says so.
    const total = /^bytes \*\/(\d+)$/.exec(contentRange ?? "")?.[1];
    if (total !== undefined && Number(total) === offset) {
      const hash = createHash("sha256");
      await hashExisting(opts.partPath, hash);
      opts.onProgress?.(offset, offset);
      return { size: offset, sha256: hash.digest("hex") };
    }
    await rm(opts.partPath, { force: true });
    throw new UpstreamError("upstream rejected the resume range; starting over", true);
  }
  if (res.statusCode !== 200 && res.statusCode !== 206) {
    const detail = (await res.body.text().catch(() => "")).slice(0, 200).trim();
    const retryable = res.statusCode >= 500 || res.statusCode === 408 || res.statusCode === 429;
    throw new UpstreamError(`upstream answered HTTP ${res.statusCode}${detail ? `: ${detail}` : ""}`, retryable);
  }

  const hash = createHash("sha256");
  let append = false;
  if (res.statusCode === 206) {
    const start = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(contentRange ?? "")?.[1];
    if (start === undefined || Number(start) !== offset) {
      await res.body.dump();
      await rm(opts.partPath, { force: true });
      throw new UpstreamError(`upstream answered a different range (${contentRange ?? "none"}) than asked (bytes=${offset}-); starting over`, true);
    }
    await hashExisting(opts.partPath, hash);
    append = true;
    opts.logger.info({ url: opts.url, resumeAt: offset }, "upstream download resumed");
  } else {
    offset = 0;
    const etag = header(res.headers.etag);
    const validator = etag && !etag.startsWith("W/") ? etag : header(res.headers["last-modified"]);
    await writeFile(metaPath, JSON.stringify({ url: opts.url, validator } satisfies ResumeMeta));
  }

  const length = Number(header(res.headers["content-length"]));
  const total = Number.isFinite(length) && length >= 0 ? offset + length : undefined;
  let done = offset;
  let lastProgress = 0;
  opts.onProgress?.(done, total);
  const counter = new Transform({
    transform(chunk: Buffer, _enc, next) {
      hash.update(chunk);
      done += chunk.length;
      onReceived(chunk.length);
      opts.onBytes?.(chunk.length);
      const now = Date.now();
      if (now - lastProgress >= 250) {
        lastProgress = now;
        opts.onProgress?.(done, total);
      }
      next(null, chunk);
    },
  });
  await pipeline(res.body, counter, createWriteStream(opts.partPath, { flags: append ? "a" : "w" }), opts.signal ? { signal: opts.signal } : {});
  if (total !== undefined && done !== total) throw new UpstreamError(`upstream sent ${done} of ${total} bytes`, true);
  opts.onProgress?.(done, done);
  await rm(metaPath, { force: true });
  return { size: done, sha256: hash.digest("hex") };
}
