// The chat output parsers on hand-written raw model output in each family's published format:
// whole and streamed one character at a time, which must give the same parts.
import { describe, expect, it } from "vitest";
import { createChatOutputParser, type ChatOutputPart } from "../../src/engine/llama/chat-output.js";
import type { ToolFormat } from "../../src/engine/llama/prompt.js";
import type { ToolDefinition } from "../../src/protocol/openai.js";

const tools: ToolDefinition[] = [
  { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } } } },
  { name: "search", parameters: { type: "object", properties: { q: { type: "string" }, filters: { type: "object" } } } },
];

/** Adjacent parts of the same text type merged (streaming splits them anywhere). */
function merged(parts: ChatOutputPart[]): ChatOutputPart[] {
  const out: ChatOutputPart[] = [];
  for (const p of parts) {
    const last = out[out.length - 1];
    if (last && p.type !== "tool_call" && last.type === p.type) (last as { text: string }).text += p.text;
    else out.push({ ...p });
  }
  return out;
}

function parse(format: ToolFormat, raw: string, withTools = tools): ChatOutputPart[] {
  const whole = createChatOutputParser(format, { tools: withTools });
  const a = merged([...whole.push(raw), ...whole.end()]);
  const streamed = createChatOutputParser(format, { tools: withTools });
  const parts: ChatOutputPart[] = [];
  for (const ch of raw) parts.push(...streamed.push(ch));
  parts.push(...streamed.end());
  expect(merged(parts)).toEqual(a);
  return a;
}

describe("Harmony (gpt-oss)", () => {
  it("reasoning then answer", () => {
    const raw = "<|channel|>analysis<|message|>User greets. Reply politely.<|end|><|start|>assistant<|channel|>final<|message|>Hello! How can I help?";
    expect(parse("harmony", raw)).toEqual([
      { type: "reasoning", text: "User greets. Reply politely." },
      { type: "content", text: "Hello! How can I help?" },
    ]);
  });

  it("reasoning then two calls (recipient after or before the channel)", () => {
    const raw =
      "<|channel|>analysis<|message|>Need weather and a search.<|end|>" +
      '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris","days":2}<|call|>' +
      '<|start|>assistant to=functions.search<|channel|>commentary json<|message|>{"q":"a <b> \\"c\\""}<|call|>';
    expect(parse("harmony", raw)).toEqual([
      { type: "reasoning", text: "Need weather and a search." },
      { type: "tool_call", name: "get_weather", arguments: '{"city":"Paris","days":2}' },
      { type: "tool_call", name: "search", arguments: '{"q":"a <b> \\"c\\""}' },
    ]);
  });

  it("a commentary preamble is answer text", () => {
    const raw = "<|channel|>commentary<|message|>Checking the weather.<|end|><|start|>assistant<|channel|>final<|message|>Sunny.";
    expect(parse("harmony", raw)).toEqual([{ type: "content", text: "Checking the weather.Sunny." }]);
  });

  it("a malformed call falls back to text", () => {
    const raw =
      '<|channel|>analysis<|message|>Call it.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": Par';
    expect(parse("harmony", raw)).toEqual([
      { type: "reasoning", text: "Call it." },
      { type: "content", text: '{"city": Par' },
    ]);
  });

  it("a call of an unknown function, or with no tools in the request, is text", () => {
    const raw = '<|channel|>commentary to=functions.delete_all <|constrain|>json<|message|>{"x":1}';
    expect(parse("harmony", raw)).toEqual([{ type: "content", text: '{"x":1}' }]);
    const known = '<|channel|>commentary to=functions.search <|constrain|>json<|message|>{"q":"x"}';
    expect(parse("harmony", known, [])).toEqual([{ type: "content", text: '{"q":"x"}' }]);
  });

  it("output that ignores the format is answer text", () => {
    expect(parse("harmony", "just some words, no channels")).toEqual([{ type: "content", text: "just some words, no channels" }]);
    expect(parse("harmony", "")).toEqual([]);
  });

  it("reasoning cut off by max_tokens stays reasoning", () => {
    expect(parse("harmony", "<|channel|>analysis<|message|>Let me thi")).toEqual([{ type: "reasoning", text: "Let me thi" }]);
  });
});

describe("Qwen3-Coder (XML calls)", () => {
  it("text then two calls, values typed by the tool's schema", () => {
    const raw =
      "I will look it up.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>\n" +
      '<tool_call>\n<function=search>\n<parameter=q>\nif (a < b) { return "x"; }\n</parameter>\n<parameter=filters>\n{"lang": "ts"}\n</parameter>\n</function>\n</tool_call>';
    expect(parse("qwen3-coder", raw)).toEqual([
      { type: "content", text: "I will look it up.\n" },
      { type: "tool_call", name: "get_weather", arguments: JSON.stringify({ city: "New York", days: 3 }) },
      { type: "tool_call", name: "search", arguments: JSON.stringify({ q: 'if (a < b) { return "x"; }', filters: { lang: "ts" } }) },
    ]);
  });

  it("a call cut off before </tool_call> but complete is still a call", () => {
    const raw = "<tool_call>\n<function=search>\n<parameter=q>\nx\n</parameter>\n</function>\n";
    expect(parse("qwen3-coder", raw)).toEqual([{ type: "tool_call", name: "search", arguments: '{"q":"x"}' }]);
  });

  it("a malformed call falls back to text", () => {
    const raw = "Sure.<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</function>\n</tool_call>";
    expect(parse("qwen3-coder", raw)).toEqual([{ type: "content", text: raw }]);
    const cut = "<tool_call>\n<function=get_weather>\n<parameter=ci";
    expect(parse("qwen3-coder", cut)).toEqual([{ type: "content", text: cut }]);
  });

  it("without tools in the request, tags are text", () => {
    const raw = "<tool_call>\n<function=search>\n</function>\n</tool_call>";
    expect(parse("qwen3-coder", raw, [])).toEqual([{ type: "content", text: raw }]);
  });
});

describe("Hermes (<tool_call> JSON)", () => {
  it("text then two calls", () => {
    const raw =
      'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n<tool_call>\n{"name": "search", "arguments": {"q": "fjords"}}\n</tool_call>';
    expect(parse("hermes", raw)).toEqual([
      { type: "content", text: "Let me check.\n" },
      { type: "tool_call", name: "get_weather", arguments: '{"city":"Oslo"}' },
      { type: "tool_call", name: "search", arguments: '{"q":"fjords"}' },
    ]);
  });

  it("a malformed call falls back to text", () => {
    const raw = '<tool_call>\n{"name": "search", "arguments": {"q": </tool_call>';
    expect(parse("hermes", raw)).toEqual([{ type: "content", text: raw }]);
  });
});
