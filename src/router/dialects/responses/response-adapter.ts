// The node's OpenAI chat answer → a Response: for a stream, OpenAI's event sequence with sequence
// numbers (response.created, response.in_progress, then per output item .added, its content part,
// its deltas, its .done events, and response.completed — or response.incomplete when the token
// limit cut the answer, response.failed when the engine failed); otherwise the Response object.
// Output items open in the order the answer brings them: reasoning, message, function calls.
import { randomBytes } from "node:crypto";
import type { CreateResponseRequest, InputItem } from "../../../protocol/openai-responses.js";
import type { ChatEvent } from "../chat-translation/chat-answer.js";
import type { ErrorShape } from "../../request-path/client-edge.js";
import { sseEvent, TranslatingAdapter } from "../chat-translation/translating-adapter.js";
import { sealReasoning } from "./request-translation.js";

export const newId = (prefix: string) => `${prefix}_${randomBytes(16).toString("hex")}`;

type Item = Record<string, unknown> & { id: string; type: string };

interface OpenItem {
  item: Item;
  outputIndex: number;
  /** The chat answer's tool call index, for a function_call item. */
  callIndex?: number;
}

/** What the adapter needs to know about the request and where to keep the answer. */
export interface ResponseContext {
  id: string;
  createdAt: number;
  request: CreateResponseRequest;
  /** Tools as the client sent them (echoed). */
  tools: unknown[];
  /** The conversation's items up to this turn, stored for previous_response_id. */
  context: InputItem[];
  /** Keeps the finished response (store: true); awaited before the client sees it end. */
  save: ((response: Record<string, unknown>) => Promise<void>) | null;
}

/** The Response object's fields that come from the request (usage is added when it ends). */
export function responseObject(ctx: ResponseContext, status: string, output: Item[]): Record<string, unknown> {
  const r = ctx.request;
  return {
    id: ctx.id,
    object: "response",
    created_at: Math.floor(ctx.createdAt / 1000),
    status,
    completed_at: null,
    error: null,
    incomplete_details: null,
    instructions: r.instructions ?? null,
    max_output_tokens: r.max_output_tokens ?? null,
    model: r.model,
    output,
    parallel_tool_calls: r.parallel_tool_calls ?? true,
    previous_response_id: r.previous_response_id ?? null,
    reasoning: { effort: r.reasoning?.effort ?? null, summary: r.reasoning?.summary ?? null },
    store: r.store ?? true,
    temperature: r.temperature ?? 1,
    text: { format: r.text?.format ?? { type: "text" }, ...(r.text?.verbosity ? { verbosity: r.text.verbosity } : {}) },
    tool_choice: r.tool_choice ?? "auto",
    tools: ctx.tools,
    top_p: r.top_p ?? 1,
    truncation: "disabled",
    ...(r.user != null ? { user: r.user } : {}),
    metadata: r.metadata ?? {},
  };
}

export class ResponsesAdapter extends TranslatingAdapter {
  private seq = 0;
  private readonly output: Item[] = [];
  private current: OpenItem | null = null;
  private readonly calls = new Map<number, OpenItem>();
  private readonly sealed: boolean;

  constructor(
    stream: boolean,
    errors: ErrorShape,
    private readonly ctx: ResponseContext,
  ) {
    super(stream, errors);
    this.sealed = ctx.request.include?.includes("reasoning.encrypted_content") ?? false;
  }

  protected newCallId(): string {
    return newId("call");
  }

  private ev(type: string, fields: Record<string, unknown>): string {
    return sseEvent(type, { type, sequence_number: this.seq++, ...fields });
  }

  protected opening(): string {
    const response = responseObject(this.ctx, "in_progress", []);
    return this.ev("response.created", { response }) + this.ev("response.in_progress", { response });
  }

  protected translate(e: ChatEvent): string {
    switch (e.kind) {
      case "reasoning":
        return this.into("reasoning") + this.delta("response.reasoning_text.delta", e.text);
      case "text":
        return this.into("message") + this.delta("response.output_text.delta", e.text, { logprobs: [] });
      case "tool_call": {
        const out = this.close();
        const item: Item = { id: newId("fc"), type: "function_call", status: "in_progress", call_id: e.id, name: e.name, arguments: "" };
        const open = this.add(item, e.index);
        this.calls.set(e.index, open);
        return out + this.ev("response.output_item.added", { output_index: open.outputIndex, item: { ...item } });
      }
      case "tool_arguments": {
        const open = this.calls.get(e.index);
        if (!open) return "";
        open.item.arguments = String(open.item.arguments) + e.delta;
        return this.ev("response.function_call_arguments.delta", { item_id: open.item.id, output_index: open.outputIndex, delta: e.delta });
      }
      default:
        return "";
    }
  }

