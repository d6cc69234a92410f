// End to end: OpenAI's Responses API and Anthropic's Messages API on a real router in front of a
// real node running llama.cpp engines on the demo models, driven with the official `openai` and
// `@anthropic-ai/sdk` clients. Bodies and stream events are validated against OpenAI's published
// OpenAPI document; Anthropic's own client parses every event.
import Anthropic from "@anthropic-ai/sdk";
import { Ajv2020 } from "ajv/dist/2020.js";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { schemaErrors } from "../support/openapi-schemas.js";
import { adminToken, AUTH_HEADERS, getJson, startNode, startRouter, TEST_API_KEY, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";
import { metricSum, parsePrometheus } from "../support/prometheus.js";

const CHAT = "demo-chat";
const EMBED = "demo-embed";

let router: DroverProcess;
let node: DroverProcess;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  router = await startRouter(["--history-body-bytes", "65536"]);
  node = await startNode(router.url, "node-a");
  await waitForReady(router.url, [CHAT, EMBED], 1);
  openai = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: router.url, apiKey: TEST_API_KEY, maxRetries: 0 });
});

afterAll(async () => {
  await node?.stop();
  await router?.stop();
});

/** The schema in OpenAI's document for each Responses stream event drover sends. */
const EVENT_SCHEMAS: Record<string, string> = {
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

function expectValidEvent(event: { type: string }) {
  const schema = EVENT_SCHEMAS[event.type];
  expect(schema, `an event drover should not send: ${event.type}`).toBeDefined();
  expect(schemaErrors(schema!, event), event.type).toEqual([]);
}

/** The event types of a message item, from added to done. */
const MESSAGE_ITEM =
  "response.output_item.added response.content_part.added (response.output_text.delta )+response.output_text.done response.content_part.done response.output_item.done ";
const REASONING_ITEM =
  "response.output_item.added response.content_part.added (response.reasoning_text.delta )+response.reasoning_text.done response.content_part.done response.output_item.done ";

async function record(requestId: string) {
  return waitFor("the history record", () => getJson(`${router.url}/api/requests/${requestId}`).catch(() => null), 10_000, 100);
}

describe("OpenAI Responses API", () => {
  test("responses.create, not streamed: a Response with a message item and usage", async () => {
    const { data, response } = await openai.responses
      .create({ model: CHAT, input: "Hello, who are you?", max_output_tokens: 12, temperature: 0.7 })
      .withResponse();
    expect(schemaErrors("Response", data)).toEqual([]);
    expect(data).toMatchObject({ object: "response", model: CHAT, status: "incomplete", incomplete_details: { reason: "max_output_tokens" }, store: true });
    expect(data.id).toMatch(/^resp_/);
    const message = data.output.find((o) => o.type === "message")!;
    expect(message.type === "message" && message.content[0]!.type === "output_text" && message.content[0]!.text.length).toBeGreaterThan(0);
    expect(data.output_text.length).toBeGreaterThan(0);
    expect(data.usage).toMatchObject({ output_tokens: 12 });
    expect(data.usage!.input_tokens).toBeGreaterThan(0);
    expect(response.headers.get("x-drover-node")).toBe("node-a");
  });

  test("responses.create, streamed: every event validates, sequence numbers count up, the sequence is complete and ordered", async () => {
    const stream = await openai.responses.create({
      model: CHAT,
      instructions: "Be brief.",
      input: [{ role: "user", content: [{ type: "input_text", text: "Tell me a story" }] }],
      max_output_tokens: 16,
      stream: true,
    });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) {
      expectValidEvent(event);
      events.push(event);
    }
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const types = events.map((e) => e.type).join(" ") + " ";
    expect(types).toMatch(
      new RegExp(
        `^response\\.created response\\.in_progress (${REASONING_ITEM})?${MESSAGE_ITEM}response\\.(completed|incomplete) $`
          .replaceAll(".", "\\.")
          .replaceAll("\\\\.", "\\."),
      ),
    );
    const last = events.at(-1)!;
    expect(last.type === "response.incomplete" || last.type === "response.completed").toBe(true);
    const final = (last as OpenAI.Responses.ResponseCompletedEvent).response;
    expect(schemaErrors("Response", final)).toEqual([]);
    const deltas = events
      .filter((e) => e.type === "response.output_text.delta")
      .map((e) => (e as OpenAI.Responses.ResponseTextDeltaEvent).delta)
      .join("");
    expect(
      final.output_text ??
        (final.output.find((o) => o.type === "message") as OpenAI.Responses.ResponseOutputMessage).content
          .map((c) => (c.type === "output_text" ? c.text : ""))
          .join(""),
    ).toBe(deltas);
    expect(final.usage!.output_tokens).toBe(16);
  });

  test("the stream helper assembles the same Response (the client's own parser accepts the sequence)", async () => {
    const stream = openai.responses.stream({ model: CHAT, input: "hi", max_output_tokens: 6 });
    const final = await stream.finalResponse();
    expect(final.output_text.length).toBeGreaterThan(0);
    expect(final.id).toMatch(/^resp_/);
  });

  test("previous_response_id: the second turn is sent with the first turn's input and answer; GET and DELETE /v1/responses/:id", async () => {
    const first = await openai.responses.create({ model: CHAT, input: "My name is Ada-7781.", max_output_tokens: 6 });
    const firstText = first.output_text;
    const requestId = `resp-turn2-${Date.now()}`;
    const second = await openai.responses.create(
      { model: CHAT, input: "What is my name?", previous_response_id: first.id, max_output_tokens: 6 },
      { headers: { "x-request-id": requestId } },
    );
    expect(second.previous_response_id).toBe(first.id);
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens);
    // What the node was asked: both turns, in order, as chat messages.
    const sent = JSON.parse((await record(requestId)).requestBody) as { messages: { role: string; content: string }[] };
    expect(sent.messages).toEqual([
      { role: "user", content: "My name is Ada-7781." },
      { role: "assistant", content: firstText },
      { role: "user", content: "What is my name?" },
    ]);

    const streamed = await fetch(`${router.url}/v1/responses/${second.id}?stream=true`, { headers: AUTH_HEADERS });
    expect(streamed.status).toBe(400);
    expect(((await streamed.json()) as { error: { param: string } }).error.param).toBe("stream");
    const got = await openai.responses.retrieve(second.id);
    expect(schemaErrors("Response", got)).toEqual([]);
    expect(got).toEqual(JSON.parse(JSON.stringify(second)));
    // Another key cannot see it.
    const other = await createKey("resp-other");
    const hidden = await new OpenAI({ baseURL: `${router.url}/v1`, apiKey: other, maxRetries: 0 }).responses.retrieve(second.id).catch((e: unknown) => e);
    expect(hidden).toBeInstanceOf(OpenAI.NotFoundError);

    await openai.responses.delete(second.id);
    expect(await openai.responses.retrieve(second.id).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
    const gone = await openai.responses.create({ model: CHAT, input: "again", previous_response_id: second.id }).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
    expect((gone as InstanceType<typeof OpenAI.NotFoundError>).param).toBe("previous_response_id");
  });

  test("store: false answers without keeping the response", async () => {
    const r = await openai.responses.create({ model: CHAT, input: "hi", max_output_tokens: 2, store: false });
    expect((r as unknown as { store: boolean }).store).toBe(false);
    expect(await openai.responses.retrieve(r.id).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
  });

  test("text.format json_schema: the answer is JSON that fits the schema", async () => {
    const schema = { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"], additionalProperties: false };
    const r = await openai.responses.create({
      model: CHAT,
      input: "A city, as JSON",
      max_output_tokens: 64,
      text: { format: { type: "json_schema", name: "place", schema, strict: true } },
    });
    const value = JSON.parse(r.output_text) as { city: unknown };
    expect(typeof value.city).toBe("string");
  });

  test("unknown, unsupported and malformed fields → 400 in OpenAI's shape naming the field", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ model: CHAT, input: "hi", frobnicate: 1 }, "frobnicate"],
      [{ model: CHAT, input: "hi", background: true }, "background"],
      [{ model: CHAT, input: "hi", conversation: "c1" }, "conversation"],
      [{ model: CHAT, input: [{ type: "input_image_call" }] }, "input.0.type"],
      [{ model: CHAT, input: [{ role: "user", content: [{ type: "input_image", image_url: "x" }] }] }, "input.0.content.0.type"],
      [{ model: CHAT, input: "hi", tools: [{ type: "web_search" }] }, "tools.0.type"],
      [
        { model: CHAT, input: "hi", tools: [{ type: "function", name: "f", parameters: {} }], tool_choice: { type: "function", name: "g" } },
        "tool_choice.name",
      ],
      [{ model: CHAT, input: "hi", max_output_tokens: -1 }, "max_output_tokens"],
      [{ model: CHAT }, "input"],
    ];
    for (const [body, param] of cases) {
      const res = await fetch(`${router.url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json", ...AUTH_HEADERS },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as { error: { param: string; message: string; type: string } };
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(json.error.param, json.error.message).toBe(param);
      expect(json.error.type).toBe("invalid_request_error");
    }
    const unknown = await openai.responses.create({ model: "no-such-model", input: "hi" }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe("Anthropic Messages API", () => {
  test("messages.create, not streamed: a Message with a text block, stop_reason and usage", async () => {
    // As Claude Code sends it: cached system blocks, metadata, and context editing (accepted, not applied).
    const { data, response } = await anthropic.messages
      .create({
        model: CHAT,
        max_tokens: 10,
        system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
        messages: [{ role: "user", content: "Hello" }],
        metadata: { user_id: "user-1" },
        context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
      } as Anthropic.MessageCreateParamsNonStreaming)
      .withResponse();
    expect(data).toMatchObject({
      type: "message",
      role: "assistant",
      model: CHAT,
      stop_reason: "max_tokens",
      stop_sequence: null,
      usage: { output_tokens: 10 },
    });
    expect(data.id).toMatch(/^msg_/);
    expect(data.content.map((b) => b.type)).toEqual(["text"]);
    expect((data.content[0] as Anthropic.TextBlock).text.length).toBeGreaterThan(0);
    expect(data.usage.input_tokens).toBeGreaterThan(0);
    expect(response.headers.get("x-drover-node")).toBe("node-a");
  });

  test("messages.create, streamed: the SDK's parser accepts every event; the sequence is Anthropic's", async () => {
    const stream = await anthropic.messages.create({ model: CHAT, max_tokens: 12, messages: [{ role: "user", content: "Tell me a story" }], stream: true });
    const types: string[] = [];
    let text = "";
    let usage: Anthropic.MessageDeltaUsage | null = null;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text;
      if (event.type === "message_delta") {
        expect(event.delta.stop_reason).toBe("max_tokens");
        usage = event.usage;
      }
    }
    // The SDK keeps pings to itself; the wire test below sees them.
    expect(types.join(" ")).toMatch(/^message_start (content_block_start (content_block_delta )+content_block_stop )+message_delta message_stop$/);
    expect(text.length).toBeGreaterThan(0);
    expect(usage!.output_tokens).toBe(12);

    // The SDK's MessageStream builds the whole message from the same events.
    const final = await anthropic.messages.stream({ model: CHAT, max_tokens: 8, messages: [{ role: "user", content: "hi" }] }).finalMessage();
    expect(final.content[0]!.type).toBe("text");
    expect(final.usage.output_tokens).toBe(8);
    expect(final.usage.input_tokens).toBeGreaterThan(0);
  });

  test("on the wire: each SSE event's name is its data's type; a ping follows message_start", async () => {
    const res = await fetch(`${router.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": TEST_API_KEY, "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model: CHAT, max_tokens: 4, messages: [{ role: "user", content: "hi" }], stream: true }),
    });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = (await res.text())
      .trim()
      .split("\n\n")
      .map((block) => {
        const [eventLine, dataLine] = block.split("\n");
        return { name: eventLine!.replace(/^event: /, ""), data: JSON.parse(dataLine!.replace(/^data: /, "")) as { type: string } };
      });
    for (const e of events) expect(e.data.type).toBe(e.name);
    expect(events.slice(0, 2).map((e) => e.name)).toEqual(["message_start", "ping"]);
    expect(events.at(-1)!.name).toBe("message_stop");
  });

  test("a tool_result turn is accepted: the node gets the call and its result as chat messages", async () => {
    const requestId = `anthropic-tool-result-${Date.now()}`;
    const tools: Anthropic.Tool[] = [
      { name: "get_weather", description: "Weather in a city", input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
    ];
    const msg = await anthropic.messages.create(
      {
        model: CHAT,
        max_tokens: 4,
        tools,
        messages: [
          { role: "user", content: "Weather in Paris?" },
          {
            role: "assistant",
            content: [
              { type: "thinking", thinking: "I should call the tool.", signature: "" },
              { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
            ],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "toolu_1", content: "18°C, cloudy" },
              { type: "text", text: "Thanks" },
            ],
          },
        ],
      },
      { headers: { "x-request-id": requestId } },
    );
    expect(msg.type).toBe("message");
    const sent = JSON.parse((await record(requestId)).requestBody) as { messages: unknown[]; tools: unknown[] };
    expect(sent.messages).toEqual([
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: null,
        reasoning_content: "I should call the tool.",
        tool_calls: [{ id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
      },
      { role: "tool", tool_call_id: "toolu_1", content: "18°C, cloudy" },
      { role: "user", content: "Thanks" },
    ]);
    expect(sent.tools).toEqual([{ type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: tools[0]!.input_schema } }]);
  });

  test("count_tokens: the engine's exact prompt count, the same as messages.create reports", async () => {
    const params = { model: CHAT, system: "You are terse.", messages: [{ role: "user" as const, content: "Count these tokens, please." }] };
    const counted = await anthropic.messages.countTokens(params);
    expect(counted.input_tokens).toBeGreaterThan(5);
    const answered = await anthropic.messages.create({ ...params, max_tokens: 2 });
    expect(answered.usage.input_tokens).toBe(counted.input_tokens);
    const longer = await anthropic.messages.countTokens({
      ...params,
      messages: [...params.messages, { role: "assistant", content: "Sure." }, { role: "user", content: "And these as well, all of them." }],
    });
    expect(longer.input_tokens).toBeGreaterThan(counted.input_tokens);
  });

  test("a bad key → 401 in Anthropic's shape (the SDK's AuthenticationError); no key → 401; x-api-key and Bearer both work", async () => {
    const err = await new Anthropic({ baseURL: router.url, apiKey: "wrong-key", maxRetries: 0 }).messages
      .create({ model: CHAT, max_tokens: 2, messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((err as InstanceType<typeof Anthropic.AuthenticationError>).status).toBe(401);
    expect((err as InstanceType<typeof Anthropic.AuthenticationError>).error).toEqual({
      type: "error",
      error: { type: "authentication_error", message: "Incorrect API key provided." },
    });
    const none = await fetch(`${router.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: "{}",
    });
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ type: "error", error: { type: "authentication_error", message: expect.stringMatching(/x-api-key/) } });
    const viaBearer = await new Anthropic({ baseURL: router.url, authToken: TEST_API_KEY, apiKey: null, maxRetries: 0 }).messages.create({
      model: CHAT,
      max_tokens: 2,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(viaBearer.type).toBe("message");
  });

  test("bad input → 400 invalid_request_error naming the field; unknown model → 404 not_found_error", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ model: CHAT, messages: [{ role: "user", content: "hi" }] }, /^max_tokens: /],
      [{ model: CHAT, max_tokens: 4, messages: [{ role: "user", content: "hi" }], top_k: 5 }, /^top_k: top_k is not supported/],
      [{ model: CHAT, max_tokens: 4, messages: [{ role: "user", content: "hi" }], frobnicate: true }, /^frobnicate: unknown/],
      [{ model: CHAT, max_tokens: 4, messages: [{ role: "user", content: [{ type: "image", source: {} }] }] }, /^messages\.0\.content\.0\.type: .*text-only/],
      [
        { model: CHAT, max_tokens: 4, messages: [{ role: "user", content: "hi" }], tools: [{ type: "web_search_20250305", name: "web_search" }] },
        /^tools\.0\.type: /,
      ],
      [{ model: CHAT, max_tokens: 4, messages: [{ role: "user", content: "hi" }], tool_choice: { type: "tool", name: "nope" } }, /^tool_choice\.name: /],
    ];
    for (const [body, message] of cases) {
      const res = await fetch(`${router.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": TEST_API_KEY, "anthropic-version": "2023-06-01" },
        body: JSON.stringify(body),
      });
      expect(res.status, JSON.stringify(body)).toBe(400);
      const json = (await res.json()) as { type: string; error: { type: string; message: string } };
      expect(json.type).toBe("error");
      expect(json.error.type).toBe("invalid_request_error");
      expect(json.error.message).toMatch(message);
    }
    const notJson = await fetch(`${router.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": TEST_API_KEY },
      body: "{nope",
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { type: string } }).error.type).toBe("invalid_request_error");
    const unknown = await anthropic.messages
      .create({ model: "claude-sonnet-4-5", max_tokens: 2, messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(Anthropic.NotFoundError);
    expect((unknown as InstanceType<typeof Anthropic.NotFoundError>).error).toMatchObject({ type: "error", error: { type: "not_found_error" } });
  });
});

async function createKey(name: string, models?: string[]): Promise<string> {
  const res = await fetch(`${router.url}/api/keys`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${await adminToken(router.url)}` },
    body: JSON.stringify({ name, ...(models ? { models } : {}) }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { key: string }).key;
}

describe("both dialects share the request path: history, metrics, per-key model limits", () => {
  test("each request is one history record with its api, endpoint, key, node and token counts", async () => {
    const ids = { responses: `hist-resp-${Date.now()}`, anthropic: `hist-msg-${Date.now()}` };
    await openai.responses
      .create({ model: CHAT, input: "hi", max_output_tokens: 5, stream: true }, { headers: { "x-request-id": ids.responses } })
      .then(async (s) => {
        for await (const _ of s);
      });
    await anthropic.messages.create(
      { model: CHAT, max_tokens: 5, messages: [{ role: "user", content: "hi" }] },
      { headers: { "x-request-id": ids.anthropic } },
    );
    const resp = await record(ids.responses);
    expect(resp).toMatchObject({
      api: "responses",
      endpoint: "/v1/responses",
      model: CHAT,
      stream: true,
      keyName: "bootstrap",
      nodeName: "node-a",
      status: 200,
      error: null,
      completionTokens: 5,
    });
    const msg = await record(ids.anthropic);
    expect(msg).toMatchObject({
      api: "anthropic",
      endpoint: "/v1/messages",
      model: CHAT,
      stream: false,
      keyName: "bootstrap",
      nodeName: "node-a",
      status: 200,
      error: null,
      completionTokens: 5,
    });
    expect(resp.promptTokens).toBeGreaterThan(0);
    expect(msg.promptTokens).toBeGreaterThan(0);
  });

  test("drover_requests_total counts them by api and endpoint", async () => {
    const samples = parsePrometheus(await (await fetch(`${router.url}/metrics`)).text());
    expect(metricSum(samples, "drover_requests_total", { api: "responses", endpoint: "/v1/responses", model: CHAT, status: "200" })).toBeGreaterThan(0);
    expect(metricSum(samples, "drover_requests_total", { api: "anthropic", endpoint: "/v1/messages", model: CHAT, status: "200" })).toBeGreaterThan(0);
    expect(metricSum(samples, "drover_requests_total", { api: "anthropic", endpoint: "/v1/messages/count_tokens", status: "200" })).toBeGreaterThan(0);
  });

  test("a key limited to another model → 403 in each dialect's shape", async () => {
    const key = await createKey("embed-only-dialects", [EMBED]);
    const r = await new OpenAI({ baseURL: `${router.url}/v1`, apiKey: key, maxRetries: 0 }).responses
      .create({ model: CHAT, input: "hi" })
      .catch((e: unknown) => e);
    expect(r).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((r as InstanceType<typeof OpenAI.PermissionDeniedError>).code).toBe("model_not_allowed");
    const m = await new Anthropic({ baseURL: router.url, apiKey: key, maxRetries: 0 }).messages
      .create({ model: CHAT, max_tokens: 2, messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(m).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect((m as InstanceType<typeof Anthropic.PermissionDeniedError>).error).toMatchObject({ type: "error", error: { type: "permission_error" } });
  });
});

// Forced tool calls through the llama engine's grammar-constrained tool calling (demo-qwen3-coder
// carries Qwen3-Coder's real chat template).
describe("forced tool calls through both dialects", () => {
  const TOOL_MODEL = "demo-qwen3-coder";
  // maxLength keeps a random-weight model's grammar-forced string short enough to end within max_tokens.
  // The Responses test samples greedily (temperature 0): the grammar bounds the string's
  // characters, but a random-weight model sampling at random can write bytes that are not UTF-8,
  // which may decode to more characters than the grammar counted (one run got arguments that
  // failed the schema); greedy decoding gives the same arguments every run. (The Anthropic SDK's
  // types have no temperature.)
  const WEATHER = { type: "object", properties: { city: { type: "string", maxLength: 16 } }, required: ["city"], additionalProperties: false };
  const ajv = new Ajv2020({ strict: false });

  test("Responses: a named tool_choice returns a function_call item whose arguments fit the schema, streamed and not", async () => {
    const params = {
      model: TOOL_MODEL,
      input: "Weather in Paris?",
      tools: [{ type: "function" as const, name: "get_weather", parameters: WEATHER, strict: true }],
      tool_choice: { type: "function" as const, name: "get_weather" },
      max_output_tokens: 256,
      temperature: 0,
    };
    const r = await openai.responses.create(params);
    expect(schemaErrors("Response", r)).toEqual([]);
    const call = r.output.find((o) => o.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call.name).toBe("get_weather");
    expect(ajv.validate(WEATHER, JSON.parse(call.arguments))).toBe(true);

    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of await openai.responses.create({ ...params, stream: true })) {
      expectValidEvent(event);
      events.push(event);
    }
    const done = events.find((e) => e.type === "response.function_call_arguments.done") as OpenAI.Responses.ResponseFunctionCallArgumentsDoneEvent;
    expect(ajv.validate(WEATHER, JSON.parse(done.arguments))).toBe(true);
    expect(events.some((e) => e.type === "response.function_call_arguments.delta")).toBe(true);
  });

  test("Messages: tool_choice tool returns a tool_use block whose input fits the schema; its tool_result turn is answered", async () => {
    const tools: Anthropic.Tool[] = [{ name: "get_weather", input_schema: WEATHER as Anthropic.Tool.InputSchema }];
    const first = await anthropic.messages.create({
      model: TOOL_MODEL,
      max_tokens: 256,
      tools,
      tool_choice: { type: "tool", name: "get_weather" },
      messages: [{ role: "user", content: "Weather in Paris?" }],
    });
    expect(first.stop_reason).toBe("tool_use");
    const use = first.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock;
    expect(ajv.validate(WEATHER, use.input)).toBe(true);
    const streamed = await anthropic.messages
      .stream({
        model: TOOL_MODEL,
        max_tokens: 256,
        tools,
        tool_choice: { type: "tool", name: "get_weather" },
        messages: [{ role: "user", content: "Weather in Paris?" }],
      })
      .finalMessage();
    expect(ajv.validate(WEATHER, (streamed.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock).input)).toBe(true);
    const second = await anthropic.messages.create({
      model: TOOL_MODEL,
      max_tokens: 8,
      tools,
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18°C" }] },
      ],
    });
    expect(second.type).toBe("message");
  });
});

describe("both dialects go through the admission queue", () => {
  let small: DroverProcess;
  let empty: DroverProcess;
  let late: DroverProcess | undefined;
  beforeAll(async () => {
    [small, empty] = await Promise.all([startRouter(["--queue-limit", "0"]), startRouter()]);
  });
  afterAll(async () => {
    await late?.stop();
    await Promise.all([small?.stop(), empty?.stop()]);
  });

  test("with no node ready, a Responses and a Messages request wait in the queue and are served once a node is", async () => {
    const viaResponses = new OpenAI({ baseURL: `${empty.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 }).responses.create(
      { model: CHAT, input: "hi", max_output_tokens: 3 },
      { headers: { "x-request-id": `queued-resp-${Date.now()}` } },
    );
    const viaMessages = new Anthropic({ baseURL: empty.url, apiKey: TEST_API_KEY, maxRetries: 0 }).messages.create({
      model: CHAT,
      max_tokens: 3,
      messages: [{ role: "user", content: "hi" }],
    });
    await waitFor("both requests waiting in the queue", async () => (await getJson(`${empty.url}/api/queue`)).models[CHAT]?.depth === 2, 20_000, 100);
    late = await startNode(empty.url, "late-node");
    const [r, m] = await Promise.all([viaResponses, viaMessages]);
    expect(r.usage!.output_tokens).toBe(3);
    expect(m.usage.output_tokens).toBe(3);
    const history = await waitFor(
      "both records",
      async () => {
        const { requests } = await getJson(`${empty.url}/api/requests?node=late-node`);
        return requests.length >= 2 ? requests : null;
      },
      10_000,
      100,
    );
    for (const rec of history as { api: string; queueWaitMs: number; status: number }[]) {
      expect(["responses", "anthropic"]).toContain(rec.api);
      expect(rec.status).toBe(200);
      expect(rec.queueWaitMs).toBeGreaterThan(0);
    }
  }, 120_000);

  test("a full queue: 503 queue_full for Responses, Anthropic's 529 overloaded_error for Messages, both with Retry-After", async () => {
    const r = await fetch(`${small.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH_HEADERS },
      body: JSON.stringify({ model: CHAT, input: "hi" }),
    });
    expect(r.status).toBe(503);
    expect(r.headers.get("retry-after")).toBe("1");
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("queue_full");
    const m = await fetch(`${small.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": TEST_API_KEY },
      body: JSON.stringify({ model: CHAT, max_tokens: 2, messages: [{ role: "user", content: "hi" }] }),
    });
    expect(m.status).toBe(529);
    expect(m.headers.get("retry-after")).toBe("1");
    expect(await m.json()).toEqual({ type: "error", error: { type: "overloaded_error", message: expect.stringMatching(/queue is full/) } });
  });
});
