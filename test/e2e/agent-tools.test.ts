// End to end, for agents: tool calling and reasoning through a real router, a real node and real
// llama.cpp engine processes, on the demo models that carry gpt-oss's and Qwen3-Coder's real chat
// formats, driven with the official `openai` and `ollama` clients.
import { join } from "node:path";
import { Ajv } from "ajv";
import { Ollama, type Message } from "ollama";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { schemaErrors } from "../support/openapi-schemas.js";
import { AUTH_HEADERS, getJson, REPO_ROOT, startNode, startRouter, TEST_API_KEY, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";

const MODELS = ["demo-gpt-oss", "demo-qwen3-coder"] as const;

const WEATHER = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", enum: ["Paris", "Tokyo", "Lima"] }, unit: { type: "string", enum: ["c", "f"] } },
      required: ["city", "unit"],
      additionalProperties: false,
    },
  },
};
const SEARCH = {
  type: "function" as const,
  function: {
    name: "search_code",
    description: "Search the repository",
    parameters: { type: "object", properties: { query: { type: "string", maxLength: 24 }, exact: { type: "boolean" } }, required: ["query", "exact"] },
  },
};
const TOOLS = [WEATHER, SEARCH];
const ajv = new Ajv({ strict: false });
const validate = new Map(TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));

function expectValid(name: string, args: unknown): void {
  const check = validate.get(name);
  expect(check, `unknown tool ${name}`).toBeDefined();
  expect(check!(args), JSON.stringify(check!.errors)).toBe(true);
}

let router: DroverProcess;
let node: DroverProcess;
let openai: OpenAI;
let ollama: Ollama;

beforeAll(async () => {
  router = await startRouter();
  node = await startNode(router.url, "agent-node");
  await waitForReady(router.url, [...MODELS], 1);
  openai = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0, timeout: 120_000 });
  ollama = new Ollama({ host: router.url, headers: AUTH_HEADERS });
}, 180_000);

afterAll(async () => {
  await node?.stop();
  await router?.stop();
});

const ask: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: "user", content: "What's the weather in Lima, in celsius?" }];

