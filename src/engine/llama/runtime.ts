// The one llama.cpp runtime of an engine process: backend choice, thread limit and log routing.
import { availableParallelism } from "node:os";
import { getLlama, LlamaLogLevel, type Llama, type LlamaGpuType } from "node-llama-cpp";
import type { Logger } from "pino";

/**
 * Backend selection, from DROVER_ENGINE_GPU (or DROVER_GPU when that is unset):
 *  - unset or "auto": node-llama-cpp probes CUDA, Vulkan and Metal among its prebuilt binaries and
 *    falls back to CPU. Engines exist to drive GPU nodes, so probing is the right default, and on
 *    a machine with no GPU it costs well under a second and ends on the CPU binary.
 *  - "off" / "cpu" / "false": CPU only, no probing (faster start, deterministic on mixed hosts).
 *  - "cuda" | "vulkan" | "metal": that backend, or fail at start.
 * `build: "never"` and `skipDownload`: an engine must never try to compile llama.cpp or fetch a
 * binary at start (minutes, and nodes may have no internet); a missing binary is a start error.
 */
export function gpuSettingFromEnv(value: string | undefined = process.env.DROVER_ENGINE_GPU ?? process.env.DROVER_GPU): "auto" | LlamaGpuType {
  const v = (value ?? "").trim().toLowerCase();
  if (v === "" || v === "auto") return "auto";
  if (v === "off" || v === "cpu" || v === "false" || v === "0" || v === "none") return false;
  if (v === "cuda" || v === "vulkan" || v === "metal") return v;
  throw new Error(`DROVER_ENGINE_GPU must be auto, off, cuda, vulkan or metal (got ${JSON.stringify(value)})`);
}

/**
 * Threads for evaluation: never more than cores - 1 (one core stays free for the event loop and
 * HTTP; on small CPU machines oversubscribing makes llama.cpp orders of magnitude slower).
 */
export function clampThreads(requested: number, cores: number = availableParallelism()): number {
  const max = Math.max(1, cores - 1);
  if (!Number.isFinite(requested) || requested < 1) return max;
  return Math.min(Math.floor(requested), max);
}

let runtime: Promise<Llama> | undefined;

/**
 * One Llama per process (loading the native binding is costly and node-llama-cpp expects a single
 * instance). The first caller's thread limit and logger win; later engines in the same process
 * (tests) share it.
 */
export function getRuntime(threads: number, log: Logger): Promise<Llama> {
  runtime ??= getLlama({
    gpu: gpuSettingFromEnv(),
    build: "never",
    skipDownload: true,
    progressLogs: false,
    maxThreads: threads,
    logLevel: LlamaLogLevel.warn,
    // llama.cpp would print to stdout/stderr directly; stdout is reserved for the READY line.
    logger: (level, message) => {
      const msg = message.trimEnd();
      if (!msg) return;
      if (level === LlamaLogLevel.fatal || level === LlamaLogLevel.error) log.error({ src: "llama.cpp" }, msg);
      else if (level === LlamaLogLevel.warn) log.warn({ src: "llama.cpp" }, msg);
      else log.debug({ src: "llama.cpp" }, msg);
    },
  }).catch((err: unknown) => {
    runtime = undefined;
    throw err;
  });
  return runtime;
}
