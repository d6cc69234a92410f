// Memory from the file, not only the catalog: once a model's first GGUF file is on disk, its header
// gives an estimate (weights + KV cache for the context and slots + compute, see
// src/gguf/memory-estimate.ts). The node reserves the larger of that and the catalog's figure;
// when that is more than is left, the context per slot is cut (to a multiple of 256, not below
// 2048) until the model fits, and a model that does not fit even then is `unsupported`.
import type { Logger } from "pino";
import { readModelShape } from "../gguf/header.js";
import { estimateMemory, fitContextPerSlot, type MemoryEstimate } from "../gguf/memory-estimate.js";
import type { CatalogEntry } from "../protocol/catalog.js";
import { formatBytes } from "../shared/byte-format.js";

/** The context per slot is never cut below this (or below the model's own, when that is smaller). */
export const MIN_CONTEXT_PER_SLOT = 2048;

/** The model does not fit in what is left, by its GGUF header's estimate. */
export class InsufficientMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InsufficientMemoryError";
  }
}

export interface Placement {
  contextPerSlot: number;
  reservedBytes: number;
  estimate?: MemoryEstimate;
}

function describe(e: MemoryEstimate): string {
  return `weights ${formatBytes(e.weightsBytes)} + KV cache ${formatBytes(e.kvCacheBytes)} for ${e.slots} × ${e.contextPerSlot} tokens + compute ${formatBytes(e.computeBytes)}`;
}

/** What this node's models hold of its memory budget. */
export class MemoryLedger {
  private readonly reserved = new Map<string, number>();
  private free: number;

  constructor(
    budgetBytes: number,
    /** The models accepted by the catalog-figure plan, each holding its catalog figure. */
    accepted: readonly CatalogEntry[],
    private readonly slots: number,
    private readonly logger: Logger,
  ) {
    this.free = budgetBytes;
    for (const entry of accepted) {
      this.reserved.set(entry.id, entry.memoryBytes);
      this.free -= entry.memoryBytes;
    }
  }

  /**
   * Places the model whose first file is `firstPartPath`, wanting `wantedContext` tokens per slot:
   * the context it gets, or InsufficientMemoryError. A header that cannot be read keeps the
   * catalog's figure and the wanted context (a warning, not a failure: the engine will tell).
   */
  async place(entry: CatalogEntry, firstPartPath: string, wantedContext: number): Promise<Placement> {
    const held = this.reserved.get(entry.id) ?? entry.memoryBytes;
    let shape: Awaited<ReturnType<typeof readModelShape>>;
    try {
      shape = await readModelShape(firstPartPath);
    } catch (err) {
      this.logger.warn({ model: entry.id, err: (err as Error).message }, "cannot read the GGUF header for a memory estimate; using the catalog's figure");
      return { contextPerSlot: wantedContext, reservedBytes: held };
    }
    const have = held + Math.max(0, this.free);
    const weightsBytes = entry.sizeBytes;
    const wanted = estimateMemory(shape, { weightsBytes, contextPerSlot: wantedContext, slots: this.slots });
    let contextPerSlot = wantedContext;
    if (Math.max(wanted.totalBytes, entry.memoryBytes) > have) {
      const fitted = fitContextPerSlot(shape, {
        weightsBytes,
        slots: this.slots,
        wanted: wantedContext,
        min: Math.min(wantedContext, MIN_CONTEXT_PER_SLOT),
        budgetBytes: have,
      });
      if (fitted === undefined) {
        const least = estimateMemory(shape, { weightsBytes, contextPerSlot: Math.min(wantedContext, MIN_CONTEXT_PER_SLOT), slots: this.slots });
        throw new InsufficientMemoryError(
          `insufficient memory: the GGUF header says ${formatBytes(least.totalBytes)} at least (${describe(least)}), have ${formatBytes(have)}`,
        );
      }
      contextPerSlot = fitted;
    }
    const estimate = contextPerSlot === wantedContext ? wanted : estimateMemory(shape, { weightsBytes, contextPerSlot, slots: this.slots });
    const reservedBytes = Math.max(estimate.totalBytes, entry.memoryBytes);
    this.free -= reservedBytes - held;
    this.reserved.set(entry.id, reservedBytes);
    const detail = {
      model: entry.id,
      estimateBytes: estimate.totalBytes,
      catalogBytes: entry.memoryBytes,
      reservedBytes,
      contextPerSlot,
      slots: this.slots,
      freeBytes: this.free,
    };
    if (contextPerSlot < wantedContext) {
      this.logger.warn(detail, `${entry.id}: context per slot cut from ${wantedContext} to ${contextPerSlot} tokens so the model fits (${describe(estimate)})`);
    } else {
      this.logger.info(
        detail,
        `${entry.id}: memory estimate from the GGUF header ${formatBytes(estimate.totalBytes)} (${describe(estimate)}); reserved ${formatBytes(reservedBytes)}`,
      );
    }
    return { contextPerSlot, reservedBytes, estimate };
  }
}
