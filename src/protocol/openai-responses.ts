// Request bodies of OpenAI's Responses API (POST /v1/responses) as drover accepts them. Objects
// are strict: a field drover does not implement is refused with 400 naming it, except the short
// list of harmless ones documented in the README (accepted, and echoed where OpenAI echoes them).
import { z } from "zod";

const text = z.string();

/** Fields of OpenAI's API that drover refuses, with why (the rest of the unknown ones are just unknown). */
export const RESPONSES_UNSUPPORTED: Record<string, string> = {
  background: "background responses are not supported; send the request and wait (or stream)",
  conversation: "conversation objects are not supported; chain turns with previous_response_id",
  prompt: "prompt templates are not supported",
  max_tool_calls: "max_tool_calls applies to built-in tools, which drover does not have",
  top_logprobs: "log probabilities are not supported",
  prompt_cache_retention: "prompt cache retention is not configurable (the engines cache prompts on their own)",
  context_management: "server-side context management is not supported",
};

export const ResponsesFunctionTool = z.strictObject({
  type: z.literal("function"),
  name: z.string().min(1),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});
export type ResponsesFunctionTool = z.infer<typeof ResponsesFunctionTool>;

export const ResponsesToolChoice = z.union([z.enum(["none", "auto", "required"]), z.strictObject({ type: z.literal("function"), name: z.string().min(1) })]);
export type ResponsesToolChoice = z.infer<typeof ResponsesToolChoice>;

export const ResponsesTextFormat = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("text") }),
  z.strictObject({ type: z.literal("json_object") }),
  z.strictObject({
    type: z.literal("json_schema"),
    name: z.string().min(1),
    schema: z.record(z.string(), z.unknown()),
    description: z.string().nullish(),
    strict: z.boolean().nullish(),
  }),
]);
export type ResponsesTextFormat = z.infer<typeof ResponsesTextFormat>;

export const CreateResponseRequest = z.strictObject({
  model: z.string().min(1, "model is required"),
  input: z.union([z.string(), z.array(z.unknown())]).optional(),
  instructions: z.string().nullish(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: ResponsesToolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  reasoning: z
    .strictObject({
      effort: z.enum(["none", "minimal", "low", "medium", "high", "xhigh"]).nullish(),
      // Accepted: the engines return the reasoning itself (as reasoning_text), not a summary.
      summary: z.enum(["auto", "concise", "detailed"]).nullish(),
      generate_summary: z.enum(["auto", "concise", "detailed"]).nullish(),
    })
    .nullish(),
  text: z
    .strictObject({
      format: ResponsesTextFormat.nullish(),
      // Accepted: a hint for OpenAI's own models; drover's engines have no verbosity setting.
      verbosity: z.enum(["low", "medium", "high"]).nullish(),
    })
    .nullish(),
  max_output_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_obfuscation: z.boolean().nullish() }).nullish(),
  store: z.boolean().nullish(),
  previous_response_id: z.string().min(1).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  include: z.array(z.literal("reasoning.encrypted_content", { message: 'the only include drover supports is "reasoning.encrypted_content"' })).nullish(),
  // Harmless: identify the end user or a cache bucket at OpenAI; recorded nowhere, change nothing.
  user: z.string().nullish(),
  safety_identifier: z.string().nullish(),
  prompt_cache_key: z.string().nullish(),
  service_tier: z.string().nullish(),
  // Codex sends its installation and session ids here.
  client_metadata: z.record(z.string(), z.string()).nullish(),
  truncation: z.literal("disabled", { message: 'only "disabled" is supported: drover never drops input to fit the context' }).nullish(),
  background: z.literal(false, { message: RESPONSES_UNSUPPORTED.background! }).nullish(),
});
export type CreateResponseRequest = z.infer<typeof CreateResponseRequest>;

// --- input items -------------------------------------------------------------------------------

const InputTextPart = z.strictObject({ type: z.literal("input_text"), text });
const OutputTextPart = z.strictObject({
  type: z.literal("output_text"),
  text,
  annotations: z.array(z.unknown()).optional(),
  logprobs: z.array(z.unknown()).optional(),
});
const RefusalPart = z.strictObject({ type: z.literal("refusal"), refusal: text });

export const MessageItem = z.strictObject({
  type: z.literal("message").optional(),
  id: z.string().nullish(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([text, z.array(z.unknown())]),
  status: z.enum(["in_progress", "completed", "incomplete"]).nullish(),
  // Codex marks its messages with these; they change nothing in the prompt.
  phase: z.string().nullish(),
  end_turn: z.boolean().nullish(),
});
export type MessageItem = z.infer<typeof MessageItem>;

export const MessagePart = z.discriminatedUnion("type", [InputTextPart, OutputTextPart, RefusalPart]);
export type MessagePart = z.infer<typeof MessagePart>;

export const FunctionCallItem = z.strictObject({
  type: z.literal("function_call"),
  id: z.string().nullish(),
  call_id: z.string().min(1),
  name: z.string().min(1),
  arguments: text,
  status: z.enum(["in_progress", "completed", "incomplete"]).nullish(),
});
export type FunctionCallItem = z.infer<typeof FunctionCallItem>;

export const FunctionCallOutputItem = z.strictObject({
  type: z.literal("function_call_output"),
  id: z.string().nullish(),
  call_id: z.string().min(1),
  output: z.union([text, z.array(InputTextPart)]),
  status: z.enum(["in_progress", "completed", "incomplete"]).nullish(),
});
export type FunctionCallOutputItem = z.infer<typeof FunctionCallOutputItem>;

export const ReasoningItem = z.strictObject({
  type: z.literal("reasoning"),
  id: z.string().nullish(),
  summary: z.array(z.strictObject({ type: z.literal("summary_text"), text })),
  // Codex writes reasoning text parts as "text" as well as "reasoning_text".
  content: z.array(z.strictObject({ type: z.enum(["reasoning_text", "text"]), text })).nullish(),
  encrypted_content: z.string().nullish(),
  status: z.enum(["in_progress", "completed", "incomplete"]).nullish(),
});
export type ReasoningItem = z.infer<typeof ReasoningItem>;

export type InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem;

/** The item schema for a `type` (a message may leave it out), or null for a type drover refuses. */
export function inputItemSchema(type: unknown): z.ZodType<InputItem> | null {
  switch (type ?? "message") {
    case "message":
      return MessageItem;
    case "function_call":
      return FunctionCallItem;
    case "function_call_output":
      return FunctionCallOutputItem;
    case "reasoning":
      return ReasoningItem;
    default:
      return null;
  }
}

/** "path: message" and the param for the first problem, naming an unknown field itself. */
export function describeResponsesZodError(err: z.ZodError, prefix: (string | number)[] = []): { message: string; param: string | null } {
  const issue = err.issues[0];
  if (!issue) return { message: "invalid request body", param: null };
  const path = [...prefix, ...issue.path.map((p) => (typeof p === "symbol" ? String(p) : p))];
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0]!;
    const param = [...path, key].join(".");
    const why = path.length === 0 ? RESPONSES_UNSUPPORTED[key] : undefined;
    return { message: `${param}: ${why ?? "unknown or unsupported field"}`, param };
  }
  const param = path.length ? path.join(".") : null;
  return { message: param ? `${param}: ${issue.message}` : issue.message, param };
}
