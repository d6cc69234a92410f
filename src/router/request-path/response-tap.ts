// Watches a node's response bytes as the proxy relays them, for the request record: token usage
// (from the SSE chunk or JSON body that carries `usage`) and, when body capture is on, a
// size-capped copy of the response (the assembled text of a stream, the body otherwise). It
// only reads: the bytes go to the client unchanged and before the tap looks at them.
import { StringDecoder } from "node:string_decoder";

export interface TapResult {
  promptTokens: number | null;
  completionTokens: number | null;
  /** Tool calls in the answer (OpenAI's message.tool_calls, or distinct calls in a stream's deltas); null when the body could not be read. */
  toolCalls: number | null;
  /** Prompt tokens the engine reused from its cache (usage.prompt_tokens_details.cached_tokens). */
  cachedTokens: number | null;
  /** null unless capture is on. */
  responseBody: string | null;
}

/** A JSON body up to this size is parsed whole for its usage; beyond it, only its tail is searched. */
const WHOLE_JSON_LIMIT = 256 * 1024;
const TAIL_BYTES = 4096;
/** An SSE line longer than this is not a usage chunk worth holding on to. */
const MAX_LINE = 1024 * 1024;
const USAGE_KEY = /"usage"\s*:\s*\{/;
const TOOL_CALLS_KEY = /"tool_calls"\s*:\s*\[/;

/** The `"usage": {...}` object in a piece of JSON text (its last occurrence), braces balanced. */
export function findUsageObject(text: string): string | null {
  const at = text.lastIndexOf('"usage"');
  if (at < 0) return null;
  const open = /^"usage"\s*:\s*\{/.exec(text.slice(at));
  if (!open) return null;
  const start = at + open[0].length - 1;
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return text.slice(start, i + 1);
  }
  return null;
}

export function truncateUtf8(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, "utf8");
  if (buf.length <= maxBytes) return text;
  return (
    buf
      .subarray(0, maxBytes)
      .toString("utf8")
      .replace(/\uFFFD$/, "") + `…[truncated at ${maxBytes} bytes]`
  );
}

type Usage = { prompt_tokens?: unknown; completion_tokens?: unknown; prompt_tokens_details?: { cached_tokens?: unknown } | null };

function tokens(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.round(v) : null;
}

export class ResponseTap {
  private readonly sse: boolean;
  private usage: Usage | null = null;
  /** Stream: the distinct (choice, call index) pairs seen in tool-call deltas. */
  private streamCalls = new Set<string>();
  private bodyCalls: number | null = null;
  // SSE state
  private decoder = new StringDecoder("utf8");
  private pending = "";
  private text = "";
  private textBytes = 0;
  private textFull = false;
  // JSON state
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer = Buffer.alloc(0);

  /** @param captureBytes 0 = no body capture. */
  constructor(
    contentType: string,
    private readonly captureBytes: number,
  ) {
    this.sse = /text\/event-stream/i.test(contentType);
  }

  chunk(data: Buffer): void {
    if (this.sse) this.sseChunk(this.decoder.write(data));
    else this.jsonChunk(data);
  }

  private sseChunk(text: string): void {
    let start = 0;
    const all = this.pending + text;
    for (let nl = all.indexOf("\n", start); nl >= 0; nl = all.indexOf("\n", start)) {
      this.sseLine(all.slice(start, nl));
      start = nl + 1;
    }
    this.pending = all.length - start > MAX_LINE ? "" : all.slice(start);
  }

  private sseLine(line: string): void {
    if (!line.startsWith("data:")) return;
    const payload = line.slice(5).trim();
    if (payload === "" || payload === "[DONE]") return;
    const wantsText = this.captureBytes > 0 && !this.textFull;
    const hasUsage = USAGE_KEY.test(payload);
    const hasCalls = TOOL_CALLS_KEY.test(payload);
    if (!wantsText && !hasUsage && !hasCalls) return;
    let event: { usage?: Usage | null; choices?: { index?: unknown; delta?: { content?: unknown; tool_calls?: { index?: unknown }[] }; text?: unknown }[] };
    try {
      event = JSON.parse(payload) as typeof event;
    } catch {
      return;
    }
    if (hasUsage && event.usage) this.usage = event.usage;
    if (hasCalls) {
      for (const choice of event.choices ?? []) {
        for (const call of choice?.delta?.tool_calls ?? []) this.streamCalls.add(`${String(choice.index)}:${String(call?.index)}`);
      }
    }
    if (wantsText) {
      for (const choice of event.choices ?? []) {
        const piece = typeof choice?.delta?.content === "string" ? choice.delta.content : typeof choice?.text === "string" ? choice.text : "";
        if (piece) this.appendText(piece);
      }
    }
  }

  private appendText(piece: string): void {
    this.text += piece;
    this.textBytes += Buffer.byteLength(piece);
    if (this.textBytes > this.captureBytes) this.textFull = true;
  }

  private jsonChunk(data: Buffer): void {
    const keep = Math.max(WHOLE_JSON_LIMIT, this.captureBytes);
    if (this.headBytes < keep + 1) this.head.push(data);
    this.headBytes += data.length;
    this.tail = this.tail.length + data.length <= TAIL_BYTES ? Buffer.concat([this.tail, data]) : Buffer.concat([this.tail, data]).subarray(-TAIL_BYTES);
  }

  finish(): TapResult {
    let responseBody: string | null = null;
    if (this.sse) {
      const rest = this.pending + this.decoder.end();
      if (rest) this.sseLine(rest);
      if (this.captureBytes > 0) responseBody = truncateUtf8(this.text, this.captureBytes);
    } else {
      const whole = this.headBytes <= WHOLE_JSON_LIMIT ? Buffer.concat(this.head).toString("utf8") : null;
      let usageText: string | null = null;
      if (whole !== null) {
        try {
          const body = JSON.parse(whole) as { usage?: Usage; choices?: { message?: { tool_calls?: unknown } }[] };
          if (body && typeof body === "object" && body.usage) this.usage = body.usage;
          if (body && Array.isArray(body.choices)) {
            this.bodyCalls = body.choices.reduce((n, c) => n + (Array.isArray(c?.message?.tool_calls) ? c.message.tool_calls.length : 0), 0);
          }
        } catch {
          // not JSON (an error page): no usage
        }
      } else if ((usageText = findUsageObject(this.tail.toString("utf8")))) {
        try {
          this.usage = JSON.parse(usageText) as Usage;
        } catch {
          // a cut-off tail: no usage
        }
      }
      if (this.captureBytes > 0) responseBody = truncateUtf8(whole ?? Buffer.concat(this.head).toString("utf8"), this.captureBytes);
    }
    return {
      promptTokens: tokens(this.usage?.prompt_tokens),
      completionTokens: tokens(this.usage?.completion_tokens),
      cachedTokens: tokens(this.usage?.prompt_tokens_details?.cached_tokens),
      toolCalls: this.sse ? this.streamCalls.size : this.bodyCalls,
      responseBody,
    };
  }
}
