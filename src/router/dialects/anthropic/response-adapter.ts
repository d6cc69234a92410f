// The node's OpenAI chat answer → Anthropic's Message: for a stream, Anthropic's events
// (message_start, ping, content_block_start / content_block_delta with thinking_delta, text_delta
// or input_json_delta / content_block_stop for each block, message_delta with stop_reason and
// usage, message_stop; an `error` event when the engine fails); otherwise the Message object.
// Blocks open in the order the answer brings them: thinking, text, tool_use.
import { randomBytes } from "node:crypto";
import type { ChatEvent, ChatTurn } from "../chat-translation/chat-answer.js";
import type { ErrorShape } from "../../request-path/client-edge.js";
import { sseEvent, TranslatingAdapter } from "../chat-translation/translating-adapter.js";
import { ANTHROPIC_ERRORS, anthropicErrorType } from "./anthropic-http-error.js";

export const newMessageId = () => `msg_${randomBytes(12).toString("hex")}`;

/** OpenAI's finish_reason → Anthropic's stop_reason. */
export function stopReason(turn: ChatTurn): "end_turn" | "max_tokens" | "tool_use" {
  if (turn.finishReason === "length") return "max_tokens";
  if (turn.finishReason === "tool_calls" || turn.toolCalls.length > 0) return "tool_use";
  return "end_turn";
}

function usageOf(turn: ChatTurn) {
  return {
    input_tokens: turn.usage?.promptTokens ?? 0,
    output_tokens: turn.usage?.completionTokens ?? 0,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
  };
}

/** A tool call's arguments as the object Anthropic's `input` is ({} when the model wrote none). */
export function toolInput(args: string): Record<string, unknown> {
  if (args.trim() === "") return {};
  const value = JSON.parse(args) as unknown;
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("tool arguments are not a JSON object");
  return value as Record<string, unknown>;
}

export class MessagesAdapter extends TranslatingAdapter {
  private readonly id = newMessageId();
  private block: { index: number; type: string; callIndex?: number } | null = null;
  private blocks = 0;

  constructor(
    stream: boolean,
    private readonly model: string,
    errors: ErrorShape = ANTHROPIC_ERRORS,
  ) {
    super(stream, errors);
  }

  protected newCallId(): string {
    return `toolu_${randomBytes(12).toString("hex")}`;
  }

  protected opening(): string {
    const message = {
      id: this.id,
      type: "message",
      role: "assistant",
      model: this.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0 },
    };
    return sseEvent("message_start", { type: "message_start", message }) + sseEvent("ping", { type: "ping" });
  }

  protected translate(e: ChatEvent): string {
    switch (e.kind) {
      case "reasoning":
        return this.into("thinking", { type: "thinking", thinking: "", signature: "" }) + this.delta({ type: "thinking_delta", thinking: e.text });
      case "text":
        return this.into("text", { type: "text", text: "" }) + this.delta({ type: "text_delta", text: e.text });
      case "tool_call":
        return this.close() + this.open("tool_use", { type: "tool_use", id: e.id, name: e.name, input: {} }, e.index);
      case "tool_arguments":
        // Blocks are sequential; arguments of a call other than the open one cannot be placed.
        if (this.block?.type !== "tool_use" || this.block.callIndex !== e.index) return "";
        return this.delta({ type: "input_json_delta", partial_json: e.delta });
      default:
        return "";
    }
  }

  private into(type: string, contentBlock: Record<string, unknown>): string {
    if (this.block?.type === type) return "";
    return this.close() + this.open(type, contentBlock);
  }

  private open(type: string, contentBlock: Record<string, unknown>, callIndex?: number): string {
    this.block = { index: this.blocks++, type, callIndex };
    return sseEvent("content_block_start", { type: "content_block_start", index: this.block.index, content_block: contentBlock });
  }

  private delta(delta: Record<string, unknown>): string {
    return sseEvent("content_block_delta", { type: "content_block_delta", index: this.block!.index, delta });
  }

  private close(): string {
    if (!this.block) return "";
    const index = this.block.index;
    this.block = null;
    return sseEvent("content_block_stop", { type: "content_block_stop", index });
  }

  protected closing(): string {
    const usage = usageOf(this.turn);
    return (
      this.close() +
      sseEvent("message_delta", {
        type: "message_delta",
        delta: { stop_reason: stopReason(this.turn), stop_sequence: null },
        usage: { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens },
      }) +
      sseEvent("message_stop", { type: "message_stop" })
    );
  }

  protected failure(message: string): string {
    return sseEvent("error", { type: "error", error: { type: anthropicErrorType(500), message } });
  }

  protected whole(): unknown {
    const t = this.turn;
    const content: Record<string, unknown>[] = [];
    if (t.reasoning) content.push({ type: "thinking", thinking: t.reasoning, signature: "" });
    if (t.text || t.toolCalls.length === 0) content.push({ type: "text", text: t.text });
    for (const call of t.toolCalls) {
      let input: Record<string, unknown>;
      try {
        input = toolInput(call.arguments);
      } catch (err) {
        // A call the token limit cut off is dropped (stop_reason says max_tokens); any other is the engine's fault.
        if (t.finishReason === "length") continue;
        throw new Error(`the model's arguments for tool ${call.name} are not a JSON object: ${(err as Error).message}`);
      }
      content.push({ type: "tool_use", id: call.id, name: call.name, input });
    }
    return { id: this.id, type: "message", role: "assistant", model: this.model, content, stop_reason: stopReason(t), stop_sequence: null, usage: usageOf(t) };
  }
}

/** count_tokens: the request runs with max_tokens 1 and the engine's prompt_tokens is the answer. */
export class CountTokensAdapter extends TranslatingAdapter {
  constructor() {
    super(false, ANTHROPIC_ERRORS);
  }
  protected newCallId(): string {
    return "unused";
  }
  protected opening(): string {
    return "";
  }
  protected translate(): string {
    return "";
  }
  protected closing(): string {
    return "";
  }
  protected failure(): string {
    return "";
  }
  protected whole(): unknown {
    if (!this.turn.usage) throw new Error("the engine reported no token usage");
    return { input_tokens: this.turn.usage.promptTokens };
  }
}
