// Real inference: tokens/s through router → node → llama engine against the same model driven
// in-process with node-llama-cpp, with the same thread count. In-process runs twice: with
// node-llama-cpp's sampling defaults (top-k 40, top-p 0.95) on a 2,048-token context, as this
// bench always did, and as the engine runs it (the node's context of 4,096 tokens with 2 sequences,
// OpenAI's defaults: top-k and min-p off, top-p 1), so that the gap splits into what the settings
// cost and what the path costs. Through drover runs non-streamed and streamed (a write per token).
import { join } from "node:path";
import { getLlama, LlamaCompletion, type LlamaContext } from "node-llama-cpp";
import { DEMO_CATALOG } from "../src/catalog/builtin.js";
import { writeTinyModel } from "../src/gguf/tiny-model.js";
import { AUTH_HEADERS, startNode, startRouter, tempDir, waitForReady } from "../test/support/fleet.js";
import { BenchFailure, fmt } from "./lib/processes.js";

const MODEL = "demo-chat";
const PROMPT = "Once upon a time";
const NODE_SLOTS = 2;

interface Sampling {
  topK?: number;
  topP?: number;
  minP?: number;
}

/** One measured quantity: tokens and milliseconds summed over the runs after the warm-up. */
class Rate {
  tokens = 0;
  ms = 0;
  add(tokens: number, ms: number): void {
    this.tokens += tokens;
    this.ms += ms;
  }
  get perS(): number {
    return (this.tokens / this.ms) * 1000;
  }
}

async function inProcessRun(context: LlamaContext, seed: number, maxTokens: number, sampling: Sampling): Promise<[number, number]> {
  const sequence = context.getSequence();
  const completion = new LlamaCompletion({ contextSequence: sequence });
  const t0 = performance.now();
  let count = 0;
  await completion.generateCompletion(PROMPT, { maxTokens, temperature: 1, seed, ...sampling, onToken: (t) => void (count += t.length) });
  const took = performance.now() - t0;
  completion.dispose();
  sequence.dispose();
  return [count, took];
}

async function droverRun(routerUrl: string, seed: number, maxTokens: number, stream: boolean): Promise<[number, number]> {
  const t0 = performance.now();
  const res = await fetch(`${routerUrl}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...AUTH_HEADERS },
    body: JSON.stringify({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: maxTokens,
      temperature: 1,
      seed,
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {}),
    }),
  });
  let completionTokens: number | undefined;
  if (stream) {
    const text = await res.text();
    if (!text.trimEnd().endsWith("data: [DONE]")) throw new BenchFailure("inference: a stream did not end with [DONE]");
    const usage = /"completion_tokens":(\d+)/.exec(text.slice(text.lastIndexOf('"usage"')));
    completionTokens = usage ? Number(usage[1]) : undefined;
  } else {
    completionTokens = ((await res.json()) as { usage?: { completion_tokens: number } }).usage?.completion_tokens;
  }
  const took = performance.now() - t0;
  if (res.status !== 200 || completionTokens === undefined) throw new BenchFailure(`inference: request answered ${res.status}`);
  return [completionTokens, took];
}

export async function runInference(runs: number, maxTokens: number): Promise<{ result: Record<string, number>; markdown: string }> {
  const threads = 1;
  const spec = DEMO_CATALOG.models.find((m) => m.id === MODEL)!;
  const modelPath = join(tempDir("bench-model"), "demo-chat.gguf");
  await writeTinyModel(spec.source.generate!, modelPath);
  const llama = await getLlama({ gpu: false });
  const model = await llama.loadModel({ modelPath });
  const small = await model.createContext({ contextSize: 2048, threads });
  const asEngine = await model.createContext({ contextSize: spec.contextLength, sequences: NODE_SLOTS, threads });
  const router = await startRouter(["--log-level", "warn"]);
  const node = await startNode(router.url, "inference-node", ["--threads", String(threads), "--slots", String(NODE_SLOTS), "--log-level", "warn"]);
  const rates = { defaults: new Rate(), engineSettings: new Rate(), plain: new Rate(), streamed: new Rate() };
  try {
    await waitForReady(router.url, [MODEL], 1);
    // The four take turns, one run each, so that the background load of a shared machine weighs
    // on all of them alike. Only one generates at a time.
    for (let i = 0; i < runs + 1; i++) {
      const measured = [
        await inProcessRun(small, i, maxTokens, {}),
        await inProcessRun(asEngine, i, maxTokens, { topK: 0, topP: 1, minP: 0 }),
        await droverRun(router.url, i, maxTokens, false),
        await droverRun(router.url, i, maxTokens, true),
      ] as const;
      if (i === 0) continue;
      rates.defaults.add(...measured[0]);
      rates.engineSettings.add(...measured[1]);
      rates.plain.add(...measured[2]);
      rates.streamed.add(...measured[3]);
    }
  } finally {
    await node.stop();
    await router.stop();
    await small.dispose();
    await asEngine.dispose();
    await model.dispose();
    await llama.dispose();
  }
  const defaults = rates.defaults.perS;
  const engineSettings = rates.engineSettings.perS;
  const plain = rates.plain.perS;
  const streamed = rates.streamed.perS;
  const result = {
    threads,
    runs,
    maxTokens,
    inProcessTokensPerS: defaults,
    inProcessEngineSettingsTokensPerS: engineSettings,
    droverTokensPerS: plain,
    droverStreamTokensPerS: streamed,
    ratio: plain / defaults,
    ratioSameSettings: plain / engineSettings,
    streamRatioSameSettings: streamed / engineSettings,
  };
  const markdown = [
    "| model | threads | tokens per run | in-process, node-llama-cpp defaults tokens/s | in-process, the engine's settings tokens/s | through drover tokens/s | through drover, streamed tokens/s | drover / in-process (defaults) | drover / in-process (same settings) | streamed / in-process (same settings) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    `| ${MODEL} | ${threads} | ${maxTokens} | ${fmt(defaults, 1)} | ${fmt(engineSettings, 1)} | ${fmt(plain, 1)} | ${fmt(streamed, 1)} | ${fmt(result.ratio)} | ${fmt(result.ratioSameSettings)} | ${fmt(result.streamRatioSameSettings)} |`,
    "",
  ].join("\n");
  return { result, markdown };
}
