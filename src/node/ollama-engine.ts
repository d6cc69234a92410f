// The `ollama` engine kind: one `ollama serve` per model, each with its own
// OLLAMA_HOST=127.0.0.1:<free port>, so models are separate processes like every other engine.
// Once the server answers, the model is pulled through its /api/pull (NDJSON progress becomes
// the model's `downloading` progress), given the catalog id as its name when the tag differs
// (/api/copy, so requests and responses use the catalog id), and loaded (/api/generate with no
// prompt, kept loaded). Requests then go to Ollama's OpenAI-compatible /v1/* on that port.
import { createInterface } from "node:readline";
import { request } from "undici";
import type { CatalogEntry } from "../protocol/catalog.js";
import type { EngineLaunchSpec, EngineLauncher, EnginePrepareContext, EngineProcessPlan } from "./engine-launcher.js";
import { formatBytes } from "../shared/byte-format.js";
import { freeLoopbackPort } from "./free-port.js";

export interface OllamaEngineOptions {
  /** The `ollama` executable (default: `ollama` on PATH). */
  command?: string;
  /** Pulls running at once across this node's models (default 2). */
  maxParallelPulls?: number;
  /** Readiness poll interval (default 500 ms). */
  probeIntervalMs?: number;
}

/** A pull line: progress per layer (`digest`), a status, or an error. */
interface PullLine {
  status?: string;
  digest?: string;
  total?: number;
  completed?: number;
  error?: string;
}

/** Counts how many callers may run at once; the rest wait in order. */
class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export class OllamaEngineLauncher implements EngineLauncher {
  readonly kind = "ollama" as const;
  readonly needsModelFile = false;
  private readonly pulls: Slots;

  constructor(private readonly opts: OllamaEngineOptions = {}) {
    this.pulls = new Slots(Math.max(1, opts.maxParallelPulls ?? 2));
  }

  unsupportedReason(entry: CatalogEntry): string | undefined {
    return entry.source.ollama ? undefined : "no Ollama tag (source.ollama) for the ollama engine";
  }

  async plan(spec: EngineLaunchSpec): Promise<EngineProcessPlan> {
    const tag = spec.source?.ollama;
    if (!tag) throw new Error(`model '${spec.modelId}' has no Ollama tag`);
    const port = await freeLoopbackPort();
    return {
      command: this.opts.command ?? "ollama",
      args: ["serve"],
      env: {
        OLLAMA_HOST: `127.0.0.1:${port}`,
        // Loaded once, kept loaded: the node decides what runs, not Ollama's idle timer.
        OLLAMA_KEEP_ALIVE: "-1",
        OLLAMA_NUM_PARALLEL: String(spec.slots),
        OLLAMA_CONTEXT_LENGTH: String(spec.contextSize),
      },
      watchdog: true,
      readiness: {
        kind: "http-probe",
        port,
        path: "/api/version",
        intervalMs: this.opts.probeIntervalMs,
        prepare: (ctx) => this.prepare(`http://127.0.0.1:${port}`, tag, spec.modelId, ctx),
      },
    };
  }

  private async prepare(base: string, tag: string, id: string, ctx: EnginePrepareContext): Promise<void> {
    const present = await this.listModels(base, ctx);
    if (!present.has(tag) && !present.has(id)) {
      await this.pulls.run(() => this.pull(base, tag, ctx));
    } else {
      ctx.logger.info({ tag }, "ollama already has the model; not pulling");
    }
    if (id !== tag && !present.has(id)) {
      await this.call(base, "/api/copy", { source: tag, destination: id }, ctx);
    }
    ctx.onLoading();
    await this.call(base, "/api/generate", { model: id, keep_alive: -1 }, ctx);
    ctx.logger.info({ tag }, "ollama model loaded");
  }

