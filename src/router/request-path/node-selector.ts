// Routing policy. Only nodes where the model is ready and a slot is free are candidates.
//  - least-load: the fewest in-flight requests relative to its slots, then the lower recent
//    latency, then round robin.
//  - prefix (the default): a request with an affinity key (affinity-key.ts) goes to the node its
//    key ranks first by rendezvous (highest-random-weight) hashing over the ready nodes' ids, so the
//    turns of one conversation return to the engine that holds their prefix, and adding or losing
//    a node moves only that node's share. Bounded by load: a node above `loadFactor` times the
//    fleet's mean load passes the request to the next node in the key's order. Requests without a
//    key (embeddings) use least-load.
// The order depends only on the key and the ready nodes' ids, never on router-local state, so
// several routers in front of one fleet place a conversation on the same node.
import { createHash } from "node:crypto";
import type { NodeRecord, NodeRegistry } from "../fleet/node-registry.js";

export const ROUTING_POLICIES = ["least-load", "prefix"] as const;
export type RoutingPolicy = (typeof ROUTING_POLICIES)[number];

export interface SelectorOptions {
  policy: RoutingPolicy;
  /** A node may hold up to this multiple of the fleet's mean load before the next node is tried (>= 1). */
  loadFactor: number;
}

// 2, not the 1.25 of bounded-load caching: a turn sent off its node evaluates its whole prompt
// again, which costs more than sharing a busy node (the affinity benchmark: docs/BENCHMARKS.md).
export const DEFAULT_LOAD_FACTOR = 2;

/** Where a request was placed and, when it has a key, whether that is the key's first node. */
export interface Placement {
  node: NodeRecord;
  /** The policy that chose the node: least-load for requests without a key. */
  routing: RoutingPolicy;
  /** "hit": the node the key ranks first among the ready nodes; null without a key. */
  affinity: "hit" | "miss" | null;
}

/** The weight of `nodeId` for `key`: the first 48 bits of sha256(key, nodeId). */
export function rendezvousWeight(key: string, nodeId: string): number {
  return createHash("sha256").update(key).update("\0").update(nodeId).digest().readUIntBE(0, 6);
}

/** Node ids in the key's order: highest weight first (ties, practically impossible, by id). */
export function rendezvousOrder(key: string, nodeIds: readonly string[]): string[] {
  const weighted = nodeIds.map((id) => ({ id, w: rendezvousWeight(key, id) }));
  weighted.sort((a, b) => b.w - a.w || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return weighted.map((x) => x.id);
}

/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam): after placement the
 * node's in-flight count may not exceed ceil(factor × mean), the mean being the fleet's in-flight
 * total (this request included) spread over the nodes in proportion to their slots.
 */
export function withinLoadBound(inFlight: number, slots: number, totalInFlight: number, totalSlots: number, factor: number): boolean {
  return inFlight + 1 <= Math.ceil((factor * (totalInFlight + 1) * slots) / totalSlots);
}

export class NodeSelector {
  private turn = 0;
  private readonly opts: SelectorOptions;

  constructor(
    private readonly registry: NodeRegistry,
    opts: Partial<SelectorOptions> = {},
  ) {
    this.opts = { policy: opts.policy ?? "prefix", loadFactor: opts.loadFactor ?? DEFAULT_LOAD_FACTOR };
    if (!(this.opts.loadFactor >= 1)) throw new Error(`the routing load factor must be at least 1 (got ${this.opts.loadFactor})`);
  }

  get policy(): RoutingPolicy {
    return this.opts.policy;
  }

  pick(modelId: string, affinityKey: string | null = null): Placement | null {
    if (affinityKey === null) {
      const node = this.leastLoaded(modelId);
      return node && { node, routing: "least-load", affinity: null };
    }
    const ready = this.registry.all().filter((n) => this.registry.isRoutable(n, modelId));
    if (ready.length === 0) return null;
    const byId = new Map(ready.map((n) => [n.id, n]));
    const order = rendezvousOrder(affinityKey, [...byId.keys()]).map((id) => byId.get(id)!);
    const preferred = order[0]!;
    const node = this.opts.policy === "prefix" ? this.boundedFirst(modelId, order) : this.leastLoaded(modelId);
    if (!node) return null;
    // Under least-load the key is still worth reporting: how often least-load lands where the prefix is.
    return { node, routing: this.opts.policy, affinity: node === preferred ? "hit" : "miss" };
  }

  /** The first node in the key's order within the load bound; else the first with a free slot. */
  private boundedFirst(modelId: string, order: readonly NodeRecord[]): NodeRecord | null {
    let totalInFlight = 0;
    let totalSlots = 0;
    for (const n of order) {
      totalInFlight += this.registry.inFlight(n, modelId);
      totalSlots += this.registry.slots(n, modelId);
    }
    let fallback: NodeRecord | null = null;
    for (const n of order) {
      if (!this.registry.hasFreeSlot(n, modelId)) continue;
      if (withinLoadBound(this.registry.inFlight(n, modelId), this.registry.slots(n, modelId), totalInFlight, totalSlots, this.opts.loadFactor)) return n;
      fallback ??= n;
    }
    return fallback;
  }

  private leastLoaded(modelId: string): NodeRecord | null {
    let best: NodeRecord[] = [];
    let bestLoad = Infinity;
    let bestLatency = Infinity;
    for (const node of this.registry.all()) {
      if (!this.registry.hasFreeSlot(node, modelId)) continue;
      const load = this.registry.inFlight(node, modelId) / this.registry.slots(node, modelId);
      const latency = node.latencyEwmaMs ?? 0;
      if (load < bestLoad || (load === bestLoad && latency < bestLatency)) {
        best = [node];
        bestLoad = load;
        bestLatency = latency;
      } else if (load === bestLoad && latency === bestLatency) {
        best.push(node);
      }
    }
    if (best.length === 0) return null;
    return best[this.turn++ % best.length]!;
  }
}
