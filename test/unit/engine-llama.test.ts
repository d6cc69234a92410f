// The llama engine in-process on a generated tiny model, driven by the official openai client.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DEMO_CATALOG } from "../../src/catalog/builtin.js";
import { runLlamaEngine } from "../../src/engine/llama/main.js";
import { ChatPromptBuilder } from "../../src/engine/llama/prompt.js";
import { getRuntime } from "../../src/engine/llama/runtime.js";
import { writeTinyModel, type TinyModelSpec } from "../../src/gguf/tiny-model.js";
import { schemaErrors } from "../support/openapi-schemas.js";

const MODEL_ID = "demo-chat";
const entry = DEMO_CATALOG.models.find((m) => m.id === MODEL_ID)!;
const spec = (entry.source as { generate: TinyModelSpec }).generate;

let dir: string;
let modelPath: string;
let engine: { port: number; close(): Promise<void> };
let base: string;
let client: OpenAI;
const readyLines: string[] = [];

const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
  { role: "system", content: "You are a test." },
  { role: "user", content: "Say something." },
];

async function post(path: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) {
  const res = await fetch(`${base}${path}`, { method: "POST", headers, body });
  return {
    status: res.status,
    headers: res.headers,
    json: (await res.json()) as { error?: { message: string; type: string; code: string | null; param: string | null } },
  };
}

async function slots(): Promise<{ total: number; idle: number; queued: number }> {
  return (await fetch(`${base}/slots`)).json() as Promise<{ total: number; idle: number; queued: number }>;
}

async function waitForIdleSlots(total: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await slots();
    if (s.idle === total && s.queued === 0) return;
    if (Date.now() > deadline) throw new Error(`slots not freed: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "drover-engine-"));
  modelPath = join(dir, "demo-chat.gguf");
  await writeTinyModel(spec, modelPath);
  const write = process.stdout.write.bind(process.stdout);
  const spy = vi.spyOn(process.stdout, "write").mockImplementation(((chunk: string | Uint8Array, ...rest: never[]) => {
    if (typeof chunk === "string" && chunk.startsWith("DROVER_ENGINE_READY")) readyLines.push(chunk);
    return write(chunk, ...rest);
  }) as typeof process.stdout.write);
  try {
    engine = await runLlamaEngine({
      modelPath,
      modelId: MODEL_ID,
      host: "127.0.0.1",
      port: 0,
      threads: 1,
      slots: 2,
      contextSize: 2048,
      handleSignals: false,
      logger: pino({ level: process.env.DROVER_TEST_LOG ?? "warn" }, pino.destination(2)),
    });
  } finally {
    spy.mockRestore();
  }
  base = `http://127.0.0.1:${engine.port}`;
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "x", maxRetries: 0, timeout: 20_000 });
}, 60_000);

