// The router's view of the fleet: every node that has tried to register, its per-model state,
// slots and in-flight counts, liveness and recent latency.
import { Pool } from "undici";
import type { Heartbeat, ModelStatus, NodeMetrics, NodeRegistration } from "../protocol/node-api.js";
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
}

export interface NodeSettings {
  displayName: string | null;
  tags: string[];
  notes: string | null;
}

const EWMA_ALPHA = 0.2;

/** A node as first seen: identity given, no models, no traffic, breaker closed. */
function newNodeRecord(identity: Pick<NodeRecord, "id" | "name" | "apiUrl" | "version" | "engine" | "state" | "firstSeen" | "lastSeen">): NodeRecord {
  return {
    ...identity,
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
  restore(known: { id: string; name: string; apiUrl: string; firstSeen: number; lastRegistered: number; displayName?: string | null; tags?: string[]; notes?: string | null }[]): void {
    for (const k of known) {
      if (this.nodes.has(k.id)) continue;
      this.nodes.set(k.id, {
        ...newNodeRecord({ id: k.id, name: k.name, apiUrl: k.apiUrl, version: "", engine: "", state: "offline", firstSeen: k.firstSeen, lastSeen: k.lastRegistered }),
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

  private upsert(reg: NodeRegistration): NodeRecord {
    let node = this.nodes.get(reg.nodeId);
    const now = Date.now();
    const created = !node;
    if (!node) {
      node = newNodeRecord({ id: reg.nodeId, name: reg.name, apiUrl: reg.apiUrl, version: reg.version, engine: reg.engine, state: "initializing", firstSeen: now, lastSeen: now });
      this.nodes.set(node.id, node);
    }
    if (node.apiUrl !== reg.apiUrl && node.pool) {
      void node.pool.close();
      node.pool = null;
    }
    const changed = created || node.name !== reg.name || node.apiUrl !== reg.apiUrl;
    Object.assign(node, { name: reg.name, apiUrl: reg.apiUrl, version: reg.version, engine: reg.engine, lastSeen: now });
    if (changed) this.identityChanged(node);
    this.setModels(node, reg.models);
    node.metrics = reg.metrics;
    return node;
  }

  /** A registration attempt that did not pass the readiness gate: listed, never routed to. */
  recordPending(reg: NodeRegistration): NodeRecord {
    const node = this.upsert(reg);
    node.state = "initializing";
    return node;
  }

  /** A registration that passed the gate (`models` as the node itself just answered them). */
  accept(reg: NodeRegistration): NodeRecord {
    const node = this.upsert(reg);
    node.state = "online";
    node.registeredAt = Date.now();
    node.breaker.onSuccess();
    if (!node.pool) node.pool = new Pool(new URL(node.apiUrl).origin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
    this.identityChanged(node);
    this.notify(node);
    return node;
  }

  /** Returns false for an unknown node (router restarted, node deleted): it must register again. */
  heartbeat(hb: Heartbeat): boolean {
    const node = this.nodes.get(hb.nodeId);
    if (!node || node.registeredAt === null) return false;
    node.lastSeen = Date.now();
    node.metrics = hb.metrics;
    this.setModels(node, hb.models);
    if (node.state === "offline") node.state = "online";
    node.breaker.onHeartbeat();
    this.notify(node);
    return true;
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
