// Translation between Ollama's API and the nodes' OpenAI API: request bodies, the SSE → NDJSON
// response adapter (with a fake clock), embeddings, and the model listings.
import { describe, expect, it } from "vitest";
import { DEFAULT_CATALOG, DEMO_CATALOG } from "../../src/catalog/builtin.js";
import type { CatalogEntry } from "../../src/protocol/catalog.js";
import type { ModelStatus } from "../../src/protocol/node-api.js";
import { OllamaChatRequest, OllamaGenerateRequest, OllamaOptions } from "../../src/protocol/ollama.js";
import type { NodeRecord } from "../../src/router/fleet/node-registry.js";
import { OllamaGenerationAdapter } from "../../src/router/dialects/ollama/generation-adapter.js";
import { OllamaJsonAdapter } from "../../src/router/dialects/ollama/json-adapter.js";
import { resolveOllamaModel } from "../../src/router/dialects/ollama/model-names.js";
import { formatParameterCount, modelDetails, psView, showView, tagsView } from "../../src/router/dialects/ollama/model-views.js";
import { OllamaHttpError } from "../../src/router/dialects/ollama/ollama-http-error.js";
import { chatToOpenAi, generateToOpenAi, samplingOf } from "../../src/router/dialects/ollama/request-translation.js";
import { ollamaEmbed, truncateEmbedding, upstreamErrorMessage } from "../../src/router/dialects/ollama/response-translation.js";
import { SseDataParser } from "../../src/router/dialects/ollama/sse-parser.js";
import type { UpstreamHead } from "../../src/router/request-path/response-adapter.js";

const target = { modelId: "demo-chat", contextLength: 4096 };
const chat = (body: unknown) => chatToOpenAi(OllamaChatRequest.parse(body), target);
const generate = (body: unknown) => generateToOpenAi(OllamaGenerateRequest.parse(body), target);

describe("Ollama request → OpenAI request", () => {
  it("chat: messages, options and format map onto OpenAI fields; the node always streams with usage", () => {
    const call = chat({
      model: "demo-chat:latest",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi", images: [] },
      ],
      stream: false,
      format: "json",
      options: { temperature: 0.3, top_p: 0.9, seed: 42, num_predict: 12, stop: ["\n\n"], top_k: 5, repeat_penalty: 1.1 },
    });
    expect(call.path).toBe("/v1/chat/completions");
    expect(call.body).toEqual({
      model: "demo-chat",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi" },
      ],
      temperature: 0.3,
      top_p: 0.9,
      seed: 42,
      max_tokens: 12,
      stop: ["\n\n"],
      top_k: 5,
      repeat_penalty: 1.1,
      response_format: { type: "json_object" },
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it("a JSON schema format becomes response_format json_schema", () => {
    const schema = { type: "object", properties: { a: { type: "boolean" } } };
    expect(chat({ model: "m", messages: [{ role: "user", content: "x" }], format: schema }).body.response_format).toEqual({
      type: "json_schema",
      json_schema: { name: "format", schema },
    });
    expect(chat({ model: "m", messages: [{ role: "user", content: "x" }], format: "" }).body).not.toHaveProperty("response_format");
  });

  it("num_predict -1 and -2 mean the whole context; a string stop becomes a list; absent options add nothing", () => {
    expect(samplingOf(OllamaOptions.parse({ num_predict: -1 }), 4096)).toEqual({ max_tokens: 4096 });
    expect(samplingOf(OllamaOptions.parse({ num_predict: -2, stop: "END" }), 2048)).toEqual({ max_tokens: 2048, stop: ["END"] });
    expect(samplingOf(undefined, 4096)).toEqual({});
  });

  it("option values OpenAI cannot take are refused by the schema", () => {
    expect(OllamaOptions.safeParse({ num_predict: 0 }).success).toBe(false);
    expect(OllamaOptions.safeParse({ temperature: 3 }).success).toBe(false);
    expect(OllamaOptions.safeParse({ stop: ["a", "b", "c", "d", "e"] }).success).toBe(false);
  });

  it("generate applies the chat template (system + prompt as chat); raw sends the prompt as a completion", () => {
    const templated = generate({ model: "m", prompt: "hello", system: "sys" });
    expect(templated.path).toBe("/v1/chat/completions");
    expect(templated.body.messages).toEqual([
      { role: "system", content: "sys" },
      { role: "user", content: "hello" },
    ]);
    const raw = generate({ model: "m", prompt: "hello", system: "ignored", raw: true });
    expect(raw.path).toBe("/v1/completions");
    expect(raw.body.prompt).toBe("hello");
    expect(raw.body).not.toHaveProperty("messages");
  });

  it("what drover cannot serve is a 400, never silently dropped", () => {
    const status = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err instanceof OllamaHttpError ? err.statusCode : -1;
      }
      return 0;
    };
    expect(status(() => chat({ model: "m", messages: [{ role: "user", content: "x", images: ["aGk="] }] }))).toBe(400);
    expect(status(() => chat({ model: "m", messages: [{ role: "user", content: "x" }], options: { mirostat: 2 } }))).toBe(400);
    expect(status(() => chat({ model: "m", messages: [{ role: "user", content: "x" }], options: { num_ctx: 1 << 20 } }))).toBe(400);
    expect(status(() => chat({ model: "m", messages: [{ role: "user", content: "x" }], unknown_field: 1 }))).toBe(400);
    expect(status(() => chat({ model: "m", messages: [{ role: "user", content: "x" }], options: { num_ctx: 2048, num_thread: 4 } }))).toBe(0);
    expect(status(() => generate({ model: "m", prompt: "x", suffix: "y" }))).toBe(400);
    expect(status(() => generate({ model: "m", prompt: "x", images: ["aGk="] }))).toBe(400);
  });
});

