// Request history off the request path: every finished request becomes a row in memory, and
// rows are written in batches (every `flushEveryMs`, or at once when `maxBatch` are waiting).
// A database that is slow or down delays the writes, never a request; past `maxPending` rows
// the oldest are dropped (and counted). Retention deletes old rows on a schedule.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { FinishedRequest, RequestEvents } from "../request-events.js";
import type { HistoryRecord, RequestHistoryRepository } from "../store/request-history.js";

export interface HistoryRecorderOptions {
  flushEveryMs?: number;
  maxBatch?: number;
  maxPending?: number;
  /** Records older than this are deleted. */
  retentionMs: number;
  sweepEveryMs?: number;
}

/** Ids sort by time: 12 hex digits of epoch ms, then 16 random hex digits. */
export function historyId(startedAt: number, random16 = randomBytes(8).toString("hex")): string {
  return Math.max(0, Math.floor(startedAt)).toString(16).padStart(12, "0") + random16;
}

export function toHistoryRecord(r: FinishedRequest, random16?: string): HistoryRecord {
  return {
    id: historyId(r.startedAt, random16),
    requestId: r.requestId,
    startedAt: r.startedAt,
    api: r.api,
    endpoint: r.endpoint,
    model: r.modelId,
    stream: r.stream,
    clientIp: r.clientIp,
    keyName: r.keyName,
    nodeId: r.nodeId,
    nodeName: r.nodeName,
    routing: r.routing ?? null,
    affinity: r.affinity ?? null,
    status: r.status,
    error: r.error,
    attempts: r.attempts,
    queueWaitMs: r.queueWaitMs,
    firstByteMs: r.firstByteMs,
    durationMs: r.durationMs,
    promptTokens: r.promptTokens,
    completionTokens: r.completionTokens,
    toolCalls: r.toolCalls ?? null,
    cachedTokens: r.cachedTokens ?? null,
    traceId: r.traceId,
    requestBody: r.requestBody ?? null,
    responseBody: r.responseBody ?? null,
  };
}

export class HistoryRecorder {
  /** Kept as emitted; turned into rows when written, off the request path. */
  private pending: FinishedRequest[] = [];
  private flushing: Promise<void> | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private soon = false;
  private lastWarn = 0;
  /** Rows dropped because the database could not keep up. */
  dropped = 0;
  written = 0;
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
    this.sweepEveryMs = opts.sweepEveryMs ?? 10 * 60 * 1000;
  }

  attach(events: RequestEvents): void {
    events.onFinished((r) => this.record(r));
  }

  /** Called on the request path: only an array push. */
  record(r: FinishedRequest): void {
    this.pending.push(r);
    if (this.pending.length > this.maxPending) {
      const excess = this.pending.length - this.maxPending;
      this.pending.splice(0, excess);
      this.dropped += excess;
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
      try {
        // One call for the whole batch's random id parts.
        const random = randomBytes(8 * batch.length).toString("hex");
        await this.repo.insertMany(batch.map((r, i) => toHistoryRecord(r, random.slice(i * 16, i * 16 + 16))));
        this.written += batch.length;
      } catch (err) {
        // Back to the front, to try again on the next tick.
        this.pending.unshift(...batch);
        if (Date.now() - this.lastWarn > 10_000) {
          this.lastWarn = Date.now();
          this.logger.warn({ err: (err as Error).message, pending: this.pending.length }, "could not write request history; will retry");
        }
        return;
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
