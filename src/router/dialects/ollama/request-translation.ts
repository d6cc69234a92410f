// Ollama request bodies → the OpenAI request a node serves. Chat and generate always stream from
// the node (with usage), whatever the client asked: the response adapter times the tokens as they
// come and either relays them as NDJSON lines or folds them into one object.
import type {
  OllamaChatRequest,
  OllamaEmbeddingsRequest,
  OllamaEmbedRequest,
  OllamaFormat,
  OllamaGenerateRequest,
  OllamaOptions,
} from "../../../protocol/ollama.js";
import type { ResponseFormat } from "../../../protocol/openai.js";
import { OllamaHttpError } from "./ollama-http-error.js";

export type OpenAiPath = "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings";

export interface OpenAiCall {
  path: OpenAiPath;
  body: Record<string, unknown>;
}

function unsupported(message: string): OllamaHttpError {
  return new OllamaHttpError(400, message);
}

function rejectImages(images: readonly string[] | null | undefined, where: string): void {
  if (images?.length) throw unsupported(`${where}: images are not supported (drover's models are text-only)`);
}

/** Ollama's `format` → OpenAI's response_format (enforced by the engine with a JSON grammar). */
export function responseFormatOf(format: OllamaFormat): ResponseFormat | undefined {
  if (format == null || format === "") return undefined;
  if (format === "json") return { type: "json_object" };
  return { type: "json_schema", json_schema: { name: "format", schema: format } };
}

/** Options with the same meaning as an OpenAI (or llama.cpp server) field. */
const SAMPLING_OPTIONS = ["temperature", "top_p", "seed", "top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty"] as const;

/**
 * Options about how the runner uses the machine. On drover the node's operator sets those for
 * every request (threads, GPU, memory mapping), so a client's values are harmless and unused.
 */
const RUNTIME_OPTIONS = new Set([
  "numa",
  "num_batch",
  "num_gpu",
  "main_gpu",
  "low_vram",
  "f16_kv",
  "logits_all",
  "vocab_only",
  "use_mmap",
  "use_mlock",
  "embedding_only",
  "num_thread",
  "keep_alive",
]);

/**
 * Ollama's options → OpenAI sampling fields. num_predict -1 ("until the context is full") and -2
 * ("fill the context") both become the model's context length, which the engine lowers to what
 * is left after the prompt. Without num_predict the engine's default applies, as on /v1.
 * An option that cannot be honoured is refused (400 naming it), never ignored.
 */
export function samplingOf(options: OllamaOptions | null | undefined, contextLength: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!options) return out;
  for (const [key, value] of Object.entries(options)) {
    if (value == null) continue;
    if ((SAMPLING_OPTIONS as readonly string[]).includes(key)) out[key] = value;
    else if (key === "stop") out.stop = typeof value === "string" ? [value] : value;
    else if (key === "num_predict") out.max_tokens = (value as number) > 0 ? value : contextLength;
    else if (key === "num_ctx") {
      // The engine's context is the model's; a smaller window asked for is no constraint on it.
      if ((value as number) > contextLength) throw unsupported(`options.num_ctx: ${String(value)} is more than this model's context length (${contextLength})`);
    } else if (key === "repeat_last_n") {
      if (value !== 64) throw unsupported("options.repeat_last_n: only 64 (the penalties look at the last 64 tokens) is supported");
    } else if (!RUNTIME_OPTIONS.has(key)) {
      throw unsupported(`options.${key} is not supported by drover's engines`);
    }
  }
  return out;
}

/** Top-level fields of /api/chat and /api/generate that the translation below does not read itself. */
const CHAT_FIELDS = new Set(["model", "messages", "stream", "format", "options", "keep_alive", "tools", "think"]);
const GENERATE_FIELDS = new Set([
  "model",
  "prompt",
  "system",
  "raw",
  "suffix",
  "template",
  "images",
  "stream",
  "format",
  "options",
  "keep_alive",
  "think",
  "context",
]);

function checkFields(req: object, known: Set<string>): void {
  for (const [key, value] of Object.entries(req)) {
    if (value == null || known.has(key)) continue;
    if (key === "logprobs" && value === false) continue;
    throw unsupported(`${key} is not supported by drover's engines`);
  }
}

