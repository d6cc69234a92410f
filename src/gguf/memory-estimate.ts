// How much memory a GGUF model needs to serve `slots` sequences of `contextPerSlot` tokens each,
// from its header: the weights (the files' size), the KV cache, and llama.cpp's compute buffers.
// The KV cache follows llama.cpp's llama_kv_cache (and node-llama-cpp's GgufInsights, which mirrors
// it): one cache per sequence, padded to 256 cells, F16 keys and values, per layer
// `head_count_kv × (key_length + value_length)` elements per cell; sliding-window layers (gpt-oss:
// every other layer, window 128) keep only `slots × window + batch` cells. The compute buffer is
// the logits of one batch plus the attention scores of a batch against every KV cell (llama.cpp
// without flash attention, which drover's engine runs), so long contexts cost what they cost.

/** The header fields the estimate needs (node-llama-cpp's `architectureMetadata` names). */
export interface ModelShape {
  architecture: string;
  blockCount: number;
  embeddingLength: number;
  headCount: number;
  /** One value, or one per layer. */
  headCountKv: number | number[];
  keyLength?: number;
  valueLength?: number;
  slidingWindow?: number;
  /** Every n-th layer is full attention (llama.cpp's swa pattern); undefined: the architecture's default. */
  slidingWindowPattern?: number;
  /** The context the model was trained for. */
  trainContextLength?: number;
  vocabSize: number;
  expertUsedCount?: number;
}

export interface MemoryEstimateInput {
  /** Bytes of weights: the size of the model's files (all parts). */
  weightsBytes: number;
  contextPerSlot: number;
  slots: number;
  /** Tokens per batch (llama.cpp's default 512, never above the whole context). */
  batchSize?: number;
}

export interface MemoryEstimate {
  weightsBytes: number;
  kvCacheBytes: number;
  computeBytes: number;
  totalBytes: number;
  contextPerSlot: number;
  slots: number;
}

const CONTEXT_PAD = 256;
const F16_BYTES = 2;
const F32_BYTES = 4;
/** llama.cpp's swa patterns (llama_model::load_hparams): every n-th layer has full attention. */
const SWA_PATTERN: Record<string, number> = { "gpt-oss": 2, gemma2: 2, gemma3: 6, gemma3n: 5, llama4: 4, cohere2: 4, olmo2: 4, exaone4: 4 };

const pad = (n: number, to: number) => Math.ceil(n / to) * to;

function headCountKvAt(shape: ModelShape, layer: number): number {
  return Array.isArray(shape.headCountKv) ? (shape.headCountKv[layer] ?? shape.headCount) : shape.headCountKv;
}

function isSlidingLayer(shape: ModelShape, layer: number): boolean {
  if (!shape.slidingWindow || shape.slidingWindow <= 0) return false;
  const pattern = shape.slidingWindowPattern ?? SWA_PATTERN[shape.architecture] ?? 1;
  if (pattern === 0) return true;
  return layer % pattern < pattern - 1;
}

/** Bytes of KV cache for `slots` sequences of `contextPerSlot` tokens. */
export function kvCacheBytes(shape: ModelShape, contextPerSlot: number, slots: number, batchSize = defaultBatchSize(contextPerSlot, slots)): number {
  const full = slots * pad(contextPerSlot, CONTEXT_PAD);
  const window = shape.slidingWindow ?? 0;
  const reduced = window > 0 && window < contextPerSlot && (shape.trainContextLength === undefined || window < shape.trainContextLength);
  const swa = reduced ? Math.min(full, pad(slots * window + batchSize + 1, CONTEXT_PAD)) : full;
  const headK = shape.keyLength ?? shape.embeddingLength / shape.headCount;
  const headV = shape.valueLength ?? shape.embeddingLength / shape.headCount;
  let elements = 0;
  for (let layer = 0; layer < shape.blockCount; layer++) {
    const cells = isSlidingLayer(shape, layer) ? swa : full;
    elements += cells * headCountKvAt(shape, layer) * (headK + headV);
  }
  return elements * F16_BYTES;
}

function defaultBatchSize(contextPerSlot: number, slots: number): number {
  return Math.min(contextPerSlot * slots, 512);
}

export function estimateMemory(shape: ModelShape, input: MemoryEstimateInput): MemoryEstimate {
  const { contextPerSlot, slots } = input;
  const batch = input.batchSize ?? defaultBatchSize(contextPerSlot, slots);
  const kv = kvCacheBytes(shape, contextPerSlot, slots, batch);
  const cells = slots * pad(contextPerSlot, CONTEXT_PAD);
  // Logits and output ids of one batch; the batch's activations (one per active expert) and its
  // attention scores and mask against every cell (node-llama-cpp's graph estimate for llama.cpp).
  const outputs = (shape.vocabSize + 1) * batch * F32_BYTES;
  const activations = F32_BYTES * batch * (shape.embeddingLength * ((shape.expertUsedCount ?? 0) + 1) + cells * shape.headCount + cells);
  const computeBytes = outputs + activations;
  return { weightsBytes: input.weightsBytes, kvCacheBytes: kv, computeBytes, totalBytes: input.weightsBytes + kv + computeBytes, contextPerSlot, slots };
}

/**
 * The largest context per slot (a multiple of 256, at most `wanted`, at least `min`) whose estimate
 * fits in `budgetBytes`, or undefined when not even `min` fits.
 */
export function fitContextPerSlot(
  shape: ModelShape,
  opts: { weightsBytes: number; slots: number; wanted: number; min: number; budgetBytes: number },
): number | undefined {
  const fits = (ctx: number) =>
    estimateMemory(shape, { weightsBytes: opts.weightsBytes, contextPerSlot: ctx, slots: opts.slots }).totalBytes <= opts.budgetBytes;
  if (fits(opts.wanted)) return opts.wanted;
  if (!fits(opts.min)) return undefined;
  // The estimate grows with the context: binary search over multiples of 256.
  let lo = Math.ceil(opts.min / CONTEXT_PAD);
  let hi = Math.floor(opts.wanted / CONTEXT_PAD);
  while (lo < hi) {
    const mid = Math.floor((lo + hi + 1) / 2);
    if (fits(mid * CONTEXT_PAD)) lo = mid;
    else hi = mid - 1;
  }
  return Math.max(opts.min, lo * CONTEXT_PAD);
}
