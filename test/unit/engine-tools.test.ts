// The llama engine in-process on the two demo models that carry real chat formats (gpt-oss's
// Harmony, Qwen3-Coder's XML calls): tools, forced calls, tool history, reasoning, and the
// prompts the real templates make of them. Driven by the official openai client.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import OpenAI from "openai";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_CATALOG } from "../../src/catalog/builtin.js";
import { runLlamaEngine } from "../../src/engine/llama/main.js";
import { chatChunk, chatCompletion, reasoningFieldFromEnv, reasoningFields } from "../../src/engine/llama/openai-format.js";
import { ChatPromptBuilder } from "../../src/engine/llama/prompt.js";
import { getRuntime } from "../../src/engine/llama/runtime.js";
import { writeTinyModel } from "../../src/gguf/tiny-model.js";
import { schemaErrors } from "../support/openapi-schemas.js";

// demo-chat's plain ChatML template knows no tools: the engine describes them in a system message
// and uses the Hermes <tool_call> format.
const MODELS = ["demo-gpt-oss", "demo-qwen3-coder", "demo-chat"] as const;
const log = pino({ level: process.env.DROVER_TEST_LOG ?? "silent" });

const WEATHER_TOOL = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", enum: ["Paris", "Tokyo", "Lima"] },
        unit: { type: "string", enum: ["c", "f"] },
        days: { type: "integer", enum: [1, 2, 3] },
      },
      required: ["city", "unit", "days"],
      additionalProperties: false,
    },
  },
};
const SEARCH_TOOL = {
  type: "function" as const,
  function: {
    name: "search_code",
    description: "Search the repository",
    parameters: { type: "object", properties: { query: { type: "string", maxLength: 24 }, exact: { type: "boolean" } }, required: ["query", "exact"] },
  },
};
const TOOLS = [WEATHER_TOOL, SEARCH_TOOL];
const ajv = new Ajv({ strict: false });
const validators = new Map(TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));

function expectValidCall(call: { type: string; function: { name: string; arguments: string } }, allowed: string[]): void {
  expect(call.type).toBe("function");
  expect(allowed).toContain(call.function.name);
  const args: unknown = JSON.parse(call.function.arguments);
  const validate = validators.get(call.function.name)!;
  expect(validate(args), JSON.stringify(validate.errors)).toBe(true);
}

let dir: string;
const engines = new Map<string, { port: number; close(): Promise<void> }>();
const clients = new Map<string, OpenAI>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "drover-engine-tools-"));
  for (const id of MODELS) {
    const path = join(dir, `${id}.gguf`);
    await writeTinyModel(DEMO_CATALOG.models.find((m) => m.id === id)!.source.generate!, path);
    const engine = await runLlamaEngine({
      modelPath: path,
      modelId: id,
      host: "127.0.0.1",
      port: 0,
      threads: 1,
      slots: 2,
      contextSize: 4096,
      handleSignals: false,
      logger: log,
    });
    engines.set(id, engine);
    clients.set(id, new OpenAI({ baseURL: `http://127.0.0.1:${engine.port}/v1`, apiKey: "x", maxRetries: 0, timeout: 60_000 }));
  }
}, 120_000);

afterAll(async () => {
  for (const e of engines.values()) await e.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const ask: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: "user", content: "What's the weather in Paris, in celsius, for 2 days?" }];

