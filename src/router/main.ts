// Assembles the router: catalog, model cache, node registry, admission queue, proxy and routes.
import Fastify from "fastify";
import { join } from "node:path";
import type { Logger } from "pino";
import { advertisedUrl } from "../shared/advertised-url.js";
import { droverVersion } from "../shared/package-version.js";
import type { Catalog } from "../protocol/catalog.js";
import { AdmissionQueue } from "./request-path/admission-queue.js";
import type { BootstrapResult } from "./auth/bootstrap.js";
import type { AuthLevel } from "./auth/route-auth.js";
import { FleetActivity } from "./overview/fleet-activity.js";
import { installErrorHandlers, installJsonParser } from "./http/http-errors.js";
import { DIALECTS } from "./dialects/all.js";
import { InferenceDispatcher } from "./request-path/inference-dispatch.js";
import { InferenceProxy } from "./request-path/inference-proxy.js";
import { ModelCache } from "./model-cache/model-cache.js";
import { NodeMetricHistory } from "./overview/node-metric-history.js";
import { NodeRegistry } from "./fleet/node-registry.js";
import { NodeSelector, type RoutingPolicy } from "./request-path/node-selector.js";
import { tellNodesLeaving } from "./fleet/router-goodbye.js";
import { RouterPeers } from "./fleet/router-peers.js";
import { openPersistence } from "./persistence.js";
import { registerCacheRoutes } from "./routes/cache-routes.js";
import { registerDashboardRoutes } from "./routes/dashboard-routes.js";
import { registerFleetRoutes } from "./routes/fleet-routes.js";
import { registerLiveRoutes } from "./routes/live-routes.js";
import { registerMetricsRoutes } from "./routes/metrics-routes.js";
import { registerNodeAdminRoutes } from "./routes/node-admin-routes.js";
import { registerNodeLogRoutes } from "./routes/node-log-routes.js";
import { registerStatusRoutes } from "./routes/status-routes.js";
import { RequestEvents } from "./request-path/request-events.js";
import { RouterMetrics } from "./overview/router-metrics.js";

export interface RouterOptions {
  host: string;
  port: number;
  catalog: Catalog;
  dataDir: string;
  queueLimit: number;
  /** Requests that may wait for one model (default: queueLimit). */
  queueLimitPerModel?: number;
  /** How long a model may have no node able to serve it before its requests are refused (default 60 s). */
  modelUnavailableAfterMs?: number;
  /** 0 = no timeout. */
  queueTimeoutMs: number;
  heartbeatMs: number;
  /** Node placement (node-selector.ts); default prefix with load factor 2. */
  routing?: RoutingPolicy;
  routingLoadFactor?: number;
  nodeToken: string | null;
  logger: Logger;
  /** Upper bound on one request body. */
  bodyLimitBytes?: number;
  upstreamHeadersTimeoutMs?: number;
  /** Slow-loris guards: time a client may take for its headers (default 30 s) and its whole request (60 s). */
  clientHeadersTimeoutMs?: number;
  clientRequestTimeoutMs?: number;
  /** postgres://… to share state between routers; default SQLite in dataDir. */
  databaseUrl?: string | null;
  /** DROVER_ADMIN_PASSWORD / DROVER_API_KEY: bootstrap secrets used on first start. */
  adminPassword?: string;
  apiKey?: string;
  /** Days of request history kept (0 = record none); default 7. */
  historyRetentionDays?: number;
  /** Bytes of request/response body kept per history record (0 = none, the default). */
  historyBodyBytes?: number;
  /** Fastify's trustProxy: which proxies' X-Forwarded-For to believe for client IPs (default: none). */
  trustProxy?: boolean | string | ((address: string, hop: number) => boolean);
  /** Nodes silent this long (ms) are forgotten, in memory and in the database (0 = never); default 7 days. */
  nodePruneMs?: number;
  /** The URL nodes reach this router at directly, recorded for the other routers sharing PostgreSQL (default: from host and port). */
  advertiseUrl?: string;
}

/** Longest wait on shutdown (routers sharing PostgreSQL) for the inference requests here to finish. */
const ROUTER_DRAIN_MS = 30_000;

