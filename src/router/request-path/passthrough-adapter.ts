// The relay of a dialect that passes the node's answer on as it is (the OpenAI routes): status,
// content type and bytes unchanged, whole events only (see PassthroughAdapter).
import type { ResponseAdapter, UpstreamHead } from "./response-adapter.js";

const LF = 0x0a;
const CR = 0x0d;
const isLineEnd = (b: number | undefined) => b === LF || b === CR;

/**
 * Where the last complete unit of a stream ends in `buf` (0 when none does): for SSE the blank line
 * that closes an event (LF, CRLF or CR line ends), for NDJSON the newline that closes a line.
 */
export function lastBoundary(buf: Buffer, format: "sse" | "ndjson", from = 0): number {
  // Bytes before `from` are known to hold no boundary: a long event arriving in many chunks is
  // scanned once, not once per chunk.
  if (format === "ndjson") {
    const at = buf.subarray(from).lastIndexOf(LF);
    return at === -1 ? 0 : from + at + 1;
  }
  for (let end = buf.length; end >= Math.max(2, from + 1); end--) {
    const last = buf[end - 1];
    if (!isLineEnd(last)) continue;
    // A CR as the very last byte may be the first half of a CRLF: decide when the next byte is in.
    if (last === CR && end === buf.length) continue;
    // The byte before the line end closes the previous line, i.e. the line just ended was empty.
    const crlf = last === LF && buf[end - 2] === CR;
    if (isLineEnd(buf[crlf ? end - 3 : end - 2])) return end;
  }
  return 0;
}

/**
 * Relays the node's status, content type and bytes as they are, one complete event (SSE) or line
 * (NDJSON) at a time: the bytes of an event still arriving are held until its end, so that when the
 * node dies mid-event, its partial event is dropped and the error event that ends the stream starts
 * on a clean boundary instead of being glued to half a line.
 */
export class PassthroughAdapter implements ResponseAdapter {
  readonly unchanged = true;
  readonly eagerHead = true;
  private upstream: UpstreamHead = { status: 502, contentType: "application/json", nodeName: "", queueWaitMs: 0 };
  /** How the node's stream is framed; null for a body that is not a stream. */
  private format: "sse" | "ndjson" | null = null;
  /** Bytes after the last complete event, not yet sent. */
  private partial: Buffer | null = null;

  /** @param streamError the dialect's event that ends a stream already started with an error. */
  constructor(private readonly streamError: (message: string) => string) {}

  start(head: UpstreamHead): void {
    this.upstream = head;
    this.format = /event-stream/.test(head.contentType) ? "sse" : /ndjson/.test(head.contentType) ? "ndjson" : null;
  }

  head(): { status: number; contentType: string } {
    return { status: this.upstream.status, contentType: this.upstream.contentType };
  }

  chunk(data: Buffer): Buffer {
    const format = this.format;
    if (format === null) return data;
    const held = this.partial?.length ?? 0;
    const buf = this.partial ? Buffer.concat([this.partial, data]) : data;
    // A boundary may end in the new bytes while starting up to 3 bytes earlier ("\r\n\r\n").
    const end = lastBoundary(buf, format, Math.max(0, held - 3));
    // The usual case: the node writes whole events, so the chunk is passed on as it is.
    this.partial = end === buf.length ? null : buf.subarray(end);
    return end === buf.length ? buf : buf.subarray(0, end);
  }

  /** The node ended its body: whatever it sent last goes out as it is. */
  end(): Buffer | string {
    const rest = this.partial ?? "";
    this.partial = null;
    return rest;
  }

  fail(message: string): string | null {
    // A stream gets a final error event its client can parse; a plain body cannot be patched,
    // so the connection is cut and the client sees a truncated response.
    if (this.format === null) return null;
    this.partial = null; // the event the node died in: never completed, never sent
    return this.streamError(message);
  }
}
