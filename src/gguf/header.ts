// The header of a GGUF file (a split model's first part holds all the metadata), read with
// node-llama-cpp's parser: only the bytes before the tensor data are read.
import type { ModelShape } from "./memory-estimate.js";

type Meta = Record<string, unknown>;

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined);

/** The fields of a GGUF header the memory estimate needs. */
export async function readModelShape(path: string): Promise<ModelShape> {
  const { readGgufFileInfo } = await import("node-llama-cpp");
  const info = await readGgufFileInfo(path, { readTensorInfo: false, spliceSplitFiles: false, logWarnings: false, sourceType: "filesystem" });
  const meta = info.metadata as unknown as Meta;
  const architecture = String((meta.general as Meta | undefined)?.architecture ?? "");
  const arch = (info.architectureMetadata ?? {}) as Meta;
  const attention = (arch.attention ?? {}) as Meta;
  const tokens = ((meta.tokenizer as Meta | undefined)?.ggml as Meta | undefined)?.tokens;
  const headCount = num(attention.head_count) ?? 0;
  const headCountKv = Array.isArray(attention.head_count_kv)
    ? (attention.head_count_kv as unknown[]).map((v) => num(v) ?? headCount)
    : (num(attention.head_count_kv) ?? headCount);
  const shape: ModelShape = {
    architecture,
    blockCount: num(arch.block_count) ?? 0,
    embeddingLength: num(arch.embedding_length) ?? 0,
    headCount,
    headCountKv,
    keyLength: num(attention.key_length),
    valueLength: num(attention.value_length),
    slidingWindow: num(attention.sliding_window),
    slidingWindowPattern: num(attention.sliding_window_pattern),
    trainContextLength: num(arch.context_length),
    vocabSize: num(arch.vocab_size) ?? (Array.isArray(tokens) ? tokens.length : 0),
    expertUsedCount: num(arch.expert_used_count),
  };
  if (!shape.architecture || shape.blockCount <= 0 || shape.embeddingLength <= 0 || shape.headCount <= 0) {
    throw new Error(`${path}: the GGUF header lacks the architecture's block_count, embedding_length or attention.head_count`);
  }
  return shape;
}