/**
 * `think` → the OpenAI fields the engines read: an effort becomes reasoning_effort; true is the
 * model's default; false asks for no reasoning back (the router drops it from the answer, as
 * gpt-oss cannot be told not to reason).
 */
function thinkOf(think: OllamaChatRequest["think"]): Record<string, unknown> {
  if (typeof think === "string") return { reasoning_effort: think };
  return {};
}

interface Target {
  /** The catalog id the node knows the model by. */
  modelId: string;
  contextLength: number;
}

function generation(
  req: { format?: OllamaFormat; options?: OllamaOptions | null; think?: OllamaChatRequest["think"] },
  target: Target,
): Record<string, unknown> {
  const responseFormat = responseFormatOf(req.format);
  return {
    model: target.modelId,
    ...samplingOf(req.options, target.contextLength),
    ...(responseFormat ? { response_format: responseFormat } : {}),
    ...thinkOf(req.think),
    stream: true,
    stream_options: { include_usage: true },
  };
}

/**
 * Ollama messages → OpenAI's. Assistant tool calls get ids (Ollama has none) and their arguments
 * as a JSON string; a tool message answers the call of its `tool_name` (else the next unanswered
 * call) of the assistant message before it; earlier thinking goes back as reasoning_content.
 */
function chatMessages(messages: OllamaChatRequest["messages"]): Record<string, unknown>[] {
  let pending: { id: string; name: string }[] = [];
  return (messages ?? []).map((m, i) => {
    rejectImages(m.images, `messages.${i}`);
    const out: Record<string, unknown> = { role: m.role, content: m.content ?? "" };
    if (m.role === "assistant") {
      pending = (m.tool_calls ?? []).map((c, j) => ({ id: `call_${i}_${j}`, name: c.function.name }));
      if (m.tool_calls?.length) {
        out.tool_calls = m.tool_calls.map((c, j) => ({
          id: pending[j]!.id,
          type: "function",
          function: { name: c.function.name, arguments: JSON.stringify(c.function.arguments ?? {}) },
        }));
      }
      if (m.thinking) out.reasoning_content = m.thinking;
    } else if (m.role === "tool") {
      const k = m.tool_name ? pending.findIndex((p) => p.name === m.tool_name) : 0;
      const answered = k >= 0 ? pending.splice(k, 1)[0] : undefined;
      out.tool_call_id = answered?.id ?? `call_${i}`;
    }
    return out;
  });
}

export function chatToOpenAi(req: OllamaChatRequest, target: Target): OpenAiCall {
  checkFields(req, CHAT_FIELDS);
  const tools = req.tools?.length ? { tools: req.tools } : {};
  return { path: "/v1/chat/completions", body: { ...generation(req, target), ...tools, messages: chatMessages(req.messages) } };
}

/**
 * /api/generate applies the model's chat template (with `system`), as Ollama does, so it becomes a
 * chat completion; `raw: true` sends the prompt as it is, a plain completion.
 */
export function generateToOpenAi(req: OllamaGenerateRequest, target: Target): OpenAiCall {
  checkFields(req, GENERATE_FIELDS);
  rejectImages(req.images, "images");
  if ((req as { context?: unknown[] }).context?.length) throw unsupported("context (deprecated) is not supported: send the conversation to /api/chat");
  if (req.suffix) throw unsupported("suffix (fill-in-the-middle) is not supported by drover's engines");
  if (req.template) throw unsupported("template overrides are not supported: drover uses the model's own chat template");
  const prompt = req.prompt ?? "";
  if (req.raw) return { path: "/v1/completions", body: { ...generation(req, target), prompt } };
  const messages = [...(req.system ? [{ role: "system", content: req.system }] : []), { role: "user", content: prompt }];
  return { path: "/v1/chat/completions", body: { ...generation(req, target), messages } };
}

export function embedToOpenAi(req: OllamaEmbedRequest, target: Target): OpenAiCall {
  if (req.truncate === true) throw unsupported("truncate: true is not supported: an input longer than the model's context is an error; send truncate: false");
  samplingOf(req.options, Number.MAX_SAFE_INTEGER);
  return { path: "/v1/embeddings", body: { model: target.modelId, input: req.input } };
}

export function embeddingsToOpenAi(req: OllamaEmbeddingsRequest, target: Target): OpenAiCall {
  return { path: "/v1/embeddings", body: { model: target.modelId, input: req.prompt } };
}