describe.each(MODELS)("%s with the openai client, through router → node → engine", { timeout: 120_000 }, (model) => {
  test('tool_choice "required": a call whose arguments validate against the tool schema; the history counts it', async () => {
    const { data, response } = await openai.chat.completions
      .create({ model, messages: ask, tools: TOOLS, tool_choice: "required", max_tokens: 300, seed: 21 })
      .withResponse();
    expect(schemaErrors("CreateChatCompletionResponse", data)).toEqual([]);
    const choice = data.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    expect(call.type).toBe("function");
    expectValid(call.function.name, JSON.parse(call.function.arguments));

    const requestId = response.headers.get("x-request-id")!;
    const rec = await waitFor("the request record", () => getJson(`${router.url}/api/requests/${requestId}`).catch(() => null), 15_000, 100);
    expect(rec.toolCalls).toBe(1);
  });

  test("a named function: the call is that function, and the stream reassembles to the same call", async () => {
    const params = {
      model,
      messages: ask,
      tools: TOOLS,
      tool_choice: { type: "function" as const, function: { name: "get_weather" } },
      max_tokens: 300,
      seed: 8,
    };
    const whole = await openai.chat.completions.create(params);
    expect(schemaErrors("CreateChatCompletionResponse", whole)).toEqual([]);
    const call = whole.choices[0]!.message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe("get_weather");
    expectValid("get_weather", JSON.parse(call.function.arguments));

    const stream = await openai.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    const calls: { id: string; name: string; arguments: string }[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      expect(schemaErrors("CreateChatCompletionStreamResponse", chunk)).toEqual([]);
      for (const d of chunk.choices[0]?.delta?.tool_calls ?? []) {
        calls[d.index] ??= { id: "", name: "", arguments: "" };
        calls[d.index]!.id += d.id ?? "";
        calls[d.index]!.name += d.function?.name ?? "";
        calls[d.index]!.arguments += d.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe("tool_calls");
    expect(calls).toHaveLength(1);
    expect(calls[0]!.id).toMatch(/^call_/);
    expect({ name: calls[0]!.name, arguments: calls[0]!.arguments }).toEqual({ name: call.function.name, arguments: call.function.arguments });
  });

  test("a second turn with the tool result is accepted", async () => {
    const first = await openai.chat.completions.create({ model, messages: ask, tools: TOOLS, tool_choice: "required", max_tokens: 300, seed: 4 });
    const assistant = first.choices[0]!.message;
    const r = await openai.chat.completions.create({
      model,
      messages: [
        ...ask,
        assistant as OpenAI.Chat.ChatCompletionAssistantMessageParam,
        { role: "tool", tool_call_id: assistant.tool_calls![0]!.id, content: '{"temp_c": 19}' },
      ],
      tools: TOOLS,
      reasoning_effort: "low",
      max_tokens: 8,
    });
    expect(schemaErrors("CreateChatCompletionResponse", r)).toEqual([]);
    expect(r.choices[0]!.finish_reason).toBe("length");
  });

  test("a field the engine does not implement is a 400 naming it", async () => {
    const err = await openai.chat.completions.create({ model, messages: ask, max_tokens: 4, logprobs: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("logprobs");
  });
});

describe.each(MODELS)("%s with the ollama client on /api/chat", { timeout: 120_000 }, (model) => {
  const messages: Message[] = [{ role: "user", content: "What's the weather in Tokyo?" }];

  test("tools, not streamed: message.tool_calls with arguments as objects; a tool turn is accepted", async () => {
    // The demo model's free output is noise: ask until it makes no difference, the model decides (auto).
    const r = await ollama.chat({ model, messages, tools: TOOLS, options: { num_predict: 12, seed: 1 }, stream: false });
    expect(r.done).toBe(true);
    expect(typeof r.message.content).toBe("string");
    for (const c of r.message.tool_calls ?? []) expectValid(c.function.name, c.function.arguments);

    const second = await ollama.chat({
      model,
      tools: TOOLS,
      messages: [
        ...messages,
        { role: "assistant", content: "", tool_calls: [{ function: { name: "get_weather", arguments: { city: "Tokyo", unit: "c" } } }] },
        { role: "tool", tool_name: "get_weather", content: "rain, 14C" },
      ],
      options: { num_predict: 6 },
      stream: false,
    });
    expect(second.done_reason).toBe("length");
  });

  test("think, streamed and not: answers arrive (thinking, when the model reasons, in message.thinking)", async () => {
    const whole = await ollama.chat({ model, messages, think: "high", options: { num_predict: 10, seed: 2 }, stream: false });
    expect(whole.done).toBe(true);
    expect(whole.message.content.length + (whole.message.thinking?.length ?? 0)).toBeGreaterThan(0);
    expect(whole.eval_count).toBe(10);

    const stream = await ollama.chat({ model, messages, think: true, tools: TOOLS, options: { num_predict: 10, seed: 2 }, stream: true });
    let pieces = 0;
    let last: { done: boolean; eval_count?: number } | undefined;
    for await (const part of stream) {
      pieces++;
      last = part;
    }
    expect(pieces).toBeGreaterThan(1);
    expect(last!.done).toBe(true);
    expect(last!.eval_count).toBe(10);
  });
});

// A `command` engine (here a stand-in for llama-server / vLLM that answers tools as they do) parses
// tools and reasoning itself: the router and node pass the fields through untouched, and the
// Ollama routes translate its answers.
describe("command engine: tools and reasoning pass through untouched", { timeout: 120_000 }, () => {
  let cmdRouter: DroverProcess;
  let cmdNode: DroverProcess;
  let _client: OpenAI;
  let oll: Ollama;
  const model = "demo-gpt-oss";

  beforeAll(async () => {
    cmdRouter = await startRouter();
    const template = `"${process.execPath}" ${join(REPO_ROOT, "test/fixtures/openai-server.mjs")} --model {model} --port {port} --id {id}`;
    cmdNode = await startNode(cmdRouter.url, "command-node", ["--engine", "command", "--engine-command", template]);
    await waitForReady(cmdRouter.url, [model], 1);
    _client = new OpenAI({ baseURL: `${cmdRouter.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    oll = new Ollama({ host: cmdRouter.url, headers: AUTH_HEADERS });
  }, 120_000);

  afterAll(async () => {
    await cmdNode?.stop();
    await cmdRouter?.stop();
  });

  test("/v1: the engine receives tools, tool_choice, parallel_tool_calls, reasoning fields and history as sent", async () => {
    const messages = [
      ...ask,
      {
        role: "assistant",
        content: null,
        reasoning_content: "earlier",
        tool_calls: [{ id: "c1", type: "function", function: { name: "get_weather", arguments: "{}" } }],
      },
      { role: "tool", tool_call_id: "c1", content: "sunny" },
    ];
    const sent = {
      model,
      messages,
      tools: TOOLS,
      tool_choice: "required",
      parallel_tool_calls: false,
      reasoning_effort: "high",
      custom_vendor_field: { a: 1 },
    };
    const res = await fetch(`${cmdRouter.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH_HEADERS },
      body: JSON.stringify(sent),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { received: unknown; choices: { message: { tool_calls: unknown[] } }[] };
    expect(body.received).toEqual(sent);
    expect(body.choices[0]!.message.tool_calls).toHaveLength(1);
  });

  test("/api/chat: tool calls become message.tool_calls with object arguments, reasoning becomes message.thinking, streamed and not", async () => {
    const whole = await oll.chat({ model, messages: [{ role: "user", content: "weather?" }], tools: TOOLS, think: true, stream: false });
    expect(whole.message.thinking).toBe("The user wants weather.");
    expect(whole.message.tool_calls).toEqual([{ function: { name: "get_weather", arguments: { city: "Lima", unit: "c" } } }]);

    const parts = [];
    for await (const p of await oll.chat({ model, messages: [{ role: "user", content: "weather?" }], tools: TOOLS, stream: true })) parts.push(p);
    expect(parts.map((p) => p.message.thinking ?? "").join("")).toBe("The user wants weather.");
    expect(parts.flatMap((p) => p.message.tool_calls ?? [])).toEqual([{ function: { name: "get_weather", arguments: { city: "Lima", unit: "c" } } }]);
    expect(parts[parts.length - 1]!.done).toBe(true);

    // think: false — reasoning the model returns anyway is not passed on.
    const quiet = await oll.chat({ model, messages: [{ role: "user", content: "weather?" }], tools: TOOLS, think: false, stream: false });
    expect(quiet.message.thinking).toBeUndefined();
    expect(quiet.message.tool_calls).toHaveLength(1);
  });
});
