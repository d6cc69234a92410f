// GET /metrics (Prometheus text format, public like /healthz), and the hook that counts model
// file bytes served to nodes.
import type { FastifyInstance } from "fastify";
import type { RouterMetrics } from "../overview/router-metrics.js";

/** The route in fleet-routes that serves model files to nodes. */
const MODEL_FILE_ROUTE = "/api/models/:id/file";

export function registerMetricsRoutes(app: FastifyInstance, metrics: RouterMetrics): void {
  app.get("/metrics", { config: { auth: "public" } }, async (_req, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  // Counted once the response has gone out completely (an aborted download counts nothing).
  app.addHook("onResponse", async (req, reply) => {
    if (req.routeOptions.url !== MODEL_FILE_ROUTE || (reply.statusCode !== 200 && reply.statusCode !== 206) || !reply.raw.writableFinished) return;
    const length = Number(reply.getHeader("content-length"));
    if (Number.isFinite(length)) metrics.countModelFileBytes((req.params as { id: string }).id, length);
  });
}
