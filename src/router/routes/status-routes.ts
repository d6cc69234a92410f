// Read-only views of the fleet for operators and the dashboard: nodes, queue, models
// aggregated across nodes, health.
import type { FastifyInstance } from "fastify";
import type { Catalog } from "../../protocol/catalog.js";
import type { FleetNode, ModelRow } from "../../protocol/fleet-view.js";
import type { AdmissionQueue } from "../request-path/admission-queue.js";
import { HttpError } from "../http/http-errors.js";
import type { NodeRecord, NodeRegistry } from "../fleet/node-registry.js";

export interface StatusRouteDeps {
  catalog: Catalog;
  registry: NodeRegistry;
  queue: AdmissionQueue;
  startedAt: number;
}

/** A node as the API and the dashboard's live stream show it. */
export function nodeView(node: NodeRecord): FleetNode {
  return {
    id: node.id,
    name: node.name,
    displayName: node.settings?.displayName ?? null,
    tags: node.settings?.tags ?? [],
    notes: node.settings?.notes ?? null,
    apiUrl: node.apiUrl,
    version: node.version,
    engine: node.engine,
    state: node.state,
    firstSeen: new Date(node.firstSeen).toISOString(),
    registeredAt: node.registeredAt ? new Date(node.registeredAt).toISOString() : null,
    lastSeen: new Date(node.lastSeen).toISOString(),
    breaker: node.breaker.state,
    models: [...node.models.values()].map((m) => ({ ...m, inFlight: node.inFlight.get(m.id) ?? 0 })),
    inFlight: [...node.inFlight.values()].reduce((a, b) => a + b, 0),
    totalRequests: node.totalRequests,
    failedRequests: node.failedRequests,
    latencyEwmaMs: node.latencyEwmaMs,
    metrics: node.metrics,
  };
}

export function registerStatusRoutes(app: FastifyInstance, deps: StatusRouteDeps): void {
  app.get("/healthz", { config: { auth: "public" } }, async () => ({ status: "ok", uptimeMs: Date.now() - deps.startedAt }));

  app.get("/api/nodes", { config: { auth: "viewer" } }, async () => ({ nodes: deps.registry.all().map(nodeView) }));

  app.get("/api/nodes/:id", { config: { auth: "viewer" } }, async (req) => {
    const node = deps.registry.get((req.params as { id: string }).id);
    if (!node) throw new HttpError(404, "no such node", "not_found_error", "node_not_found");
    return nodeView(node);
  });

  app.get("/api/queue", { config: { auth: "viewer" } }, async () => deps.queue.snapshot());

  // One row per supported model, aggregated over the fleet (no per-node model distribution).
  app.get("/api/models", { config: { auth: "viewer" } }, async () => ({ models: modelRows(deps) }));
}

/** One row per supported model, aggregated over the fleet (also in the dashboard's live stream). */
export function modelRows(deps: Pick<StatusRouteDeps, "catalog" | "registry" | "queue">): ModelRow[] {
  const queue = deps.queue.snapshot();
  return deps.catalog.models.map((entry) => {
    let ready = 0;
    let loading = 0;
    let slots = 0;
    let inFlight = 0;
    for (const node of deps.registry.all()) {
      const m = node.models.get(entry.id);
      if (!m || node.state === "offline") continue;
      if (m.state === "ready" && node.state === "online") {
        ready++;
        slots += m.slots;
      } else if (m.state === "loading" || m.state === "downloading" || m.state === "queued") loading++;
      inFlight += node.inFlight.get(entry.id) ?? 0;
    }
    return {
      id: entry.id,
      description: entry.description,
      tags: entry.tags,
      capabilities: entry.capabilities,
      sizeBytes: entry.sizeBytes,
      memoryBytes: entry.memoryBytes,
      readyNodes: ready,
      loadingNodes: loading,
      slots,
      inFlight,
      queueDepth: queue.models[entry.id]?.depth ?? 0,
    };
  });
}
