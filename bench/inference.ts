// Real inference: tokens/s through router → node → llama engine against the same model driven
// in-process with node-llama-cpp, with the same thread count.
import { join } from "node:path";
import { getLlama, LlamaCompletion } from "node-llama-cpp";
import { DEMO_CATALOG } from "../src/catalog/builtin.js";
import { writeTinyModel } from "../src/gguf/tiny-model.js";
import { AUTH_HEADERS, startNode, startRouter, tempDir, waitForReady } from "../test/support/fleet.js";
import { BenchFailure, fmt } from "./lib/processes.js";

const MODEL = "demo-chat";
const PROMPT = "Once upon a time";

export async function runInference(runs: number, maxTokens: number): Promise<{ result: Record<string, number>; markdown: string }> {
  const threads = 1;
  // In-process first, alone on the machine.
  const spec = DEMO_CATALOG.models.find((m) => m.id === MODEL)!.source.generate!;
  const modelPath = join(tempDir("bench-model"), "demo-chat.gguf");
  await writeTinyModel(spec, modelPath);
  const llama = await getLlama({ gpu: false });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: 2048, threads });
  let inTokens = 0;
  let inMs = 0;
  for (let i = 0; i < runs + 1; i++) {
    const sequence = context.getSequence();
    const completion = new LlamaCompletion({ contextSequence: sequence });
    const t0 = performance.now();
    let count = 0;
    await completion.generateCompletion(PROMPT, { maxTokens, temperature: 1, seed: i, onToken: (t) => void (count += t.length) });
    const ms = performance.now() - t0;
    if (i > 0) {
      inTokens += count;
      inMs += ms;
    }
    completion.dispose();
    sequence.dispose();
  }
  await context.dispose();
  await model.dispose();
  await llama.dispose();

  const router = await startRouter(["--log-level", "warn"]);
  const node = await startNode(router.url, "inference-node", ["--threads", String(threads), "--log-level", "warn"]);
  let viaTokens = 0;
  let viaMs = 0;
  try {
    await waitForReady(router.url, [MODEL], 1);
    for (let i = 0; i < runs + 1; i++) {
      const t0 = performance.now();
      const res = await fetch(`${router.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...AUTH_HEADERS },
        body: JSON.stringify({ model: MODEL, prompt: PROMPT, max_tokens: maxTokens, temperature: 1, seed: i }),
      });
      const body = (await res.json()) as { usage?: { completion_tokens: number } };
      const ms = performance.now() - t0;
      if (res.status !== 200 || !body.usage) throw new BenchFailure(`inference: request answered ${res.status}`);
      if (i > 0) {
        viaTokens += body.usage.completion_tokens;
        viaMs += ms;
      }
    }
  } finally {
    await node.stop();
    await router.stop();
  }
  const inProcess = (inTokens / inMs) * 1000;
  const viaDrover = (viaTokens / viaMs) * 1000;
  const result = { threads, runs, maxTokens, inProcessTokensPerS: inProcess, droverTokensPerS: viaDrover, ratio: viaDrover / inProcess };
  const markdown = [
    `| model | threads | tokens per run | in-process tokens/s | through drover tokens/s | drover / in-process |`,
    "|---|---:|---:|---:|---:|---:|",
    `| ${MODEL} | ${threads} | ${maxTokens} | ${fmt(inProcess, 1)} | ${fmt(viaDrover, 1)} | ${fmt(result.ratio)} |`,
    "",
  ].join("\n");
  return { result, markdown };
}
