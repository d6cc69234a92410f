// Ollama request bodies → the OpenAI request a node serves. Chat and generate always stream from
// the node (with usage), whatever the client asked: the response adapter times the tokens as they
// come and either relays them as NDJSON lines or folds them into one object.
import type { OllamaChatRequest, OllamaEmbeddingsRequest, OllamaEmbedRequest, OllamaFormat, OllamaGenerateRequest, OllamaOptions } from "../../protocol/ollama.js";
import type { ResponseFormat } from "../../protocol/openai.js";
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

/**
 * Ollama's options → OpenAI sampling fields. num_predict -1 ("until the context is full") and -2
 * ("fill the context") both become the model's context length, which the engine lowers to what
 * is left after the prompt. Without num_predict the engine's default applies, as on /v1.
 */
export function samplingOf(options: OllamaOptions | null | undefined, contextLength: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!options) return out;
  if (options.temperature != null) out.temperature = options.temperature;
  if (options.top_p != null) out.top_p = options.top_p;
  if (options.seed != null) out.seed = options.seed;
  if (options.stop != null) out.stop = typeof options.stop === "string" ? [options.stop] : options.stop;
  if (options.num_predict != null) out.max_tokens = options.num_predict > 0 ? options.num_predict : contextLength;
  return out;
}

interface Target {
  /** The catalog id the node knows the model by. */
  modelId: string;
  contextLength: number;
}

function generation(req: { format?: OllamaFormat; options?: OllamaOptions | null; tools?: unknown[] | null }, target: Target): Record<string, unknown> {
  if (req.tools?.length) throw unsupported("tools are not supported by drover's engines");
  const responseFormat = responseFormatOf(req.format);
  return {
    model: target.modelId,
    ...samplingOf(req.options, target.contextLength),
    ...(responseFormat ? { response_format: responseFormat } : {}),
    stream: true,
    stream_options: { include_usage: true },
  };
}

export function chatToOpenAi(req: OllamaChatRequest, target: Target): OpenAiCall {
  const messages = (req.messages ?? []).map((m, i) => {
    rejectImages(m.images, `messages.${i}`);
    return { role: m.role, content: m.content ?? "" };
  });
  return { path: "/v1/chat/completions", body: { ...generation(req, target), messages } };
}

/**
 * /api/generate applies the model's chat template (with `system`), as Ollama does, so it becomes a
 * chat completion; `raw: true` sends the prompt as it is, a plain completion.
 */
export function generateToOpenAi(req: OllamaGenerateRequest, target: Target): OpenAiCall {
  rejectImages(req.images, "images");
  if (req.suffix) throw unsupported("suffix (fill-in-the-middle) is not supported by drover's engines");
  if (req.template) throw unsupported("template overrides are not supported: drover uses the model's own chat template");
  const prompt = req.prompt ?? "";
  if (req.raw) return { path: "/v1/completions", body: { ...generation(req, target), prompt } };
  const messages = [...(req.system ? [{ role: "system", content: req.system }] : []), { role: "user", content: prompt }];
  return { path: "/v1/chat/completions", body: { ...generation(req, target), messages } };
}

export function embedToOpenAi(req: OllamaEmbedRequest, target: Target): OpenAiCall {
  return { path: "/v1/embeddings", body: { model: target.modelId, input: req.input } };
}

export function embeddingsToOpenAi(req: OllamaEmbeddingsRequest, target: Target): OpenAiCall {
  return { path: "/v1/embeddings", body: { model: target.modelId, input: req.prompt } };
}
