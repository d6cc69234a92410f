// A bounded in-memory history of each node's heartbeat metrics, for the dashboard's charts.
// It samples the registry (a heartbeat shows up as a new `lastSeen`), so the registry and the
// heartbeat route stay unaware of it.
import type { MetricSample } from "../../protocol/fleet-view.js";
import type { NodeRecord } from "../fleet/node-registry.js";

/** 720 samples = one hour at the default 5 s heartbeat. */
export const DEFAULT_SAMPLES_PER_NODE = 720;

function sum(values: (number | undefined)[]): number | null {
  const known = values.filter((v): v is number => typeof v === "number");
  return known.length === 0 ? null : known.reduce((a, b) => a + b, 0);
}

export function sampleOf(node: NodeRecord): MetricSample {
  const gpus = node.metrics.gpus ?? [];
  const gpuUtil = sum(gpus.map((g) => g.utilizationPercent));
  return {
    t: node.lastSeen,
    cpuPercent: node.metrics.cpuPercent ?? null,
    memoryUsedBytes: node.metrics.memoryUsedBytes ?? null,
    memoryTotalBytes: node.metrics.memoryTotalBytes ?? null,
    gpuPercent: gpuUtil === null ? null : gpuUtil / gpus.filter((g) => typeof g.utilizationPercent === "number").length,
    gpuMemoryUsedBytes: sum(gpus.map((g) => g.memoryUsedBytes)),
    gpuMemoryTotalBytes: sum(gpus.map((g) => g.memoryTotalBytes)),
    inFlight: [...node.inFlight.values()].reduce((a, b) => a + b, 0),
    totalRequests: node.totalRequests,
    failedRequests: node.failedRequests,
    latencyEwmaMs: node.latencyEwmaMs,
  };
}

class Ring {
  private items: MetricSample[] = [];
  private start = 0;
  constructor(private readonly capacity: number) {}

  push(s: MetricSample): void {
    if (this.items.length < this.capacity) this.items.push(s);
    else {
      this.items[this.start] = s;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  last(): MetricSample | undefined {
    if (this.items.length === 0) return undefined;
    return this.items[(this.start + this.items.length - 1) % this.items.length];
  }

  toArray(): MetricSample[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }
}

export class NodeMetricHistory {
  private rings = new Map<string, Ring>();

  constructor(private readonly capacity = DEFAULT_SAMPLES_PER_NODE) {}

  /** Records a sample for every node whose heartbeat (lastSeen) is newer than its last sample; forgets removed nodes. */
  observe(nodes: NodeRecord[]): void {
    const present = new Set<string>();
    for (const node of nodes) {
      present.add(node.id);
      let ring = this.rings.get(node.id);
      if (!ring) this.rings.set(node.id, (ring = new Ring(this.capacity)));
      if ((ring.last()?.t ?? -1) < node.lastSeen) ring.push(sampleOf(node));
    }
    for (const id of this.rings.keys()) if (!present.has(id)) this.rings.delete(id);
  }

  /** Oldest first; samples at or after `since` (epoch ms) when given. */
  samples(nodeId: string, since = 0): MetricSample[] {
    return (this.rings.get(nodeId)?.toArray() ?? []).filter((s) => s.t >= since);
  }
}
