// Request bodies of Ollama's API (https://github.com/ollama/ollama/blob/main/docs/api.md) as the
// router accepts them, and Ollama's error shape. The shapes of the fields drover acts on are
// checked here; which fields and options are implemented, harmless or refused is decided in
// src/router/ollama/request-translation.ts (docs/API-FIELDS.md has the table).
import { z } from "zod";

/** Ollama's error body: `{"error": "message"}`. */
export interface OllamaErrorBody {
  error: string;
}

export function ollamaError(message: string): OllamaErrorBody {
  return { error: message };
}

export const OllamaOptions = z
  .object({
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    seed: z.number().int().nullish(),
    /** -1: until the context is full; -2: fill the context (both: the model's context length). */
    num_predict: z
      .number()
      .int()
      .refine((n) => n > 0 || n === -1 || n === -2, "num_predict must be positive, -1 or -2")
      .nullish(),
    stop: z.union([z.string(), z.array(z.string()).max(4, "at most 4 stop sequences")]).nullish(),
    top_k: z.number().int().min(0).nullish(),
    min_p: z.number().min(0).max(1).nullish(),
    repeat_penalty: z.number().positive().nullish(),
    presence_penalty: z.number().min(-2).max(2).nullish(),
    frequency_penalty: z.number().min(-2).max(2).nullish(),
    num_ctx: z.number().int().positive().nullish(),
    repeat_last_n: z.number().int().nullish(),
  })
  .passthrough();
export type OllamaOptions = z.infer<typeof OllamaOptions>;

/** `format`: "json", a JSON schema object, or "" / absent for free text. */
export const OllamaFormat = z.union([z.literal("json"), z.literal(""), z.record(z.string(), z.unknown())]).nullish();
export type OllamaFormat = z.infer<typeof OllamaFormat>;

const Images = z.array(z.string()).nullish();
const Model = z.string().min(1, "model is required");

/** A call in an assistant message: arguments as an object (OpenAI's are a JSON string). */
export const OllamaToolCall = z
  .object({
    function: z.object({ name: z.string().min(1), arguments: z.record(z.string(), z.unknown()).nullish() }).passthrough(),
  })
  .passthrough();
export type OllamaToolCall = z.infer<typeof OllamaToolCall>;

export const OllamaMessage = z
  .object({
    role: z.enum(["system", "user", "assistant", "tool"]),
    content: z.string().nullish(),
    images: Images,
    thinking: z.string().nullish(),
    tool_calls: z.array(OllamaToolCall).nullish(),
    /** The function a tool message answers. */
    tool_name: z.string().nullish(),
  })
  .passthrough();
export type OllamaMessage = z.infer<typeof OllamaMessage>;

const Generation = {
  model: Model,
  /** Ollama streams unless told otherwise. */
  stream: z.boolean().nullish(),
  format: OllamaFormat,
  options: OllamaOptions.nullish(),
  keep_alive: z.union([z.string(), z.number()]).nullish(),
  /** Same shape as OpenAI's tools; the engine checks them. */
  tools: z.array(z.record(z.string(), z.unknown())).nullish(),
  /** Reasoning: true / false, or an effort. */
  think: z.union([z.boolean(), z.enum(["low", "medium", "high"])]).nullish(),
};

export const OllamaChatRequest = z
  .object({
    ...Generation,
    messages: z.array(OllamaMessage).nullish(),
  })
  .passthrough();
export type OllamaChatRequest = z.infer<typeof OllamaChatRequest>;

export const OllamaGenerateRequest = z
  .object({
    ...Generation,
    prompt: z.string().nullish(),
    system: z.string().nullish(),
    /** Skip the chat template: the prompt goes to the model as it is. */
    raw: z.boolean().nullish(),
    suffix: z.string().nullish(),
    template: z.string().nullish(),
    images: Images,
  })
  .passthrough();
export type OllamaGenerateRequest = z.infer<typeof OllamaGenerateRequest>;

export const OllamaEmbedRequest = z
  .object({
    model: Model,
    input: z.union([z.string(), z.array(z.string())]),
    truncate: z.boolean().nullish(),
    dimensions: z.number().int().positive().nullish(),
    options: OllamaOptions.nullish(),
    keep_alive: z.union([z.string(), z.number()]).nullish(),
  })
  .passthrough();
export type OllamaEmbedRequest = z.infer<typeof OllamaEmbedRequest>;

/** The legacy embeddings route: one prompt, one vector. */
export const OllamaEmbeddingsRequest = z
  .object({
    model: Model,
    prompt: z.string(),
    options: OllamaOptions.nullish(),
    keep_alive: z.union([z.string(), z.number()]).nullish(),
  })
  .passthrough();
export type OllamaEmbeddingsRequest = z.infer<typeof OllamaEmbeddingsRequest>;

/** `/api/show`: older clients send `name` instead of `model`. */
export const OllamaShowRequest = z
  .object({
    model: z.string().min(1).nullish(),
    name: z.string().min(1).nullish(),
    verbose: z.boolean().nullish(),
  })
  .passthrough()
  .refine((b) => b.model || b.name, { message: "model is required", path: ["model"] });
export type OllamaShowRequest = z.infer<typeof OllamaShowRequest>;

/** "path.to.field: message" for the first issue. */
export function describeOllamaZodError(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return "invalid request body";
  return issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message;
}
