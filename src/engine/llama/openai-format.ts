// Response bodies in the shapes of OpenAI's CreateChatCompletionResponse,
// CreateChatCompletionStreamResponse, CreateCompletionResponse and CreateEmbeddingResponse.
import { randomUUID } from "node:crypto";
import type { ChatFinishReason, ToolCallResult } from "./chat-turn.js";
import type { FinishReason } from "./inference.js";

/**
 * Where reasoning goes in chat messages and deltas. There is no field for it in OpenAI's API:
 * llama.cpp's server, vLLM and DeepSeek's API write `reasoning_content` (what most clients read:
 * Open WebUI, LiteLLM, Cline, Continue, LangChain); OpenRouter, Ollama's OpenAI API and OpenAI's
 * gpt-oss guide write `reasoning`. Chosen per node with --reasoning-field (DROVER_REASONING_FIELD).
 */
export type ReasoningField = "reasoning_content" | "reasoning" | "both";

export function reasoningFieldFromEnv(value: string | undefined = process.env.DROVER_REASONING_FIELD): ReasoningField {
  const v = (value ?? "").trim();
  if (v === "") return "reasoning_content";
  if (v === "reasoning_content" || v === "reasoning" || v === "both") return v;
  throw new Error(`DROVER_REASONING_FIELD must be reasoning_content, reasoning or both (got ${JSON.stringify(value)})`);
}

/** The reasoning text under the configured field name(s); nothing when there is none. */
export function reasoningFields(field: ReasoningField, text: string): Record<string, string> {
  if (!text) return {};
  if (field === "both") return { reasoning_content: text, reasoning: text };
  return { [field]: text };
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** As OpenAI reports prompt caching: the prompt tokens served from a slot's cached prefix. */
  prompt_tokens_details: { cached_tokens: number };
}

export function usage(promptTokens: number, completionTokens: number, cachedTokens = 0): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

export function newId(prefix: "chatcmpl" | "cmpl"): string {
  return `${prefix}-${randomUUID().replace(/-/g, "")}`;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** What every response and chunk of one request shares. */
export interface ResponseMeta {
  id: string;
  created: number;
  model: string;
}

export interface ChatAnswer {
  content: string;
  /** Reasoning under its field name(s) (see reasoningFields). */
  reasoning?: Record<string, string>;
  toolCalls?: readonly ToolCallResult[];
}

export function chatCompletion(meta: ResponseMeta, answer: ChatAnswer, finishReason: ChatFinishReason, u: Usage) {
  const calls = answer.toolCalls ?? [];
  return {
    id: meta.id,
    object: "chat.completion" as const,
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant" as const,
          // OpenAI answers null content beside tool calls.
          content: calls.length > 0 && answer.content === "" ? null : answer.content,
          refusal: null,
          ...answer.reasoning,
          ...(calls.length > 0 ? { tool_calls: calls.map(toolCallJson) } : {}),
        },
        logprobs: null,
        finish_reason: finishReason,
      },
    ],
    usage: u,
  };
}

function toolCallJson(c: ToolCallResult) {
  return { id: c.id, type: "function" as const, function: { name: c.name, arguments: c.arguments } };
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments: string };
}

export interface ChatDelta {
  role?: "assistant";
  content?: string;
  refusal?: null;
  reasoning_content?: string;
  reasoning?: string;
  tool_calls?: ToolCallDelta[];
}

/** One chat.completion.chunk; `usage: null` on every chunk when the client asked for usage, as OpenAI does. */
export function chatChunk(meta: ResponseMeta, delta: ChatDelta, finishReason: ChatFinishReason | null, includeUsage: boolean) {
  return {
    id: meta.id,
    object: "chat.completion.chunk" as const,
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
  };
}

/** The last chunk of a stream with stream_options.include_usage: no choices, the usage. */
export function chatUsageChunk(meta: ResponseMeta, u: Usage) {
  return { id: meta.id, object: "chat.completion.chunk" as const, created: meta.created, model: meta.model, choices: [], usage: u };
}

export interface CompletionChoice {
  text: string;
  index: number;
  logprobs: null;
  finish_reason: FinishReason | null;
}

export function completionChoice(index: number, text: string, finishReason: FinishReason | null): CompletionChoice {
  return { text, index, logprobs: null, finish_reason: finishReason };
}

/** A text_completion body; streamed chunks have the same shape (with usage only on the last). */
export function completion(meta: ResponseMeta, choices: CompletionChoice[], u: Usage | null | undefined) {
  return {
    id: meta.id,
    object: "text_completion" as const,
    created: meta.created,
    model: meta.model,
    choices,
    ...(u !== undefined ? { usage: u } : {}),
  };
}

export function embeddingList(model: string, vectors: number[][], base64: boolean, promptTokens: number) {
  return {
    object: "list" as const,
    data: vectors.map((v, index) => ({ object: "embedding" as const, index, embedding: base64 ? float32Base64(v) : v })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

/** encoding_format "base64": the little-endian float32 bytes, base64-encoded. */
export function float32Base64(vector: readonly number[]): string {
  const buf = Buffer.alloc(vector.length * 4);
  for (const [i, v] of vector.entries()) buf.writeFloatLE(v, i * 4);
  return buf.toString("base64");
}
