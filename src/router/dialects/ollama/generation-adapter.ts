// Turns a node's OpenAI stream (chat or completion chunks over SSE) into Ollama's answer for
// /api/chat and /api/generate: NDJSON lines written as the chunks arrive, or, for `stream: false`,
// one object at the end. Timings are taken here, at the router, as the chunks pass.
import type { ResponseAdapter, UpstreamHead } from "../../request-path/response-adapter.js";
import { JSON_CONTENT_TYPE, NDJSON_CONTENT_TYPE, ndjsonLine } from "./ndjson.js";
import {
  chunkFinishReason,
  chunkReasoning,
  chunkText,
  chunkToolCalls,
  chunkUsage,
  msToNs,
  ollamaFinal,
  ollamaPiece,
  ollamaToolCalls,
  upstreamErrorMessage,
  type GenerationKind,
  type TokenCounts,
} from "./response-translation.js";
import { SseDataParser } from "./sse-parser.js";

export interface GenerationAdapterOptions {
  kind: GenerationKind;
  stream: boolean;
  /** The model name as the client wrote it (echoed in every object). */
  model: string;
  /** performance.now() when the router received the request. */
  receivedAt: number;
  /** Monotonic milliseconds (tests pass a fake clock). */
  now?: () => number;
  /** false (think: false): reasoning the engine returns anyway is not passed on. Default true. */
  think?: boolean;
}

export class OllamaGenerationAdapter implements ResponseAdapter {
  readonly unchanged = false;
  readonly eagerHead = false;
  private readonly now: () => number;
  private readonly sse = new SseDataParser();
  private upstream: UpstreamHead | null = null;
  /** "sse": the node streams; "json": it answered one object (servers that ignore `stream`); "error": not 2xx. */
  private mode: "sse" | "json" | "error" = "error";
  /** The node's body when it is not a stream: kept whole, translated at the end. */
  private rawBody: Buffer[] = [];
  private text = "";
  private thinking = "";
  /** Tool calls assembled from the deltas, by index; Ollama sends them whole. */
  private calls: { name: string; arguments: string }[] = [];
  private callsSent = false;
  private finishReason: string | null = null;
  private counts: TokenCounts | null = null;
  private error: { status: number; message: string } | null = null;
  /** The `done: true` object, once the node's stream ended. */
  private done: string | null = null;
  private headAt = 0;
  private firstTextAt: number | null = null;
  private finishedAt: number | null = null;

  constructor(private readonly opts: GenerationAdapterOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  start(head: UpstreamHead): void {
    this.upstream = head;
    this.headAt = this.now();
    if (head.status < 200 || head.status >= 300) this.mode = "error";
    else this.mode = /event-stream/.test(head.contentType) ? "sse" : "json";
  }

  head(): { status: number; contentType: string } {
    if (this.mode === "error") return { status: this.upstream?.status ?? 502, contentType: JSON_CONTENT_TYPE };
    if (this.opts.stream) return { status: 200, contentType: NDJSON_CONTENT_TYPE };
    return { status: this.error?.status ?? 200, contentType: JSON_CONTENT_TYPE };
  }

  chunk(data: Buffer): string {
    if (this.mode !== "sse") {
      this.rawBody.push(data);
      return "";
    }
    return this.events(this.sse.push(data));
  }

  end(): string {
    const raw = () => Buffer.concat(this.rawBody).toString("utf8");
    if (this.mode === "error") return JSON.stringify({ error: upstreamErrorMessage(raw(), this.upstream?.status ?? 502) });
    let out = this.events(this.mode === "sse" ? this.sse.end() : [raw()]);
    // A stream that ended without [DONE] and without an error still gets its final object.
    if (this.done === null && !this.error) out += this.final();
    if (this.opts.stream) return out;
    return this.error ? JSON.stringify({ error: this.error.message }) : this.done!;
  }

  fail(message: string): string {
    if (this.opts.stream) return this.done !== null ? "" : ndjsonLine({ error: message });
    this.error = { status: 502, message };
    return JSON.stringify({ error: message });
  }

  /** NDJSON for the stream (nothing for a single answer, which is built at the end). */
  private events(payloads: string[]): string {
    let out = "";
    for (const payload of payloads) {
      if (this.done !== null || this.error) break;
      if (payload === "[DONE]") {
        out += this.final();
        continue;
      }
      let chunk: unknown;
      try {
        chunk = JSON.parse(payload);
      } catch {
        continue; // not ours to judge: an unparseable event carries nothing we can relay
      }
      const err = (chunk as { error?: { message?: unknown } }).error;
      if (err) {
        // The engine failed mid-generation (it ends the stream after this event).
        const message = typeof err.message === "string" ? err.message : "the engine failed";
        this.error = { status: 500, message };
        if (this.opts.stream) out += ndjsonLine({ error: message });
        break;
      }
      const text = chunkText(chunk);
      const thinking = this.opts.think === false ? "" : chunkReasoning(chunk);
      for (const d of chunkToolCalls(chunk)) {
        const call = (this.calls[d.index ?? this.calls.length] ??= { name: "", arguments: "" });
        call.name += d.function?.name ?? "";
        call.arguments += d.function?.arguments ?? "";
      }
      if (text || thinking) {
        const at = this.now();
        this.firstTextAt ??= at;
        this.finishedAt = at;
        if (this.opts.stream) out += ndjsonLine(ollamaPiece(this.opts.kind, this.opts.model, text, new Date(), { thinking }));
        else {
          this.text += text;
          this.thinking += thinking;
        }
      }
      const reason = chunkFinishReason(chunk);
      if (reason) {
        this.finishReason = reason;
        this.finishedAt = this.now();
        out += this.sendCalls();
      }
      this.counts = chunkUsage(chunk) ?? this.counts;
    }
    return this.opts.stream ? out : "";
  }

  /** Streaming: the assembled tool calls in one piece, as Ollama sends them (once). */
  private sendCalls(): string {
    if (!this.opts.stream || this.callsSent || this.calls.length === 0) return "";
    this.callsSent = true;
    return ndjsonLine(ollamaPiece(this.opts.kind, this.opts.model, "", new Date(), { toolCalls: ollamaToolCalls(this.calls.filter(Boolean)) }));
  }

  /** Builds the `done: true` object; returns it as a line when streaming ("" otherwise: end() sends it). */
  private final(): string {
    const pending = this.sendCalls();
    const end = this.now();
    const finishedAt = this.finishedAt ?? end;
    const firstAt = this.firstTextAt ?? finishedAt;
    const timings = {
      total_duration: msToNs(end - this.opts.receivedAt),
      // Ollama's load_duration is the wait for a runner: here the wait for a node with capacity.
      load_duration: msToNs(this.upstream?.queueWaitMs ?? 0),
      prompt_eval_duration: msToNs(firstAt - this.headAt),
      eval_duration: msToNs(finishedAt - firstAt),
    };
    const extras = this.opts.stream ? {} : { thinking: this.thinking, toolCalls: ollamaToolCalls(this.calls.filter(Boolean)) };
    const done = ollamaFinal(this.opts.kind, this.opts.model, this.opts.stream ? "" : this.text, this.finishReason, this.counts, timings, new Date(), extras);
    this.done = JSON.stringify(done);
    return this.opts.stream ? pending + ndjsonLine(done) : "";
  }
}
