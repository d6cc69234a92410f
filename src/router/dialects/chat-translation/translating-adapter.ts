// The response adapter of the dialects that translate the node's OpenAI chat answer into another
// API's shape (Responses, Anthropic Messages). The node always streams (with usage); this reads
// the stream once and either writes the dialect's own events as they come or, for a client that
// did not ask for a stream, builds its one object at the end. A node's non-2xx answer becomes the
// dialect's error body with the same status.
import type { ResponseAdapter, UpstreamHead } from "../../request-path/response-adapter.js";
import { ChatAnswerReader, ChatTurn, upstreamError, type ChatEvent } from "./chat-answer.js";
import type { ErrorShape } from "../../request-path/client-edge.js";

const JSON_TYPE = "application/json";
const SSE_TYPE = "text/event-stream; charset=utf-8";

export abstract class TranslatingAdapter implements ResponseAdapter {
  readonly unchanged = false;
  readonly eagerHead = false;
  protected upstream: UpstreamHead | null = null;
  protected readonly turn = new ChatTurn();
  private reader: ChatAnswerReader | null = null;
  private readonly errorChunks: Buffer[] = [];
  private opened = false;
  /** Status of a non-streamed answer that failed after the node said 200. */
  private failedStatus: number | null = null;

  constructor(
    /** The client asked for a stream. */
    protected readonly stream: boolean,
    readonly errors: ErrorShape,
  ) {}

  /** The events that open the client's stream (sent once the node has answered 2xx). */
  protected abstract opening(): string;
  /** The client's events for one event of the node's answer. */
  protected abstract translate(event: ChatEvent): string;
  /** The events that end the stream after the node's answer ended (may write to a store first). */
  protected abstract closing(): string | Promise<string>;
  /** The event that ends a stream whose answer failed (the engine's error or a broken connection). */
  protected abstract failure(message: string): string;
  /** The one object for a client that did not ask for a stream (may write to a store first). */
  protected abstract whole(): unknown;
  /** A new id for a tool call the engine sent without one. */
  protected abstract newCallId(): string;

  private get ok(): boolean {
    return this.upstream !== null && this.upstream.status >= 200 && this.upstream.status < 300;
  }

  start(head: UpstreamHead): void {
    this.upstream = head;
    if (this.ok) this.reader = new ChatAnswerReader(/event-stream/.test(head.contentType), () => this.newCallId());
  }

  head(): { status: number; contentType: string } {
    if (!this.ok) return { status: this.errors.status(this.upstream?.status ?? 502), contentType: JSON_TYPE };
    if (this.stream) return { status: 200, contentType: SSE_TYPE };
    return { status: this.errors.status(this.failedStatus ?? 200), contentType: JSON_TYPE };
  }

  chunk(data: Buffer): string {
    if (!this.reader) {
      this.errorChunks.push(data);
      return "";
    }
    return this.take(this.reader.push(data));
  }

  async end(): Promise<string> {
    if (!this.reader) {
      const status = this.upstream?.status ?? 502;
      return JSON.stringify(this.errors.body(status, upstreamError(Buffer.concat(this.errorChunks).toString("utf8"), status), "upstream_error"));
    }
    const out = this.take(this.reader.end());
    if (this.stream) {
      if (this.turn.error !== null) return out;
      return out + (await this.closing());
    }
    if (this.turn.error !== null) {
      this.failedStatus = 500;
      return JSON.stringify(this.errors.body(500, `the engine failed: ${this.turn.error}`, "engine_error"));
    }
    try {
      return JSON.stringify(await this.whole());
    } catch (err) {
      this.failedStatus = 502;
      return JSON.stringify(this.errors.body(502, `the node's answer could not be translated: ${(err as Error).message}`, "untranslatable_answer"));
    }
  }

  fail(message: string): string {
    if (this.stream) return this.opened ? this.failure(message) : this.openStream() + this.failure(message);
    this.failedStatus = 502;
    return JSON.stringify(this.errors.body(502, message, "upstream_failed"));
  }

  private openStream(): string {
    this.opened = true;
    return this.opening();
  }

  private take(events: ChatEvent[]): string {
    let out = "";
    if (this.stream && !this.opened) out += this.openStream();
    for (const event of events) {
      if (this.turn.error !== null) break;
      this.turn.apply(event);
      if (!this.stream) continue;
      out += event.kind === "error" ? this.failure(`the engine failed: ${event.message}`) : this.translate(event);
    }
    return this.stream ? out : "";
  }
}

/** One server-sent event with a name, as both dialects write them. */
export function sseEvent(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}
