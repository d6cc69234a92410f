// A Messages request → the one internal request, an OpenAI chat completion. `system` becomes a
// system message; a user turn's tool_result blocks become tool messages (in order, before the
// turn's text); an assistant turn's text, tool_use and thinking blocks become one assistant
// message with content, tool_calls and the reasoning sent back. Tools keep their JSON schema;
// tool_choice auto/any/tool/none → auto/required/a named function/none; a thinking budget sets
// reasoning_effort.
import {
  parseBlock,
  type AnthropicMessage,
  type AnthropicTool,
  AnthropicTool as AnthropicToolSchema,
  type ContentBlock,
  type CountTokensRequest,
  type MessagesRequest,
  describeAnthropicZodError,
} from "../../../protocol/anthropic.js";
import { REASONING_FIELD } from "../chat-translation/chat-answer.js";
import { AnthropicHttpError } from "./anthropic-http-error.js";

type ChatMessage = Record<string, unknown> & { role: string };

const bad = (message: string) => new AnthropicHttpError(400, message);

function blocks(content: AnthropicMessage["content"], where: (string | number)[]): ContentBlock[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  return content.map((raw, j) => {
    const r = parseBlock(raw, [...where, "content", j]);
    if ("error" in r) throw bad(r.error);
    return r.block;
  });
}

function toolResultText(block: Extract<ContentBlock, { type: "tool_result" }>): string {
  const text = typeof block.content === "string" ? block.content : (block.content ?? []).map((b) => b.text).join("");
  // The model must know the tool failed; chat has no field for it, so the text says it.
  return block.is_error ? `Error: ${text}` : text;
}

export function messagesToChatMessages(messages: readonly AnthropicMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  messages.forEach((m, i) => {
    const where = ["messages", i];
    const list = blocks(m.content, where);
    if (m.role === "assistant") {
      const msg: ChatMessage = { role: "assistant", content: null };
      let text: string | null = null;
      let reasoning: string | null = null;
      const calls: unknown[] = [];
      list.forEach((b, j) => {
        if (b.type === "text") text = (text ?? "") + b.text;
        else if (b.type === "thinking") reasoning = (reasoning ?? "") + b.thinking;
        else if (b.type === "tool_use") calls.push({ id: b.id, type: "function", function: { name: b.name, arguments: JSON.stringify(b.input) } });
        else throw bad(`messages.${i}.content.${j}.type: a tool_result belongs in a user message`);
      });
      msg.content = text;
      if (reasoning !== null) msg[REASONING_FIELD] = reasoning;
      if (calls.length) msg.tool_calls = calls;
      out.push(msg);
      return;
    }
    let text: string | null = null;
    const flush = () => {
      if (text !== null) out.push({ role: "user", content: text });
      text = null;
    };
    list.forEach((b, j) => {
      if (b.type === "text") text = (text ?? "") + b.text;
      else if (b.type === "tool_result") {
        flush();
        out.push({ role: "tool", tool_call_id: b.tool_use_id, content: toolResultText(b) });
      } else throw bad(`messages.${i}.content.${j}.type: a ${b.type} block belongs in an assistant message`);
    });
    flush();
  });
  return out;
}

export function parseTools(tools: unknown[] | undefined): AnthropicTool[] {
  return (tools ?? []).map((raw, i) => {
    const parsed = AnthropicToolSchema.safeParse(raw);
    if (!parsed.success) throw bad(describeAnthropicZodError(parsed.error, ["tools", i]));
    return parsed.data;
  });
}

/** A thinking budget → the engines' reasoning effort. */
export function effortFor(budgetTokens: number): "low" | "medium" | "high" {
  if (budgetTokens < 4096) return "low";
  if (budgetTokens < 16384) return "medium";
  return "high";
}

/** The prompt part of a request (what count_tokens counts), as a chat body without sampling. */
export function promptToChat(req: CountTokensRequest): Record<string, unknown> {
  const messages: ChatMessage[] = [];
  if (req.system !== undefined) {
    const system = typeof req.system === "string" ? req.system : req.system.map((b) => b.text).join("\n");
    if (system) messages.push({ role: "system", content: system });
  }
  messages.push(...messagesToChatMessages(req.messages));
  const tools = parseTools(req.tools);
  const body: Record<string, unknown> = { model: req.model, messages };
  if (tools.length) {
    body.tools = tools.map((t) => ({
      type: "function",
      function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.input_schema },
    }));
  }
  const choice = req.tool_choice;
  if (choice) {
    if (choice.type === "tool" && !tools.some((t) => t.name === choice.name)) throw bad(`tool_choice.name: no tool named "${choice.name}" in tools`);
    if (choice.type !== "none" && tools.length === 0) throw bad(`tool_choice: "${choice.type}" needs tools`);
    body.tool_choice =
      choice.type === "auto"
        ? "auto"
        : choice.type === "any"
          ? "required"
          : choice.type === "none"
            ? "none"
            : { type: "function", function: { name: choice.name } };
    if (choice.type !== "none" && choice.disable_parallel_tool_use) body.parallel_tool_calls = false;
  }
  if (req.thinking?.type === "enabled") body.reasoning_effort = effortFor(req.thinking.budget_tokens);
  const output = req.output_config;
  // An explicit effort wins over one derived from a thinking budget.
  if (output?.effort) body.reasoning_effort = output.effort === "max" ? "high" : output.effort;
  if (output?.format) body.response_format = { type: "json_schema", json_schema: { name: "output", schema: output.format.schema } };
  return body;
}

export function messagesToChat(req: MessagesRequest): Record<string, unknown> {
  const body = promptToChat(req);
  body.max_tokens = req.max_tokens;
  if (req.temperature !== undefined) body.temperature = req.temperature;
  if (req.top_p !== undefined) body.top_p = req.top_p;
  if (req.stop_sequences?.length) body.stop = req.stop_sequences;
  body.stream = true;
  body.stream_options = { include_usage: true };
  return body;
}
