// A token bucket shared by this node's downloads (`--download-limit`): keeps model transfers
// from saturating the router's link while several nodes fill up at once.
import { sleep } from "../shared/backoff.js";

export class RateLimiter {
  private available: number;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();

  /** `bytesPerSecond` > 0; bursts of up to a quarter second's worth pass at once. */
  constructor(private readonly bytesPerSecond: number) {
    this.available = this.burst;
  }

  private get burst(): number {
    return Math.max(64 * 1024, this.bytesPerSecond / 4);
  }

  /** Resolves once `bytes` may pass; callers are served in order. */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const turn = this.queue.then(async () => {
      for (;;) {
        const now = Date.now();
        this.available = Math.min(this.burst, this.available + ((now - this.last) * this.bytesPerSecond) / 1000);
        this.last = now;
        // A chunk bigger than the bucket passes once the bucket is full, leaving it in debt.
        if (this.available >= Math.min(bytes, this.burst)) {
          this.available -= bytes;
          return;
        }
        if (signal?.aborted) return;
        const missing = Math.min(bytes, this.burst) - this.available;
        await sleep(Math.max(5, Math.ceil((missing * 1000) / this.bytesPerSecond)), signal);
      }
    });
    this.queue = turn;
    return turn;
  }
}
