// Request history off the request path: every finished request becomes a row in memory, and
// rows are written in batches (every `flushEveryMs`, or at once when `maxBatch` are waiting).
// A database that is slow or down delays the writes, never a request; past `maxPending` rows or
// `maxPendingBytes` the oldest are dropped (and counted). One bad row never blocks the others:
// values a database cannot store (integers past a 32-bit column, NUL characters) are repaired
// when the row is made, and a batch the database refuses while it answers otherwise is written
// row by row, dropping (and logging) the rows it still refuses. Retention deletes old rows on a
// schedule.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { RequestRecord } from "../../protocol/request-record.js";
import type { RequestEvents } from "../request-path/request-events.js";
import type { HistoryRecord } from "../../protocol/request-record.js";
import type { RequestHistoryRepository } from "../store/request-history.js";

export interface HistoryRecorderOptions {
  flushEveryMs?: number;
  maxBatch?: number;
  maxPending?: number;
  /** Bytes of pending rows (bodies included) kept while the database cannot take them (default 64 MiB). */
  maxPendingBytes?: number;
  /** Records older than this are deleted. */
  retentionMs: number;
  sweepEveryMs?: number;
}

/** Ids sort by time: 12 hex digits of epoch ms, then 16 random hex digits. */
export function historyId(startedAt: number, random16 = randomBytes(8).toString("hex")): string {
  return Math.max(0, Math.floor(startedAt)).toString(16).padStart(12, "0") + random16;
}

const INT32_MAX = 2_147_483_647;

/** A count or duration as a 32-bit integer column takes it: rounded, and within range. */
function int32(n: number): number {
  return Number.isFinite(n) ? Math.min(INT32_MAX, Math.max(-INT32_MAX, Math.round(n))) : 0;
}
/** Token counts nobody could have produced are unknown, not clamped. */
function tokens(n: number | null): number | null {
  return n === null || !Number.isFinite(n) || n < 0 || n > INT32_MAX ? null : Math.round(n);
}
/** PostgreSQL text cannot hold NUL. */
function text<T extends string | null | undefined>(s: T): T {
  return (typeof s === "string" && s.includes("\u0000") ? s.replaceAll("\u0000", "\uFFFD") : s) as T;
}

/** Rough in-memory size of a pending record (its strings dominate). */
function approxBytes(r: RequestRecord): number {
  return 400 + 2 * ((r.requestBody?.length ?? 0) + (r.responseBody?.length ?? 0) + (r.error?.length ?? 0) + r.endpoint.length + r.modelId.length);
}

/** Whether the row had to be repaired to be storable (for the log line). */
function needsRepair(r: RequestRecord): boolean {
  const ints = [r.status, r.attempts, r.queueWaitMs, r.firstByteMs ?? 0, r.durationMs];
  const badInt =
    ints.some((n) => int32(n) !== n) ||
    tokens(r.promptTokens) !== r.promptTokens ||
    tokens(r.completionTokens) !== r.completionTokens ||
    tokens(r.toolCalls ?? null) !== (r.toolCalls ?? null) ||
    tokens(r.cachedTokens ?? null) !== (r.cachedTokens ?? null);
  const strings = [r.requestBody, r.responseBody, r.error, r.requestId, r.endpoint, r.modelId, r.clientIp, r.keyName, r.nodeId, r.nodeName, r.traceId];
  return badInt || strings.some((s) => typeof s === "string" && s.includes("\u0000"));
}

export function toHistoryRecord(r: RequestRecord, random16?: string): HistoryRecord {
  return {
    id: historyId(r.startedAt, random16),
    requestId: text(r.requestId),
    startedAt: r.startedAt,
    api: r.api,
    endpoint: text(r.endpoint),
    model: text(r.modelId),
    stream: r.stream,
    clientIp: text(r.clientIp),
    keyName: text(r.keyName),
    nodeId: text(r.nodeId),
    nodeName: text(r.nodeName),
    routing: r.routing ?? null,
    affinity: r.affinity ?? null,
    status: int32(r.status),
    error: text(r.error),
    attempts: int32(r.attempts),
    queueWaitMs: int32(r.queueWaitMs),
    firstByteMs: r.firstByteMs === null ? null : int32(r.firstByteMs),
    durationMs: int32(r.durationMs),
    promptTokens: tokens(r.promptTokens),
    completionTokens: tokens(r.completionTokens),
    toolCalls: tokens(r.toolCalls ?? null),
    cachedTokens: tokens(r.cachedTokens ?? null),
    traceId: text(r.traceId),
    requestBody: text(r.requestBody ?? null),
    responseBody: text(r.responseBody ?? null),
  };
}

