// Live data for the dashboard: GET /api/events (server-sent events: a fleet snapshot every
// second and every finished request as it happens) and GET /api/nodes/:id/metrics (the node's
// recent heartbeat metrics for charts).
import type { FastifyInstance } from "fastify";
import type { ServerResponse } from "node:http";
import { fleetSnapshot, type FleetSnapshotDeps } from "../overview/fleet-snapshot.js";
import { HttpError } from "../http/http-errors.js";
import type { NodeMetricHistory } from "../overview/node-metric-history.js";
import { authOf } from "../auth/route-auth.js";
import type { RequestRecord } from "../../protocol/request-record.js";
import type { RequestEvents } from "../request-path/request-events.js";

export interface LiveRouteDeps extends FleetSnapshotDeps {
  events: RequestEvents;
  history: NodeMetricHistory;
  /** How often snapshots go out and metric samples are taken. */
  tickMs?: number;
}

/** A client that has this much unsent data is too slow to follow; it is cut off and reconnects. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function registerLiveRoutes(app: FastifyInstance, deps: LiveRouteDeps): void {
  // Request and response bodies are admin-only (PRODUCT.md §12): each client is sent its role's view.
  const clients = new Map<ServerResponse, { admin: boolean }>();

  const send = (res: ServerResponse, frame: string) => {
    if (res.destroyed) return;
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      res.destroy();
      return;
    }
    res.write(frame);
  };

  const tick = () => {
    deps.history.observe(deps.registry.all());
    if (clients.size === 0) return;
    const frame = sseFrame("snapshot", fleetSnapshot(deps));
    for (const res of clients.keys()) send(res, frame);
  };
  // Runs without subscribers too: the metric history must already exist when a chart opens.
  const timer = setInterval(tick, deps.tickMs ?? 1000);
  timer.unref();
  app.addHook("onClose", async () => {
    clearInterval(timer);
    for (const res of clients.keys()) res.end();
    clients.clear();
  });

  deps.events.onFinished((record: RequestRecord) => {
    if (clients.size === 0) return;
    const full = sseFrame("request", record);
    const hasBodies = record.requestBody != null || record.responseBody != null;
    const redacted = hasBodies ? sseFrame("request", { ...record, requestBody: null, responseBody: null, bodiesHidden: true }) : full;
    for (const [res, client] of clients) send(res, client.admin ? full : redacted);
  });

  app.get("/api/events", { config: { auth: "viewer" } }, async (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      // Proxies such as nginx must pass events through as they come.
      "x-accel-buffering": "no",
    });
    // HEAD (Fastify adds it for every GET) gets the headers only: a HEAD response has no body.
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    res.write("retry: 2000\n\n");
    res.write(sseFrame("snapshot", fleetSnapshot(deps)));
    const auth = authOf(req);
    clients.set(res, { admin: auth.kind === "user" && auth.user.role === "admin" });
    req.raw.socket.setKeepAlive(true);
    res.on("close", () => clients.delete(res));
  });

  app.get("/api/nodes/:id/metrics", { config: { auth: "viewer" } }, async (req) => {
    const { id } = req.params as { id: string };
    if (!deps.registry.get(id)) throw new HttpError(404, "no such node", "not_found_error", "node_not_found");
    const sinceRaw = (req.query as { since?: string }).since;
    const since = sinceRaw === undefined ? 0 : Number(sinceRaw);
    if (!Number.isFinite(since) || since < 0) throw new HttpError(400, "since must be epoch milliseconds", "invalid_request_error", "invalid_since", "since");
    return { nodeId: id, samples: deps.history.samples(id, since) };
  });
}
