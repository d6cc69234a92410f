// The Responses and Anthropic Messages dialects against hand-written OpenAI chat answers — streamed
// and whole, with reasoning and tool calls — as the engine will send them: the translation of tool
// calls and reasoning is proven here without an engine that makes them. Translated streams are
// served from a local HTTP server to the official `openai` and `@anthropic-ai/sdk` clients, whose
// own parsers must accept them; Responses events and bodies validate against OpenAI's document.
import Anthropic from "@anthropic-ai/sdk";
import { Ajv2020 } from "ajv/dist/2020.js";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CountTokensRequest, MessagesRequest } from "../../src/protocol/anthropic.js";
import { CreateResponseRequest } from "../../src/protocol/openai-responses.js";
import { AnthropicHttpError } from "../../src/router/dialects/anthropic/anthropic-http-error.js";
import { messagesToChat } from "../../src/router/dialects/anthropic/request-translation.js";
import { CountTokensAdapter, MessagesAdapter } from "../../src/router/dialects/anthropic/response-adapter.js";
import { REASONING_FIELD } from "../../src/router/dialects/chat-translation/chat-answer.js";
import { responsesToChat, sealReasoning } from "../../src/router/dialects/responses/request-translation.js";
import { ResponsesAdapter, type ResponseContext } from "../../src/router/dialects/responses/response-adapter.js";
import { OPENAI_ERRORS } from "../../src/router/dialects/openai/edge.js";
import type { TranslatingAdapter } from "../../src/router/dialects/chat-translation/translating-adapter.js";
import { HttpError } from "../../src/router/http/http-errors.js";
import { schemaErrors } from "../support/openapi-schemas.js";