export class HistoryRecorder {
  /** Kept as emitted; turned into rows when written, off the request path. */
  private pending: RequestRecord[] = [];
  private pendingBytes = 0;
  private flushing: Promise<void> | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private soon = false;
  private lastWarn = 0;
  /** Rows dropped because the database could not keep up. */
  dropped = 0;
  /** Rows the database refused on their own (logged), while it took the others. */
  rejected = 0;
  /** Rows with values repaired to be storable. */
  repaired = 0;
  written = 0;
  private readonly maxPendingBytes: number;
  private readonly flushEveryMs: number;
  private readonly maxBatch: number;
  private readonly maxPending: number;
  private readonly sweepEveryMs: number;

  constructor(
    private readonly repo: RequestHistoryRepository,
    private readonly logger: Logger,
    private readonly opts: HistoryRecorderOptions,
  ) {
    this.flushEveryMs = opts.flushEveryMs ?? 250;
    this.maxBatch = opts.maxBatch ?? 500;
    this.maxPending = opts.maxPending ?? 100_000;
    this.maxPendingBytes = opts.maxPendingBytes ?? 64 * 1024 * 1024;
    this.sweepEveryMs = opts.sweepEveryMs ?? 10 * 60 * 1000;
  }

  attach(events: RequestEvents): void {
    events.onFinished((r) => this.record(r));
  }

  /** Called on the request path: only an array push. */
  record(r: RequestRecord): void {
    this.pending.push(r);
    this.pendingBytes += approxBytes(r);
    while (this.pending.length > 1 && (this.pending.length > this.maxPending || this.pendingBytes > this.maxPendingBytes)) {
      this.pendingBytes -= approxBytes(this.pending.shift()!);
      this.dropped++;
    }
    if (this.pending.length >= this.maxBatch && !this.soon) {
      this.soon = true;
      setImmediate(() => {
        this.soon = false;
        void this.flush();
      });
    }
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  /** Approximate bytes held by the pending rows. */
  get pendingByteCount(): number {
    return this.pendingBytes;
  }

  start(): void {
    this.flushTimer = setInterval(() => void this.flush(), this.flushEveryMs);
    this.flushTimer.unref();
    this.sweepTimer = setInterval(() => void this.sweep(), this.sweepEveryMs);
    this.sweepTimer.unref();
    void this.sweep();
  }

  /** Writes what is waiting; concurrent calls share one write. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending.length === 0) return Promise.resolve();
    this.flushing = this.writeAll().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async writeAll(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      for (const r of batch) this.pendingBytes -= approxBytes(r);
      // One call for the whole batch's random id parts.
      const random = randomBytes(8 * batch.length).toString("hex");
      const rows = batch.map((r, i) => {
        if (needsRepair(r)) {
          this.repaired++;
          this.logger.warn(
            { reqId: r.requestId },
            "request history: repaired a row the database could not store as it was (integer out of range or NUL character)",
          );
        }
        return toHistoryRecord(r, random.slice(i * 16, i * 16 + 16));
      });
      try {
        await this.repo.insertMany(rows);
        this.written += batch.length;
      } catch (err) {
        if (await this.databaseAnswers()) {
          // The database is up but refused the batch: one row is bad. Write them one by one.
          await this.writeOneByOne(rows);
          continue;
        }
        // Back to the front, to try again on the next tick.
        this.pending.unshift(...batch);
        for (const r of batch) this.pendingBytes += approxBytes(r);
        if (Date.now() - this.lastWarn > 10_000) {
          this.lastWarn = Date.now();
          this.logger.warn({ err: (err as Error).message, pending: this.pending.length }, "could not write request history; will retry");
        }
        return;
      }
    }
  }

  private async databaseAnswers(): Promise<boolean> {
    try {
      await this.repo.ping();
      return true;
    } catch {
      return false;
    }
  }

  private async writeOneByOne(rows: HistoryRecord[]): Promise<void> {
    for (const row of rows) {
      try {
        await this.repo.insertMany([row]);
        this.written++;
      } catch (err) {
        this.rejected++;
        this.logger.error(
          { err: (err as Error).message, reqId: row.requestId, id: row.id },
          "request history: the database refused this row; dropped it so later rows are written",
        );
      }
    }
  }

  async sweep(now = Date.now()): Promise<number> {
    try {
      const deleted = await this.repo.deleteOlderThan(now - this.opts.retentionMs);
      if (deleted > 0) this.logger.info({ deleted }, "request history: removed records past retention");
      return deleted;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, "request history retention sweep failed");
      return 0;
    }
  }

  /** Stops the timers and writes what is left (one last try). */
  async close(): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.flushing;
    await this.flush();
  }
}
