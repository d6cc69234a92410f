// The drover node: identity, HTTP server, catalog, downloads, engines and the router link,
// wired together. The CLI (`drover node`, `drover up`) calls startNode and prints the banners.
import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { DEFAULT_LOG_FILE_SETTINGS, logFileGeneration, logFilePath } from "../logs/log-file.js";
import { Agent } from "undici";
import type { Catalog, CatalogEntry } from "../protocol/catalog.js";
import type { Heartbeat, ModelStatus, NodeRegistration } from "../protocol/node-api.js";
import { advertisedUrl } from "../shared/advertised-url.js";
import { Backoff } from "../shared/backoff.js";
import { fetchCatalog } from "./catalog-client.js";
import { createEngineLauncher, engineContextSize, type EngineLauncher } from "./engine-launcher.js";
import { EngineSupervisor } from "./engine-supervisor.js";
import { GpuMonitor } from "./gpu-monitor.js";
import { chooseMemoryBudget } from "./memory-budget.js";
import { provisionModels } from "./model-provisioner.js";
import { ModelStatusBoard } from "./model-status-board.js";
import { RateLimiter } from "./rate-limiter.js";
import { NodeMetricsExporter } from "./node-metrics.js";
import { loadOrCreateNodeId, loadOrCreateNodeSecret } from "./node-identity.js";
import { droverVersion } from "../shared/package-version.js";
import { RouterEndpoint } from "./router-endpoint.js";
import { RouterLink } from "./router-link.js";
import { RouterSet } from "./router-set.js";
import { buildNodeServer } from "./server.js";
import { SystemMetricsSampler } from "./system-metrics.js";

/** Longest wait on shutdown for requests already running to finish. */
const DRAIN_MS = 10_000;

export interface NodeOptions {
  routerUrl: string;
  host: string;
  /** 0 = pick a free port. */
  port: number;
  name: string;
  dataDir: string;
  modelsDir: string;
  engine: "llama" | "ollama" | "command";
  engineCommand?: string;
  threads: number;
  slots: number;
  memoryLimitBytes?: number;
  /** Model downloads running at once (default 2). */
  parallelDownloads?: number;
  /** Bytes per second for all of this node's downloads together (default: unlimited). */
  downloadRateLimit?: number;
  heartbeatMs?: number;
  /** The fleet's node token: sent to the router, and the key of the credential routers present here. */
  nodeToken?: string;
  /** Serve GET /metrics without the router credential (default: routers only). */
  publicMetrics?: boolean;
  logger: Logger;
  /** Served by GET /api/logs: the log file and its rotated predecessors, newest first (default <dataDir>/logs/node.log, .1 … .5). */
  logFiles?: readonly string[];
  /** URL the router should use to reach this node (default: derived from host and port). */
  advertiseUrl?: string;
  /** Replaces the launcher chosen by `engine` (tests use a fake engine). */
  launcher?: EngineLauncher;
  /** Fine-tuning of retry timings (tests shorten them). */
  timings?: NodeTimings;
}

export interface NodeTimings {
  /** First engine restart delay (default 1000 ms, doubling to 30 s). */
  engineRestartInitialMs?: number;
  /** Registration retry delay (default 500 ms doubling to 10 s, with jitter). */
  registerRetryInitialMs?: number;
  /** Delay after a transient download failure (default 1 s doubling to 30 s). */
  downloadRetryInitialMs?: number;
}

export interface RunningNode {
  /** The node's API URL (as advertised to the router). */
  url: string;
  nodeId: string;
  /** Per-model state now (the CLI draws download progress bars from it). */
  models(): ModelStatus[];
  close(): Promise<void>;
}

