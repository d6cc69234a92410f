// Server-sent events on a raw Node response, as OpenAI streams them: `data: <json>\n\n` per
// event and `data: [DONE]\n\n` at the end. An event is written to the socket at once (Node's
// HTTP server disables Nagle; `x-accel-buffering: no` asks proxies not to buffer) unless the
// previous write was less than COALESCE_MS ago: then it waits for the end of that window and goes
// with every event made meanwhile, in one write. A model making tokens slower than one per
// COALESCE_MS (every real model on a GPU) gets each token sent as it is made; a fast one (the
// tiny test models make ~2,000 tokens/s) no longer costs a system call per token on the engine,
// the node and the router, which is where the streamed path lost its time.
import type { ServerResponse } from "node:http";

/** Longest an event waits to share a write with the events after it. */
export const COALESCE_MS = 4;

export class SseStream {
  private started = false;
  /** Events waiting for the current window to end. */
  private pending = "";
  private lastWrite = -Infinity;
  private timer: NodeJS.Timeout | null = null;

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
    if (!this.open) return;
    const event = `data: ${JSON.stringify(data)}\n\n`;
    const now = performance.now();
    if (this.timer === null && now - this.lastWrite >= COALESCE_MS) {
      this.res.write(event);
      this.lastWrite = now;
      return;
    }
    this.pending += event;
    this.timer ??= setTimeout(() => this.flush(), Math.max(0, COALESCE_MS - (now - this.lastWrite)));
  }

  /** What waits for the window's end, taken out (the timer stopped). */
  private takePending(): string {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const pending = this.pending;
    this.pending = "";
    return pending;
  }

  private flush(): void {
    const pending = this.takePending();
    if (pending && this.open) {
      this.res.write(pending);
      this.lastWrite = performance.now();
    }
  }

  /** Writes the [DONE] terminator and ends the response (with what was waiting, in one write). */
  done(): void {
    this.start();
    const pending = this.takePending();
    if (this.open) this.res.end(`${pending}data: [DONE]\n\n`);
  }

  /** Ends without [DONE] (after an error event, or when the client is gone). */
  end(): void {
    const pending = this.takePending();
    if (this.open) this.res.end(pending);
  }
}
