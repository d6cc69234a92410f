// Routing policy: among nodes where the model is ready and a slot is free, pick the one with the
// fewest in-flight requests relative to its slots, then the lower recent latency, then round robin.
import type { NodeRecord, NodeRegistry } from "./node-registry.js";

export class NodeSelector {
  private turn = 0;

  constructor(private readonly registry: NodeRegistry) {}

  pick(modelId: string): NodeRecord | null {
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
