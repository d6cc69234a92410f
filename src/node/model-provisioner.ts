// Decides which catalog models this node serves and gets their files: models that the engine
// kind cannot serve or that do not fit in memory become `unsupported`; the rest are downloaded
// (at most `maxParallelDownloads` at once, in catalog order) and handed to the engine as each
// one completes. Once a model's first file is there, its GGUF header's memory estimate may grow
// its reservation or cut its context per slot (src/node/model-placement.ts).
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import type { Catalog, CatalogEntry } from "../protocol/catalog.js";
import type { Backoff } from "../shared/backoff.js";
import type { EngineLauncher } from "./engine-launcher.js";
import { planModelsForMemory } from "./memory-budget.js";
import { downloadModel } from "./model-downloader.js";
import { InsufficientMemoryError, MemoryLedger } from "./model-placement.js";
import type { ModelStatusBoard } from "./model-status-board.js";
import type { RateLimiter } from "./rate-limiter.js";
import type { RouterEndpoint } from "./router-endpoint.js";

export interface ProvisionOptions {
  catalog: Catalog;
  board: ModelStatusBoard;
  launcher: EngineLauncher;
  memoryBudgetBytes: number;
  modelsDir: string;
  router: RouterEndpoint;
  dispatcher: Dispatcher;
  logger: Logger;
  signal: AbortSignal;
  /** The model's file is verified (or not needed): start its engine with `contextSize` tokens per slot. */
  onModelAvailable: (entry: CatalogEntry, modelPath: string, contextSize: number) => void;
  /** Concurrent sequences per engine (for the memory estimate). */
  slots: number;
  /** Context per slot the node asks engines for before the memory estimate. */
  contextSize: (entry: CatalogEntry) => number;
  maxParallelDownloads?: number;
  maxChecksumAttempts?: number;
  retryBackoff?: () => Backoff;
  /** Shared bandwidth limit for all downloads of this node. */
  rateLimiter?: RateLimiter;
}

/** Resolves when every model is available, failed or unsupported (or the signal aborted). */
export async function provisionModels(opts: ProvisionOptions): Promise<void> {
  const { board, logger } = opts;
  const servable: CatalogEntry[] = [];
  for (const entry of opts.catalog.models) {
    const reason = opts.launcher.unsupportedReason(entry);
    if (reason) {
      board.setState(entry.id, "unsupported", { reason });
      logger.info({ model: entry.id, reason }, "model unsupported by this engine kind");
    } else {
      servable.push(entry);
    }
  }

  const fits = planModelsForMemory(servable, opts.memoryBudgetBytes);
  const queue: CatalogEntry[] = [];
  for (const entry of servable) {
    const decision = fits.get(entry.id)!;
    if (decision.fits) {
      queue.push(entry);
    } else {
      board.setState(entry.id, "unsupported", { reason: decision.reason });
      logger.warn({ model: entry.id, reason: decision.reason }, "model does not fit on this node");
    }
  }

  const ledger = new MemoryLedger(opts.memoryBudgetBytes, queue, opts.slots, logger);
  const provisionOne = async (entry: CatalogEntry) => {
    let contextSize = opts.contextSize(entry);
    if (!opts.launcher.needsModelFile) return opts.onModelAvailable(entry, "", contextSize);
    // While the router fetches from upstream the model is `downloading` at 0 % with the router's
    // message as reason; the first byte from the router clears it.
    let waiting = false;
    try {
      const path = await downloadModel({
        entry,
        modelsDir: opts.modelsDir,
        router: opts.router,
        dispatcher: opts.dispatcher,
        logger,
        signal: opts.signal,
        maxChecksumAttempts: opts.maxChecksumAttempts,
        retryBackoff: opts.retryBackoff?.(),
        rateLimiter: opts.rateLimiter,
        onFirstPart: async (path) => {
          contextSize = (await ledger.place(entry, path, contextSize)).contextPerSlot;
        },
        onDownloading: () => board.setState(entry.id, "downloading", { progress: 0, bytesDone: 0, bytesTotal: entry.sizeBytes, speed: 0 }),
        onWaiting: (message) => {
          waiting = true;
          board.setState(entry.id, "downloading", { progress: 0, bytesDone: 0, bytesTotal: entry.sizeBytes, speed: 0, reason: message });
        },
        onProgress: (p) => {
          if (waiting) {
            waiting = false;
            board.setState(entry.id, "downloading", p);
          } else board.setProgress(entry.id, p);
        },
        onRetry: (reason, wait) => board.setState(entry.id, "failed", { reason: `${reason}; retrying in ${Math.round(wait / 1000)}s` }),
      });
      if (!opts.signal.aborted) opts.onModelAvailable(entry, path, contextSize);
    } catch (err) {
      if (opts.signal.aborted) return;
      const reason = (err as Error).message;
      if (err instanceof InsufficientMemoryError) {
        logger.warn({ model: entry.id, reason }, "model does not fit on this node by its GGUF header");
        board.setState(entry.id, "unsupported", { reason });
        return;
      }
      logger.error({ model: entry.id, reason }, "model download failed");
      board.setState(entry.id, "failed", { reason });
    }
  };

  const workers = Math.max(1, opts.maxParallelDownloads ?? 2);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(workers, queue.length) }, async () => {
      while (next < queue.length && !opts.signal.aborted) await provisionOne(queue[next++]!);
    }),
  );
}