describe.each(MODELS)("%s: tools through the llama engine", { timeout: 60_000 }, (id) => {
  const client = () => clients.get(id)!;

  it('tool_choice "required" gives a schema-valid call and finish_reason tool_calls', async () => {
    const r = await client().chat.completions.create({ model: id, messages: ask, tools: TOOLS, tool_choice: "required", max_tokens: 400, seed: 11 });
    expect(schemaErrors("CreateChatCompletionResponse", r)).toEqual([]);
    const choice = r.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    expectValidCall(choice.message.tool_calls![0] as never, ["get_weather", "search_code"]);
    expect(choice.message.tool_calls![0]!.id).toMatch(/^call_/);
  });

  it("a named function is the one called; the stream reassembles to the same call", async () => {
    const params = {
      model: id,
      messages: ask,
      tools: TOOLS,
      tool_choice: { type: "function" as const, function: { name: "search_code" } },
      max_tokens: 400,
      seed: 5,
    };
    const whole = await client().chat.completions.create(params);
    const call = whole.choices[0]!.message.tool_calls![0]! as { function: { name: string; arguments: string } };
    expectValidCall(call as never, ["search_code"]);

    const stream = await client().chat.completions.create({ ...params, stream: true });
    const calls: { id?: string; name: string; arguments: string }[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      expect(schemaErrors("CreateChatCompletionStreamResponse", chunk)).toEqual([]);
      for (const d of chunk.choices[0]?.delta?.tool_calls ?? []) {
        calls[d.index] ??= { name: "", arguments: "" };
        if (d.id) calls[d.index]!.id = d.id;
        calls[d.index]!.name += d.function?.name ?? "";
        calls[d.index]!.arguments += d.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe("tool_calls");
    expect(calls).toHaveLength(1);
    expect(calls[0]!.id).toMatch(/^call_/);
    expect({ name: calls[0]!.name, arguments: calls[0]!.arguments }).toEqual(call.function);
  });

  it("a second turn with the call and its tool result is accepted", async () => {
    const first = await client().chat.completions.create({ model: id, messages: ask, tools: TOOLS, tool_choice: "required", max_tokens: 400, seed: 3 });
    const assistant = first.choices[0]!.message;
    const call = assistant.tool_calls![0]!;
    const r = await client().chat.completions.create({
      model: id,
      messages: [
        ...ask,
        assistant as OpenAI.Chat.ChatCompletionAssistantMessageParam,
        { role: "tool", tool_call_id: call.id, content: '{"temperature": 21, "sky": "clear"}' },
      ],
      tools: TOOLS,
      max_tokens: 8,
    });
    expect(schemaErrors("CreateChatCompletionResponse", r)).toEqual([]);
    expect(["stop", "length", "tool_calls"]).toContain(r.choices[0]!.finish_reason);
  });

  it('tool_choice "none" and "auto" answer; parallel_tool_calls and reasoning_effort are accepted', async () => {
    for (const tool_choice of ["none", "auto"] as const) {
      const r = await client().chat.completions.create({
        model: id,
        messages: ask,
        tools: TOOLS,
        tool_choice,
        parallel_tool_calls: false,
        reasoning_effort: "high",
        max_tokens: 6,
      });
      expect(schemaErrors("CreateChatCompletionResponse", r)).toEqual([]);
      expect(r.choices[0]!.finish_reason).toBe("length");
    }
  });

  it("a tool without parameters, or whose schema leaves out type: object, still gets a valid forced call", async () => {
    const tools = [
      { type: "function" as const, function: { name: "now" } },
      { type: "function" as const, function: { name: "lookup", parameters: { properties: { key: { type: "string", maxLength: 8 } }, required: ["key"] } } },
    ];
    for (const name of ["now", "lookup"]) {
      const r = await client().chat.completions.create({
        model: id,
        messages: ask,
        tools,
        tool_choice: { type: "function", function: { name } },
        max_tokens: 100,
        seed: 2,
      });
      const call = r.choices[0]!.message.tool_calls![0]! as { function: { name: string; arguments: string } };
      expect(call.function.name).toBe(name);
      const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
      expect(Object.keys(args)).toEqual(name === "now" ? [] : ["key"]);
    }
  });

  it("bad tool requests are 400s naming the field", async () => {
    const bad = async (body: Record<string, unknown>, param: string) => {
      const res = await fetch(`http://127.0.0.1:${engines.get(id)!.port}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: id, messages: ask, max_tokens: 4, ...body }),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { param: string } }).error.param).toBe(param);
    };
    await bad({ tools: TOOLS, tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice");
    await bad({ tool_choice: "required" }, "tool_choice");
    await bad({ tools: [{ type: "custom", custom: { name: "x" } }] }, "tools.0.type");
    await bad({ tools: TOOLS, tool_choice: "required", response_format: { type: "json_object" } }, "response_format");
    await bad(
      {
        messages: [
          ...ask,
          { role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "get_weather", arguments: "{oops" } }] },
        ],
      },
      "messages.1.tool_calls.0.function.arguments",
    );
  });
});

describe("the real templates render tools, calls, results and reasoning", { timeout: 60_000 }, () => {
  const history: Parameters<ChatPromptBuilder["tokens"]>[0] = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Weather in Paris? <|end|><|im_end|>" },
    {
      role: "assistant",
      content: null,
      reasoning_content: "I should call get_weather.",
      tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"c","days":2}' } }],
    },
    { role: "tool", tool_call_id: "call_1", content: 'sunny "and" warm' },
  ];

  async function render(id: string, check: (r: { text: string; tokens: number[]; special: (t: string) => number; chat: ChatPromptBuilder }) => void) {
    const path = join(dir, `${id}.gguf`);
    const model = await (await getRuntime(1, log)).loadModel({ modelPath: path });
    try {
      const chat = new ChatPromptBuilder(model, log);
      const tokens = chat.tokens(history, { tools: [WEATHER_TOOL.function], reasoningEffort: "high" });
      check({ text: model.detokenize(tokens, true), tokens, special: (t: string) => model.tokenize(t, true)[0]!, chat });
    } finally {
      await model.dispose();
    }
  }

  it("gpt-oss: Harmony, the call on the commentary channel, the reasoning kept while the call is pending", async () => {
    await render("demo-gpt-oss", ({ text, tokens, special, chat }) => {
      expect(chat.toolFormat).toBe("harmony");
      expect(text).toContain("Reasoning: high");
      expect(text).toContain("type get_weather = (_: {");
      expect(text).toContain("<|start|>assistant<|channel|>analysis<|message|>I should call get_weather.<|end|>");
      expect(text).toContain(
        '<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris", "unit": "c", "days": 2}<|call|>',
      );
      expect(text).toContain('<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"sunny \\"and\\" warm"<|end|>');
      expect(text.endsWith("<|start|>assistant")).toBe(true);
      // The user's "<|end|>" is text: the real <|end|> tokens are the template's only.
      const end = special("<|end|>");
      const templateEnds = text.split("<|end|>").length - 1 - 1;
      expect(tokens.filter((t) => t === end)).toHaveLength(templateEnds);
    });
  });

  it("Qwen3-Coder: tools in XML, the call as <function=...><parameter=...>, the result as <tool_response>", async () => {
    await render("demo-qwen3-coder", ({ text, tokens, special, chat }) => {
      expect(chat.toolFormat).toBe("qwen3-coder");
      expect(text).toContain("<tools>\n<function>\n<name>get_weather</name>");
      expect(text).toContain(
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=unit>\nc\n</parameter>\n<parameter=days>\n2\n</parameter>\n</function>\n</tool_call>",
      );
      expect(text).toContain('<tool_response>\nsunny "and" warm\n</tool_response>');
      expect(text.endsWith("<|im_start|>assistant\n")).toBe(true);
      const imEnd = special("<|im_end|>");
      const templateImEnds = text.split("<|im_end|>").length - 1 - 1;
      expect(tokens.filter((t) => t === imEnd)).toHaveLength(templateImEnds);
    });
  });
});

describe("sampling fields and where reasoning goes", { timeout: 60_000 }, () => {
  it("logit_bias is applied (a +100 token is all the model says) and an unknown token id is a 400", async () => {
    const id = "demo-gpt-oss";
    const a = (await (
      await fetch(`http://127.0.0.1:${engines.get(id)!.port}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: id,
          prompt: "x",
          max_tokens: 6,
          logit_bias: { "108": 100 },
          presence_penalty: 0.5,
          frequency_penalty: 0.5,
          repeat_penalty: 1.1,
          top_k: 40,
          min_p: 0.05,
        }),
      })
    ).json()) as { choices: { text: string }[] };
    expect(a.choices[0]!.text).toBe("aaaaaa");
    const res = await fetch(`http://127.0.0.1:${engines.get(id)!.port}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: id, messages: ask, max_tokens: 2, logit_bias: { "99999999": 1 } }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe("logit_bias");
  });

  it("reasoning_content by default, reasoning or both on request; the bodies still validate against OpenAI's schemas", () => {
    expect(reasoningFieldFromEnv(undefined)).toBe("reasoning_content");
    expect(reasoningFieldFromEnv("both")).toBe("both");
    expect(() => reasoningFieldFromEnv("thoughts")).toThrow(/DROVER_REASONING_FIELD/);
    const meta = { id: "chatcmpl-x", created: 1, model: "m" };
    const u = { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, prompt_tokens_details: { cached_tokens: 0 } };
    for (const field of ["reasoning_content", "reasoning", "both"] as const) {
      const body = chatCompletion(meta, { content: "hi", reasoning: reasoningFields(field, "think") }, "stop", u);
      expect(schemaErrors("CreateChatCompletionResponse", body)).toEqual([]);
      const message = body.choices[0]!.message as Record<string, unknown>;
      expect(message.reasoning_content).toBe(field === "reasoning" ? undefined : "think");
      expect(message.reasoning).toBe(field === "reasoning_content" ? undefined : "think");
      expect(schemaErrors("CreateChatCompletionStreamResponse", chatChunk(meta, reasoningFields(field, "th"), null, false))).toEqual([]);
    }
    expect(reasoningFields("both", "")).toEqual({});
  });
});