  private async listModels(base: string, ctx: EnginePrepareContext): Promise<Set<string>> {
    const res = await request(`${base}/api/tags`, { dispatcher: ctx.dispatcher, signal: ctx.signal });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`ollama /api/tags answered HTTP ${res.statusCode}`);
    }
    const body = (await res.body.json()) as { models?: { name?: string; model?: string }[] };
    const names = new Set<string>();
    for (const m of body.models ?? []) {
      for (const name of [m.name, m.model]) {
        if (!name) continue;
        names.add(name);
        // "llama3" and "llama3:latest" name the same model.
        if (name.endsWith(":latest")) names.add(name.slice(0, -":latest".length));
        else if (!name.includes(":")) names.add(`${name}:latest`);
      }
    }
    return names;
  }

  /** POST /api/pull, reading its NDJSON progress until `success` (or an error line). */
  private async pull(base: string, tag: string, ctx: EnginePrepareContext): Promise<void> {
    ctx.logger.info({ tag }, "ollama pull starting");
    const res = await request(`${base}/api/pull`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: tag, stream: true }),
      dispatcher: ctx.dispatcher,
      signal: ctx.signal,
    });
    if (res.statusCode !== 200) {
      const text = (await res.body.text().catch(() => "")).slice(0, 300);
      throw new Error(`ollama pull of ${tag} answered HTTP ${res.statusCode}: ${text}`);
    }
    // Ollama reports each layer separately; the model's progress is over all layers seen.
    const layers = new Map<string, { total: number; completed: number }>();
    let sampleAt = Date.now();
    let sampleBytes = 0;
    let speed = 0;
    let succeeded = false;
    let lastStatus = "";
    let loggedDecile = 0;
    for await (const raw of createInterface({ input: res.body, crlfDelay: Infinity })) {
      const line = raw.trim();
      if (!line) continue;
      let msg: PullLine;
      try {
        msg = JSON.parse(line) as PullLine;
      } catch {
        continue;
      }
      if (msg.error) throw new Error(`ollama pull of ${tag} failed: ${msg.error}`);
      if (msg.status && msg.status !== lastStatus && !msg.digest) {
        lastStatus = msg.status;
        ctx.logger.info({ tag }, `ollama pull: ${msg.status}`);
      }
      if (msg.status === "success") succeeded = true;
      if (msg.digest && typeof msg.total === "number" && msg.total > 0) {
        layers.set(msg.digest, { total: msg.total, completed: Math.min(msg.total, msg.completed ?? 0) });
        let total = 0;
        let done = 0;
        for (const l of layers.values()) {
          total += l.total;
          done += l.completed;
        }
        const now = Date.now();
        if (now - sampleAt >= 500) {
          const instant = ((done - sampleBytes) * 1000) / (now - sampleAt);
          speed = speed === 0 ? instant : speed * 0.7 + instant * 0.3;
          sampleAt = now;
          sampleBytes = done;
        }
        const progress = total > 0 ? done / total : 0;
        ctx.onProgress({ progress, bytesDone: done, bytesTotal: total, speed: Math.max(0, Math.round(speed)) });
        // Plain progress lines for logs without a terminal, as the node's own downloads write.
        const decile = Math.floor(progress * 10);
        if (decile > loggedDecile && decile < 10) {
          loggedDecile = decile;
          ctx.logger.info({ tag, progress: decile / 10, bytesDone: done, bytesTotal: total }, `ollama pull ${tag}: ${decile * 10}% of ${formatBytes(total)}`);
        }
      }
    }
    if (!succeeded) throw new Error(`ollama pull of ${tag} ended without success${lastStatus ? ` (last status: ${lastStatus})` : ""}`);
    ctx.logger.info({ tag }, "ollama pull finished");
  }

  private async call(base: string, path: string, body: unknown, ctx: EnginePrepareContext): Promise<void> {
    const res = await request(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      dispatcher: ctx.dispatcher,
      signal: ctx.signal,
    });
    const text = await res.body.text().catch(() => "");
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`ollama ${path} answered HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
  }
}
