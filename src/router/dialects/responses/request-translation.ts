// A Responses request → the one internal request, an OpenAI chat completion. Input items become
// chat messages: messages keep their role (developer → system), function_call items become the
// assistant's tool_calls, function_call_output items become tool messages, and reasoning items
// are sent back as the next assistant message's reasoning. The items of the conversation so far
// (from previous_response_id) come first; `instructions` are never carried over, as at OpenAI.
import {
  describeResponsesZodError,
  inputItemSchema,
  MessagePart,
  ResponsesFunctionTool,
  type CreateResponseRequest,
  type InputItem,
  type ReasoningItem,
} from "../../../protocol/openai-responses.js";
import { HttpError } from "../../http/http-errors.js";
import { REASONING_FIELD } from "../chat-translation/chat-answer.js";

/** Marks the opaque copy of the reasoning that drover hands out as `encrypted_content`. */
const ENCRYPTED_PREFIX = "drover.v1.";

/** Reasoning text → the `encrypted_content` drover hands out (not secret: an opaque copy it reads back). */
export function sealReasoning(text: string): string {
  return ENCRYPTED_PREFIX + Buffer.from(text, "utf8").toString("base64");
}

function bad(param: string, message: string): HttpError {
  return new HttpError(400, `${param}: ${message}`, "invalid_request_error", "invalid_request", param);
}

/** Validates each input item; the string form is one user message. */
export function parseInput(input: CreateResponseRequest["input"]): InputItem[] {
  if (input === undefined) return [];
  if (typeof input === "string") return [{ role: "user", content: input }];
  return input.map((raw, i) => {
    const type = (raw as { type?: unknown } | null)?.type;
    const schema = raw && typeof raw === "object" ? inputItemSchema(type) : null;
    if (!schema) {
      if (!raw || typeof raw !== "object") throw bad(`input.${i}`, "an input item must be an object");
      throw bad(
        `input.${i}.type`,
        `item type ${JSON.stringify(type)} is not supported (drover takes message, function_call, function_call_output and reasoning items)`,
      );
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const { message, param } = describeResponsesZodError(parsed.error, ["input", i]);
      throw new HttpError(400, message, "invalid_request_error", "invalid_request", param);
    }
    return parsed.data;
  });
}

export function parseTools(tools: CreateResponseRequest["tools"]): ResponsesFunctionTool[] {
  return (tools ?? []).map((raw, i) => {
    const type = (raw as { type?: unknown } | null)?.type;
    if (type !== "function")
      throw bad(`tools.${i}.type`, `tool type ${JSON.stringify(type)} is not supported; drover runs function tools only (the client runs them)`);
    const parsed = ResponsesFunctionTool.safeParse(raw);
    if (!parsed.success) {
      const { message, param } = describeResponsesZodError(parsed.error, ["tools", i]);
      throw new HttpError(400, message, "invalid_request_error", "invalid_request", param);
    }
    return parsed.data;
  });
}

function partsText(content: string | unknown[], where: string): string {
  if (typeof content === "string") return content;
  return content
    .map((raw, j) => {
      const type = (raw as { type?: unknown } | null)?.type;
      const parsed = MessagePart.safeParse(raw);
      if (!parsed.success) {
        if (type === "input_image" || type === "input_file" || type === "input_audio")
          throw bad(`${where}.content.${j}.type`, `${type} is not supported (drover's models are text-only)`);
        const { message, param } = describeResponsesZodError(parsed.error, [...where.split("."), "content", j]);
        throw new HttpError(400, message, "invalid_request_error", "invalid_request", param);
      }
      const part = parsed.data;
      return part.type === "refusal" ? part.refusal : part.text;
    })
    .join("");
}

function reasoningText(item: ReasoningItem, where: string): string {
  if (item.encrypted_content) {
    if (!item.encrypted_content.startsWith(ENCRYPTED_PREFIX))
      throw bad(`${where}.encrypted_content`, "this reasoning was not produced by drover, which cannot read it; send it without encrypted_content");
    return Buffer.from(item.encrypted_content.slice(ENCRYPTED_PREFIX.length), "base64").toString("utf8");
  }
  if (item.content?.length) return item.content.map((c) => c.text).join("");
  return item.summary.map((s) => s.text).join("\n");
}

type ChatMessage = Record<string, unknown> & { role: string };

