// Request bodies of the OpenAI inference routes, as drover accepts them. Unknown fields pass
// through (clients send many we do not use); the fields we act on are checked at every hop.
import { z } from "zod";

const Stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish();

/**
 * OpenAI's response_format. The llama engine enforces the JSON ones with a grammar. Also accepted
 * on /v1/completions (as llama.cpp's server does): Ollama's raw `/api/generate` with `format` uses it.
 */
export const ResponseFormat = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }).passthrough(),
  z.object({ type: z.literal("json_object") }).passthrough(),
  z
    .object({
      type: z.literal("json_schema"),
      json_schema: z
        .object({ name: z.string().optional(), schema: z.record(z.string(), z.unknown()).optional(), strict: z.boolean().nullish() })
        .passthrough(),
    })
    .passthrough(),
]);
export type ResponseFormat = z.infer<typeof ResponseFormat>;

const Sampling = {
  model: z.string().min(1, "model is required"),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).passthrough().nullish(),
  max_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  stop: Stop,
  response_format: ResponseFormat.nullish(),
};

const ContentPart = z.object({ type: z.string(), text: z.string().optional() }).passthrough();

export const ChatMessage = z
  .object({
    role: z.enum(["system", "developer", "user", "assistant", "tool"]),
    content: z.union([z.string(), z.array(ContentPart), z.null()]),
  })
  .passthrough();
export type ChatMessage = z.infer<typeof ChatMessage>;

export const ChatCompletionRequest = z
  .object({
    ...Sampling,
    messages: z.array(ChatMessage).min(1, "messages must hold at least one message"),
    max_completion_tokens: z.number().int().positive().nullish(),
  })
  .passthrough();
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

export const CompletionRequest = z
  .object({
    ...Sampling,
    prompt: z.union([z.string(), z.array(z.string()).min(1)]),
  })
  .passthrough();
export type CompletionRequest = z.infer<typeof CompletionRequest>;

export const EmbeddingRequest = z
  .object({
    model: z.string().min(1, "model is required"),
    input: z.union([z.string(), z.array(z.string()).min(1)]),
    encoding_format: z.enum(["float", "base64"]).nullish(),
  })
  .passthrough();
export type EmbeddingRequest = z.infer<typeof EmbeddingRequest>;

/** The inference routes, keyed by path, with the schema of their body. */
export const INFERENCE_ROUTES = {
  "/v1/chat/completions": ChatCompletionRequest,
  "/v1/completions": CompletionRequest,
  "/v1/embeddings": EmbeddingRequest,
} as const;
export type InferencePath = keyof typeof INFERENCE_ROUTES;

/** Text of a chat message, whether given as a string or as content parts. */
export function messageText(content: ChatMessage["content"]): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content.map((p) => (typeof p.text === "string" ? p.text : "")).join("");
}

/** "path.to.field: message" for the first issue, as OpenAI's error `param` and message expect. */
export function describeZodError(err: z.ZodError): { message: string; param: string | null } {
  const issue = err.issues[0];
  const param = issue && issue.path.length ? issue.path.join(".") : null;
  return { message: param ? `${param}: ${issue!.message}` : issue?.message ?? "invalid request body", param };
}