export async function startNode(opts: NodeOptions): Promise<RunningNode> {
  const logger = opts.logger;
  const launcher = opts.launcher ?? createEngineLauncher(opts.engine, { engineCommand: opts.engineCommand });
  const router = new RouterEndpoint(opts.routerUrl, opts.nodeToken);
  const nodeId = await loadOrCreateNodeId(opts.dataDir);
  const nodeSecret = await loadOrCreateNodeSecret(opts.dataDir);
  if (!opts.nodeToken) logger.warn("no node token: this node's API is open to anyone who can reach it (set DROVER_NODE_TOKEN)");
  await mkdir(opts.modelsDir, { recursive: true });

  const board = new ModelStatusBoard();
  const engines = new Map<string, EngineSupervisor>();
  const lifetime = new AbortController();
  let catalog: Catalog | undefined;
  // Engines answer slowly (long generations): no header or body timeouts; a client that leaves aborts.
  const engineAgent = new Agent({ headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 10_000 });
  const routerAgent = new Agent({ connect: { timeout: 10_000 } });

  // GPU readings for heartbeats and /metrics (none where nvidia-smi is absent).
  const gpuMonitor = new GpuMonitor({ intervalMs: opts.heartbeatMs });
  void gpuMonitor.start();
  const scrapeSampler = new SystemMetricsSampler(() => gpuMonitor.gpus);
  const metricsExporter = new NodeMetricsExporter({ board, system: () => scrapeSampler.sample() });

  const app = await buildNodeServer({
    logger,
    nodeId,
    nodeName: opts.name,
    board,
    logFiles: opts.logFiles ?? logFileGeneration(logFilePath(opts.dataDir, "node"), DEFAULT_LOG_FILE_SETTINGS.keep),
    nodeToken: opts.nodeToken,
    metrics: metricsExporter,
    publicMetrics: opts.publicMetrics,
    proxy: {
      dispatcher: engineAgent,
      catalogLoaded: () => catalog !== undefined,
      enginePort: (id) => engines.get(id)?.port,
      onFinished: (r) => metricsExporter.observeRequest(r),
      closing: () => lifetime.signal.aborted,
    },
    routerLeaving: (routerUrl) => link.leaving(routerUrl),
  });
  await app.listen({ host: opts.host, port: opts.port });
  const port = (app.server.address() as AddressInfo).port;
  const url = opts.advertiseUrl?.replace(/\/+$/, "") ?? advertisedUrl(opts.host, port, router.url);

  const metrics = new SystemMetricsSampler(() => gpuMonitor.gpus);
  // One link per router of the fleet (router-set.ts), starting from the URL given.
  const link = new RouterSet({
    seed: router.url,
    logger,
    createLink: (routerUrl, hooks) =>
      new RouterLink({
        ...hooks,
        router: new RouterEndpoint(routerUrl, opts.nodeToken),
        nodeSecret,
        dispatcher: routerAgent,
        logger,
        heartbeatMs: opts.heartbeatMs,
        registerBackoff: opts.timings?.registerRetryInitialMs
          ? () => new Backoff({ initialMs: opts.timings!.registerRetryInitialMs!, maxMs: 10_000, jitter: 0.3 })
          : undefined,
        registration: (): NodeRegistration => ({
          nodeId,
          name: opts.name,
          apiUrl: url,
          version: droverVersion(),
          engine: launcher.kind,
          models: board.list(),
          metrics: metrics.sample(),
        }),
        heartbeat: (): Heartbeat => ({ nodeId, models: board.list(), inFlight: board.totalInFlight(), metrics: metrics.sample() }),
      }),
  });
  board.onStateChange((id, state, previous) => {
    logger.debug({ model: id, state, previous }, "model state changed");
    link.notifyChange();
  });

  const startEngine = (entry: CatalogEntry, modelPath: string, contextSize: number) => {
    if (lifetime.signal.aborted || engines.has(entry.id)) return;
    const supervisor = new EngineSupervisor({
      spec: { modelId: entry.id, modelPath, threads: opts.threads, slots: opts.slots, contextSize, source: entry.source },
      launcher,
      board,
      logger: logger.child({ model: entry.id }),
      dispatcher: engineAgent,
      restartInitialMs: opts.timings?.engineRestartInitialMs,
    });
    engines.set(entry.id, supervisor);
    supervisor.start();
  };

  const rateLimiter = opts.downloadRateLimit ? new RateLimiter(opts.downloadRateLimit) : undefined;
  const background = (async () => {
    const received = await fetchCatalog({ router, dispatcher: routerAgent, logger, signal: lifetime.signal });
    if (!received || lifetime.signal.aborted) return;
    // Models must fit in GPU memory where nvidia-smi finds GPUs, else in RAM (see memory-budget.ts).
    const budget = chooseMemoryBudget(opts.memoryLimitBytes, opts.memoryLimitBytes === undefined ? await gpuMonitor.start().then(() => gpuMonitor.gpus) : []);
    logger.info({ memoryBudgetBytes: budget.bytes, source: budget.source }, `memory for models: ${budget.detail}`);
    board.setCatalog(received.models, opts.slots);
    catalog = received;
    link.start();
    await provisionModels({
      catalog: received,
      board,
      launcher,
      memoryBudgetBytes: budget.bytes,
      modelsDir: opts.modelsDir,
      maxParallelDownloads: opts.parallelDownloads,
      rateLimiter,
      router,
      dispatcher: routerAgent,
      logger,
      signal: lifetime.signal,
      onModelAvailable: startEngine,
      slots: opts.slots,
      contextSize: engineContextSize,
      retryBackoff: opts.timings?.downloadRetryInitialMs
        ? () => new Backoff({ initialMs: opts.timings!.downloadRetryInitialMs!, maxMs: 30_000, jitter: 0.3 })
        : undefined,
    });
  })().catch((err: unknown) => logger.error({ err }, "node start-up failed"));

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Graceful: new requests are refused with 503 node_closing (routers retry them elsewhere)
      // while those already generating finish, up to DRAIN_MS.
      lifetime.abort();
      gpuMonitor.stop();
      await link.stop();
      const drainUntil = Date.now() + DRAIN_MS;
      while (board.totalInFlight() > 0 && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
      await Promise.all([...engines.values()].map((e) => e.stop()));
      await background;
      await app.close();
      await Promise.all([engineAgent.close(), routerAgent.close()]);
    })());

  return { url, nodeId, models: () => board.list(), close };
}
