// The engine's slots: the sequences of its one llama.cpp context. A request holds one sequence
// for its whole generation; when all are busy it waits, first come first served.
import type { LlamaContextSequence, Token } from "node-llama-cpp";

interface Waiter {
  prompt: readonly Token[];
  resolve(seq: LlamaContextSequence): void;
  reject(err: unknown): void;
  signal: AbortSignal;
  onAbort(): void;
}

export class SlotPool {
  private readonly free: LlamaContextSequence[];
  private readonly waiters: Waiter[] = [];

  constructor(sequences: readonly LlamaContextSequence[]) {
    this.free = [...sequences];
  }

  get idle(): number {
    return this.free.length;
  }

  get queued(): number {
    return this.waiters.length;
  }

  /**
   * A free sequence, preferring the one whose cached state shares the longest prefix with
   * `prompt` (multi-turn chats then only evaluate the new turn). Rejects with the signal's reason
   * if it aborts while waiting.
   */
  acquire(prompt: readonly Token[], signal: AbortSignal): Promise<LlamaContextSequence> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.free.length > 0) return Promise.resolve(this.take(prompt));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        prompt,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(waiter);
          if (i !== -1) this.waiters.splice(i, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(seq: LlamaContextSequence): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.signal.removeEventListener("abort", waiter.onAbort);
      waiter.resolve(seq);
      return;
    }
    this.free.push(seq);
  }

  /** Rejects everyone waiting (engine shutdown). */
  rejectWaiters(err: unknown): void {
    for (const w of this.waiters.splice(0)) {
      w.signal.removeEventListener("abort", w.onAbort);
      w.reject(err);
    }
  }

  private take(prompt: readonly Token[]): LlamaContextSequence {
    let best = 0;
    let bestShared = -1;
    for (let i = 0; i < this.free.length; i++) {
      const shared = sharedPrefix(this.free[i].contextTokens, prompt);
      if (shared > bestShared) {
        best = i;
        bestShared = shared;
      }
    }
    return this.free.splice(best, 1)[0];
  }
}

function sharedPrefix(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