describe("Ollama tools and thinking → OpenAI", () => {
  it("tools pass through; assistant calls get ids and JSON-string arguments; tool results answer them by name; thinking goes back", () => {
    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
    const call = chat({
      model: "m",
      think: "high",
      tools,
      messages: [
        { role: "user", content: "weather?" },
        {
          role: "assistant",
          content: "",
          thinking: "call both",
          tool_calls: [{ function: { name: "get_time", arguments: {} } }, { function: { name: "get_weather", arguments: { city: "Oslo" } } }],
        },
        { role: "tool", tool_name: "get_weather", content: "rain" },
        { role: "tool", content: "noon" },
      ],
    });
    expect(call.body.tools).toEqual(tools);
    expect(call.body.reasoning_effort).toBe("high");
    expect(call.body.messages).toEqual([
      { role: "user", content: "weather?" },
      {
        role: "assistant",
        content: "",
        reasoning_content: "call both",
        tool_calls: [
          { id: "call_1_0", type: "function", function: { name: "get_time", arguments: "{}" } },
          { id: "call_1_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
        ],
      },
      { role: "tool", content: "rain", tool_call_id: "call_1_1" },
      { role: "tool", content: "noon", tool_call_id: "call_1_0" },
    ]);
    expect(chat({ model: "m", think: true, messages: [] }).body).not.toHaveProperty("reasoning_effort");
  });
});

describe("SSE data parser", () => {
  const body = 'data: {"a":"é"}\r\n\r\n: comment\n\ndata: {"b":1}\n\ndata: [DONE]\n\n';

  it("yields each event's data however the bytes are split (UTF-8 and CRLF included)", () => {
    const bytes = Buffer.from(body);
    for (let size = 1; size <= bytes.length; size++) {
      const p = new SseDataParser();
      const out: string[] = [];
      for (let i = 0; i < bytes.length; i += size) out.push(...p.push(bytes.subarray(i, i + size)));
      out.push(...p.end());
      expect(out, `split every ${size} bytes`).toEqual(['{"a":"é"}', '{"b":1}', "[DONE]"]);
    }
  });

  it("a last event without its blank line is still delivered at the end", () => {
    const p = new SseDataParser();
    expect(p.push("data: x")).toEqual([]);
    expect(p.end()).toEqual(["x"]);
  });
});

// --- the generation adapter --------------------------------------------------------------------

const sse = (value: unknown) => Buffer.from(`data: ${typeof value === "string" ? value : JSON.stringify(value)}\n\n`);
const delta = (content: string | undefined, finish: string | null = null, role?: string) => ({
  id: "c",
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: { ...(role ? { role } : {}), ...(content !== undefined ? { content } : {}) }, finish_reason: finish }],
  usage: null,
});
const usage = (prompt: number, completion: number) => ({
  id: "c",
  object: "chat.completion.chunk",
  choices: [],
  usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
});
const streamHead: UpstreamHead = { status: 200, contentType: "text/event-stream; charset=utf-8", nodeName: "n1", queueWaitMs: 3 };

