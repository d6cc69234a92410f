// The engine's slots: the sequences of its one llama.cpp context. A request holds one sequence
// for its whole generation; when all are busy it waits, first come first served.
import { createHash } from "node:crypto";
import type { LlamaContextSequence, Token } from "node-llama-cpp";
import { messageText, type ChatMessage } from "../../protocol/openai.js";

/** What a slot last served: the conversation it holds. */
interface SlotUse {
  promptLength: number;
  conversation: string | undefined;
}

interface Waiter {
  prompt: readonly Token[];
  conversation: string | undefined;
  resolve(seq: LlamaContextSequence): void;
  reject(err: unknown): void;
  signal: AbortSignal;
  onAbort(): void;
}

export class SlotPool {
  private readonly free: LlamaContextSequence[];
  private readonly waiters: Waiter[] = [];
  private readonly uses = new Map<LlamaContextSequence, SlotUse>();

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
   * A free sequence: the one holding this conversation if one does (see take), else the least
   * recently used. `conversation` (conversationKey) names the chat the prompt belongs to. Rejects
   * with the signal's reason if it aborts while waiting.
   */
  acquire(prompt: readonly Token[], signal: AbortSignal, conversation?: string): Promise<LlamaContextSequence> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.free.length > 0) return Promise.resolve(this.take(prompt, conversation));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        prompt,
        conversation,
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
      this.uses.set(seq, { promptLength: waiter.prompt.length, conversation: waiter.conversation });
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

  /**
   * The free sequence whose state this prompt continues (it extends the prompt the sequence last
   * served, or comes from the same conversation: a template may re-render earlier turns, as
   * gpt-oss's drops their reasoning), the longest shared prefix first; only the new turn is then
   * evaluated. Otherwise the least recently used one, never-used ones first: the longest shared
   * prefix would be another open conversation's slot whenever conversations share a system
   * prompt, and taking it would evict a conversation every turn (slots free are kept in release
   * order, so the first is the least recently used).
   */
  private take(prompt: readonly Token[], conversation: string | undefined): LlamaContextSequence {
    let best = 0;
    let bestShared = 0;
    for (let i = 0; i < this.free.length; i++) {
      const seq = this.free[i];
      const shared = sharedPrefix(seq.contextTokens, prompt);
      const use = this.uses.get(seq);
      const continues =
        use !== undefined &&
        shared > 0 &&
        (shared >= Math.min(use.promptLength, seq.contextTokens.length) || (conversation !== undefined && use.conversation === conversation));
      if (continues && shared > bestShared) {
        best = i;
        bestShared = shared;
      }
    }
    const seq = this.free.splice(best, 1)[0];
    this.uses.set(seq, { promptLength: prompt.length, conversation });
    return seq;
  }
}

function sharedPrefix(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Names a chat by its opening, as far as its first user message (the system prompt alone is
 * shared by many conversations), so that its later turns find its slot.
 */
export function conversationKey(messages: readonly ChatMessage[]): string {
  const first = messages.findIndex((m) => m.role === "user");
  const opening = messages.slice(0, first === -1 ? messages.length : first + 1).map((m) => [m.role, messageText(m.content)]);
  return createHash("sha256").update(JSON.stringify(opening)).digest("base64url");
}