/** Chat messages for the items, in order. `where` names each item for errors (e.g. input.3). */
export function itemsToMessages(items: readonly InputItem[], where: (i: number) => string): ChatMessage[] {
  const messages: ChatMessage[] = [];
  let reasoning: string | null = null;
  /** The assistant message function calls join, while nothing else came in between. */
  let assistant: ChatMessage | null = null;
  const newAssistant = (): ChatMessage => {
    const m: ChatMessage = { role: "assistant", content: null };
    if (reasoning !== null) m[REASONING_FIELD] = reasoning;
    reasoning = null;
    messages.push(m);
    return m;
  };
  items.forEach((item, i) => {
    if (!("type" in item) || item.type === undefined || item.type === "message") {
      const m = item as Extract<InputItem, { role: string }>;
      const content = partsText(m.content, where(i));
      if (m.role === "assistant") {
        assistant = newAssistant();
        assistant.content = content;
      } else {
        assistant = null;
        messages.push({ role: m.role === "developer" ? "system" : m.role, content });
      }
      return;
    }
    switch (item.type) {
      case "reasoning":
        reasoning = (reasoning ?? "") + reasoningText(item, where(i));
        assistant = null;
        return;
      case "function_call": {
        const target: ChatMessage = assistant ?? newAssistant();
        assistant = target;
        const calls = (target.tool_calls as unknown[] | undefined) ?? [];
        calls.push({ id: item.call_id, type: "function", function: { name: item.name, arguments: item.arguments } });
        target.tool_calls = calls;
        return;
      }
      case "function_call_output":
        assistant = null;
        messages.push({
          role: "tool",
          tool_call_id: item.call_id,
          content: typeof item.output === "string" ? item.output : item.output.map((p) => p.text).join(""),
        });
        return;
    }
  });
  return messages;
}

export interface ChatTranslation {
  body: Record<string, unknown>;
  /** The conversation as items (earlier turns and this input, without instructions), for the store. */
  context: InputItem[];
}

/**
 * The chat completion for a request; `earlier` holds the items of the turns before it. Without
 * max_output_tokens the answer may run to the end of the model's context, as at OpenAI (the engine
 * lowers `contextLength` to what the prompt leaves), not to the engine's short default: agents
 * such as Codex never send a limit.
 */
export function responsesToChat(req: CreateResponseRequest, earlier: readonly InputItem[], contextLength: number): ChatTranslation {
  const input = parseInput(req.input);
  const tools = parseTools(req.tools);
  const context = [...earlier, ...input];
  if (context.length === 0) throw bad("input", "input is required (a string or a list of items)");
  const messages: ChatMessage[] = [];
  if (req.instructions) messages.push({ role: "system", content: req.instructions });
  messages.push(...itemsToMessages(earlier, (i) => `previous_response_id (item ${i})`), ...itemsToMessages(input, (i) => `input.${i}`));
  if (!messages.some((m) => m.role !== "system")) throw bad("input", "the input holds no message for the model to answer");

  const body: Record<string, unknown> = { model: req.model, messages, stream: true, stream_options: { include_usage: true } };
  if (tools.length) {
    body.tools = tools.map((t) => ({
      type: "function",
      function: {
        name: t.name,
        ...(t.description != null ? { description: t.description } : {}),
        parameters: t.parameters ?? { type: "object", properties: {} },
        ...(t.strict != null ? { strict: t.strict } : {}),
      },
    }));
  }
  const choice = req.tool_choice;
  if (choice != null) {
    if (typeof choice === "object" && !tools.some((t) => t.name === choice.name))
      throw bad("tool_choice.name", `no function tool named "${choice.name}" in tools`);
    body.tool_choice = typeof choice === "string" ? choice : { type: "function", function: { name: choice.name } };
  }
  if (req.parallel_tool_calls != null) body.parallel_tool_calls = req.parallel_tool_calls;
  if (req.reasoning?.effort != null) body.reasoning_effort = req.reasoning.effort;
  const format = req.text?.format;
  if (format && format.type !== "text") {
    body.response_format =
      format.type === "json_object"
        ? { type: "json_object" }
        : {
            type: "json_schema",
            json_schema: {
              name: format.name,
              schema: format.schema,
              ...(format.strict != null ? { strict: format.strict } : {}),
              ...(format.description != null ? { description: format.description } : {}),
            },
          };
  }
  body.max_tokens = req.max_output_tokens ?? contextLength;
  if (req.temperature != null) body.temperature = req.temperature;
  if (req.top_p != null) body.top_p = req.top_p;
  return { body, context };
}