function fakeClock(start = 1000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function lines(out: string): Record<string, unknown>[] {
  return out
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("generation adapter: OpenAI SSE → Ollama", () => {
  it("streamed chat: one NDJSON line per token chunk, written as each arrives; the last carries counts and ns durations", () => {
    const clock = fakeClock();
    const a = new OllamaGenerationAdapter({ kind: "chat", stream: true, model: "demo-chat:latest", receivedAt: 1000, now: clock.now });
    clock.advance(10); // routing, then the node answers
    a.start(streamHead);
    expect(a.head()).toEqual({ status: 200, contentType: "application/x-ndjson" });
    expect(a.chunk(sse(delta("", null, "assistant")))).toBe(""); // role-only chunk: nothing to say yet
    clock.advance(40); // prompt evaluation
    const first = lines(a.chunk(sse(delta("Hel"))));
    expect(first).toEqual([{ model: "demo-chat:latest", created_at: expect.any(String), message: { role: "assistant", content: "Hel" }, done: false }]);
    expect(Number.isNaN(Date.parse(first[0]!.created_at as string))).toBe(false);
    clock.advance(5);
    // Two events in one chunk, the second split across chunks.
    const both = sse(delta("lo")).toString() + sse(delta(" you")).toString();
    expect(lines(a.chunk(Buffer.from(both.slice(0, both.length - 7)))).map((l) => (l.message as { content: string }).content)).toEqual(["lo"]);
    expect(lines(a.chunk(Buffer.from(both.slice(both.length - 7)))).map((l) => (l.message as { content: string }).content)).toEqual([" you"]);
    clock.advance(5);
    expect(a.chunk(sse(delta(undefined, "length")))).toBe("");
    expect(a.chunk(sse(usage(7, 3)))).toBe("");
    clock.advance(1);
    const done = lines(a.chunk(sse("[DONE]")));
    expect(done).toEqual([
      {
        model: "demo-chat:latest",
        created_at: expect.any(String),
        message: { role: "assistant", content: "" },
        done: true,
        done_reason: "length",
        total_duration: 61_000_000,
        load_duration: 3_000_000,
        prompt_eval_count: 7,
        prompt_eval_duration: 40_000_000,
        eval_count: 3,
        eval_duration: 10_000_000,
      },
    ]);
    expect(a.end()).toBe("");
  });

  it("stream: false folds the stream into one object, written only at the end", () => {
    const a = new OllamaGenerationAdapter({ kind: "generate", stream: false, model: "m", receivedAt: 0, now: fakeClock(0).now });
    a.start(streamHead);
    for (const piece of ["{", "}", " "]) expect(a.chunk(sse({ choices: [{ index: 0, text: piece, finish_reason: null }] }))).toBe("");
    a.chunk(sse({ choices: [{ index: 0, text: "", finish_reason: "stop" }] }));
    a.chunk(sse({ choices: [], usage: { prompt_tokens: 2, completion_tokens: 3 } }));
    a.chunk(sse("[DONE]"));
    const body = JSON.parse(a.end()) as Record<string, unknown>;
    expect(a.head()).toEqual({ status: 200, contentType: "application/json; charset=utf-8" });
    expect(body).toMatchObject({ model: "m", response: "{} ", done: true, done_reason: "stop", prompt_eval_count: 2, eval_count: 3 });
    expect(body).not.toHaveProperty("context");
  });

  it("an error event from the engine: an error line in a stream; a 500 with Ollama's error shape otherwise", () => {
    const failing = sse({ error: { message: "The engine is shutting down; retry the request.", type: "server_error", code: "engine_closing" } });
    const streamed = new OllamaGenerationAdapter({ kind: "chat", stream: true, model: "m", receivedAt: 0 });
    streamed.start(streamHead);
    expect(lines(streamed.chunk(Buffer.concat([sse(delta("a")), failing])))).toEqual([
      expect.objectContaining({ done: false }),
      { error: "The engine is shutting down; retry the request." },
    ]);
    expect(streamed.end()).toBe(""); // no done line after an error

    const single = new OllamaGenerationAdapter({ kind: "chat", stream: false, model: "m", receivedAt: 0 });
    single.start(streamHead);
    single.chunk(Buffer.concat([sse(delta("a")), failing]));
    expect(JSON.parse(single.end())).toEqual({ error: "The engine is shutting down; retry the request." });
    expect(single.head().status).toBe(500);
  });

  it("a node's OpenAI error answer keeps its status and becomes {error}", () => {
    const a = new OllamaGenerationAdapter({ kind: "chat", stream: true, model: "m", receivedAt: 0 });
    a.start({ ...streamHead, status: 400, contentType: "application/json" });
    expect(a.chunk(Buffer.from('{"error":{"message":"This model\'s maximum context length is 4096 tokens",'))).toBe("");
    expect(a.chunk(Buffer.from('"type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}'))).toBe("");
    expect(JSON.parse(a.end())).toEqual({ error: "This model's maximum context length is 4096 tokens" });
    expect(a.head()).toEqual({ status: 400, contentType: "application/json; charset=utf-8" });
  });

  it("a node that ignores `stream` and answers one JSON completion is still translated", () => {
    const a = new OllamaGenerationAdapter({ kind: "chat", stream: true, model: "m", receivedAt: 0 });
    a.start({ ...streamHead, contentType: "application/json" });
    a.chunk(
      Buffer.from(
        JSON.stringify({
          choices: [{ index: 0, message: { role: "assistant", content: "whole" }, finish_reason: "stop" }],
          usage: { prompt_tokens: 1, completion_tokens: 2 },
        }),
      ),
    );
    expect(lines(a.end())).toEqual([
      expect.objectContaining({ message: { role: "assistant", content: "whole" }, done: false }),
      expect.objectContaining({ done: true, done_reason: "stop", prompt_eval_count: 1, eval_count: 2 }),
    ]);
  });

  it("gives the same answer however the node's bytes are split: at every byte offset, and byte by byte", () => {
    // Multi-byte characters (2-, 3- and 4-byte UTF-8), CRLF line ends, a comment, a role-only
    // chunk, the finish and usage chunks, [DONE].
    const body = Buffer.concat([
      sse(delta("", null, "assistant")),
      Buffer.from(`data: ${JSON.stringify(delta("é"))}\r\n\r\n`),
      Buffer.from(": keep-alive\n\n"),
      sse(delta("✓ 🦙")),
      sse(delta(" end")),
      sse(delta(undefined, "stop")),
      sse(usage(5, 4)),
      sse("[DONE]"),
    ]);
    const run = (pieces: Buffer[], kind: "chat" | "generate", stream: boolean) => {
      const a = new OllamaGenerationAdapter({ kind, stream, model: "m", receivedAt: 0, now: () => 0 });
      a.start(streamHead);
      let out = "";
      for (const piece of pieces) out += a.chunk(piece);
      out += a.end();
      // created_at is wall-clock time; everything else must be identical.
      return out.replace(/"created_at":"[^"]*"/g, '"created_at":"T"');
    };
    for (const [kind, stream] of [
      ["chat", true],
      ["chat", false],
      ["generate", true],
    ] as const) {
      const whole = run([body], kind, stream);
      const parsed = stream ? lines(whole) : [JSON.parse(whole) as Record<string, unknown>];
      if (kind === "chat") expect(parsed.map((l) => (l.message as { content: string }).content)).toEqual(stream ? ["é", "✓ 🦙", " end", ""] : ["é✓ 🦙 end"]);
      expect(parsed.at(-1)).toMatchObject({ done: true, done_reason: "stop", prompt_eval_count: 5, eval_count: 4 });
      for (let cut = 1; cut < body.length; cut++) {
        expect(run([body.subarray(0, cut), body.subarray(cut)], kind, stream), `${kind} stream=${stream}, split at byte ${cut}`).toBe(whole);
      }
      const bytes = Array.from({ length: body.length }, (_, i) => body.subarray(i, i + 1));
      expect(run(bytes, kind, stream), `${kind} stream=${stream}, byte by byte`).toBe(whole);
    }
  });

  it("a stream broken mid-way ends with an error line (streamed) or a 502 (single object)", () => {
    const streamed = new OllamaGenerationAdapter({ kind: "chat", stream: true, model: "m", receivedAt: 0 });
    streamed.start(streamHead);
    streamed.chunk(sse(delta("a")));
    expect(JSON.parse(streamed.fail("stream from n1 broke: other side closed"))).toEqual({ error: "stream from n1 broke: other side closed" });
    const single = new OllamaGenerationAdapter({ kind: "chat", stream: false, model: "m", receivedAt: 0 });
    single.start(streamHead);
    single.chunk(sse(delta("a")));
    expect(JSON.parse(single.fail("broke"))).toEqual({ error: "broke" });
    expect(single.head().status).toBe(502);
  });
});

describe("embeddings", () => {
  const list = {
    object: "list",
    data: [
      { object: "embedding", index: 1, embedding: [0, 1] },
      { object: "embedding", index: 0, embedding: [0.6, 0.8, 0] },
    ],
    usage: { prompt_tokens: 4, total_tokens: 4 },
  };

  it("/api/embed: vectors in input order, counts and durations", () => {
    expect(ollamaEmbed("e", list, null, { total_duration: 5, load_duration: 1 })).toEqual({
      model: "e",
      embeddings: [
        [0.6, 0.8, 0],
        [0, 1],
      ],
      total_duration: 5,
      load_duration: 1,
      prompt_eval_count: 4,
    });
  });

  it("dimensions keeps the first n components at unit length", () => {
    const v = truncateEmbedding([3, 4, 12], 2);
    expect(v[0]).toBeCloseTo(0.6);
    expect(v[1]).toBeCloseTo(0.8);
    expect(truncateEmbedding([1, 2], 5)).toEqual([1, 2]);
  });

  it("the JSON adapter translates a 2xx body, passes an error's status and message, and answers 502 to nonsense", () => {
    const ok = new OllamaJsonAdapter((body) => ({ n: (body as { data: unknown[] }).data.length }));
    ok.start({ status: 200, contentType: "application/json", nodeName: "n1", queueWaitMs: 0 });
    ok.chunk(Buffer.from(JSON.stringify(list)));
    expect(JSON.parse(ok.end())).toEqual({ n: 2 });
    expect(ok.head().status).toBe(200);

    const bad = new OllamaJsonAdapter(() => ({}));
    bad.start({ status: 400, contentType: "application/json", nodeName: "n1", queueWaitMs: 0 });
    bad.chunk(Buffer.from('{"error":{"message":"input must not be empty.","type":"invalid_request_error"}}'));
    expect(JSON.parse(bad.end())).toEqual({ error: "input must not be empty." });
    expect(bad.head().status).toBe(400);

    const nonsense = new OllamaJsonAdapter((body) => ollamaEmbed("e", body, null, { total_duration: 0, load_duration: 0 }));
    nonsense.start({ status: 200, contentType: "application/json", nodeName: "n1", queueWaitMs: 0 });
    nonsense.chunk(Buffer.from("{}"));
    expect(JSON.parse(nonsense.end()).error).toMatch(/n1/);
    expect(nonsense.head().status).toBe(502);
  });

  it("error messages come out of OpenAI's shape, Ollama's, or plain text", () => {
    expect(upstreamErrorMessage('{"error":{"message":"m1"}}', 400)).toBe("m1");
    expect(upstreamErrorMessage('{"error":"m2"}', 400)).toBe("m2");
    expect(upstreamErrorMessage("Bad Gateway", 502)).toBe("Bad Gateway");
    expect(upstreamErrorMessage("", 503)).toBe("the node answered 503");
  });
});

describe("model names and listings", () => {
  const byId = new Map(DEMO_CATALOG.models.map((m) => [m.id, m]));

  it("a name with :latest finds the catalog id without a tag", () => {
    expect(resolveOllamaModel(byId, "demo-chat")?.id).toBe("demo-chat");
    expect(resolveOllamaModel(byId, "demo-chat:latest")?.id).toBe("demo-chat");
    expect(resolveOllamaModel(byId, "demo-chat:7b")).toBeUndefined();
  });

  it("details of the default catalog: family, size from the tag, quantization from the file name", () => {
    const d = (id: string) => modelDetails(DEFAULT_CATALOG.models.find((m) => m.id === id)!);
    expect(d("gpt-oss:20b")).toEqual({
      parent_model: "",
      format: "gguf",
      family: "gpt-oss",
      families: ["gpt-oss"],
      parameter_size: "20B",
      quantization_level: "MXFP4",
    });
    expect(d("gpt-oss:120b")).toMatchObject({ parameter_size: "120B", quantization_level: "MXFP4" });
    expect(d("qwen3-coder:30b")).toMatchObject({ family: "qwen3-coder", parameter_size: "30B", quantization_level: "Q4_K_M" });
    expect(formatParameterCount(20_900_000_000)).toBe("20.9B");
    expect(formatParameterCount(137_000_000)).toBe("137.0M");
  });

  it("/api/tags lists the whole catalog with size and digest", () => {
    const models = DEMO_CATALOG.models.map((m) => ({ ...m, sha256: "ab".repeat(32) }));
    const view = tagsView(models, () => Date.UTC(2026, 0, 1));
    expect(view.models.map((m) => m.name)).toEqual(DEMO_CATALOG.models.map((m) => m.id));
    expect(view.models[0]).toMatchObject({
      model: "demo-chat",
      size: models[0]!.sizeBytes,
      digest: "ab".repeat(32),
      modified_at: "2026-01-01T00:00:00.000Z",
      details: { format: "gguf", family: "llama", quantization_level: "F32" },
    });
  });

  it("/api/ps lists only models ready on an online node, with node counts", () => {
    const node = (state: NodeRecord["state"], models: Partial<ModelStatus>[], gpus = 0) =>
      ({
        state,
        models: new Map(models.map((m) => [m.id!, { slots: 2, ...m } as ModelStatus])),
        inFlight: new Map([["demo-chat", 1]]),
        metrics: { gpus: Array.from({ length: gpus }, (_, index) => ({ index })) },
      }) as unknown as NodeRecord;
    const nodes = [
      node("online", [
        { id: "demo-chat", state: "ready" },
        { id: "demo-embed", state: "loading" },
      ]),
      node("online", [{ id: "demo-chat", state: "ready", slots: 4 }], 1),
      node("offline", [{ id: "demo-embed", state: "ready" }]),
    ];
    const view = psView(DEMO_CATALOG.models, nodes, () => 0);
    expect(view.models).toHaveLength(1);
    expect(view.models[0]).toMatchObject({
      name: "demo-chat",
      ready_nodes: 2,
      slots: 6,
      in_flight: 2,
      size: DEMO_CATALOG.models[0]!.memoryBytes,
      size_vram: DEMO_CATALOG.models[0]!.memoryBytes,
      context_length: 4096,
    });
    expect(Number.isNaN(Date.parse(view.models[0]!.expires_at))).toBe(false);
  });

  it("/api/show: details, model_info and Ollama's capability names", () => {
    const entry = DEMO_CATALOG.models.find((m) => m.id === "demo-embed") as CatalogEntry;
    const view = showView(entry, 0);
    expect(view.capabilities).toEqual(["embedding"]);
    expect(view.model_info).toMatchObject({ "general.architecture": "llama", "llama.context_length": 2048, "llama.embedding_length": 64 });
    expect(showView(DEMO_CATALOG.models[0]!, 0).capabilities).toEqual(["completion", "embedding"]);
  });
});
