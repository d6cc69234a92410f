// Server-sent events on a raw Node response, as OpenAI streams them: `data: <json>\n\n` per
// event and `data: [DONE]\n\n` at the end. Every event is written to the socket at once (Node's
// HTTP server disables Nagle; `x-accel-buffering: no` asks proxies not to buffer), so each token
// reaches the client as it is made.
import type { ServerResponse } from "node:http";

export class SseStream {
  private started = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: Record<string, string> = {},
  ) {}

  /** False once the client has gone away (writes are then dropped). */
  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, {
      ...this.headers,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    this.res.flushHeaders();
  }

  send(data: unknown): void {
    this.start();
    if (this.open) this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** Writes the [DONE] terminator and ends the response. */
  done(): void {
    this.start();
    if (this.open) this.res.end("data: [DONE]\n\n");
  }

  /** Ends without [DONE] (after an error event, or when the client is gone). */
  end(): void {
    if (this.open) this.res.end();
  }
}
