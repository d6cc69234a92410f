// Diagnostic for the affinity benchmark: one llama engine, in process, on the benchmark's model
// and prompts; a few conversations take turns (as the benchmark interleaves them) and each turn
// prints its prompt tokens beside the tokens the engine took from its cache. A follow-up turn on
// the engine that answered the previous one should reuse that turn's prompt and all of its answer
// but the last sampled token (never evaluated); the script fails when one does not.
// Usage: npx tsx bench/affinity-reuse.ts   (BENCH_REUSE_CONVERSATIONS=3 BENCH_REUSE_TURNS=3 BENCH_REUSE_SLOTS=4)
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import pino from "pino";
import { runLlamaEngine } from "../src/engine/llama/main.js";
import { writeTinyModel } from "../src/gguf/tiny-model.js";
import { affinityModelSpec, opening, question, SYSTEM_PROMPT } from "./affinity.js";

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const conversations = env("BENCH_REUSE_CONVERSATIONS", 3);
const turns = env("BENCH_REUSE_TURNS", 3);
const slots = env("BENCH_REUSE_SLOTS", 4);
const maxTokens = env("BENCH_AFFINITY_MAX_TOKENS", 24);

const dir = await mkdtemp(join(tmpdir(), "drover-reuse-"));
const { spec } = affinityModelSpec();
const modelPath = join(dir, "model.gguf");
await writeTinyModel(spec, modelPath);
const engine = await runLlamaEngine({
  modelPath,
  modelId: spec.name,
  host: "127.0.0.1",
  port: 0,
  threads: 1,
  slots,
  contextSize: spec.contextLength,
  handleSignals: false,
  logger: pino({ level: "warn" }, pino.destination(2)),
});
const client = new OpenAI({ baseURL: `http://127.0.0.1:${engine.port}/v1`, apiKey: "x", maxRetries: 0 });
let short = 0;
try {
  const chats = Array.from({ length: conversations }, (_, c) => ({
    messages: [
      { role: "system", content: SYSTEM_PROMPT },
      { role: "user", content: opening(c) },
    ] as OpenAI.Chat.ChatCompletionMessageParam[],
    last: null as { prompt: number; completion: number } | null,
  }));
  console.log("| conversation | turn | prompt tokens | cached | expected (previous prompt + answer - 1) |\n|---:|---:|---:|---:|---:|");
  for (let t = 0; t < turns; t++) {
    for (const [c, chat] of chats.entries()) {
      if (t > 0) chat.messages.push({ role: "user", content: question(c, t) });
      // Streamed as the benchmark does; the answer goes back as the client received it.
      const stream = await client.chat.completions.create({
        model: spec.name,
        messages: chat.messages,
        max_tokens: maxTokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = "";
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        if (chunk.usage) usage = chunk.usage;
      }
      const cached = usage!.prompt_tokens_details?.cached_tokens ?? 0;
      const expected = chat.last ? chat.last.prompt + chat.last.completion - 1 : null;
      if (expected !== null && cached < expected) short++;
      console.log(`| ${c} | ${t} | ${usage!.prompt_tokens} | ${cached} | ${expected ?? "—"} |`);
      chat.messages.push({ role: "assistant", content: text });
      chat.last = { prompt: usage!.prompt_tokens, completion: usage!.completion_tokens };
    }
  }
} finally {
  await engine.close();
  await rm(dir, { recursive: true, force: true });
}
if (short > 0) {
  console.error(`${short} follow-up turn(s) reused less than their conversation's previous turn`);
  process.exit(1);
}
