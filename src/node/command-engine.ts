// The `command` engine kind: any OpenAI-compatible server started from the operator's template,
// e.g. `llama-server -m {model} --port {port}` or `vllm serve ... --port {port}`. The node picks
// the port, starts the command under the engine watchdog, and calls the model ready once
// GET /v1/models on that port answers 2xx. Without {model} in the template the server finds its
// weights itself, and the node downloads nothing.
import type { CatalogEntry } from "../protocol/catalog.js";
import { splitCommandLine, fillTemplate, templatePlaceholders, CommandTemplateError, type CommandPlaceholder } from "./command-template.js";
import type { EngineLaunchSpec, EngineLauncher, EngineProcessPlan } from "./engine-launcher.js";
import { freeLoopbackPort } from "./free-port.js";

export interface CommandEngineOptions {
  /** Path polled for readiness (default /v1/models). */
  readyPath?: string;
  /** Poll interval (default 500 ms). */
  probeIntervalMs?: number;
}

export class CommandEngineLauncher implements EngineLauncher {
  readonly kind = "command" as const;
  readonly needsModelFile: boolean;
  private readonly words: string[];

  constructor(
    readonly template: string,
    private readonly opts: CommandEngineOptions = {},
  ) {
    this.words = splitCommandLine(template);
    const used = templatePlaceholders(this.words);
    if (!used.has("port")) throw new CommandTemplateError("the engine command template needs {port}: the node chooses the port each engine listens on");
    this.needsModelFile = used.has("model");
  }

  unsupportedReason(entry: CatalogEntry): string | undefined {
    if (!this.needsModelFile) return undefined;
    return entry.source.gguf || entry.source.generate ? undefined : "no GGUF source for the command engine ({model} is a GGUF file)";
  }

  async plan(spec: EngineLaunchSpec): Promise<EngineProcessPlan> {
    const port = await freeLoopbackPort();
    const values: Record<CommandPlaceholder, string> = {
      model: spec.modelPath,
      port: String(port),
      id: spec.modelId,
      threads: String(spec.threads),
      slots: String(spec.slots),
      context: String(spec.contextSize),
    };
    const [command, ...args] = fillTemplate(this.words, values);
    return {
      command: command!,
      args,
      watchdog: true,
      readiness: { kind: "http-probe", port, path: this.opts.readyPath ?? "/v1/models", intervalMs: this.opts.probeIntervalMs },
    };
  }
}
