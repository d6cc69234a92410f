// The model side of the engine: loading, slot-bound generation with per-token callbacks,
// stop strings, max tokens and abort, and embeddings.
import {
  LlamaGrammarEvaluationState,
  TokenBias,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import type { Logger } from "pino";
import { InvalidRequestError } from "./errors.js";
import { ChatPromptBuilder } from "./prompt.js";
import { getRuntime } from "./runtime.js";
import { SlotPool } from "./slots.js";
import { StopStringMatcher, TokenTextDecoder } from "./text-stream.js";

export { InvalidRequestError };

export interface InferenceOptions {
  modelPath: string;
  threads: number;
  slots: number;
  contextSize: number;
  log: Logger;
}

export interface GenerateRequest {
  prompt: Token[];
  /** Upper bound on sampled tokens; lowered to what fits in the context. */
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: readonly string[];
  /** llama.cpp's samplers beyond OpenAI's (0 = off); OpenAI has neither, so both default to off. */
  topK?: number;
  minP?: number;
  /** Penalties over the last REPEAT_LAST_N tokens (llama.cpp's repeat_last_n default). */
  repeatPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** OpenAI's logit_bias: token id → bias in [-100, 100] (-100 bans the token). */
  logitBias?: Readonly<Record<number, number>>;
  /** Decode special tokens as their text (Harmony's channel markers are part of the output's structure). */
  specialTokens?: boolean;
  /** Constrains sampling (response_format); generation stops once the grammar is complete. */
  grammar?: LlamaGrammar;
  signal: AbortSignal;
  /** Called with each piece of text as soon as it is final (never with ""). */
  onText?: (text: string) => void;
}

export type FinishReason = "stop" | "length";

export interface GenerateResult {
  text: string;
  /** "abort" when the signal ended it (the client went away or the engine is closing). */
  finishReason: FinishReason | "abort";
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens taken from the slot's cached state instead of being evaluated. */
  cachedTokens: number;
}

export class LlamaInference {
  readonly chat: ChatPromptBuilder;
  private readonly pool: SlotPool;
  private embedding: Promise<LlamaEmbeddingContext> | undefined;
  private closed = false;

  private constructor(
    readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly opts: InferenceOptions,
  ) {
    const sequences: LlamaContextSequence[] = [];
    for (let i = 0; i < opts.slots; i++) sequences.push(context.getSequence());
    this.pool = new SlotPool(sequences);
    this.chat = new ChatPromptBuilder(model, opts.log);
  }

  static async load(opts: InferenceOptions): Promise<LlamaInference> {
    const llama = await getRuntime(opts.threads, opts.log);
    const model = await llama.loadModel({ modelPath: opts.modelPath });
    try {
      const context = await model.createContext({
        contextSize: opts.contextSize,
        sequences: opts.slots,
        threads: opts.threads,
        failedCreationRemedy: false,
      });
      opts.log.info(
        {
          gpu: llama.gpu,
          gpuLayers: model.gpuLayers,
          threads: opts.threads,
          slots: opts.slots,
          contextSize: context.contextSize,
          trainContextSize: model.trainContextSize,
        },
        "model loaded",
      );
      return new LlamaInference(model, context, opts);
    } catch (err) {
      await model.dispose();
      throw err;
    }
  }

  /** Tokens one sequence holds (llama.cpp may round the requested size up). */
  get contextSize(): number {
    return this.context.contextSize;
  }

  /** Slot occupancy: total sequences, idle ones, and requests waiting for one. */
  get slots(): { total: number; idle: number; queued: number } {
    return { total: this.opts.slots, idle: this.pool.idle, queued: this.pool.queued };
  }

  get embeddingLength(): number {
    return this.model.embeddingVectorSize;
  }

  /** Throws InvalidRequestError unless the prompt leaves room for at least one new token. */
  checkPrompt(prompt: readonly Token[], param = "messages"): void {
    if (prompt.length === 0) throw new InvalidRequestError("The prompt is empty.", null, param);
    if (prompt.length >= this.contextSize) {
      throw new InvalidRequestError(
        `This model's maximum context length is ${this.contextSize} tokens, but the prompt is ${prompt.length} tokens. ` + "Shorten the prompt.",
        "context_length_exceeded",
        param,
      );
    }
  }

  /**
   * Generates on a free slot (waiting for one if all are busy). Ends at an end-of-generation
   * token or a stop string ("stop"), at maxTokens or the end of the context ("length"), or when
   * the signal aborts ("abort", with what was generated so far). The slot is freed in all cases.
   */
  async generate(req: GenerateRequest): Promise<GenerateResult> {
    this.checkPrompt(req.prompt);
    const promptTokens = req.prompt.length;
    const maxTokens = Math.max(1, Math.min(req.maxTokens, this.contextSize - promptTokens));
    let text = "";
    let completionTokens = 0;
    let finishReason: GenerateResult["finishReason"] = "stop";
    const decoder = new TokenTextDecoder(this.model, req.specialTokens === true);
    const stops = new StopStringMatcher([...req.stop, ...grammarStopStrings(req.grammar)]);
    const emit = (piece: string): void => {
      if (!piece) return;
      text += piece;
      req.onText?.(piece);
    };
    // Sends text from the decoder through the stop matcher; true once a stop string matched.
    const feed = (piece: string): boolean => {
      if (!piece) return stops.stopped;
      const m = stops.push(piece);
      emit(m.text);
      return m.stopped;
    };

    let seq: LlamaContextSequence;
    try {
      seq = await this.pool.acquire(req.prompt, req.signal);
    } catch (err) {
      if (req.signal.aborted) return { text, finishReason: "abort", promptTokens, completionTokens, cachedTokens: 0 };
      throw err;
    }
    try {
      const input = await this.reuseCachedPrefix(seq, req.prompt);
      const cachedTokens = promptTokens - input.length;
      if (req.signal.aborted) return { text, finishReason: "abort", promptTokens, completionTokens, cachedTokens };
      const recent: Token[] = req.prompt.slice(-REPEAT_LAST_N);
      const penalize = (req.repeatPenalty ?? 1) !== 1 || (req.presencePenalty ?? 0) !== 0 || (req.frequencyPenalty ?? 0) !== 0;
      const tokens = seq.evaluate(input, {
        temperature: req.temperature,
        topP: req.topP,
        // OpenAI has no top-k / min-p: by default sample from the whole (top-p filtered) distribution.
        topK: req.topK ?? 0,
        minP: req.minP ?? 0,
        seed: req.seed,
        repeatPenalty: penalize
          ? {
              punishTokens: () => recent,
              maxPunishTokens: REPEAT_LAST_N,
              penalty: req.repeatPenalty ?? 1,
              presencePenalty: req.presencePenalty ?? 0,
              frequencyPenalty: req.frequencyPenalty ?? 0,
            }
          : undefined,
        tokenBias: req.logitBias ? tokenBias(this.model, req.logitBias) : undefined,
        // One state per generation: it tracks how far the output got through the grammar.
        grammarEvaluationState: req.grammar ? new LlamaGrammarEvaluationState({ model: this.model, grammar: req.grammar }) : undefined,
      });
      let stopped = false;
      for await (const token of tokens) {
        completionTokens++;
        recent.push(token);
        if (recent.length > REPEAT_LAST_N) recent.shift();
        if (feed(decoder.push(token))) {
          stopped = true;
          break;
        }
        if (req.signal.aborted) {
          finishReason = "abort";
          break;
        }
        if (completionTokens >= maxTokens) {
          finishReason = "length";
          break;
        }
      }
      // The loop also ends without a break when the model samples an end-of-generation token.
      if (!stopped && finishReason !== "abort") {
        if (feed(decoder.flush())) finishReason = "stop";
        else emit(stops.flush());
      }
      return { text, finishReason, promptTokens, completionTokens, cachedTokens };
    } finally {
      this.pool.release(seq);
    }
  }

  /**
   * Keeps the part of the sequence's cached state that matches the prompt and returns the tokens
   * still to evaluate (at least the last one: its logits give the first new token).
   */
  private async reuseCachedPrefix(seq: LlamaContextSequence, prompt: Token[]): Promise<Token[]> {
    if (prompt.length === 1 || seq.nextTokenIndex === 0) {
      if (seq.nextTokenIndex !== 0) await seq.clearHistory();
      return prompt;
    }
    await seq.adaptStateToTokens(prompt.slice(0, -1), false);
    return prompt.slice(seq.nextTokenIndex);
  }

  /** L2-normalised embeddings (as OpenAI's and llama.cpp's servers return), one per input. */
  async embed(inputs: readonly string[]): Promise<{ vectors: number[][]; promptTokens: number }> {
    const ctx = await this.embeddingContext();
    const limit = Math.min(this.opts.contextSize, EMBEDDING_CONTEXT_MAX);
    const lengths = inputs.map((input, i) => {
      if (input === "") throw new InvalidRequestError(`input${inputs.length > 1 ? `.${i}` : ""} must not be empty.`, null, "input");
      const n = ctx.calculateInputLength(input);
      if (n >= limit) {
        throw new InvalidRequestError(
          `This model's maximum context length for embeddings is ${limit} tokens, but input${inputs.length > 1 ? ` ${i}` : ""} is ${n} tokens.`,
          "context_length_exceeded",
          "input",
        );
      }
      return n;
    });
    const vectors: number[][] = [];
    for (const input of inputs) {
      if (this.closed) throw new Error("engine is closing");
      const { vector } = await ctx.getEmbeddingFor(input);
      vectors.push(normalize(vector));
    }
    return { vectors, promptTokens: lengths.reduce((a, b) => a + b, 0) };
  }

  /** Created on first use: chat-only deployments never pay for its memory. */
  private embeddingContext(): Promise<LlamaEmbeddingContext> {
    this.embedding ??= (async () => {
      const size = Math.min(this.opts.contextSize, EMBEDDING_CONTEXT_MAX);
      // The whole input must fit one batch for pooling to see all of it.
      return this.model.createEmbeddingContext({ contextSize: size, batchSize: size, threads: this.opts.threads });
    })().catch((err: unknown) => {
      this.embedding = undefined;
      throw err;
    });
    return this.embedding;
  }

  /** Rejects queued requests and frees the model (contexts included). */
  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pool.rejectWaiters(new Error("engine is closing"));
    const embedding = this.embedding;
    if (embedding) await embedding.then((ctx) => ctx.dispose()).catch(() => undefined);
    await this.context.dispose().catch(() => undefined);
    await this.model.dispose();
  }
}

/** Strings that end generation once a grammar is complete (its trailing newlines). */
function grammarStopStrings(grammar: LlamaGrammar | undefined): string[] {
  if (!grammar) return [];
  return grammar.stopGenerationTriggers.flatMap((t) => (typeof t === "string" ? [t] : Array.isArray(t) ? [] : [String(t)]));
}

/** llama.cpp's repeat_last_n default: penalties look at this many recent tokens. */
const REPEAT_LAST_N = 64;

/** OpenAI's logit_bias as node-llama-cpp's TokenBias (-100 and below: never). */
function tokenBias(model: LlamaModel, bias: Readonly<Record<number, number>>): TokenBias {
  const out = new TokenBias(model.tokenizer);
  for (const [token, value] of Object.entries(bias)) out.set(Number(token) as Token, value <= -100 ? "never" : { logit: value });
  return out;
}

/** Embedding inputs are single texts; bigger contexts would only cost memory. */
const EMBEDDING_CONTEXT_MAX = 8192;

function normalize(vector: readonly number[]): number[] {
  let sum = 0;
  for (const v of vector) sum += v * v;
  const norm = Math.sqrt(sum);
  return norm > 0 ? vector.map((v) => v / norm) : [...vector];
}
