// ChatTurns with a fake model that "generates" hand-written raw output: the parsed turn (answer,
// reasoning, calls, finish reason) and the events a stream is built from.
import { describe, expect, it } from "vitest";
import { ChatTurns, type ChatTurnEvent } from "../../src/engine/llama/chat-turn.js";
import type { GenerateRequest, GenerateResult, LlamaInference } from "../../src/engine/llama/inference.js";
import type { ToolFormat } from "../../src/engine/llama/prompt.js";
import type { ResponseFormatGrammars } from "../../src/engine/llama/response-format.js";

const tools = [
  { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
  { name: "search", parameters: { type: "object", properties: { q: { type: "string" } } } },
];

/** A model whose output is `raw`, delivered in pieces of 3 characters. */
function fakeInference(raw: string, finishReason: GenerateResult["finishReason"] = "stop"): LlamaInference {
  return {
    chat: { outputHasSpecialTokens: true },
    async generate(req: GenerateRequest): Promise<GenerateResult> {
      for (let i = 0; i < raw.length; i += 3) req.onText?.(raw.slice(i, i + 3));
      return { text: raw, finishReason, promptTokens: 10, completionTokens: 20, cachedTokens: 0 };
    },
  } as unknown as LlamaInference;
}

async function turn(format: ToolFormat, raw: string, opts: { parallel?: boolean; finish?: GenerateResult["finishReason"] } = {}) {
  const events: ChatTurnEvent[] = [];
  const turns = new ChatTurns(fakeInference(raw, opts.finish), {} as ResponseFormatGrammars);
  const result = await turns.run({
    prompt: [1, 2, 3] as never,
    sampling: { maxTokens: 100, temperature: 1, topP: 1, seed: 1, stop: [] },
    format,
    tools,
    forced: null,
    parallel: opts.parallel ?? true,
    signal: new AbortController().signal,
    onEvent: (e) => events.push(e),
  });
  return { result, events };
}

describe("a chat turn over raw model output", () => {
  it("gpt-oss: reasoning apart from the answer", async () => {
    const { result, events } = await turn("harmony", "<|channel|>analysis<|message|>Greeting.<|end|><|start|>assistant<|channel|>final<|message|>Hi there!");
    expect(result).toMatchObject({ content: "Hi there!", reasoning: "Greeting.", toolCalls: [], finishReason: "stop", promptTokens: 10, completionTokens: 20 });
    expect(
      events
        .filter((e) => e.type === "reasoning")
        .map((e) => (e as { text: string }).text)
        .join(""),
    ).toBe("Greeting.");
    expect(
      events
        .filter((e) => e.type === "content")
        .map((e) => (e as { text: string }).text)
        .join(""),
    ).toBe("Hi there!");
  });

  it("gpt-oss: reasoning then two calls; finish_reason tool_calls; parallel_tool_calls false keeps the first", async () => {
    const raw =
      "<|channel|>analysis<|message|>Two lookups.<|end|>" +
      '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Oslo"}<|call|>' +
      '<|start|>assistant<|channel|>commentary to=functions.search <|constrain|>json<|message|>{"q":"fjord"}';
    const both = await turn("harmony", raw);
    expect(both.result.finishReason).toBe("tool_calls");
    expect(both.result.reasoning).toBe("Two lookups.");
    expect(both.result.toolCalls.map((c) => [c.name, c.arguments])).toEqual([
      ["get_weather", '{"city":"Oslo"}'],
      ["search", '{"q":"fjord"}'],
    ]);
    expect(both.result.toolCalls.every((c) => /^call_[0-9a-f]{24}$/.test(c.id))).toBe(true);
    expect(both.events.filter((e) => e.type === "tool_call").map((e) => (e as { index: number }).index)).toEqual([0, 1]);
    const one = await turn("harmony", raw, { parallel: false });
    expect(one.result.toolCalls.map((c) => c.name)).toEqual(["get_weather"]);
  });

  it("a malformed call is answer text with finish_reason stop; a cut-off one keeps length", async () => {
    const bad = await turn("qwen3-coder", "<tool_call>\n<function=get_weather>\n<parameter=city>\nOslo\n</function>\n</tool_call>");
    expect(bad.result.toolCalls).toEqual([]);
    expect(bad.result.content).toContain("<function=get_weather>");
    expect(bad.result.finishReason).toBe("stop");
    const cut = await turn("harmony", '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"ci', { finish: "length" });
    expect(cut.result).toMatchObject({ toolCalls: [], content: '{"ci', finishReason: "length" });
  });
});
