// How an engine process is started for one model, and how the node learns it is ready.
// One EngineLauncher per engine kind: `llama` (drover's own engine, built in, announces
// readiness on stdout), `ollama` (src/node/ollama-engine.ts) and `command`
// (src/node/command-engine.ts), which are probed over HTTP.
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import type { CatalogEntry, ModelSource } from "../protocol/catalog.js";
import { parseEngineReadyLine } from "../protocol/node-api.js";
import { CommandEngineLauncher } from "./command-engine.js";
import type { DownloadProgress } from "./model-status-board.js";
import { OllamaEngineLauncher } from "./ollama-engine.js";

export type EngineKind = "llama" | "ollama" | "command";

export interface EngineLaunchSpec {
  modelId: string;
  /** The verified GGUF file (empty for launchers that do not need one). */
  modelPath: string;
  threads: number;
  slots: number;
  contextSize: number;
  /** The catalog's sources for the model (the ollama engine needs its tag). */
  source?: ModelSource;
}

/** What a readiness `prepare` step may use and report. */
export interface EnginePrepareContext {
  /** Aborted when the engine process exits or the supervisor stops. */
  signal: AbortSignal;
  logger: Logger;
  dispatcher?: Dispatcher;
  /** The engine fetches the weights itself (ollama pull): the model shows as `downloading`. */
  onProgress(progress: DownloadProgress): void;
  /** Weights are there; the model is being loaded (`loading`). */
  onLoading(): void;
}

/** How readiness is detected: a stdout line naming the port, or polling an HTTP path. */
export type EngineReadiness =
  | { kind: "stdout-line" /** The engine's port when `line` announces readiness. */; parse(line: string): number | undefined }
  | {
      kind: "http-probe";
      port: number;
      path: string;
      intervalMs?: number;
      /** Runs once the probe answers, before the model is ready (e.g. pull and load the model). */
      prepare?: (ctx: EnginePrepareContext) => Promise<void>;
    };

export interface EngineProcessPlan {
  command: string;
  args: string[];
  /** Added to the node's environment. */
  env?: Record<string, string>;
  readiness: EngineReadiness;
  /**
   * Run under the engine watchdog (src/node/engine-watchdog.ts) in its own process group, for
   * engines that would outlive a node that dies (they do not watch their stdin).
   */
  watchdog?: boolean;
}

export interface EngineLauncher {
  readonly kind: EngineKind;
  /** Whether the engine serves the GGUF file the node downloads from the router. */
  readonly needsModelFile: boolean;
  /** Why this launcher cannot serve `entry`, or undefined when it can. */
  unsupportedReason(entry: CatalogEntry): string | undefined;
  /** The process for one (re)start of the engine; called again on every restart. */
  plan(spec: EngineLaunchSpec): Promise<EngineProcessPlan>;
}

/** bin/drover.js: src/node/ (vitest) and dist/node/ (compiled) are both two levels below the root. */
export function droverBinPath(): string {
  return fileURLToPath(new URL("../../bin/drover.js", import.meta.url));
}

/** The compiled watchdog (dist/node/engine-watchdog.js), from src/node/ and dist/node/ alike. */
export function engineWatchdogPath(): string {
  return fileURLToPath(new URL("../../dist/node/engine-watchdog.js", import.meta.url));
}

/** Context size the node asks engines for: the model's own, capped to keep memory modest. */
export const MAX_CONTEXT_SIZE = 8192;

export function engineContextSize(entry: CatalogEntry): number {
  return Math.min(entry.contextLength, MAX_CONTEXT_SIZE);
}

export interface LlamaEngineLauncherOptions {
  /** Executable (default: this Node.js binary). */
  command?: string;
  /** Arguments before the engine flags (default: [bin/drover.js, "engine"]); tests point this at a fake engine. */
  prefixArgs?: string[];
  /** Extra environment for the engine process. */
  env?: Record<string, string>;
}

/** drover's built-in engine (`drover engine`, llama.cpp through node-llama-cpp). */
export class LlamaEngineLauncher implements EngineLauncher {
  readonly kind = "llama" as const;
  readonly needsModelFile = true;

  constructor(private readonly opts: LlamaEngineLauncherOptions = {}) {}

  unsupportedReason(entry: CatalogEntry): string | undefined {
    return entry.source.gguf || entry.source.generate ? undefined : "no GGUF source for the llama engine";
  }

  async plan(spec: EngineLaunchSpec): Promise<EngineProcessPlan> {
    const prefix = this.opts.prefixArgs ?? [droverBinPath(), "engine"];
    return {
      command: this.opts.command ?? process.execPath,
      args: [
        ...prefix,
        "--model-path",
        spec.modelPath,
        "--model-id",
        spec.modelId,
        "--port",
        "0",
        "--threads",
        String(spec.threads),
        "--slots",
        String(spec.slots),
        "--context-size",
        String(spec.contextSize),
        "--exit-with-stdin",
      ],
      env: this.opts.env,
      readiness: { kind: "stdout-line", parse: (line) => parseEngineReadyLine(line)?.port },
    };
  }
}

export interface EngineLauncherConfig {
  /** Template for the `command` kind, with {model} and {port}. */
  engineCommand?: string;
  /** The `ollama` executable (default: `ollama` on PATH). */
  ollamaCommand?: string;
}

export function createEngineLauncher(kind: EngineKind, config: EngineLauncherConfig = {}): EngineLauncher {
  switch (kind) {
    case "llama":
      return new LlamaEngineLauncher();
    case "ollama":
      return new OllamaEngineLauncher({ command: config.ollamaCommand });
    case "command":
      if (!config.engineCommand) throw new Error("engine kind 'command' needs --engine-command (a template with {model} and {port})");
      return new CommandEngineLauncher(config.engineCommand);
    default:
      throw new Error(`unknown engine kind: ${String(kind)}`);
  }
}
