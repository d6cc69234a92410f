// Assembles the router: catalog, model cache, node registry, admission queue, proxy and routes.
import Fastify from "fastify";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Catalog } from "../protocol/catalog.js";
import { AdmissionQueue } from "./admission-queue.js";
import { installErrorHandlers, installJsonParser } from "./http-errors.js";
import { InferenceProxy } from "./inference-proxy.js";
import { ModelCache } from "./model-cache.js";
import { NodeRegistry } from "./node-registry.js";
import { NodeSelector } from "./node-selector.js";
import { registerFleetRoutes } from "./routes/fleet-routes.js";
import { registerOpenAiRoutes } from "./routes/openai-routes.js";
import { registerStatusRoutes } from "./routes/status-routes.js";
import { RequestEvents } from "./request-events.js";

export interface RouterOptions {
  host: string;
  port: number;
  catalog: Catalog;
  dataDir: string;
  queueLimit: number;
  /** 0 = no timeout. */
  queueTimeoutMs: number;
  heartbeatMs: number;
  nodeToken: string | null;
  logger: Logger;
  /** Upper bound on one request body. */
  bodyLimitBytes?: number;
  upstreamHeadersTimeoutMs?: number;
}

export interface RunningRouter {
  url: string;
  port: number;
  registry: NodeRegistry;
  queue: AdmissionQueue;
  close(): Promise<void>;
}

export async function startRouter(opts: RouterOptions): Promise<RunningRouter> {
  const log = opts.logger;
  const startedAt = Date.now();
  const cache = new ModelCache(join(opts.dataDir, "models"), log);
  await cache.prepare(opts.catalog);

  const registry = new NodeRegistry(opts.heartbeatMs);
  const selector = new NodeSelector(registry);
  const queue = new AdmissionQueue(registry, selector, { limit: opts.queueLimit, timeoutMs: opts.queueTimeoutMs });
  const proxy = new InferenceProxy(
    registry,
    queue,
    { maxAttempts: 5, headersTimeoutMs: opts.upstreamHeadersTimeoutMs ?? 600_000, bodyTimeoutMs: 300_000 },
    log,
  );

  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyLimitBytes ?? 8 * 1024 * 1024,
    // A slow client must not hold a socket for ever: 30 s for the headers (set below) and 60 s
    // for the whole request body. Responses (long streams) are not limited.
    requestTimeout: 60_000,
    keepAliveTimeout: 65_000,
    forceCloseConnections: true,
    routerOptions: { maxParamLength: 512 },
  });
  installJsonParser(app);
  installErrorHandlers(app, (err, req) => log.error({ err, url: req.url }, "unhandled error"));

  registerStatusRoutes(app, { catalog: opts.catalog, registry, queue, startedAt });
  registerFleetRoutes(app, { catalog: opts.catalog, registry, cache, heartbeatMs: opts.heartbeatMs, gateTimeoutMs: 5_000, nodeToken: opts.nodeToken });
  const events = new RequestEvents();
  events.onFinished((r) =>
    log.info({ reqId: r.requestId, traceId: r.traceId, path: r.endpoint, model: r.modelId, node: r.nodeName, status: r.status, attempts: r.attempts, queueWaitMs: r.queueWaitMs, durationMs: r.durationMs, error: r.error ?? undefined }, "request"),
  );
  registerOpenAiRoutes(app, { catalog: opts.catalog, proxy, createdAt: startedAt, events });

  app.server.headersTimeout = 30_000;
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  const shownHost = opts.host === "0.0.0.0" || opts.host === "::" ? "127.0.0.1" : opts.host;
  const url = `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${port}`;

  const sweeper = setInterval(() => {
    for (const node of registry.sweep()) log.warn({ node: node.name, nodeId: node.id }, "node missed 3 heartbeats; marked offline");
  }, Math.min(1000, opts.heartbeatMs));
  sweeper.unref();

  return {
    url,
    port,
    registry,
    queue,
    async close() {
      clearInterval(sweeper);
      queue.drain(new Error("router shutting down"));
      await app.close();
      await registry.close();
    },
  };
}
