// The router's view of the fleet: every node that has tried to register, its per-model state,
// slots and in-flight counts, liveness and recent latency.
import { Pool } from "undici";
import { nodeSecretHash, sameSecret } from "../../protocol/node-auth.js";
import type { Heartbeat, ModelStatus, NodeMetrics, NodeRegistration } from "../../protocol/node-api.js";
import { CircuitBreaker } from "./circuit-breaker.js";

export type NodeState = "initializing" | "online" | "offline";

export interface NodeRecord {
  id: string;
  name: string;
  apiUrl: string;
  version: string;
  engine: string;
  state: NodeState;
  firstSeen: number;
  registeredAt: number | null;
  lastSeen: number;
  models: Map<string, ModelStatus>;
  /** Models a node answered "not ready" for since its last heartbeat: not routable until it reports again. */
  suspended: Set<string>;
  metrics: NodeMetrics;
  inFlight: Map<string, number>;
  totalRequests: number;
  failedRequests: number;
  latencyEwmaMs: number | null;
  breaker: CircuitBreaker;
  pool: Pool | null;
  /** Operator settings from the dashboard (display name, tags, notes); absent until set. */
  settings?: NodeSettings;
  /** sha256 of the node's secret: the id belongs to whoever first registered with it. */
  secretHash: string | null;
  /** Whether the node ever passed the readiness gate (here, or on a router sharing the database). */
  everAccepted: boolean;
  /** When its identity was last written to the database (refreshed while it heartbeats). */
  persistedAt: number;
}

/** Whether a registration or heartbeat may speak for a node id. */
export type IdentityCheck = "ok" | "unknown" | "taken";

export interface NodeSettings {
  displayName: string | null;
  tags: string[];
  notes: string | null;
}

const EWMA_ALPHA = 0.2;
const PERSIST_REFRESH_MS = 3_600_000;
/** A registration that never passed the gate is forgotten after this much silence (at most). */
const PENDING_PRUNE_MS = 10 * 60_000;

/** A node as first seen: identity given, no models, no traffic, breaker closed. */
function newNodeRecord(
  identity: Pick<NodeRecord, "id" | "name" | "apiUrl" | "version" | "engine" | "state" | "firstSeen" | "lastSeen" | "secretHash" | "everAccepted">,
): NodeRecord {
  return {
    ...identity,
    persistedAt: 0,
    registeredAt: null,
    models: new Map(),
    suspended: new Set(),
    metrics: {},
    inFlight: new Map(),
    totalRequests: 0,
    failedRequests: 0,
    latencyEwmaMs: null,
    breaker: new CircuitBreaker(),
    pool: null,
  };
}

export class NodeRegistry {
  private nodes = new Map<string, NodeRecord>();
  private listeners = new Set<(modelIds: string[]) => void>();

  private identityListeners = new Set<(node: NodeRecord) => void>();

  constructor(private readonly heartbeatMs: number) {}

  /** Called when a node is first seen, changes its name or API URL, or is accepted (persistence). */
  onIdentity(listener: (node: NodeRecord) => void): void {
    this.identityListeners.add(listener);
  }

  /** Nodes known from a previous run: listed offline, never routed to, until they register again. */
  restore(
    known: {
      id: string;
      name: string;
      apiUrl: string;
      firstSeen: number;
      lastRegistered: number;
      secretHash?: string | null;
      displayName?: string | null;
      tags?: string[];
      notes?: string | null;
    }[],
  ): void {
    for (const k of known) {
      const present = this.nodes.get(k.id);
      if (present) {
        // Bound on another router sharing the database first.
        present.secretHash ??= k.secretHash ?? null;
        continue;
      }
      this.nodes.set(k.id, {
        ...newNodeRecord({
          id: k.id,
          name: k.name,
          apiUrl: k.apiUrl,
          version: "",
          engine: "",
          state: "offline",
          firstSeen: k.firstSeen,
          lastSeen: k.lastRegistered,
          secretHash: k.secretHash ?? null,
          everAccepted: true,
        }),
        persistedAt: k.lastRegistered,
        ...(k.displayName || k.tags?.length || k.notes ? { settings: { displayName: k.displayName ?? null, tags: k.tags ?? [], notes: k.notes ?? null } } : {}),
      });
    }
  }

  private identityChanged(node: NodeRecord): void {
    for (const l of this.identityListeners) l(node);
  }

  /** Called whenever capacity may have appeared for these models. */
  onCapacity(listener: (modelIds: string[]) => void): void {
    this.listeners.add(listener);
  }

  private notify(node: NodeRecord): void {
    const ids = [...node.models.keys()];
    for (const l of this.listeners) l(ids);
  }

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  all(): NodeRecord[] {
    return [...this.nodes.values()];
  }

  /**
   * Whether this secret may speak for `nodeId`: "unknown" (never seen: the first registration
   * binds it), "ok" (it matches, or the id was known before ids were bound), or "taken".
   */
  checkIdentity(nodeId: string, secret: string): IdentityCheck {
    const node = this.nodes.get(nodeId);
    if (!node) return "unknown";
    if (node.secretHash === null) return "ok";
    return sameSecret(nodeSecretHash(secret), node.secretHash) ? "ok" : "taken";
  }