  /** Makes sure the open item is of this kind (closing another one first). */
  private into(type: "reasoning" | "message"): string {
    if (this.current?.item.type === type) return "";
    let out = this.close();
    const item: Item =
      type === "reasoning"
        ? { id: newId("rs"), type, summary: [], content: [], status: "in_progress" }
        : { id: newId("msg"), type, role: "assistant", status: "in_progress", content: [] };
    const open = this.add(item);
    const part = type === "reasoning" ? { type: "reasoning_text", text: "" } : { type: "output_text", text: "", annotations: [], logprobs: [] };
    out += this.ev("response.output_item.added", { output_index: open.outputIndex, item: { ...item, content: [] } });
    out += this.ev("response.content_part.added", { item_id: item.id, output_index: open.outputIndex, content_index: 0, part });
    (item.content as { text: string }[]).push({ ...part });
    return out;
  }

  private add(item: Item, callIndex?: number): OpenItem {
    this.output.push(item);
    this.current = { item, outputIndex: this.output.length - 1, callIndex };
    return this.current;
  }

  private delta(type: string, text: string, extra: Record<string, unknown> = {}): string {
    const open = this.current!;
    (open.item.content as { text: string }[])[0]!.text += text;
    return this.ev(type, { item_id: open.item.id, output_index: open.outputIndex, content_index: 0, delta: text, ...extra });
  }

  /** The .done events of the open item. */
  private close(status = "completed"): string {
    const open = this.current;
    if (!open) return "";
    this.current = null;
    const { item, outputIndex } = open;
    const base = { item_id: item.id, output_index: outputIndex };
    let out = "";
    if (item.type === "function_call") {
      out += this.ev("response.function_call_arguments.done", { ...base, name: item.name, arguments: item.arguments });
    } else {
      const part = (item.content as Record<string, unknown>[])[0]!;
      const text = part.text as string;
      if (item.type === "reasoning") out += this.ev("response.reasoning_text.done", { ...base, content_index: 0, text });
      else out += this.ev("response.output_text.done", { ...base, content_index: 0, text, logprobs: [] });
      out += this.ev("response.content_part.done", { ...base, content_index: 0, part });
      if (item.type === "reasoning" && this.sealed) item.encrypted_content = sealReasoning(text);
    }
    item.status = status;
    return out + this.ev("response.output_item.done", { output_index: outputIndex, item });
  }

  /** The finished Response, kept in the store when asked. */
  private async finished(output: Item[]): Promise<Record<string, unknown>> {
    const t = this.turn;
    const incomplete = t.finishReason === "length";
    const response = responseObject(this.ctx, incomplete ? "incomplete" : "completed", output);
    if (incomplete) response.incomplete_details = { reason: "max_output_tokens" };
    else response.completed_at = Math.floor(Date.now() / 1000);
    const input = t.usage?.promptTokens ?? 0;
    const outputTokens = t.usage?.completionTokens ?? 0;
    response.usage = {
      input_tokens: input,
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: input + outputTokens,
    };
    await this.ctx.save?.(response);
    return response;
  }

  protected async closing(): Promise<string> {
    const out = this.close(this.turn.finishReason === "length" ? "incomplete" : "completed");
    const response = await this.finished(this.output);
    return out + this.ev(response.status === "incomplete" ? "response.incomplete" : "response.completed", { response });
  }

  protected failure(message: string): string {
    const response = responseObject(this.ctx, "failed", this.output);
    response.error = { code: "server_error", message };
    return this.ev("response.failed", { response });
  }

  protected whole(): Promise<Record<string, unknown>> {
    const t = this.turn;
    const output: Item[] = [];
    const status = t.finishReason === "length" ? "incomplete" : "completed";
    if (t.reasoning) {
      output.push({
        id: newId("rs"),
        type: "reasoning",
        summary: [],
        content: [{ type: "reasoning_text", text: t.reasoning }],
        ...(this.sealed ? { encrypted_content: sealReasoning(t.reasoning) } : {}),
        status: "completed",
      });
    }
    if (t.text || t.toolCalls.length === 0) {
      output.push({
        id: newId("msg"),
        type: "message",
        role: "assistant",
        status,
        content: [{ type: "output_text", text: t.text, annotations: [], logprobs: [] }],
      });
    }
    for (const call of t.toolCalls)
      output.push({ id: newId("fc"), type: "function_call", status: "completed", call_id: call.id, name: call.name, arguments: call.arguments });
    return this.finished(output);
  }
}
