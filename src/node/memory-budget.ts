// Which catalog models this node can hold in memory.
//
// Budget: `memoryLimitBytes` when given, else total RAM minus a reserve for the OS and the node
// itself of max(2 GiB, 10 % of RAM) — 2 GiB on small machines, 10 % on large ones. (GPU memory
// detection comes later; where a GPU is present its memory will be the budget.)
// Models are placed in catalog order and must fit together, because every accepted model gets its
// own engine process resident at the same time: a model that does not fit into what is left is
// `unsupported`, and later smaller models may still fit.
import { totalmem } from "node:os";
import type { CatalogEntry } from "../protocol/catalog.js";
import { formatBytes } from "./byte-format.js";

const GIB = 1024 ** 3;

export function defaultMemoryBudget(totalBytes: number = totalmem()): number {
  const reserve = Math.max(2 * GIB, Math.round(totalBytes * 0.1));
  return Math.max(0, totalBytes - reserve);
}

export type FitDecision = { fits: true } | { fits: false; reason: string };

export function planModelsForMemory(entries: readonly CatalogEntry[], budgetBytes: number): Map<string, FitDecision> {
  const decisions = new Map<string, FitDecision>();
  let left = budgetBytes;
  for (const entry of entries) {
    if (entry.memoryBytes <= left) {
      left -= entry.memoryBytes;
      decisions.set(entry.id, { fits: true });
    } else {
      const have = left === budgetBytes ? formatBytes(left) : `${formatBytes(left)} (of ${formatBytes(budgetBytes)}; the rest is taken by other models)`;
      decisions.set(entry.id, { fits: false, reason: `insufficient memory: needs ${formatBytes(entry.memoryBytes)}, have ${have}` });
    }
  }
  return decisions;
}
