// Turns a node's non-streamed OpenAI JSON answer (embeddings) into Ollama's object. The body is a
// single JSON document, so it is read whole before it is translated.
import type { ResponseAdapter, UpstreamHead } from "../../request-path/response-adapter.js";
import { JSON_CONTENT_TYPE } from "./ndjson.js";
import { upstreamErrorMessage } from "./response-translation.js";

/** Builds the client's object from the node's parsed 2xx body; throws if it cannot. */
export type JsonTranslation = (body: unknown, upstream: UpstreamHead) => unknown;

export class OllamaJsonAdapter implements ResponseAdapter {
  readonly unchanged = false;
  readonly eagerHead = false;
  private upstream: UpstreamHead | null = null;
  private chunks: Buffer[] = [];
  private status = 502;

  constructor(private readonly translate: JsonTranslation) {}

  start(head: UpstreamHead): void {
    this.upstream = head;
    this.status = head.status;
  }

  head(): { status: number; contentType: string } {
    return { status: this.status, contentType: JSON_CONTENT_TYPE };
  }

  chunk(data: Buffer): string {
    this.chunks.push(data);
    return "";
  }

  end(): string {
    const raw = Buffer.concat(this.chunks).toString("utf8");
    const upstream = this.upstream!;
    if (upstream.status < 200 || upstream.status >= 300) return JSON.stringify({ error: upstreamErrorMessage(raw, upstream.status) });
    try {
      return JSON.stringify(this.translate(JSON.parse(raw) as unknown, upstream));
    } catch (err) {
      this.status = 502;
      return JSON.stringify({ error: `unreadable answer from node ${upstream.nodeName}: ${(err as Error).message}` });
    }
  }

  fail(message: string): string {
    this.status = 502;
    return JSON.stringify({ error: message });
  }
}
