// The affinity key: one per conversation, the same for every turn and every dialect.
import { describe, expect, test } from "vitest";
import { OllamaChatRequest, OllamaGenerateRequest } from "../../src/protocol/ollama.js";
import { affinityKeyOf, COMPLETION_PREFIX_BYTES } from "../../src/router/request-path/affinity-key.js";
import { chatToOpenAi, generateToOpenAi } from "../../src/router/dialects/ollama/request-translation.js";

const CHAT = "/v1/chat/completions";
const system = { role: "system", content: "You are a careful assistant. ".repeat(40) };
const turn1 = [system, { role: "user", content: "Tell me about the river." }];
const turn2 = [...turn1, { role: "assistant", content: "It is long." }, { role: "user", content: "How long?" }];
const turn3 = [...turn2, { role: "assistant", content: "Very." }, { role: "user", content: "Thanks." }];

describe("affinity key", () => {
  test("every turn of one chat has the same key; another opening message gives another key", () => {
    const k1 = affinityKeyOf(CHAT, "m", { messages: turn1 }, {});
    expect(k1).toMatch(/^[0-9a-f]{32}$/);
    expect(affinityKeyOf(CHAT, "m", { messages: turn2 }, {})).toBe(k1);
    expect(affinityKeyOf(CHAT, "m", { messages: turn3 }, {})).toBe(k1);
    // Same system prompt, another conversation.
    expect(affinityKeyOf(CHAT, "m", { messages: [system, { role: "user", content: "Tell me about the sea." }] }, {})).not.toBe(k1);
    // Another system prompt, same first message.
    expect(affinityKeyOf(CHAT, "m", { messages: [{ role: "system", content: "Be brief." }, turn1[1]] }, {})).not.toBe(k1);
    // Another model.
    expect(affinityKeyOf(CHAT, "other", { messages: turn1 }, {})).not.toBe(k1);
    // Tools are rendered at the top of the prompt: part of the prefix.
    expect(affinityKeyOf(CHAT, "m", { messages: turn1, tools: [{ type: "function", function: { name: "f" } }] }, {})).not.toBe(k1);
  });

  test("content given as parts keys like itself across turns", () => {
    const parts = [system, { role: "user", content: [{ type: "text", text: "hello" }] }];
    expect(affinityKeyOf(CHAT, "m", { messages: [...parts, { role: "assistant", content: "x" }, { role: "user", content: "y" }] }, {})).toBe(
      affinityKeyOf(CHAT, "m", { messages: parts }, {}),
    );
  });

  test("a completion prompt is keyed by its first bytes", () => {
    const head = "p".repeat(COMPLETION_PREFIX_BYTES);
    const a = affinityKeyOf("/v1/completions", "m", { prompt: head + " and then one thing" }, {});
    expect(affinityKeyOf("/v1/completions", "m", { prompt: head + " and then another, longer" }, {})).toBe(a);
    expect(affinityKeyOf("/v1/completions", "m", { prompt: [head + "x", "second prompt"] }, {})).toBe(a);
    expect(affinityKeyOf("/v1/completions", "m", { prompt: "q" + head }, {})).not.toBe(a);
  });

  test("a session header wins over the prompt; embeddings have no key", () => {
    const s = affinityKeyOf(CHAT, "m", { messages: turn1 }, { "x-session-id": "abc" });
    expect(affinityKeyOf(CHAT, "m", { messages: [{ role: "user", content: "unrelated" }] }, { "x-session-id": "abc" })).toBe(s);
    expect(affinityKeyOf("/v1/completions", "m", { prompt: "anything" }, { "x-session-id": "abc" })).toBe(s);
    expect(affinityKeyOf(CHAT, "m", { messages: turn1 }, { "x-conversation-id": "abc" })).toBe(s);
    expect(s).not.toBe(affinityKeyOf(CHAT, "m", { messages: turn1 }, {}));
    // An empty header is no session.
    expect(affinityKeyOf(CHAT, "m", { messages: turn1 }, { "x-session-id": " " })).toBe(affinityKeyOf(CHAT, "m", { messages: turn1 }, {}));
    expect(affinityKeyOf("/v1/embeddings", "m", { input: "x" }, { "x-session-id": "abc" })).toBeNull();
  });

  test("an Ollama chat keys like the same conversation sent to /v1 (the key is taken from the request the engine gets)", () => {
    const target = { modelId: "m", contextLength: 4096 };
    const ollamaTurn = (messages: { role: string; content: string }[]) => {
      const call = chatToOpenAi(OllamaChatRequest.parse({ model: "m", messages }), target);
      return affinityKeyOf(call.path, "m", call.body, {});
    };
    expect(ollamaTurn(turn1)).toBe(affinityKeyOf(CHAT, "m", { messages: turn1 }, {}));
    expect(ollamaTurn(turn3)).toBe(ollamaTurn(turn1));
    // /api/generate with a system prompt is a chat of system + prompt.
    const gen = generateToOpenAi(OllamaGenerateRequest.parse({ model: "m", system: system.content, prompt: turn1[1]!.content }), target);
    expect(affinityKeyOf(gen.path, "m", gen.body, {})).toBe(affinityKeyOf(CHAT, "m", { messages: turn1 }, {}));
  });
});
