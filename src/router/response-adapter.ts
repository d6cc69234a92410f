// How the proxy shapes a node's response for its client. The default relays the node's bytes
// unchanged (the OpenAI routes); the Ollama routes translate OpenAI SSE into Ollama NDJSON.
import { openAiError } from "../protocol/openai-errors.js";

/** What the proxy knows when the node's response starts. */
export interface UpstreamHead {
  status: number;
  contentType: string;
  nodeName: string;
  /** Time the request waited for capacity so far (all attempts). */
  queueWaitMs: number;
}

export interface ResponseAdapter {
  /** Send the head as soon as the node answers (true), or just before the first bytes for the client. */
  readonly eagerHead: boolean;
  /** The node answered; called once, before any other callback. */
  start(head: UpstreamHead): void;
  /** Status and content type for the client, read once, just before the head is written. */
  head(): { status: number; contentType: string };
  /** Bytes for the client from one chunk of the node's body ("" when nothing is due yet). */
  chunk(data: Buffer): string | Buffer;
  /** The node's body ended: the last bytes for the client (a dialect may first write to its store). */
  end(): string | Buffer | Promise<string | Buffer>;
  /** The node's body broke: the bytes that end the client's response, or null to cut the connection. */
  fail(message: string): string | Buffer | null;
}

/** Relays the node's status, content type and bytes as they are. */
export class PassthroughAdapter implements ResponseAdapter {
  readonly eagerHead = true;
  private upstream: UpstreamHead = { status: 502, contentType: "application/json", nodeName: "", queueWaitMs: 0 };

  /** @param streamErrorFormat how an error must look inside a stream already started. */
  constructor(private readonly streamErrorFormat: "sse" | "ndjson") {}

  start(head: UpstreamHead): void {
    this.upstream = head;
  }

  head(): { status: number; contentType: string } {
    return { status: this.upstream.status, contentType: this.upstream.contentType };
  }

  chunk(data: Buffer): Buffer {
    return data;
  }

  end(): string {
    return "";
  }

  fail(message: string): string | null {
    // A stream gets a final error event its client can parse; a plain body cannot be patched,
    // so the connection is cut and the client sees a truncated response.
    if (!/event-stream|ndjson/.test(this.upstream.contentType)) return null;
    if (this.streamErrorFormat === "ndjson") return JSON.stringify({ error: message }) + "\n";
    return `data: ${JSON.stringify(openAiError(message, "server_error", "upstream_failed"))}\n\n`;
  }
}