export interface RouteSummary {
  method: string;
  url: string;
  /** Undefined: the route declared none, so the auth hook treats it as admin. */
  auth: AuthLevel | undefined;
}

export interface RunningRouter {
  url: string;
  port: number;
  registry: NodeRegistry;
  queue: AdmissionQueue;
  /** Secrets generated on this start (print once), and where the state lives. */
  bootstrap: BootstrapResult;
  database: string;
  /** Every registered route (HEAD routes Fastify adds for GETs included). */
  routes: readonly RouteSummary[];
  close(): Promise<void>;
}

export async function startRouter(opts: RouterOptions): Promise<RunningRouter> {
  const log = opts.logger;
  const startedAt = Date.now();
  const cache = new ModelCache(join(opts.dataDir, "models"), log);
  await cache.prepare(opts.catalog);

  const persistence = await openPersistence({
    dataDir: opts.dataDir,
    databaseUrl: opts.databaseUrl,
    adminPassword: opts.adminPassword,
    apiKey: opts.apiKey,
    historyRetentionDays: opts.historyRetentionDays ?? 7,
    logger: log,
  });
  const registry = new NodeRegistry(opts.heartbeatMs);
  await persistence.trackNodes(registry);
  const selector = new NodeSelector(registry, { policy: opts.routing, loadFactor: opts.routingLoadFactor });
  const queue = new AdmissionQueue(registry, selector, {
    limit: opts.queueLimit,
    perModelLimit: opts.queueLimitPerModel,
    timeoutMs: opts.queueTimeoutMs,
    unavailableGraceMs: opts.modelUnavailableAfterMs,
  });
  const proxy = new InferenceProxy(
    registry,
    queue,
    {
      maxAttempts: 5,
      headersTimeoutMs: opts.upstreamHeadersTimeoutMs ?? 600_000,
      bodyTimeoutMs: 300_000,
      historyBodyBytes: opts.historyBodyBytes ?? 0,
      nodeToken: opts.nodeToken,
    },
    log,
  );

  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyLimitBytes ?? 8 * 1024 * 1024,
    // A slow client must not hold a socket for ever: 30 s for the headers (set below) and 60 s
    // for the whole request body. Responses (long streams) are not limited.
    requestTimeout: opts.clientRequestTimeoutMs ?? 60_000,
    keepAliveTimeout: 65_000,
    forceCloseConnections: true,
    // Node checks those timeouts only every connectionsCheckingInterval (default 30 s).
    http: { connectionsCheckingInterval: Math.min(30_000, opts.clientHeadersTimeoutMs ?? 30_000) },
    routerOptions: { maxParamLength: 512 },
    // Behind a load balancer, client IPs (history, login limits) come from X-Forwarded-For.
    trustProxy: opts.trustProxy ?? false,
  });
  // Every route with its declared auth level, for the route-auth table test and diagnostics.
  const routes: RouteSummary[] = [];
  app.addHook("onRoute", (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url, auth: r.config?.auth });
  });
  // Inference requests running or queued here: a router leaving the fleet waits for them.
  let activeInference = 0;
  let leaving = false;
  app.addHook("onRequest", async (req, reply) => {
    if (leaving) reply.header("connection", "close");
    if (req.routeOptions.config?.auth !== "inference") return;
    activeInference++;
    reply.raw.once("close", () => activeInference--);
  });
  let peers: RouterPeers | null = null;
  installJsonParser(app);
  installErrorHandlers(app, (err, req) => log.error({ err, url: req.url }, "unhandled error"));
  // Before every other route: the hook enforces each route's config.auth.
  persistence.install(app, { catalog: opts.catalog, nodeToken: opts.nodeToken });

  registerStatusRoutes(app, { catalog: opts.catalog, registry, queue, startedAt });
  registerFleetRoutes(app, {
    catalog: opts.catalog,
    registry,
    cache,
    heartbeatMs: opts.heartbeatMs,
    gateTimeoutMs: 5_000,
    nodeToken: opts.nodeToken,
    storedSecretHash: async (id) => (await persistence.store.nodes.get(id).catch(() => null))?.secretHash,
    logger: log,
    routers: persistence.store.kind === "postgres" ? () => peers?.urls() ?? [] : undefined,
  });
  registerCacheRoutes(app, { cache });
  const events = new RequestEvents();
  persistence.record(events);
  events.onFinished((r) =>
    log.info(
      {
        reqId: r.requestId,
        traceId: r.traceId,
        path: r.endpoint,
        model: r.modelId,
        node: r.nodeName,
        status: r.status,
        attempts: r.attempts,
        queueWaitMs: r.queueWaitMs,
        durationMs: r.durationMs,
        error: r.error ?? undefined,
      },
      "request",
    ),
  );
  const dialectDeps = {
    catalog: opts.catalog,
    dispatcher: new InferenceDispatcher(proxy, events),
    registry,
    responses: persistence.store.responses,
    version: droverVersion(),
    startedAt,
    modifiedAt: (id: string) => cache.get(id)?.mtimeMs,
    log,
  };
  for (const dialect of DIALECTS) dialect.register(app, dialectDeps);
  registerMetricsRoutes(app, new RouterMetrics({ registry, queue, events, modelIds: opts.catalog.models.map((m) => m.id) }));
  registerNodeLogRoutes(app, { registry, nodeToken: opts.nodeToken });
  // The dashboard: live fleet stream, node metric history, the single-page app itself.
  registerLiveRoutes(app, { catalog: opts.catalog, registry, queue, startedAt, events, activity: new FleetActivity(events), history: new NodeMetricHistory() });
  registerNodeAdminRoutes(app, { registry, nodes: persistence.store.nodes });
  registerDashboardRoutes(app);

  app.server.headersTimeout = opts.clientHeadersTimeoutMs ?? 30_000;
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  const shownHost = opts.host === "0.0.0.0" || opts.host === "::" ? "127.0.0.1" : opts.host;
  const url = `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${port}`;
  if (persistence.store.kind === "postgres") {
    // Wildcard listen address: this host's first external IPv4 address (advertised-url.ts).
    const advertised = opts.advertiseUrl ?? advertisedUrl(opts.host, port, "http://drover-router.invalid");
    peers = new RouterPeers({ url: advertised, repository: persistence.store.routers, refreshMs: opts.heartbeatMs, logger: log });
    await peers.start();
    log.info({ url: peers.url, routers: peers.urls() }, "joined the routers sharing the database");
  }

  const pruneMs = opts.nodePruneMs ?? 7 * 86_400_000;
  const sweeper = setInterval(
    () => {
      for (const node of registry.sweep()) log.warn({ node: node.name, nodeId: node.id }, "node missed 3 heartbeats; marked offline");
      const now = Date.now();
      for (const id of registry.prune(pruneMs, now)) {
        log.info({ nodeId: id, afterMs: pruneMs }, "forgot a node that has been silent too long");
        // Conditional: a router sharing the database that still hears from it has refreshed the row.
        persistence.store.nodes
          .deleteStale(id, now - pruneMs)
          .catch((err: Error) => log.warn({ err: err.message, nodeId: id }, "could not delete a pruned node"));
      }
    },
    Math.min(1000, opts.heartbeatMs),
  );
  sweeper.unref();

  return {
    url,
    port,
    registry,
    queue,
    bootstrap: persistence.bootstrap,
    database: persistence.store.location,
    routes,
    async close() {
      if (peers) {
        // Leaving the fleet: other routers stop listing this one, no new connection is taken,
        // what runs or waits here finishes, then the nodes are told to drop this router.
        leaving = true;
        await peers.leave();
        app.server.close();
        const until = Date.now() + ROUTER_DRAIN_MS;
        while (activeInference > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        log.info({ unfinished: activeInference }, "left the fleet: requests here finished; telling the nodes");
        await tellNodesLeaving(registry, peers.url, opts.nodeToken, log);
      }
      clearInterval(sweeper);
      queue.drain(new Error("router shutting down"));
      await app.close();
      await persistence.close();
      await cache.close();
      await registry.close();
    },
  };
}
