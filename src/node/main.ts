// The drover node: identity, HTTP server, catalog, downloads, engines and the router link,
// wired together. The CLI (`drover node`, `drover up`) calls startNode and prints the banners.
import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { Agent } from "undici";
import type { Catalog, CatalogEntry } from "../protocol/catalog.js";
import type { Heartbeat, NodeRegistration } from "../protocol/node-api.js";
import { advertisedUrl } from "./advertised-url.js";
import { Backoff } from "./backoff.js";
import { fetchCatalog } from "./catalog-client.js";
import { createEngineLauncher, engineContextSize, type EngineLauncher } from "./engine-launcher.js";
import { EngineSupervisor } from "./engine-supervisor.js";
import { defaultMemoryBudget } from "./memory-budget.js";
import { provisionModels } from "./model-provisioner.js";
import { ModelStatusBoard } from "./model-status-board.js";
import { loadOrCreateNodeId } from "./node-identity.js";
import { droverVersion } from "./package-version.js";
import { RouterEndpoint } from "./router-endpoint.js";
import { RouterLink } from "./router-link.js";
import { buildNodeServer } from "./server.js";
import { SystemMetricsSampler } from "./system-metrics.js";

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
  heartbeatMs?: number;
  nodeToken?: string;
  logger: Logger;
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
  close(): Promise<void>;
}

export async function startNode(opts: NodeOptions): Promise<RunningNode> {
  const logger = opts.logger;
  const launcher = opts.launcher ?? createEngineLauncher(opts.engine, { engineCommand: opts.engineCommand });
  const router = new RouterEndpoint(opts.routerUrl, opts.nodeToken);
  const nodeId = await loadOrCreateNodeId(opts.dataDir);
  await mkdir(opts.modelsDir, { recursive: true });

  const board = new ModelStatusBoard();
  const engines = new Map<string, EngineSupervisor>();
  const lifetime = new AbortController();
  let catalog: Catalog | undefined;
  // Engines answer slowly (long generations): no header or body timeouts; a client that leaves aborts.
  const engineAgent = new Agent({ headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 10_000 });
  const routerAgent = new Agent({ connect: { timeout: 10_000 } });

  const app = await buildNodeServer({
    logger,
    nodeId,
    nodeName: opts.name,
    board,
    proxy: {
      dispatcher: engineAgent,
      catalogLoaded: () => catalog !== undefined,
      enginePort: (id) => engines.get(id)?.port,
    },
  });
  await app.listen({ host: opts.host, port: opts.port });
  const port = (app.server.address() as AddressInfo).port;
  const url = opts.advertiseUrl?.replace(/\/+$/, "") ?? advertisedUrl(opts.host, port, router.url);

  const metrics = new SystemMetricsSampler();
  const link = new RouterLink({
    router,
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
  });
  board.onStateChange((id, state, previous) => {
    logger.debug({ model: id, state, previous }, "model state changed");
    link.notifyChange();
  });

  const startEngine = (entry: CatalogEntry, modelPath: string) => {
    if (lifetime.signal.aborted || engines.has(entry.id)) return;
    const supervisor = new EngineSupervisor({
      spec: { modelId: entry.id, modelPath, threads: opts.threads, slots: opts.slots, contextSize: engineContextSize(entry) },
      launcher,
      board,
      logger: logger.child({ model: entry.id }),
      dispatcher: engineAgent,
      restartInitialMs: opts.timings?.engineRestartInitialMs,
    });
    engines.set(entry.id, supervisor);
    supervisor.start();
  };

  const memoryBudgetBytes = opts.memoryLimitBytes ?? defaultMemoryBudget();
  const background = (async () => {
    const received = await fetchCatalog({ router, dispatcher: routerAgent, logger, signal: lifetime.signal });
    if (!received || lifetime.signal.aborted) return;
    board.setCatalog(received.models, opts.slots);
    catalog = received;
    link.start();
    await provisionModels({
      catalog: received,
      board,
      launcher,
      memoryBudgetBytes,
      modelsDir: opts.modelsDir,
      router,
      dispatcher: routerAgent,
      logger,
      signal: lifetime.signal,
      onModelAvailable: startEngine,
      retryBackoff: opts.timings?.downloadRetryInitialMs
        ? () => new Backoff({ initialMs: opts.timings!.downloadRetryInitialMs!, maxMs: 30_000, jitter: 0.3 })
        : undefined,
    });
  })().catch((err: unknown) => logger.error({ err }, "node start-up failed"));

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      lifetime.abort();
      await link.stop();
      await Promise.all([...engines.values()].map((e) => e.stop()));
      await background;
      await app.close();
      await Promise.all([engineAgent.close(), routerAgent.close()]);
    })());

  return { url, nodeId, close };
}
