// Which catalog models this node can hold in memory.
//
// Budget: `--memory-limit` when given; else, where `nvidia-smi` reports GPUs, their total memory
// (llama.cpp splits a model across GPUs, so the sum counts); else total RAM minus a reserve for
// the OS and the node itself of max(2 GiB, 10 % of RAM) — 2 GiB on small machines, 10 % on large.
// Models are placed in catalog order and must fit together, because every accepted model gets its
// own engine process resident at the same time: a model that does not fit into what is left is
// `unsupported`, and later smaller models may still fit.
import { totalmem } from "node:os";
import type { CatalogEntry } from "../protocol/catalog.js";
import { formatBytes } from "../shared/byte-format.js";
import type { GpuSample } from "./gpu-probe.js";

const GIB = 1024 ** 3;

export function defaultMemoryBudget(totalBytes: number = totalmem()): number {
  const reserve = Math.max(2 * GIB, Math.round(totalBytes * 0.1));
  return Math.max(0, totalBytes - reserve);
}

export interface MemoryBudget {
  bytes: number;
  source: "limit" | "gpu" | "ram";
  /** For the start-up log line, e.g. "2 × NVIDIA A100 (80.0 GB)". */
  detail: string;
}

export function chooseMemoryBudget(limitBytes: number | undefined, gpus: readonly GpuSample[], ramBytes: number = totalmem()): MemoryBudget {
  if (limitBytes !== undefined) return { bytes: limitBytes, source: "limit", detail: `--memory-limit ${formatBytes(limitBytes)}` };
  if (gpus.length > 0) {
    const bytes = gpus.reduce((sum, g) => sum + g.memoryTotalBytes, 0);
    const names = [...new Set(gpus.map((g) => g.name))].join(", ");
    return { bytes, source: "gpu", detail: `${gpus.length} × ${names} (GPU memory ${formatBytes(bytes)})` };
  }
  const bytes = defaultMemoryBudget(ramBytes);
  return { bytes, source: "ram", detail: `no GPU found: RAM ${formatBytes(ramBytes)} minus a reserve` };
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
