// Admission: a request takes a free slot on a ready node at once, or waits in a FIFO queue
// (per model, bounded per model and in total) until one frees up. A request for a model no node
// can serve — every live node reports it unsupported, or failed for longer than a grace period,
// or no node has been connected for that long — is refused at once instead of filling the queue
// for everyone. Everything here is in memory: admission never touches the database.
import type { BreakerOutcome } from "../fleet/circuit-breaker.js";
import type { NodeRecord, NodeRegistry } from "../fleet/node-registry.js";
import type { NodeSelector, Placement } from "./node-selector.js";

export class QueueFullError extends Error {
  constructor(
    readonly limit: number,
    readonly modelId?: string,
  ) {
    super(
      modelId
        ? `the router's queue for '${modelId}' is full (${limit} requests waiting for it); retry shortly`
        : `the router's queue is full (${limit} requests waiting); retry shortly`,
    );
  }
}
/** No node can serve the model now, nor is one expected to soon. */
export class ModelUnavailableError extends Error {}
export class QueueTimeoutError extends Error {
  constructor(readonly waitedMs: number) {
    super(`no capacity for this model within ${waitedMs} ms`);
  }
}
export class QueueAbortedError extends Error {
  constructor() {
    super("client went away while queued");
  }
}

/** A slot on one node, held while a request runs there. */
export interface Lease {
  node: NodeRecord;
  modelId: string;
  /** Milliseconds the request waited for this slot. */
  waitedMs: number;
  /** How the node was chosen (policy, and whether it is the affinity key's first node). */
  routing: Placement["routing"];
  affinity: Placement["affinity"];
  /** Whether this request is the half-open breaker's trial on the node. */
  trial: boolean;
  /** Set by release: a lease settles exactly once. */
  released?: boolean;
}

interface Waiter {
  modelId: string;
  /** The request's affinity key (affinity-key.ts), or null. */
  affinityKey: string | null;
  enqueuedAt: number;
  /** Requests that already failed once go to the front of their model's line. */
  resolve(lease: Lease): void;
  reject(err: Error): void;
  done: boolean;
}

export interface QueueOptions {
  limit: number;
  /** Requests that may wait for one model (default: `limit`). */
  perModelLimit?: number;
  /** 0 = wait for ever. */
  timeoutMs: number;
  /** How long a model may be unservable (failed everywhere, or no node at all) before requests for it are refused (default 60 s). */
  unavailableGraceMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

export class AdmissionQueue {
  private waiting = new Map<string, Waiter[]>();
  private total = 0;
  private pumping = false;
  private pendingPump = new Set<string>();
  private repumpTimers = new Map<string, NodeJS.Timeout>();
  /** When each model was last seen servable (or no-node time started): the grace period's start. */
  private lastServable = new Map<string, number>();
  private readonly now: () => number;
  private readonly createdAt: number;

  constructor(
    private readonly registry: NodeRegistry,
    private readonly selector: NodeSelector,
    private readonly opts: QueueOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.createdAt = this.now();
    registry.onCapacity((ids) => {
      this.refuseHopeless(ids);
      this.pump(ids);
    });
  }

  /**
   * Why no node can serve `modelId`, or null while one may: a live node (online or
   * initializing) that has it queued, downloading, loading or ready; or one that failed it, within
   * the grace period (engines restart, downloads retry); or no node at all, within the grace period.
   */
  unavailableReason(modelId: string): string | null {
    const now = this.now();
    const grace = this.opts.unavailableGraceMs ?? 60_000;
    const reasons: string[] = [];
    let failed = false;
    let live = 0;
    let lastHeard = this.createdAt;
    for (const node of this.registry.all()) {
      lastHeard = Math.max(lastHeard, node.lastSeen);
      if (node.state === "offline") continue;
      live++;
      const m = node.models.get(modelId);
      if (m && m.state !== "failed" && m.state !== "unsupported") {
        this.lastServable.set(modelId, now);
        return null;
      }
      if (m?.state === "failed") failed = true;
      reasons.push(`${node.name}: ${m ? `${m.state}${m.reason ? ` (${m.reason})` : ""}` : "does not offer it"}`);
    }
    const since = Math.max(this.lastServable.get(modelId) ?? this.createdAt, live === 0 ? lastHeard : 0);
    if ((live === 0 || failed) && now - since < grace) return null;
    if (live === 0) return `no node is connected to the router (for ${Math.round((now - since) / 1000)} s), so nothing can serve '${modelId}'; start a node`;
    return `no node can serve '${modelId}': ${reasons.join("; ")}`;
  }

  /** Fails the waiters of models that became unservable (their last node reported it unsupported...). */
  private refuseHopeless(modelIds: Iterable<string>): void {
    for (const id of modelIds) {
      const line = this.waiting.get(id);
      if (!line?.length) continue;
      const reason = this.unavailableReason(id);
      if (reason) for (const w of [...line]) w.reject(new ModelUnavailableError(reason));
    }
  }

  get depth(): number {
    return this.total;
  }