  private upsert(reg: NodeRegistration, secret: string | undefined): NodeRecord {
    let node = this.nodes.get(reg.nodeId);
    const now = Date.now();
    if (!node) {
      node = newNodeRecord({
        id: reg.nodeId,
        name: reg.name,
        apiUrl: reg.apiUrl,
        version: reg.version,
        engine: reg.engine,
        state: "initializing",
        firstSeen: now,
        lastSeen: now,
        secretHash: null,
        everAccepted: false,
      });
      this.nodes.set(node.id, node);
    }
    // The route checked the identity first: bind an id that had no secret yet.
    if (secret !== undefined) node.secretHash ??= nodeSecretHash(secret);
    if (node.apiUrl !== reg.apiUrl && node.pool) {
      void node.pool.close();
      node.pool = null;
    }
    // Saved in the database only once accepted (accept() below): a registration that never
    // passes the gate stays in memory until it is pruned.
    Object.assign(node, { name: reg.name, apiUrl: reg.apiUrl, version: reg.version, engine: reg.engine, lastSeen: now });
    this.setModels(node, reg.models);
    node.metrics = reg.metrics;
    return node;
  }

  /** A registration attempt that did not pass the readiness gate: listed, never routed to. */
  recordPending(reg: NodeRegistration, secret?: string): NodeRecord {
    const node = this.upsert(reg, secret);
    node.state = "initializing";
    return node;
  }

  /** A registration that passed the gate (`models` as the node itself just answered them). */
  accept(reg: NodeRegistration, secret?: string): NodeRecord {
    const node = this.upsert(reg, secret);
    node.state = "online";
    node.registeredAt = Date.now();
    node.everAccepted = true;
    node.persistedAt = node.registeredAt;
    node.breaker.onSuccess();
    if (!node.pool) node.pool = new Pool(new URL(node.apiUrl).origin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
    this.identityChanged(node);
    this.notify(node);
    return node;
  }

  /**
   * "unknown" for a node that is not registered here (router restarted, node deleted): it must
   * register again; "taken" when the secret is not the one the id is bound to.
   */
  heartbeat(hb: Heartbeat, secret?: string): IdentityCheck {
    const node = this.nodes.get(hb.nodeId);
    if (!node) return "unknown";
    if (node.secretHash !== null && (secret === undefined || this.checkIdentity(hb.nodeId, secret) === "taken")) return "taken";
    if (node.registeredAt === null) return "unknown";
    node.lastSeen = Date.now();
    // Keeps the database's last-seen time fresh, so other routers never prune a live node.
    if (node.lastSeen - node.persistedAt > PERSIST_REFRESH_MS) {
      node.persistedAt = node.lastSeen;
      this.identityChanged(node);
    }
    node.metrics = hb.metrics;
    this.setModels(node, hb.models);
    if (node.state === "offline") node.state = "online";
    node.breaker.onHeartbeat();
    this.notify(node);
    return "ok";
  }

  private setModels(node: NodeRecord, models: ModelStatus[]): void {
    node.models = new Map(models.map((m) => [m.id, m]));
    node.suspended.clear();
  }

  /** The node answered that this model's engine is unavailable: stop routing it there until it reports. */
  suspendModel(node: NodeRecord, modelId: string): void {
    node.suspended.add(modelId);
  }

  /** Marks nodes offline after three missed heartbeats. */
  sweep(now = Date.now()): NodeRecord[] {
    const changed: NodeRecord[] = [];
    for (const node of this.nodes.values()) {
      if (node.state === "online" && now - node.lastSeen > 3 * this.heartbeatMs) {
        node.state = "offline";
        changed.push(node);
      }
    }
    return changed;
  }

  /**
   * Forgets nodes silent for longer than `afterMs` (registrations that never passed the gate:
   * after at most 10 minutes). Online nodes are never pruned. Returns the ids removed.
   */
  prune(afterMs: number, now = Date.now()): string[] {
    const removed: string[] = [];
    if (afterMs <= 0) return removed;
    for (const node of [...this.nodes.values()]) {
      if (node.state === "online") continue;
      const limit = node.everAccepted ? afterMs : Math.min(afterMs, PENDING_PRUNE_MS);
      if (now - node.lastSeen > limit && this.remove(node.id)) removed.push(node.id);
    }
    return removed;
  }

  /**
   * Drops a node's registration (an operator's "disconnect"): it is listed offline and never
   * routed to; its next heartbeat is answered 404, so a running node registers again through
   * the readiness gate. Requests already on it finish.
   */
  disconnect(id: string): boolean {
    const node = this.nodes.get(id);
    if (!node) return false;
    node.state = "offline";
    node.registeredAt = null;
    return true;
  }

  remove(id: string): boolean {
    const node = this.nodes.get(id);
    if (!node) return false;
    void node.pool?.close();
    return this.nodes.delete(id);
  }

  /** Whether this node may receive `modelId` at all (ignoring its slot usage). */
  isRoutable(node: NodeRecord, modelId: string): boolean {
    return node.state === "online" && node.models.get(modelId)?.state === "ready" && !node.suspended.has(modelId) && node.breaker.allows();
  }

  slots(node: NodeRecord, modelId: string): number {
    return Math.max(1, node.models.get(modelId)?.slots ?? 1);
  }

  inFlight(node: NodeRecord, modelId: string): number {
    return node.inFlight.get(modelId) ?? 0;
  }

  hasFreeSlot(node: NodeRecord, modelId: string): boolean {
    return this.isRoutable(node, modelId) && this.inFlight(node, modelId) < this.slots(node, modelId);
  }

  addInFlight(node: NodeRecord, modelId: string, delta: 1 | -1): void {
    node.inFlight.set(modelId, Math.max(0, this.inFlight(node, modelId) + delta));
  }

  recordLatency(node: NodeRecord, ms: number): void {
    node.latencyEwmaMs = node.latencyEwmaMs === null ? ms : node.latencyEwmaMs + EWMA_ALPHA * (ms - node.latencyEwmaMs);
  }

  async close(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.pool?.close()));
  }
}
