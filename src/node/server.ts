// The node's HTTP server: /healthz, /v1/models (per-model state), the inference routes, its log
// tail (/api/logs) and /metrics, with OpenAI-shaped errors for everything a client can get wrong.
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { requestLogOptions } from "../logs/request-logger.js";
import { HEADER_NODE } from "../protocol/http.js";
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
  /** Required (as a Bearer token) by GET /api/logs when set. */
  nodeToken?: string;
  /** Served at GET /metrics when given. */
  metrics?: NodeMetricsExporter;
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

  app.addHook("onRequest", async (_req, reply) => {
    reply.header(HEADER_NODE, opts.nodeName);
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

  app.get("/healthz", async () => ({ status: "ok", nodeId: opts.nodeId, name: opts.nodeName }));

  app.get("/v1/models", async (): Promise<NodeModelList> => ({
    object: "list",
    data: opts.board.list().map((status) => ({ id: status.id, object: "model" as const, created: startedAt, owned_by: "drover", drover: status })),
  }));

  await app.register(nodeLogRoutes, { logFiles: opts.logFiles ?? [], nodeToken: opts.nodeToken });

  const metrics = opts.metrics;
  if (metrics) {
    app.get("/metrics", async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  }

  await app.register(engineProxyRoutes, { ...opts.proxy, board: opts.board, logger: opts.logger, bodyLimitBytes: BODY_LIMIT_BYTES });
  return app;
}
