// Turning a stream of sampled tokens into a stream of text deltas.
//
// Two things can make text that a token produced not yet safe to send:
//  - a token can be part of a multi-byte UTF-8 character (byte-level vocabularies emit one byte
//    per token), so it decodes to U+FFFD until the rest of the character arrives;
//  - the text can be the start of a stop string, which must not reach the client if it completes.
// TokenTextDecoder holds back the first, StopStringMatcher the second; everything else is passed
// on at once, so a client sees each token as soon as it can be shown.

import type { Token } from "node-llama-cpp";

/** The part of LlamaModel this file needs (kept narrow so tests can fake it). */
export interface Detokenizer {
  detokenize(tokens: readonly Token[], specialTokens?: boolean, lastTokens?: readonly Token[]): string;
}

const REPLACEMENT_CHAR = "\uFFFD";
/** A UTF-8 character is at most 4 bytes, so at most 4 byte tokens. */
const MAX_PENDING_TOKENS = 4;
/** Tokens of context passed to the detokenizer, for its leading-space heuristics. */
const CONTEXT_TOKENS = 8;

export class TokenTextDecoder {
  private pending: Token[] = [];
  private context: Token[] = [];

  /** `specialTokens`: special tokens decode to their text (else to nothing). */
  constructor(
    private readonly model: Detokenizer,
    private readonly specialTokens = false,
  ) {}

  /** Adds one token; returns the text that became final (often the token's own text, may be ""). */
  push(token: Token): string {
    this.pending.push(token);
    const text = this.model.detokenize(this.pending, this.specialTokens, this.context);
    if (text.endsWith(REPLACEMENT_CHAR) && this.pending.length < MAX_PENDING_TOKENS) return "";
    this.commit();
    return text;
  }

  /** Returns whatever is held back (an incomplete character decodes to U+FFFD). */
  flush(): string {
    if (this.pending.length === 0) return "";
    const text = this.model.detokenize(this.pending, this.specialTokens, this.context);
    this.commit();
    return text;
  }

  private commit(): void {
    this.context.push(...this.pending);
    if (this.context.length > CONTEXT_TOKENS) this.context = this.context.slice(-CONTEXT_TOKENS);
    this.pending = [];
  }
}

export interface StopMatch {
  /** Text that is now safe to emit. */
  text: string;
  /** True once a stop string was seen; `text` then ends right before it and nothing follows. */
  stopped: boolean;
}

/**
 * Finds the first occurrence of any stop string in streamed text. Text that could be the start
 * of a stop string is held back until it either completes one (and is dropped) or cannot.
 */
export class StopStringMatcher {
  private readonly stops: string[];
  private held = "";
  private done = false;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  get stopped(): boolean {
    return this.done;
  }

  push(chunk: string): StopMatch {
    if (this.done) return { text: "", stopped: true };
    if (this.stops.length === 0) return { text: chunk, stopped: false };
    const buf = this.held + chunk;
    let first = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i !== -1 && (first === -1 || i < first)) first = i;
    }
    if (first !== -1) {
      this.done = true;
      this.held = "";
      return { text: buf.slice(0, first), stopped: true };
    }
    const keep = this.longestStopPrefixSuffix(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** Releases held-back text at the end of generation (it never completed a stop string). */
  flush(): string {
    const text = this.done ? "" : this.held;
    this.held = "";
    return text;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop string. */
  private longestStopPrefixSuffix(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, buf.length); k > best; k--) {
        if (buf.endsWith(s.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}
