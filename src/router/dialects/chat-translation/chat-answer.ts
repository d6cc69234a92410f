// Every dialect is translated at the router's edge into the one internal request, an OpenAI chat
// completion. This reads the node's answer to it — an SSE stream of chunks, or one
// chat.completion object from a server that ignored `stream` — as a list of events the dialect
// adapters translate, and folds those events into the finished turn.
import { SseDataParser } from "../ollama/sse-parser.js";

/**
 * Where the engine puts the assistant's reasoning in `message` and `delta` (llama-server's name).
 * The one place to change it; the request translations send earlier reasoning back under it too.
 */
export const REASONING_FIELD = "reasoning_content";

export type ChatEvent =
  | { kind: "text"; text: string }
  | { kind: "reasoning"; text: string }
  /** A tool call begins (its first delta carries the id and the function's name). */
  | { kind: "tool_call"; index: number; id: string; name: string }
  | { kind: "tool_arguments"; index: number; delta: string }
  | { kind: "finish"; reason: string }
  | { kind: "usage"; promptTokens: number; completionTokens: number }
  /** The engine failed mid-answer (an error event in the stream). */
  | { kind: "error"; message: string };

export interface ToolCall {
  id: string;
  name: string;
  /** A JSON string, as OpenAI sends it. */
  arguments: string;
}

interface ToolCallDelta {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

interface ChoicePart {
  content?: unknown;
  tool_calls?: ToolCallDelta[] | null;
  [field: string]: unknown;
}

/** Reads one node answer; `streamed` when the node's content type is an event stream. */
export class ChatAnswerReader {
  private readonly sse = new SseDataParser();
  private readonly whole: Buffer[] = [];
  private readonly started = new Set<number>();
  private done = false;

  constructor(
    private readonly streamed: boolean,
    /** Makes an id for a tool call the engine sent without one. */
    private readonly newCallId: () => string,
  ) {}

  push(data: Buffer): ChatEvent[] {
    if (!this.streamed) {
      this.whole.push(data);
      return [];
    }
    return this.payloads(this.sse.push(data));
  }

  end(): ChatEvent[] {
    if (this.streamed) return this.payloads(this.sse.end());
    const raw = Buffer.concat(this.whole).toString("utf8");
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return [{ kind: "error", message: "the node's answer is not JSON" }];
    }
    return this.object(body, "message");
  }

  private payloads(payloads: string[]): ChatEvent[] {
    const out: ChatEvent[] = [];
    for (const payload of payloads) {
      if (this.done) break;
      if (payload === "[DONE]") {
        this.done = true;
        break;
      }
      let chunk: unknown;
      try {
        chunk = JSON.parse(payload);
      } catch {
        continue; // an event we cannot read carries nothing to translate
      }
      out.push(...this.object(chunk, "delta"));
    }
    return out;
  }

  /** Events of one stream chunk (`delta`) or of a whole answer (`message`). */
  private object(body: unknown, part: "delta" | "message"): ChatEvent[] {
    const out: ChatEvent[] = [];
    const b = body as {
      error?: { message?: unknown };
      choices?: { finish_reason?: unknown; delta?: ChoicePart; message?: ChoicePart }[];
      usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
    };
    if (b?.error) {
      this.done = true;
      return [{ kind: "error", message: typeof b.error.message === "string" ? b.error.message : "the engine failed" }];
    }
    const choice = b?.choices?.[0];
    const piece = choice?.[part];
    if (piece) {
      const reasoning = piece[REASONING_FIELD];
      if (typeof reasoning === "string" && reasoning) out.push({ kind: "reasoning", text: reasoning });
      if (typeof piece.content === "string" && piece.content) out.push({ kind: "text", text: piece.content });
      for (const [position, call] of (piece.tool_calls ?? []).entries()) {
        const index = typeof call.index === "number" ? call.index : position;
        if (!this.started.has(index)) {
          this.started.add(index);
          out.push({ kind: "tool_call", index, id: call.id || this.newCallId(), name: call.function?.name ?? "" });
        }
        const args = call.function?.arguments;
        if (typeof args === "string" && args) out.push({ kind: "tool_arguments", index, delta: args });
      }
    }
    if (typeof choice?.finish_reason === "string") out.push({ kind: "finish", reason: choice.finish_reason });
    const u = b?.usage;
    if (u && typeof u.prompt_tokens === "number" && typeof u.completion_tokens === "number") {
      out.push({ kind: "usage", promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens });
    }
    return out;
  }
}

/** The finished turn, folded from the events. */
export class ChatTurn {
  text = "";
  reasoning = "";
  readonly toolCalls: ToolCall[] = [];
  private readonly byIndex = new Map<number, ToolCall>();
  finishReason: string | null = null;
  usage: { promptTokens: number; completionTokens: number } | null = null;
  error: string | null = null;

  apply(e: ChatEvent): void {
    switch (e.kind) {
      case "text":
        this.text += e.text;
        break;
      case "reasoning":
        this.reasoning += e.text;
        break;
      case "tool_call": {
        const call = { id: e.id, name: e.name, arguments: "" };
        this.byIndex.set(e.index, call);
        this.toolCalls.push(call);
        break;
      }
      case "tool_arguments": {
        const call = this.byIndex.get(e.index);
        if (call) call.arguments += e.delta;
        break;
      }
      case "finish":
        this.finishReason = e.reason;
        break;
      case "usage":
        this.usage = { promptTokens: e.promptTokens, completionTokens: e.completionTokens };
        break;
      case "error":
        this.error = e.message;
        break;
    }
  }
}

/** The message of a node's error body (OpenAI's shape, or anything else), for the client. */
export function upstreamError(raw: string, status: number): string {
  try {
    const body = JSON.parse(raw) as { error?: { message?: unknown } | string };
    if (typeof body.error === "string") return body.error;
    if (typeof body.error?.message === "string") return body.error.message;
  } catch {
    // not JSON: the text itself, below
  }
  return raw.trim().slice(0, 500) || `the node answered ${status}`;
}
