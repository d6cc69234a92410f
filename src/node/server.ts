// The node's HTTP server: /healthz, /v1/models (per-model state), the inference routes, its log
// tail (/api/logs) and /metrics, with OpenAI-shaped errors for everything a client can get wrong.
// Only routers of its fleet may call it: every route but /healthz (and /metrics when the operator
// opens it) needs the router credential derived from the node token (src/protocol/node-auth.ts).
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { requestLogOptions } from "../logs/request-logger.js";
import { HEADER_NODE, headerSafe } from "../protocol/http.js";
import { routerCredential, sameSecret } from "../protocol/node-auth.js";
import type { NodeModelList } from "../protocol/node-api.js";
import { openAiError } from "../protocol/openai-errors.js";
import { engineProxyRoutes, type EngineProxyOptions } from "./engine-proxy.js";
import { nodeLogRoutes } from "./log-routes.js";
import type { ModelStatusBoard } from "./model-status-board.js";
import type { NodeMetricsExporter } from "./node-metrics.js";

export const BODY_LIMIT_BYTES = 8 * 1024 * 1024;

export interface NodeServerOptions {
  logger: Logger;
  nodeId: string;
  nodeName: string;
  board: ModelStatusBoard;
  proxy: Omit<EngineProxyOptions, "board" | "logger" | "bodyLimitBytes">;
  /** The node's log file and its rotated predecessors, newest first (GET /api/logs). */
  logFiles?: readonly string[];
  /** The fleet's node token: callers must present the router credential derived from it (unset: the API is open, for tests only). */
  nodeToken?: string;
  /** Served at GET /metrics when given. */
  metrics?: NodeMetricsExporter;
  /** Serve /metrics without the router credential (a Prometheus scraper on the network). */
  publicMetrics?: boolean;
  /** Called for every route as it is registered (the route-auth table test). */
  onRoute?: (route: NodeRouteSummary) => void;
}

/** Who may call a node route: anyone, or only a router of the fleet. */
export type NodeRouteAuth = "public" | "router";

export interface NodeRouteSummary {
  method: string;
  url: string;
  auth: NodeRouteAuth;
}

declare module "fastify" {
  interface FastifyContextConfig {
    nodeAuth?: NodeRouteAuth;
  }
}

function bearerOf(header: string | undefined): string | null {
  const m = typeof header === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1]! : null;
}

export async function buildNodeServer(opts: NodeServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    // req.log carries reqId (x-request-id) and traceId (traceparent) in every line.
    ...requestLogOptions(),
    bodyLimit: BODY_LIMIT_BYTES,
    // Open streams must not keep close() waiting.
    forceCloseConnections: true,
  });
  const startedAt = Math.floor(Date.now() / 1000);
  // A route that declares nothing is for routers only: forgetting the declaration cannot open it.
  const authOf = (config: { nodeAuth?: NodeRouteAuth } | undefined): NodeRouteAuth => config?.nodeAuth ?? "router";
  app.addHook("onRoute", (r) => {
    for (const method of [r.method].flat()) opts.onRoute?.({ method, url: r.url, auth: authOf(r.config as { nodeAuth?: NodeRouteAuth } | undefined) });
  });
  const credential = opts.nodeToken ? routerCredential(opts.nodeToken, opts.nodeId) : null;

  app.addHook("onRequest", async (req, reply) => {
    // Node names may be in any script; a header carries only Latin-1.
    reply.header(HEADER_NODE, headerSafe(opts.nodeName));
    if (req.is404 || credential === null || authOf(req.routeOptions.config) === "public") return;
    const given = bearerOf(req.headers.authorization);
    if (given === null || !sameSecret(given, credential)) {
      return reply
        .code(401)
        .header("www-authenticate", 'Bearer realm="drover-node"')
        .send(openAiError("this node serves only the routers of its fleet: send requests to the router", "authentication_error", "router_credential_required"));
    }
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = typeof err.statusCode === "number" && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      req.log.error({ err, url: req.url }, "unhandled error in node request");
      return reply.code(500).send(openAiError("internal error in the drover node", "server_error", "internal_error"));
    }
    const code = status === 413 ? "request_too_large" : status === 415 ? "unsupported_media_type" : err.code === "invalid_json" ? "invalid_json" : null;
    const message = status === 413 ? `request body is larger than ${BODY_LIMIT_BYTES} bytes` : err.message;
    return reply.code(status).send(openAiError(message, "invalid_request_error", code));
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(openAiError(`no route for ${req.method} ${req.url.split("?")[0]}`, "invalid_request_error", "not_found")),
  );

  app.get("/healthz", { config: { nodeAuth: "public" } }, async () => ({ status: "ok", nodeId: opts.nodeId, name: opts.nodeName }));

  app.get(
    "/v1/models",
    async (): Promise<NodeModelList> => ({
      object: "list",
      data: opts.board.list().map((status) => ({ id: status.id, object: "model" as const, created: startedAt, owned_by: "drover", drover: status })),
    }),
  );

  await app.register(nodeLogRoutes, { logFiles: opts.logFiles ?? [] });

  const metrics = opts.metrics;
  if (metrics) {
    app.get("/metrics", { config: { nodeAuth: opts.publicMetrics ? "public" : "router" } }, async (_req, reply) =>
      reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
    );
  }

  await app.register(engineProxyRoutes, { ...opts.proxy, board: opts.board, logger: opts.logger, bodyLimitBytes: BODY_LIMIT_BYTES });
  return app;
}
