// How an engine process is started for one model, and how the node learns it is ready.
// One EngineLauncher per engine kind: `llama` (drover's own engine, built in) is implemented;
// `ollama` and `command` plug in here later (they will announce readiness by HTTP probe).
import { fileURLToPath } from "node:url";
import type { CatalogEntry } from "../protocol/catalog.js";
import { parseEngineReadyLine } from "../protocol/node-api.js";

export type EngineKind = "llama" | "ollama" | "command";

export interface EngineLaunchSpec {
  modelId: string;
  /** The verified GGUF file (empty for launchers that do not need one). */
  modelPath: string;
  threads: number;
  slots: number;
  contextSize: number;
}

/** How readiness is detected: a stdout line naming the port, or polling an HTTP path. */
export type EngineReadiness =
  | { kind: "stdout-line"; /** The engine's port when `line` announces readiness. */ parse(line: string): number | undefined }
  | { kind: "http-probe"; port: number; path: string; intervalMs?: number };

export interface EngineProcessPlan {
  command: string;
  args: string[];
  /** Added to the node's environment. */
  env?: Record<string, string>;
  readiness: EngineReadiness;
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
        "--model-path", spec.modelPath,
        "--model-id", spec.modelId,
        "--port", "0",
        "--threads", String(spec.threads),
        "--slots", String(spec.slots),
        "--context-size", String(spec.contextSize),
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
}

export function createEngineLauncher(kind: EngineKind, config: EngineLauncherConfig = {}): EngineLauncher {
  switch (kind) {
    case "llama":
      return new LlamaEngineLauncher();
    case "ollama":
      throw new Error("engine kind 'ollama' is not implemented yet");
    case "command":
      if (!config.engineCommand) throw new Error("engine kind 'command' needs --engine-command (a template with {model} and {port})");
      throw new Error("engine kind 'command' is not implemented yet");
    default:
      throw new Error(`unknown engine kind: ${String(kind)}`);
  }
}