const WEATHER_SCHEMA = { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city"], additionalProperties: false };

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

/** An OpenAI chat stream as llama-server sends one: reasoning, a little text, then one tool call in pieces. */
const TOOL_STREAM = [
  chunk({ role: "assistant", content: null }),
  chunk({ [REASONING_FIELD]: "The user wants weather." }),
  chunk({ [REASONING_FIELD]: " Call the tool." }),
  chunk({ content: "Checking." }),
  chunk({ tool_calls: [{ index: 0, id: "call_abc", type: "function", function: { name: "get_weather", arguments: "" } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris","days":2}' } }] }),
  chunk({}, "tool_calls"),
  `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "m", choices: [], usage: { prompt_tokens: 31, completion_tokens: 17, total_tokens: 48 } })}\n\n`,
  "data: [DONE]\n\n",
].join("");

/** The same answer as one chat.completion object (a server that ignored `stream`). */
const TOOL_OBJECT = JSON.stringify({
  id: "chatcmpl-2",
  object: "chat.completion",
  created: 1,
  model: "m",
  choices: [
    {
      index: 0,
      finish_reason: "tool_calls",
      message: {
        role: "assistant",
        content: "Checking.",
        [REASONING_FIELD]: "The user wants weather. Call the tool.",
        tool_calls: [{ id: "call_abc", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","days":2}' } }],
      },
    },
  ],
  usage: { prompt_tokens: 31, completion_tokens: 17, total_tokens: 48 },
});

const SSE = "text/event-stream";
const JSON_TYPE = "application/json";

/** Runs an adapter over a node answer given in one piece or byte by byte; returns what the client gets. */
async function run(
  adapter: TranslatingAdapter,
  body: string,
  contentType = SSE,
  status = 200,
  byteByByte = false,
): Promise<{ status: number; contentType: string; text: string }> {
  adapter.start({ status, contentType, nodeName: "n1", queueWaitMs: 0 });
  let text = "";
  const bytes = Buffer.from(body, "utf8");
  if (byteByByte) for (let i = 0; i < bytes.length; i++) text += adapter.chunk(bytes.subarray(i, i + 1));
  else text += adapter.chunk(bytes);
  text += String(await adapter.end());
  return { ...adapter.head(), text };
}

function sseEvents(text: string): { name: string; data: Record<string, unknown> & { type: string } }[] {
  return text
    .trim()
    .split("\n\n")
    .map((block) => {
      const lines = block.split("\n");
      return { name: lines[0]!.replace(/^event: /, ""), data: JSON.parse(lines[1]!.replace(/^data: /, "")) };
    });
}

const RESPONSE_EVENT_SCHEMAS: Record<string, string> = {
  "response.created": "ResponseCreatedEvent",
  "response.in_progress": "ResponseInProgressEvent",
  "response.output_item.added": "ResponseOutputItemAddedEvent",
  "response.output_item.done": "ResponseOutputItemDoneEvent",
  "response.content_part.added": "ResponseContentPartAddedEvent",
  "response.content_part.done": "ResponseContentPartDoneEvent",
  "response.output_text.delta": "ResponseTextDeltaEvent",
  "response.output_text.done": "ResponseTextDoneEvent",
  "response.reasoning_text.delta": "ResponseReasoningTextDeltaEvent",
  "response.reasoning_text.done": "ResponseReasoningTextDoneEvent",
  "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
  "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
  "response.completed": "ResponseCompletedEvent",
  "response.incomplete": "ResponseIncompleteEvent",
  "response.failed": "ResponseFailedEvent",
};

const TOOLS = [{ type: "function" as const, name: "get_weather", description: "Weather", parameters: WEATHER_SCHEMA, strict: true }];

function responsesContext(over: Partial<CreateResponseRequest> = {}, saved: Record<string, unknown>[] = []): ResponseContext {
  const request = CreateResponseRequest.parse({ model: "m", input: "Weather in Paris?", tools: TOOLS, tool_choice: "required", ...over });
  return { id: "resp_test", createdAt: 1_700_000_000_000, request, tools: request.tools ?? [], context: [], save: async (r) => void saved.push(r) };
}

const ajv = new Ajv2020({ strict: false });

describe("Responses: the node's chat answer → Response items and events", () => {
  test("a streamed answer with reasoning, text and a tool call: every event validates, in order, numbered; the Response is stored", async () => {
    const saved: Record<string, unknown>[] = [];
    const out = await run(new ResponsesAdapter(true, OPENAI_ERRORS, responsesContext({}, saved)), TOOL_STREAM, SSE, 200, true);
    expect(out).toMatchObject({ status: 200, contentType: expect.stringMatching(/^text\/event-stream/) });
    const events = sseEvents(out.text);
    for (const e of events) {
      expect(e.data.type).toBe(e.name);
      expect(schemaErrors(RESPONSE_EVENT_SCHEMAS[e.name]!, e.data), e.name).toEqual([]);
    }
    expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events.map((e) => e.name)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.reasoning_text.delta",
      "response.reasoning_text.delta",
      "response.reasoning_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const final = events.at(-1)!.data.response as { output: Record<string, unknown>[]; status: string; usage: unknown };
    expect(schemaErrors("Response", final)).toEqual([]);
    expect(final.status).toBe("completed");
    expect(final.output.map((o) => o.type)).toEqual(["reasoning", "message", "function_call"]);
    expect(final.output[0]).toMatchObject({ content: [{ type: "reasoning_text", text: "The user wants weather. Call the tool." }] });
    const call = final.output[2]!;
    expect(call).toMatchObject({
      type: "function_call",
      call_id: "call_abc",
      name: "get_weather",
      arguments: '{"city":"Paris","days":2}',
      status: "completed",
    });
    expect(ajv.validate(WEATHER_SCHEMA, JSON.parse(call.arguments as string))).toBe(true);
    expect(final.usage).toMatchObject({ input_tokens: 31, output_tokens: 17, total_tokens: 48 });
    expect(saved).toEqual([final]);
  });

  test("a stored response is written before the client sees the stream end or the body", async () => {
    for (const stream of [true, false]) {
      let release!: () => void;
      const written = new Promise<void>((r) => (release = r));
      const ctx = { ...responsesContext(), save: () => written };
      const adapter = new ResponsesAdapter(stream, OPENAI_ERRORS, ctx);
      adapter.start({ status: 200, contentType: SSE, nodeName: "n1", queueWaitMs: 0 });
      adapter.chunk(Buffer.from(TOOL_STREAM));
      let ended = false;
      const end = Promise.resolve(adapter.end()).then((tail) => {
        ended = true;
        return String(tail);
      });
      await new Promise((r) => setTimeout(r, 20));
      expect(ended).toBe(false);
      release();
      expect(await end).toMatch(stream ? /response\.completed/ : /"status":"completed"/);
    }
  });

  test("not streamed, from the stream or from one chat.completion object: the same Response, valid", async () => {
    for (const [body, type] of [
      [TOOL_STREAM, SSE],
      [TOOL_OBJECT, JSON_TYPE],
    ] as const) {
      const out = await run(new ResponsesAdapter(false, OPENAI_ERRORS, responsesContext()), body, type);
      expect(out.status).toBe(200);
      const r = JSON.parse(out.text) as { output: Record<string, unknown>[] };
      expect(schemaErrors("Response", r)).toEqual([]);
      expect(r.output.map((o) => o.type)).toEqual(["reasoning", "message", "function_call"]);
      expect(r.output[2]).toMatchObject({ call_id: "call_abc", name: "get_weather", arguments: '{"city":"Paris","days":2}' });
    }
  });

  test("include reasoning.encrypted_content: the reasoning comes back sealed, and sent back it is the assistant's reasoning again", async () => {
    const out = await run(new ResponsesAdapter(false, OPENAI_ERRORS, responsesContext({ include: ["reasoning.encrypted_content"] })), TOOL_OBJECT, JSON_TYPE);
    const r = JSON.parse(out.text) as { output: Record<string, unknown>[] };
    expect(r.output[0]!.encrypted_content).toBe(sealReasoning("The user wants weather. Call the tool."));
    const next = CreateResponseRequest.parse({
      model: "m",
      input: [
        { role: "user", content: "Weather in Paris?" },
        { type: "reasoning", id: "rs_1", summary: [], encrypted_content: r.output[0]!.encrypted_content },
        { type: "function_call", call_id: "call_abc", name: "get_weather", arguments: '{"city":"Paris"}' },
        { type: "function_call_output", call_id: "call_abc", output: "18C" },
      ],
    });
    expect(responsesToChat(next, [], 4096).body.messages).toEqual([
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: null,
        [REASONING_FIELD]: "The user wants weather. Call the tool.",
        tool_calls: [{ id: "call_abc", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
      },
      { role: "tool", tool_call_id: "call_abc", content: "18C" },
    ]);
    const foreign = CreateResponseRequest.parse({
      model: "m",
      input: [
        { type: "reasoning", summary: [], encrypted_content: "gAAAA-openai" },
        { role: "user", content: "x" },
      ],
    });
    expect(() => responsesToChat(foreign, [], 4096)).toThrow(/input\.0\.encrypted_content/);
  });

  test("the engine's error mid-stream ends it with a valid response.failed; a node's 400 keeps its status in OpenAI's shape", async () => {
    const broken = chunk({ content: "Hi" }) + `data: ${JSON.stringify({ error: { message: "out of memory", type: "server_error" } })}\n\n`;
    const events = sseEvents((await run(new ResponsesAdapter(true, OPENAI_ERRORS, responsesContext()), broken)).text);
    const last = events.at(-1)!;
    expect(last.name).toBe("response.failed");
    expect(schemaErrors("ResponseFailedEvent", last.data)).toEqual([]);
    expect((last.data.response as { error: { message: string } }).error.message).toMatch(/out of memory/);

    const refused = await run(
      new ResponsesAdapter(true, OPENAI_ERRORS, responsesContext()),
      JSON.stringify({ error: { message: "the prompt is longer than the context", type: "invalid_request_error" } }),
      JSON_TYPE,
      400,
    );
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text)).toMatchObject({ error: { message: "the prompt is longer than the context", type: "invalid_request_error" } });
  });

  test("the request: tools, tool_choice, reasoning effort, text.format and limits become the chat request's", () => {
    const req = CreateResponseRequest.parse({
      model: "m",
      instructions: "Be terse.",
      input: [
        { role: "developer", content: "Use metric units." },
        { type: "message", role: "user", content: [{ type: "input_text", text: "Weather?" }] },
      ],
      tools: TOOLS,
      tool_choice: { type: "function", name: "get_weather" },
      parallel_tool_calls: false,
      reasoning: { effort: "high", summary: "auto" },
      text: { format: { type: "json_schema", name: "w", schema: WEATHER_SCHEMA, strict: true } },
      max_output_tokens: 100,
      temperature: 0.2,
      top_p: 0.9,
    });
    expect(responsesToChat(req, [], 4096).body).toEqual({
      model: "m",
      messages: [
        { role: "system", content: "Be terse." },
        { role: "system", content: "Use metric units." },
        { role: "user", content: "Weather?" },
      ],
      stream: true,
      stream_options: { include_usage: true },
      tools: [{ type: "function", function: { name: "get_weather", description: "Weather", parameters: WEATHER_SCHEMA, strict: true } }],
      tool_choice: { type: "function", function: { name: "get_weather" } },
      parallel_tool_calls: false,
      reasoning_effort: "high",
      response_format: { type: "json_schema", json_schema: { name: "w", schema: WEATHER_SCHEMA, strict: true } },
      max_tokens: 100,
      temperature: 0.2,
      top_p: 0.9,
    });
    // No limit given: up to the model's context, not the engine's short default.
    expect(responsesToChat(CreateResponseRequest.parse({ model: "m", input: "x" }), [], 4096).body.max_tokens).toBe(4096);
    expect(() => responsesToChat(CreateResponseRequest.parse({ model: "m", input: "x", tools: [{ type: "file_search" }] }), [], 4096)).toThrow(HttpError);
    // A request as Codex CLI sends one: stateless, with its own metadata and item fields.
    const codex = CreateResponseRequest.parse({
      model: "m",
      instructions: "You are Codex.",
      input: [
        { type: "message", role: "user", content: [{ type: "input_text", text: "ls" }] },
        {
          type: "reasoning",
          summary: [{ type: "summary_text", text: "List files." }],
          content: [{ type: "text", text: "I will run ls." }],
          encrypted_content: null,
        },
        { type: "function_call", name: "shell", arguments: '{"command":["ls"]}', call_id: "call_1" },
        { type: "function_call_output", call_id: "call_1", output: "README.md" },
        { type: "message", role: "assistant", content: [{ type: "output_text", text: "One file." }], end_turn: true, phase: "final_answer" },
      ],
      tools: [
        {
          type: "function",
          name: "shell",
          description: "Runs a command",
          strict: false,
          parameters: { type: "object", properties: { command: { type: "array", items: { type: "string" } } }, required: ["command"] },
        },
      ],
      tool_choice: "auto",
      parallel_tool_calls: false,
      reasoning: { effort: "medium", summary: "auto" },
      store: false,
      stream: true,
      include: ["reasoning.encrypted_content"],
      prompt_cache_key: "thread-1",
      service_tier: "priority",
      text: { verbosity: "medium" },
      client_metadata: { "x-codex-installation-id": "abc" },
    });
    expect(responsesToChat(codex, [], 4096).body.messages).toEqual([
      { role: "system", content: "You are Codex." },
      { role: "user", content: "ls" },
      {
        role: "assistant",
        content: null,
        [REASONING_FIELD]: "I will run ls.",
        tool_calls: [{ id: "call_1", type: "function", function: { name: "shell", arguments: '{"command":["ls"]}' } }],
      },
      { role: "tool", tool_call_id: "call_1", content: "README.md" },
      { role: "assistant", content: "One file." },
    ]);
  });
});

describe("Anthropic Messages: the node's chat answer → Message blocks and events", () => {
  const request = MessagesRequest.parse({
    model: "m",
    max_tokens: 64,
    messages: [{ role: "user", content: "Weather in Paris?" }],
    tools: [{ name: "get_weather", description: "Weather", input_schema: WEATHER_SCHEMA }],
    tool_choice: { type: "tool", name: "get_weather" },
  });

  test("the request: tool_choice tool → a named function, a thinking budget → reasoning effort, stop sequences", () => {
    const body = messagesToChat(request);
    expect(body).toMatchObject({
      tool_choice: { type: "function", function: { name: "get_weather" } },
      tools: [{ type: "function", function: { name: "get_weather", parameters: WEATHER_SCHEMA } }],
      max_tokens: 64,
    });
    const other = messagesToChat(
      MessagesRequest.parse({
        ...request,
        tool_choice: { type: "any", disable_parallel_tool_use: true },
        thinking: { type: "enabled", budget_tokens: 8000 },
        stop_sequences: ["END"],
        system: [
          { type: "text", text: "A" },
          { type: "text", text: "B" },
        ],
      }),
    );
    expect(other).toMatchObject({
      tool_choice: "required",
      parallel_tool_calls: false,
      reasoning_effort: "medium",
      stop: ["END"],
      messages: [
        { role: "system", content: "A\nB" },
        { role: "user", content: "Weather in Paris?" },
      ],
    });
    expect(messagesToChat(MessagesRequest.parse({ ...request, tool_choice: { type: "none" } })).tool_choice).toBe("none");
    // What Claude Code sends besides: context editing (accepted, not applied), output settings, adaptive thinking.
    const claudeCode = messagesToChat(
      MessagesRequest.parse({
        ...request,
        context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
        thinking: { type: "adaptive" },
        output_config: { effort: "low", format: { type: "json_schema", schema: WEATHER_SCHEMA } },
      }),
    );
    expect(claudeCode).toMatchObject({ reasoning_effort: "low", response_format: { type: "json_schema", json_schema: { schema: WEATHER_SCHEMA } } });
    expect(claudeCode).not.toHaveProperty("context_management");
    expect(() =>
      messagesToChat(MessagesRequest.parse({ ...request, messages: [{ role: "user", content: [{ type: "tool_use", id: "t", name: "x", input: {} }] }] })),
    ).toThrow(AnthropicHttpError);
    expect(CountTokensRequest.safeParse({ model: "m", messages: [{ role: "user", content: "x" }], max_tokens: 3 }).success).toBe(false);
  });

  test("not streamed: thinking, text and a tool_use block whose input validates against the tool's schema; stop_reason tool_use", async () => {
    for (const [body, type] of [
      [TOOL_STREAM, SSE],
      [TOOL_OBJECT, JSON_TYPE],
    ] as const) {
      const out = await run(new MessagesAdapter(false, "m"), body, type);
      expect(out.status).toBe(200);
      const msg = JSON.parse(out.text) as Anthropic.Message;
      expect(msg).toMatchObject({ type: "message", role: "assistant", model: "m", stop_reason: "tool_use", usage: { input_tokens: 31, output_tokens: 17 } });
      expect(msg.content).toEqual([
        { type: "thinking", thinking: "The user wants weather. Call the tool.", signature: "" },
        { type: "text", text: "Checking." },
        { type: "tool_use", id: "call_abc", name: "get_weather", input: { city: "Paris", days: 2 } },
      ]);
      expect(ajv.validate(WEATHER_SCHEMA, (msg.content[2] as Anthropic.ToolUseBlock).input)).toBe(true);
    }
  });

  test("streamed: thinking_delta, text_delta and input_json_delta blocks in order, then message_delta with stop_reason and usage", async () => {
    const events = sseEvents((await run(new MessagesAdapter(true, "m"), TOOL_STREAM, SSE, 200, true)).text);
    for (const e of events) expect(e.data.type).toBe(e.name);
    const shape = events.map((e) =>
      e.name === "content_block_delta"
        ? `delta:${(e.data.delta as { type: string }).type}`
        : e.name === "content_block_start"
          ? `start:${(e.data.content_block as { type: string }).type}`
          : e.name,
    );
    expect(shape).toEqual([
      "message_start",
      "ping",
      "start:thinking",
      "delta:thinking_delta",
      "delta:thinking_delta",
      "content_block_stop",
      "start:text",
      "delta:text_delta",
      "content_block_stop",
      "start:tool_use",
      "delta:input_json_delta",
      "delta:input_json_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    expect(events.find((e) => e.name === "message_delta")!.data).toEqual({
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { input_tokens: 31, output_tokens: 17 },
    });
  });

  test("count_tokens answers the engine's prompt_tokens", async () => {
    const out = await run(new CountTokensAdapter(), TOOL_STREAM);
    expect(JSON.parse(out.text)).toEqual({ input_tokens: 31 });
  });

  test("tool arguments that are not a JSON object: 500 api_error in Anthropic's shape, not a broken Message", async () => {
    const bad =
      chunk({ tool_calls: [{ index: 0, id: "c", type: "function", function: { name: "f", arguments: "{not json" } }] }) +
      chunk({}, "tool_calls") +
      "data: [DONE]\n\n";
    const out = await run(new MessagesAdapter(false, "m"), bad);
    expect(out.status).toBe(500);
    expect(JSON.parse(out.text)).toEqual({ type: "error", error: { type: "api_error", message: expect.stringMatching(/not a JSON object/) } });
    // Cut off by the token limit, the call is dropped and stop_reason says so.
    const cut =
      chunk({ content: "Let me check." }) +
      chunk({ tool_calls: [{ index: 0, id: "c", type: "function", function: { name: "f", arguments: '{"city":"Par' } }] }) +
      chunk({}, "length") +
      "data: [DONE]\n\n";
    const truncated = await run(new MessagesAdapter(false, "m"), cut);
    expect(truncated.status).toBe(200);
    expect(JSON.parse(truncated.text)).toMatchObject({ stop_reason: "max_tokens", content: [{ type: "text", text: "Let me check." }] });
  });
});

describe("the official clients parse the translated streams", () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    // Stands in for the router's edge: every request is answered by translating TOOL_STREAM.
    server = createServer((req, res) => {
      let raw = "";
      req.on("data", (d) => (raw += d));
      req.on("end", async () => {
        const body = JSON.parse(raw) as { stream?: boolean };
        const adapter =
          req.url === "/v1/messages"
            ? new MessagesAdapter(body.stream === true, "m")
            : new ResponsesAdapter(body.stream === true, OPENAI_ERRORS, responsesContext());
        const out = await run(adapter, TOOL_STREAM);
        res.writeHead(out.status, { "content-type": out.contentType });
        res.end(out.text);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test("@anthropic-ai/sdk's MessageStream builds thinking, text and tool_use (input parsed from the JSON deltas)", async () => {
    const client = new Anthropic({ baseURL: base, apiKey: "k", maxRetries: 0 });
    const stream = client.messages.stream({ model: "m", max_tokens: 64, messages: [{ role: "user", content: "Weather?" }] });
    const jsonPieces: string[] = [];
    stream.on("inputJson", (partial) => jsonPieces.push(partial));
    const msg = await stream.finalMessage();
    expect(msg.stop_reason).toBe("tool_use");
    expect(msg.content.map((b) => b.type)).toEqual(["thinking", "text", "tool_use"]);
    expect((msg.content[2] as Anthropic.ToolUseBlock).input).toEqual({ city: "Paris", days: 2 });
    expect(jsonPieces.join("")).toBe('{"city":"Paris","days":2}');
    expect(msg.usage).toMatchObject({ input_tokens: 31, output_tokens: 17 });
  });

  test("openai's ResponseStream builds the function_call item", async () => {
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "k", maxRetries: 0 });
    const final = await client.responses.stream({ model: "m", input: "Weather?" }).finalResponse();
    const call = final.output.find((o) => o.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call).toMatchObject({ call_id: "call_abc", name: "get_weather", arguments: '{"city":"Paris","days":2}' });
    expect(final.output_text).toBe("Checking.");
  });
});