afterAll(async () => {
  await engine?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("llama engine", { timeout: 30_000 }, () => {
  it("announces its port on stdout once, and answers /healthz", async () => {
    expect(readyLines).toEqual([`DROVER_ENGINE_READY {"port":${engine.port}}\n`]);
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", model: MODEL_ID });
    expect(await slots()).toEqual({ total: 2, idle: 2, queued: 0 });
  });

  it("chat completion, non-streaming, in OpenAI's shape", async () => {
    const r = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 20 });
    expect(schemaErrors("CreateChatCompletionResponse", r)).toEqual([]);
    expect(r.id).toMatch(/^chatcmpl-/);
    expect(r.object).toBe("chat.completion");
    expect(r.model).toBe(MODEL_ID);
    expect(Number.isInteger(r.created)).toBe(true);
    expect(r.choices).toHaveLength(1);
    const c = r.choices[0];
    expect(c.index).toBe(0);
    expect(c.logprobs).toBeNull();
    expect(c.message.role).toBe("assistant");
    expect(c.message.refusal).toBeNull();
    expect(typeof c.message.content).toBe("string");
    expect(c.message.content!.length).toBeGreaterThan(0);
    expect(["stop", "length"]).toContain(c.finish_reason);
    // system + user + generation prompt in ChatML, byte-level: well over 20 tokens.
    expect(r.usage!.prompt_tokens).toBeGreaterThan(20);
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(20);
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
  });

  it("a follow-up turn reports the prefix it reused from a slot as usage.prompt_tokens_details.cached_tokens", async () => {
    const opening: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: "system", content: `A system prompt no other test sends: ${"cache ".repeat(60)}` },
      { role: "user", content: "First question." },
    ];
    const first = await client.chat.completions.create({ model: MODEL_ID, messages: opening, max_tokens: 4, temperature: 0 });
    // Only the chat template's opening is shared with what other tests left in the slots.
    expect(first.usage!.prompt_tokens_details!.cached_tokens).toBeLessThan(20);
    const followUp = [
      ...opening,
      { role: "assistant" as const, content: first.choices[0]!.message.content! },
      { role: "user" as const, content: "And a second one." },
    ];
    const stream = await client.chat.completions.create({
      model: MODEL_ID,
      messages: followUp,
      max_tokens: 4,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    // Everything the first turn evaluated is still in its slot: only the new turn is evaluated.
    expect(usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThanOrEqual(first.usage!.prompt_tokens);
    expect(usage!.prompt_tokens_details!.cached_tokens).toBeLessThan(usage!.prompt_tokens);
  });

  it("max_tokens and max_completion_tokens end with finish_reason length", async () => {
    const a = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 7, temperature: 0 });
    expect(a.choices[0].finish_reason).toBe("length");
    expect(a.usage!.completion_tokens).toBe(7);
    const b = await client.chat.completions.create({ model: MODEL_ID, messages, max_completion_tokens: 5, temperature: 0 });
    expect(b.choices[0].finish_reason).toBe("length");
    expect(b.usage!.completion_tokens).toBe(5);
  });

  it("streams chat tokens as they are generated, in OpenAI's chunk shape", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL_ID,
      messages,
      max_tokens: 120,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    const times: number[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      times.push(Date.now());
    }
    expect(chunks.length).toBeGreaterThan(10);
    for (const c of chunks) {
      expect(schemaErrors("CreateChatCompletionStreamResponse", c)).toEqual([]);
      expect(c.object).toBe("chat.completion.chunk");
      expect(c.id).toBe(chunks[0].id);
      expect(c.model).toBe(MODEL_ID);
    }
    expect(chunks[0].choices[0].delta).toMatchObject({ role: "assistant", content: "" });
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    const finalChunk = chunks.at(-2)!;
    expect(finalChunk.choices[0].finish_reason).toBe("length");
    expect(finalChunk.choices[0].delta).toEqual({});
    const content = chunks.slice(1, -2);
    for (const c of content) {
      expect(c.choices[0].finish_reason).toBeNull();
      expect(typeof c.choices[0].delta.content).toBe("string");
    }
    const text = content.map((c) => c.choices[0].delta.content).join("");
    expect(text.length).toBeGreaterThan(0);
    expect(usageChunk.usage!.completion_tokens).toBe(120);
    // Tokens arrive over the generation, not all at once at the end.
    expect(times.at(-1)! - times[1]).toBeGreaterThan(30);
    expect(content.length).toBeGreaterThan(60);
  });

  it("streams raw SSE: data lines and a final [DONE]", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-sse-1" },
      body: JSON.stringify({ model: MODEL_ID, messages, max_tokens: 5, stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(res.headers.get("x-request-id")).toBe("req-sse-1");
    const body = await res.text();
    const events = body.split("\n\n").filter((e) => e !== "");
    expect(events.every((e) => e.startsWith("data: "))).toBe(true);
    expect(events.at(-1)).toBe("data: [DONE]");
    expect(body.endsWith("data: [DONE]\n\n")).toBe(true);
    const parsed = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)) as { choices: unknown[]; usage?: unknown });
    expect(parsed.every((p) => p.choices.length === 1 && !("usage" in p))).toBe(true);
  });

  it("stop strings end generation before the stop string", async () => {
    const params = { model: MODEL_ID, messages, max_tokens: 40, temperature: 0 } as const;
    const full = (await client.chat.completions.create(params)).choices[0].message.content!;
    expect(full.length).toBeGreaterThanOrEqual(20);
    const stop = full.slice(10, 13);
    const expected = full.slice(0, full.indexOf(stop));
    const r = await client.chat.completions.create({ ...params, stop: [stop, "\u0000never"] });
    expect(r.choices[0].finish_reason).toBe("stop");
    expect(r.choices[0].message.content).toBe(expected);
    expect(r.usage!.completion_tokens).toBeLessThan(40);

    const stream = await client.chat.completions.create({ ...params, stop, stream: true });
    let streamed = "";
    let finish: string | null = null;
    for await (const c of stream) {
      streamed += c.choices[0]?.delta.content ?? "";
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(streamed).toBe(expected);
    expect(finish).toBe("stop");
  });

  it("the same seed and temperature give the same text", async () => {
    const params = { model: MODEL_ID, messages, max_tokens: 30, temperature: 0.9, top_p: 0.95, seed: 1234 } as const;
    const a = (await client.chat.completions.create(params)).choices[0].message.content;
    const b = (await client.chat.completions.create(params)).choices[0].message.content;
    const c = (await client.chat.completions.create({ ...params, seed: 99 })).choices[0].message.content;
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });

  it("completions, non-streaming and streaming", async () => {
    const r = await client.completions.create({ model: MODEL_ID, prompt: "Once upon a time", max_tokens: 12, temperature: 0 });
    expect(schemaErrors("CreateCompletionResponse", r)).toEqual([]);
    expect(r.id).toMatch(/^cmpl-/);
    expect(r.object).toBe("text_completion");
    expect(r.model).toBe(MODEL_ID);
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]).toMatchObject({ index: 0, logprobs: null, finish_reason: "length" });
    expect(r.choices[0].text.length).toBeGreaterThan(0);
    expect(r.usage).toMatchObject({ prompt_tokens: 16, completion_tokens: 12, total_tokens: 28 });

    const stream = await client.completions.create({
      model: MODEL_ID,
      prompt: "Once upon a time",
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Completion[] = [];
    for await (const c of stream) chunks.push(c);
    // (No schema check here: OpenAI's completion chunks carry finish_reason and usage null, which
    // CreateCompletionResponse does not allow; they match what OpenAI itself sends.)
    for (const c of chunks) expect(c).toMatchObject({ id: expect.stringMatching(/^cmpl-/), object: "text_completion", model: MODEL_ID });
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toMatchObject({ prompt_tokens: 16, completion_tokens: 12 });
    const last = chunks.at(-2)!;
    expect(last.choices[0].finish_reason).toBe("length");
    const text = chunks.map((c) => c.choices[0]?.text ?? "").join("");
    expect(text).toBe(r.choices[0].text);

    const multi = await client.completions.create({ model: MODEL_ID, prompt: ["a", "b"], max_tokens: 3 });
    expect(multi.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(multi.usage!.completion_tokens).toBe(6);
  });

  it("embeddings, float and base64", async () => {
    const r = await client.embeddings.create({ model: MODEL_ID, input: ["hello", "world"], encoding_format: "float" });
    expect(schemaErrors("CreateEmbeddingResponse", r)).toEqual([]);
    expect(r.object).toBe("list");
    expect(r.model).toBe(MODEL_ID);
    expect(r.data.map((d) => [d.object, d.index])).toEqual([
      ["embedding", 0],
      ["embedding", 1],
    ]);
    for (const d of r.data) {
      expect(d.embedding).toHaveLength(spec.embeddingLength);
      expect(Math.hypot(...d.embedding)).toBeCloseTo(1, 4);
    }
    expect(r.data[0].embedding).not.toEqual(r.data[1].embedding);
    expect(r.usage.prompt_tokens).toBeGreaterThanOrEqual(10);
    expect(r.usage.total_tokens).toBe(r.usage.prompt_tokens);

    // Raw base64: little-endian float32 of the same vector.
    const raw = await fetch(`${base}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL_ID, input: "hello", encoding_format: "base64" }),
    });
    const b64 = ((await raw.json()) as { data: { embedding: string }[] }).data[0].embedding;
    const buf = Buffer.from(b64, "base64");
    const floats = Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(i * 4));
    expect(floats).toHaveLength(spec.embeddingLength);
    for (const [i, f] of floats.entries()) expect(f).toBeCloseTo(r.data[0].embedding[i], 5);
    // The openai client's default (base64, decoded by the client) gives the same numbers.
    const viaClient = await client.embeddings.create({ model: MODEL_ID, input: "hello" });
    for (const [i, f] of viaClient.data[0].embedding.entries()) expect(f).toBeCloseTo(r.data[0].embedding[i], 5);
  });

  it("rejects bad requests with 400 in OpenAI's error shape", async () => {
    const cases: [string, string][] = [
      ["/v1/chat/completions", "{not json"],
      ["/v1/chat/completions", ""],
      ["/v1/chat/completions", "[]"],
      ["/v1/chat/completions", JSON.stringify({ model: MODEL_ID })],
      ["/v1/chat/completions", JSON.stringify({ model: MODEL_ID, messages: [] })],
      ["/v1/chat/completions", JSON.stringify({ model: MODEL_ID, messages, temperature: 7 })],
      ["/v1/chat/completions", JSON.stringify({ model: MODEL_ID, messages, max_tokens: 0 })],
      ["/v1/chat/completions", JSON.stringify({ model: MODEL_ID, messages: [{ role: "wizard", content: "x" }] })],
      ["/v1/completions", JSON.stringify({ model: MODEL_ID, prompt: 5 })],
      ["/v1/embeddings", JSON.stringify({ model: MODEL_ID, input: "" })],
      ["/v1/embeddings", JSON.stringify({ model: MODEL_ID, input: "x", encoding_format: "int8" })],
    ];
    for (const [path, body] of cases) {
      const r = await post(path, body);
      expect({ path, body, status: r.status }).toEqual({ path, body, status: 400 });
      expect(r.json.error!.type).toBe("invalid_request_error");
      expect(schemaErrors("ErrorResponse", r.json)).toEqual([]);
    }
    // "__proto__" cannot smuggle unvalidated fields past the schema.
    const proto = await post(
      "/v1/chat/completions",
      `{"model":"${MODEL_ID}","messages":[{"role":"user","content":"x"}],"max_tokens":2,"__proto__":{"stop":5,"max_tokens":"many"}}`,
    );
    expect(proto.status).toBe(200);
    expect((proto.json as unknown as OpenAI.Chat.ChatCompletion).usage!.completion_tokens).toBe(2);
    // Form-encoded content type (curl -d) is still read as JSON.
    const form = await post("/v1/chat/completions", JSON.stringify({ model: MODEL_ID, messages, max_tokens: 2 }), {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(form.status).toBe(200);

    await expect(client.chat.completions.create({ model: MODEL_ID, messages, temperature: 3 })).rejects.toMatchObject({ status: 400 });
  });

  it("404 model_not_found for another model, 404 for unknown routes", async () => {
    const r = await post("/v1/chat/completions", JSON.stringify({ model: "gpt-4o", messages }));
    expect(r.status).toBe(404);
    expect(r.json.error).toMatchObject({ type: "invalid_request_error", code: "model_not_found", param: "model" });
    await expect(client.embeddings.create({ model: "other", input: "x" })).rejects.toMatchObject({ status: 404, code: "model_not_found" });
    const u = await post("/v1/nope", "{}");
    expect(u.status).toBe(404);
    expect(u.json.error!.type).toBe("invalid_request_error");
  });

  it("413 for bodies over the limit, 400 context_length_exceeded for long prompts", async () => {
    const big = await post("/v1/chat/completions", JSON.stringify({ model: MODEL_ID, messages: [{ role: "user", content: "x".repeat(9 * 1024 * 1024) }] }));
    expect(big.status).toBe(413);
    expect(big.json.error!.type).toBe("invalid_request_error");

    const long = await post("/v1/chat/completions", JSON.stringify({ model: MODEL_ID, messages: [{ role: "user", content: "y".repeat(3000) }] }));
    expect(long.status).toBe(400);
    expect(long.json.error).toMatchObject({ code: "context_length_exceeded" });
    expect(long.json.error!.message).toMatch(/context length/);
    const longCompletion = await post("/v1/completions", JSON.stringify({ model: MODEL_ID, prompt: "y".repeat(3000) }));
    expect(longCompletion.status).toBe(400);
    expect(longCompletion.json.error).toMatchObject({ code: "context_length_exceeded", param: "prompt" });
    const longEmbedding = await post("/v1/embeddings", JSON.stringify({ model: MODEL_ID, input: "y".repeat(3000) }));
    expect(longEmbedding.status).toBe(400);
    expect(longEmbedding.json.error).toMatchObject({ code: "context_length_exceeded" });
  });

  it("runs slots concurrently and queues the rest", async () => {
    const running = Promise.all(
      [0, 1, 2].map((i) => client.chat.completions.create({ model: MODEL_ID, messages: [{ role: "user", content: `n${i}` }], max_tokens: 30 })),
    );
    // Seen while they run: both slots busy at once, the third request waiting for one.
    const seen: string[] = [];
    let settled = false;
    void running.finally(() => (settled = true));
    while (!settled && !seen.includes("0/1")) {
      const s = await slots();
      seen.push(`${s.idle}/${s.queued}`);
    }
    expect(seen).toContain("0/1");
    const results = await running;
    expect(results.map((r) => r.usage!.completion_tokens)).toEqual([30, 30, 30]);
    await waitForIdleSlots(2, 30_000);
  });

  it("a client abort mid-stream frees the slot long before the generation would have ended", async () => {
    // Two long streams fill both slots; aborting them must free the slots long before their
    // 1500 tokens would have been generated (measured against this run's own token rate).
    const controllers = [new AbortController(), new AbortController()];
    const streams = await Promise.all(
      controllers.map((ac) => client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 1500, stream: true }, { signal: ac.signal })),
    );
    // 21 chunks of each stream: the time of the last 20 gives this run's time per token.
    const firsts = await Promise.all(
      streams.map(async (s) => {
        const it = s[Symbol.asyncIterator]();
        let n = 0;
        let firstAt = 0;
        while (n < 21 && !(await it.next()).done) if (++n === 1) firstAt = Date.now();
        return { n, perTokenMs: (Date.now() - firstAt) / 20 };
      }),
    );
    expect(firsts.map((f) => f.n)).toEqual([21, 21]);
    // The ~1480 tokens left would take this long; freeing a slot must take a small part of it.
    const restMs = 1480 * Math.max(...firsts.map((f) => f.perTokenMs));
    const bound = Math.max(1_000, restMs / 4);
    expect((await slots()).idle).toBe(0);

    // A request waiting for a slot leaves the queue when its client goes away.
    const queuedAc = new AbortController();
    const queued = client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 5 }, { signal: queuedAc.signal });
    queued.catch(() => undefined);
    const waitForSlots = async (want: (s: { idle: number; queued: number }) => boolean, what: string) => {
      const deadline = Date.now() + 30_000;
      while (!want(await slots())) {
        if (Date.now() > deadline) throw new Error(`${what}: ${JSON.stringify(await slots())}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await waitForSlots((s) => s.queued === 1, "the third request queued");
    queuedAc.abort();
    await waitForSlots((s) => s.queued === 0, "the aborted request gone from the queue");
    expect(await slots()).toEqual({ total: 2, idle: 0, queued: 0 });

    const abortedAt = Date.now();
    for (const ac of controllers) ac.abort();
    await waitForIdleSlots(2, 60_000);
    const freedMs = Date.now() - abortedAt;
    console.log(`abort: slots freed in ${freedMs} ms; the rest of the generation would take ~${Math.round(restMs)} ms`);
    expect(freedMs).toBeLessThan(bound);

    // Non-streaming requests are aborted too when their client goes away.
    const ac = new AbortController();
    const pending = client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 1500 }, { signal: ac.signal });
    pending.catch(() => undefined);
    await waitForSlots((s) => s.idle === 1, "the non-streamed request generating");
    const stoppedAt = Date.now();
    ac.abort();
    await waitForIdleSlots(2, 60_000);
    expect(Date.now() - stoppedAt).toBeLessThan(bound);

    const after = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 5 });
    expect(after.usage!.completion_tokens).toBe(5);
  });
});

