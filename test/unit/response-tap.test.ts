// The response tap reads usage and (optionally) a capped copy of the body from a node's bytes,
// however they are split into chunks.
import { describe, expect, test } from "vitest";
import { findUsageObject, ResponseTap, truncateUtf8 } from "../../src/router/request-path/response-tap.js";

/** Feeds `text` to a tap in pieces of `size` bytes (splitting multi-byte characters too). */
function feed(tap: ResponseTap, text: string, size: number) {
  const buf = Buffer.from(text, "utf8");
  for (let i = 0; i < buf.length; i += size) tap.chunk(buf.subarray(i, i + size));
  return tap.finish();
}

const sse = (events: object[]) => events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + "data: [DONE]\n\n";
const chunk = (content: string) => ({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content } }], usage: null });

describe("response tap", () => {
  test("SSE: usage from the final chunk and the assembled text, whatever the chunk boundaries", () => {
    const body = sse([
      chunk("Hé"),
      chunk("llo, "),
      chunk("wörld"),
      {
        object: "chat.completion.chunk",
        choices: [],
        usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14, prompt_tokens_details: { cached_tokens: 8 } },
      },
    ]);
    for (const size of [1, 3, 7, 64, 100_000]) {
      expect(feed(new ResponseTap("text/event-stream", 1000), body, size)).toEqual({
        promptTokens: 11,
        completionTokens: 3,
        cachedTokens: 8,
        toolCalls: 0,
        responseBody: "Héllo, wörld",
      });
    }
  });

  test("SSE without usage (the client did not ask for it): no token counts; no capture when off", () => {
    const body = sse([chunk("a"), chunk("b")]);
    expect(feed(new ResponseTap("text/event-stream; charset=utf-8", 0), body, 5)).toEqual({
      promptTokens: null,
      completionTokens: null,
      cachedTokens: null,
      toolCalls: 0,
      responseBody: null,
    });
  });

  test("SSE: completion chunks (text) are assembled; the copy stops at the cap", () => {
    const events = Array.from({ length: 50 }, (_, i) => ({ object: "text_completion", choices: [{ index: 0, text: `w${i} ` }] }));
    const out = feed(new ResponseTap("text/event-stream", 20), sse(events), 9);
    expect(out.responseBody).toBe("w0 w1 w2 w3 w4 w5 w6…[truncated at 20 bytes]");
  });

  test("JSON: usage from the body; the body itself is captured up to the cap", () => {
    const body = JSON.stringify({
      id: "x",
      choices: [{ message: { role: "assistant", content: "hi" } }],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } },
    });
    expect(feed(new ResponseTap("application/json", 10_000), body, 4)).toEqual({
      promptTokens: 5,
      completionTokens: 2,
      cachedTokens: 0,
      toolCalls: 0,
      responseBody: body,
    });
    expect(feed(new ResponseTap("application/json", 10), body, 4).responseBody).toBe('{"id":"x",…[truncated at 10 bytes]');
  });

  test("JSON larger than the whole-body limit: usage found in its tail (embeddings)", () => {
    const vector = Array.from({ length: 60_000 }, (_, i) => (i % 97) / 97);
    const body = JSON.stringify({
      object: "list",
      data: [{ object: "embedding", index: 0, embedding: vector }],
      model: "e",
      usage: { prompt_tokens: 9, total_tokens: 9 },
    });
    expect(body.length).toBeGreaterThan(300_000);
    expect(feed(new ResponseTap("application/json", 0), body, 16_384)).toEqual({
      promptTokens: 9,
      completionTokens: null,
      cachedTokens: null,
      toolCalls: null,
      responseBody: null,
    });
  });

  test("an error page or garbage: no usage, no crash", () => {
    expect(feed(new ResponseTap("text/html", 0), "<html>oops</html>", 3)).toEqual({
      promptTokens: null,
      completionTokens: null,
      cachedTokens: null,
      toolCalls: null,
      responseBody: null,
    });
    expect(feed(new ResponseTap("text/event-stream", 100), "data: {not json\n\ndata: [DONE]\n", 2)).toEqual({
      promptTokens: null,
      completionTokens: null,
      cachedTokens: null,
      toolCalls: 0,
      responseBody: "",
    });
  });

  test("helpers", () => {
    expect(findUsageObject('..."usage": {"a":1,"d":{"b":2}}}')).toBe('{"a":1,"d":{"b":2}}');
    expect(findUsageObject('"usage":null}')).toBeNull();
    expect(truncateUtf8("ééé", 3)).toBe("é…[truncated at 3 bytes]");
    expect(truncateUtf8("abc", 3)).toBe("abc");
  });
});

test("tool calls are counted: in a JSON answer's messages, and as distinct call indexes in a stream's deltas", () => {
  const call = (i: number) => ({ id: `call_${i}`, type: "function", function: { name: "f", arguments: "{}" } });
  const body = JSON.stringify({
    choices: [{ index: 0, message: { role: "assistant", content: null, tool_calls: [call(0), call(1)] }, finish_reason: "tool_calls" }],
  });
  expect(feed(new ResponseTap("application/json", 0), body, 7).toolCalls).toBe(2);
  const events = [
    { choices: [{ index: 0, delta: { role: "assistant", content: "" } }] },
    { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: "call_0", type: "function", function: { name: "f", arguments: "" } }] } }] },
    { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] } }] },
    { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: "1}" } }] } }] },
    { choices: [{ index: 0, delta: { tool_calls: [{ index: 1, id: "call_1", type: "function", function: { name: "g", arguments: "{}" } }] } }] },
    { choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] },
  ];
  const sse = events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + "data: [DONE]\n\n";
  for (const size of [1, 13, 4096]) expect(feed(new ResponseTap("text/event-stream", 0), sse, size).toolCalls).toBe(2);
});