  /** Depth and oldest wait per model, for GET /api/queue and the dashboard. */
  snapshot(): { total: number; limit: number; perModelLimit: number; models: Record<string, { depth: number; oldestWaitMs: number }> } {
    const now = Date.now();
    const models: Record<string, { depth: number; oldestWaitMs: number }> = {};
    for (const [id, line] of this.waiting) {
      if (line.length) models[id] = { depth: line.length, oldestWaitMs: now - line[0]!.enqueuedAt };
    }
    return { total: this.total, limit: this.opts.limit, perModelLimit: this.opts.perModelLimit ?? this.opts.limit, models };
  }

  /**
   * Resolves with a lease once a slot is free. `retry` marks a request that already failed on a
   * node: it may queue past the limit (it was admitted once) and goes to the front of its line.
   * `affinityKey` places it by prefix (node-selector.ts), here and when it leaves the queue.
   */
  acquire(modelId: string, signal: AbortSignal, retry = false, affinityKey: string | null = null): Promise<Lease> {
    const line = this.waiting.get(modelId);
    if (!line?.length) {
      const lease = this.tryLease(modelId, Date.now(), affinityKey);
      if (lease) return Promise.resolve(lease);
    }
    if (!retry) {
      if (this.total >= this.opts.limit) return Promise.reject(new QueueFullError(this.opts.limit));
      const perModel = this.opts.perModelLimit ?? this.opts.limit;
      if ((line?.length ?? 0) >= perModel) return Promise.reject(new QueueFullError(perModel, modelId));
      const unavailable = this.unavailableReason(modelId);
      if (unavailable) return Promise.reject(new ModelUnavailableError(unavailable));
    }
    if (signal.aborted) return Promise.reject(new QueueAbortedError());

    return new Promise<Lease>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        waiter.done = true;
        if (timer) clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.remove(waiter);
      };
      const waiter: Waiter = {
        modelId,
        affinityKey,
        enqueuedAt: Date.now(),
        done: false,
        resolve: (lease) => {
          finish();
          resolve(lease);
        },
        reject: (err) => {
          finish();
          reject(err);
        },
      };
      const onAbort = () => waiter.reject(new QueueAbortedError());
      signal.addEventListener("abort", onAbort, { once: true });
      if (this.opts.timeoutMs > 0) {
        timer = setTimeout(() => waiter.reject(new QueueTimeoutError(this.opts.timeoutMs)), this.opts.timeoutMs);
      }
      let list = this.waiting.get(modelId);
      if (!list) this.waiting.set(modelId, (list = []));
      if (retry) list.unshift(waiter);
      else list.push(waiter);
      this.total++;
      // Capacity may have appeared between the check above and now (it cannot in one tick, but a
      // retry can be queued while slots are free on other nodes).
      this.pump([modelId]);
    });
  }

  /**
   * Gives the slot back with the request's outcome for the node's breaker (exactly once per
   * lease: a second call is ignored); the next waiter for that model gets the slot.
   */
  release(lease: Lease, outcome: BreakerOutcome): void {
    if (lease.released) return;
    lease.released = true;
    lease.node.breaker.settle(outcome, lease.trial);
    this.registry.addInFlight(lease.node, lease.modelId, -1);
    this.pump([lease.modelId]);
  }

  private remove(waiter: Waiter): void {
    const list = this.waiting.get(waiter.modelId);
    if (!list) return;
    const i = list.indexOf(waiter);
    if (i >= 0) {
      list.splice(i, 1);
      this.total--;
    }
    if (list.length === 0) this.waiting.delete(waiter.modelId);
  }

  private tryLease(modelId: string, enqueuedAt: number, affinityKey: string | null): Lease | null {
    const placed = this.selector.pick(modelId, affinityKey);
    if (!placed) return null;
    const { node, routing, affinity } = placed;
    this.registry.addInFlight(node, modelId, 1);
    const trial = node.breaker.onDispatch();
    return { node, modelId, waitedMs: Date.now() - enqueuedAt, routing, affinity, trial };
  }

  /** Hands free slots to waiters of these models, oldest first. */
  pump(modelIds: Iterable<string>): void {
    for (const id of modelIds) this.pendingPump.add(id);
    if (this.pumping) return; // the loop below is already running and will see these ids
    this.pumping = true;
    try {
      for (const id of this.pendingPump) {
        this.pendingPump.delete(id);
        const list = this.waiting.get(id);
        while (list?.length) {
          const lease = this.tryLease(id, list[0]!.enqueuedAt, list[0]!.affinityKey);
          if (!lease) break;
          list[0]!.resolve(lease);
        }
        if (list?.length) this.scheduleBreakerRetry(id);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Waiters blocked only by an open breaker are woken when it half-opens (no heartbeat needed). */
  private scheduleBreakerRetry(modelId: string): void {
    if (this.repumpTimers.has(modelId)) return;
    let soonest = Infinity;
    for (const node of this.registry.all()) {
      if (node.state !== "online" || node.models.get(modelId)?.state !== "ready") continue;
      const ms = node.breaker.msUntilTrial();
      if (ms > 0) soonest = Math.min(soonest, ms);
    }
    if (!Number.isFinite(soonest)) return;
    const t = setTimeout(() => {
      this.repumpTimers.delete(modelId);
      this.pump([modelId]);
    }, soonest + 5);
    t.unref();
    this.repumpTimers.set(modelId, t);
  }

  /** Fails every waiter (router shutting down). */
  drain(err: Error): void {
    for (const list of [...this.waiting.values()]) for (const w of [...list]) w.reject(err);
  }
}
