// The router's model cache for operators: per model, its state, checksum and where it came from,
// upstream fetch counters (one fetch per model per fleet is the point of the cache) and what was
// served to nodes.
import type { FastifyInstance } from "fastify";
import type { ModelCache } from "../model-cache/model-cache.js";

export function registerCacheRoutes(app: FastifyInstance, deps: { cache: ModelCache }): void {
  app.get("/api/cache", { config: { auth: "admin" } }, async () => ({ models: deps.cache.snapshot() }));
}
