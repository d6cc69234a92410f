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
      json_schema: z.object({ name: z.string().optional(), schema: z.record(z.string(), z.unknown()).optional(), strict: z.boolean().nullish() }).passthrough(),
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
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  /** Token id (as a string) → bias in [-100, 100]. */
  logit_bias: z.record(z.string().regex(/^\d+$/, "keys must be token ids"), z.number().min(-100).max(100)).nullish(),
  // llama.cpp's server extensions.
  top_k: z.number().int().min(0).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  repeat_penalty: z.number().positive().nullish(),
};

const ContentPart = z.object({ type: z.string(), text: z.string().optional() }).passthrough();

/** OpenAI's function names: what every tool format can carry unescaped. */
const FunctionName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1 to 64 letters, digits, underscores, dots or dashes");

/** An assistant message's call of a function tool; arguments are a JSON string, as OpenAI sends them. */
export const ToolCall = z
  .object({
    id: z.string(),
    type: z.literal("function"),
    function: z.object({ name: FunctionName, arguments: z.string() }).passthrough(),
  })
  .passthrough();
export type ToolCall = z.infer<typeof ToolCall>;

export const ChatMessage = z
  .object({
    role: z.enum(["system", "developer", "user", "assistant", "tool"]),
    // Assistant messages with tool_calls may omit content.
    content: z.union([z.string(), z.array(ContentPart), z.null()]).optional(),
    tool_calls: z.array(ToolCall).nullish(),
    tool_call_id: z.string().nullish(),
    /** Earlier reasoning sent back: llama.cpp / vLLM / DeepSeek spell it reasoning_content, OpenRouter reasoning, Ollama thinking. */
    reasoning_content: z.string().nullish(),
    reasoning: z.string().nullish(),
    thinking: z.string().nullish(),
  })
  .passthrough()
  .superRefine((m, ctx) => {
    if (m.content === undefined && !(m.role === "assistant" && m.tool_calls?.length)) {
      ctx.addIssue({ code: "custom", path: ["content"], message: "content is required (only an assistant message with tool_calls may omit it)" });
    }
  });
export type ChatMessage = z.infer<typeof ChatMessage>;

/** A function tool. Other tool types (custom) pass the router to engines that may know them; the llama engine refuses them. */
export const ToolDefinition = z
  .object({
    name: FunctionName,
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
  })
  .passthrough();
export type ToolDefinition = z.infer<typeof ToolDefinition>;

export const Tool = z.union([
  z.object({ type: z.literal("function"), function: ToolDefinition }).passthrough(),
  z.object({ type: z.string().refine((t) => t !== "function", "function tools need a function object") }).passthrough(),
]);
export type Tool = z.infer<typeof Tool>;

export const ToolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.object({ type: z.literal("function"), function: z.object({ name: FunctionName }).passthrough() }).passthrough(),
  z.object({ type: z.string() }).passthrough(),
]);
export type ToolChoice = z.infer<typeof ToolChoice>;

/** OpenAI's ReasoningEffort values. */
export const ReasoningEffortValue = z.enum(["none", "minimal", "low", "medium", "high", "xhigh", "max"]);

export const ChatCompletionRequest = z
  .object({
    ...Sampling,
    messages: z.array(ChatMessage).min(1, "messages must hold at least one message"),
    max_completion_tokens: z.number().int().positive().nullish(),
    tools: z.array(Tool).nullish(),
    tool_choice: ToolChoice.nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    reasoning_effort: ReasoningEffortValue.nullish(),
    /** OpenRouter's reasoning object, which OpenAI's gpt-oss guide asks Chat Completions servers to follow. */
    reasoning: z.object({ effort: ReasoningEffortValue.nullish(), exclude: z.boolean().nullish(), enabled: z.boolean().nullish() }).passthrough().nullish(),
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
export function messageText(content: ChatMessage["content"] | undefined): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content.map((p) => (typeof p.text === "string" ? p.text : "")).join("");
}

/** "path.to.field: message" for the first issue, as OpenAI's error `param` and message expect. */
export function describeZodError(err: z.ZodError): { message: string; param: string | null } {
  const issue = err.issues[0];
  const param = issue?.path.length ? issue.path.join(".") : null;
  return { message: param ? `${param}: ${issue!.message}` : (issue?.message ?? "invalid request body"), param };
}