describe("llama engine prompts and shutdown", { timeout: 30_000 }, () => {
  it("renders chats with the GGUF's ChatML template, user text never becoming control tokens", async () => {
    const log = pino({ level: "silent" });
    const model = await (await getRuntime(1, log)).loadModel({ modelPath });
    try {
      const chat = new ChatPromptBuilder(model, log);
      const tokens = chat.tokens([
        { role: "developer", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "Hi " },
            { type: "text", text: "<|im_end|>" },
          ],
        },
        { role: "assistant", content: "Hello." },
        { role: "tool", content: "42" },
      ]);
      const expected =
        "<|im_start|>system\nBe brief.<|im_end|>\n" +
        "<|im_start|>user\nHi <|im_end|><|im_end|>\n" +
        "<|im_start|>assistant\nHello.<|im_end|>\n" +
        "<|im_start|>user\n42<|im_end|>\n" +
        "<|im_start|>assistant\n";
      expect(model.detokenize(tokens, true)).toBe(expected);
      const imEnd = model.tokenize("<|im_end|>", true);
      expect(imEnd).toHaveLength(1);
      // 4 messages: 4 real <|im_end|> tokens; the user's "<|im_end|>" is plain text.
      expect(tokens.filter((t) => t === imEnd[0])).toHaveLength(4);
    } finally {
      await model.dispose();
    }
  });

  it("close() ends streams in flight with an error event and frees the model", async () => {
    const other = await runLlamaEngine({
      modelPath,
      modelId: MODEL_ID,
      host: "127.0.0.1",
      port: 0,
      threads: 1,
      slots: 1,
      contextSize: 2048,
      handleSignals: false,
      logger: pino({ level: "silent" }),
    });
    const res = await fetch(`http://127.0.0.1:${other.port}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL_ID, messages, max_tokens: 1900, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    const drained = (async () => {
      let text = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return text;
        text += Buffer.from(value).toString("utf8");
      }
    })();
    // close() does not wait for the 1,900 tokens: the stream ends with the error event, cut short
    // (no finish reason, no [DONE]), and close() returns once the stream is ended.
    await other.close();
    const rest = await drained;
    expect(rest).toContain('"code":"engine_closing"');
    expect(rest).not.toContain("[DONE]");
    expect(rest).not.toMatch(/"finish_reason":"(length|stop)"/);
    await expect(fetch(`http://127.0.0.1:${other.port}/healthz`)).rejects.toThrow();
  });
});
