// Request bodies of Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens) as
// drover accepts them, and Anthropic's error body. Objects are strict: a field drover does not
// implement is refused with 400 naming it, except the documented harmless ones (cache_control,
// metadata, service_tier, citations: null, context_management), which are accepted and change nothing.
import { z } from "zod";

export type AnthropicErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "api_error"
  | "timeout_error"
  | "overloaded_error";

export function anthropicError(type: AnthropicErrorType, message: string) {
  return { type: "error" as const, error: { type, message } };
}

/** Fields of Anthropic's API that drover refuses, with why. */
export const ANTHROPIC_UNSUPPORTED: Record<string, string> = {
  top_k: "top_k is not supported by drover's engines; use temperature or top_p",
  container: "containers (code execution) are not supported",
  mcp_servers: "MCP servers run by the API are not supported; run MCP tools in the client",
};

const CacheControl = z.object({ type: z.literal("ephemeral"), ttl: z.string().optional() }).nullish();

export const TextBlock = z.strictObject({ type: z.literal("text"), text: z.string(), cache_control: CacheControl, citations: z.null().optional() });
export const ToolUseBlock = z.strictObject({
  type: z.literal("tool_use"),
  id: z.string().min(1),
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()),
  cache_control: CacheControl,
});
export const ToolResultBlock = z.strictObject({
  type: z.literal("tool_result"),
  tool_use_id: z.string().min(1),
  content: z.union([z.string(), z.array(TextBlock)]).optional(),
  is_error: z.boolean().optional(),
  cache_control: CacheControl,
});
/** Earlier thinking sent back; the signature is accepted (drover signs nothing) and not checked. */
export const ThinkingBlock = z.strictObject({ type: z.literal("thinking"), thinking: z.string(), signature: z.string().optional() });

export const ContentBlock = z.discriminatedUnion("type", [TextBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock]);
export type ContentBlock = z.infer<typeof ContentBlock>;
const BLOCK_TYPES = new Set(["text", "tool_use", "tool_result", "thinking"]);

export const AnthropicMessage = z.strictObject({
  role: z.enum(["user", "assistant"]),
  content: z.union([z.string(), z.array(z.unknown())]),
});
export type AnthropicMessage = z.infer<typeof AnthropicMessage>;

export const AnthropicTool = z.strictObject({
  type: z.literal("custom", { message: "only custom (client) tools are supported; server tools such as web search or bash are not" }).optional(),
  name: z.string().min(1),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown()),
  cache_control: CacheControl,
});
export type AnthropicTool = z.infer<typeof AnthropicTool>;

export const AnthropicToolChoice = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("auto"), disable_parallel_tool_use: z.boolean().optional() }),
  z.strictObject({ type: z.literal("any"), disable_parallel_tool_use: z.boolean().optional() }),
  z.strictObject({ type: z.literal("tool"), name: z.string().min(1), disable_parallel_tool_use: z.boolean().optional() }),
  z.strictObject({ type: z.literal("none") }),
]);
export type AnthropicToolChoice = z.infer<typeof AnthropicToolChoice>;

export const ThinkingConfig = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("enabled"), budget_tokens: z.number().int().min(1) }),
  z.strictObject({ type: z.literal("disabled") }),
  // The model decides how much to think: the engine's default effort.
  z.strictObject({ type: z.literal("adaptive") }),
]);

/** Output settings: an effort level (→ reasoning_effort) and a JSON schema the answer must fit. */
export const OutputConfig = z.strictObject({
  effort: z.enum(["low", "medium", "high", "max"]).nullish(),
  format: z.strictObject({ type: z.literal("json_schema"), schema: z.record(z.string(), z.unknown()) }).nullish(),
});

const Prompt = {
  model: z.string().min(1, "model is required"),
  messages: z.array(AnthropicMessage).min(1, "messages must hold at least one message"),
  system: z.union([z.string(), z.array(TextBlock)]).optional(),
  tools: z.array(z.unknown()).optional(),
  tool_choice: AnthropicToolChoice.optional(),
  thinking: ThinkingConfig.optional(),
  output_config: OutputConfig.optional(),
  /**
   * Accepted, not applied: Anthropic's server-side context editing. Claude Code sends it with every
   * request; drover never edits a conversation (one longer than the model's context is refused).
   */
  context_management: z.record(z.string(), z.unknown()).nullish(),
};

export const MessagesRequest = z.strictObject({
  ...Prompt,
  max_tokens: z.number().int().positive(),
  stop_sequences: z.array(z.string()).max(4, "drover's engines take at most 4 stop sequences").optional(),
  stream: z.boolean().optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  // Harmless: an opaque user id for Anthropic's abuse detection, and a capacity tier.
  metadata: z.strictObject({ user_id: z.string().nullish() }).optional(),
  service_tier: z.enum(["auto", "standard_only"]).optional(),
});
export type MessagesRequest = z.infer<typeof MessagesRequest>;

export const CountTokensRequest = z.strictObject(Prompt);
export type CountTokensRequest = z.infer<typeof CountTokensRequest>;

/** "path: message" for the first problem, naming an unknown field itself. */
export function describeAnthropicZodError(err: z.ZodError, prefix: (string | number)[] = []): string {
  const issue = err.issues[0];
  if (!issue) return "invalid request body";
  const path = [...prefix, ...issue.path.map((p) => (typeof p === "symbol" ? String(p) : p))];
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0]!;
    const why = path.length === 0 ? ANTHROPIC_UNSUPPORTED[key] : undefined;
    return `${[...path, key].join(".")}: ${why ?? "unknown or unsupported field"}`;
  }
  return path.length ? `${path.join(".")}: ${issue.message}` : issue.message;
}

/** Validates one content block at `path`; an error message naming the field otherwise. */
export function parseBlock(raw: unknown, path: (string | number)[]): { block: ContentBlock } | { error: string } {
  const type = (raw as { type?: unknown } | null)?.type;
  if (typeof type !== "string" || !BLOCK_TYPES.has(type)) {
    const why = type === "image" || type === "document" ? "(drover's models are text-only)" : "(drover takes text, tool_use, tool_result and thinking blocks)";
    return { error: `${[...path, "type"].join(".")}: content block type ${JSON.stringify(type)} is not supported ${why}` };
  }
  const parsed = ContentBlock.safeParse(raw);
  if (!parsed.success) return { error: describeAnthropicZodError(parsed.error, path) };
  return { block: parsed.data };
}
