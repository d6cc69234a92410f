// Writes a large llama-architecture GGUF model (~1B parameters) quickly enough to make on the spot,
// for GPU checks: the big matrices are Q8_0 (about 1.06 bytes a parameter, so ~1 GB), their bytes
// are a seeded random pattern repeated (random weights either way; what counts is the shape and
// the type llama.cpp computes with), and everything streams to disk, hashed on the way. The
// vocabulary and the output bias follow src/gguf/tiny-model.ts: byte tokens, ChatML, control
// tokens strongly disfavoured, so generation runs for max_tokens and the noise is printable.
import { createHash } from "node:crypto";
import { mkdir, open, rename } from "node:fs/promises";
import { dirname } from "node:path";
import { CHATML_TEMPLATE, llamaHeader } from "./tiny-model.js";
import { GGML_TYPE_F32_ID, GGML_TYPE_Q8_0, paddedSize, Q8_0_BLOCK_BYTES, Q8_0_BLOCK_VALUES, type TensorInfo } from "./writer.js";

export interface Q8ModelSpec {
  name: string;
  seed: number;
  embeddingLength: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  feedForwardLength: number;
  contextLength: number;
}

/** ~1.0B parameters (Llama-3.2-1B's layer shape with drover's 262-token byte vocabulary): ~1.07 GB. */
export const GPU_CHECK_MODEL: Q8ModelSpec = {
  name: "gpu-check-1b",
  seed: 7,
  embeddingLength: 2048,
  blockCount: 16,
  headCount: 32,
  headCountKv: 8,
  feedForwardLength: 8192,
  contextLength: 8192,
};

const SPECIAL = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"];
const VOCAB = SPECIAL.length + 1 + 256;
const FIRST_BYTE = SPECIAL.length + 1;

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** IEEE 754 half precision of a small positive float (the Q8_0 block scale). */
function toF16(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = (x >>> 13) & 0x3ff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | mant;
}

/**
 * `blocks` Q8_0 blocks with scale `scale` and random int8 values (a multiple of the row's block
 * count, so every row starts at a block boundary of the pattern).
 */
function q8Pattern(rand: () => number, blocks: number, scale: number): Buffer {
  const buf = Buffer.alloc(blocks * Q8_0_BLOCK_BYTES);
  const d = toF16(scale / 127);
  for (let b = 0; b < blocks; b++) {
    const at = b * Q8_0_BLOCK_BYTES;
    buf.writeUInt16LE(d, at);
    for (let i = 0; i < Q8_0_BLOCK_VALUES; i++) buf.writeInt8(Math.round((rand() * 2 - 1) * 127), at + 2 + i);
  }
  return buf;
}

interface PlannedTensor extends TensorInfo {
  /** Writes the tensor's bytes through `write`. */
  emit(write: (b: Buffer) => Promise<void>): Promise<void>;
}

export interface WrittenModel {
  path: string;
  size: number;
  sha256: string;
  parameters: number;
}

/** Writes the model to `path` (atomically) and returns its size, sha256 and parameter count. */
export async function writeQ8Model(spec: Q8ModelSpec, path: string): Promise<WrittenModel> {
  const d = spec.embeddingLength;
  const headDim = d / spec.headCount;
  if (!Number.isInteger(headDim) || d % Q8_0_BLOCK_VALUES || spec.feedForwardLength % Q8_0_BLOCK_VALUES) {
    throw new Error("embeddingLength must be a multiple of headCount and of 32; feedForwardLength a multiple of 32");
  }
  const dKv = headDim * spec.headCountKv;
  const ff = spec.feedForwardLength;
  const rand = prng(spec.seed);

  const g = llamaHeader(spec, 7, VOCAB); // 7: MOSTLY_Q8_0
  const tokens = [...SPECIAL, "\u2581", ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`)];
  g.string("tokenizer.ggml.model", "llama");
  g.stringArray("tokenizer.ggml.tokens", tokens);
  g.float32Array(
    "tokenizer.ggml.scores",
    tokens.map(() => 0),
  );
  g.int32Array("tokenizer.ggml.token_type", [2, 3, 3, 3, 3, 1, ...Array<number>(256).fill(6)]);
  g.uint32("tokenizer.ggml.bos_token_id", 1);
  g.uint32("tokenizer.ggml.eos_token_id", 4);
  g.uint32("tokenizer.ggml.unknown_token_id", 0);
  g.bool("tokenizer.ggml.add_bos_token", false);
  g.bool("tokenizer.ggml.add_eos_token", false);
  g.bool("tokenizer.ggml.add_space_prefix", false);
  g.string("tokenizer.chat_template", CHATML_TEMPLATE);

  const f32 = (name: string, dims: number[], values: Float32Array): PlannedTensor => ({
    name,
    dims,
    type: GGML_TYPE_F32_ID,
    byteLength: values.byteLength,
    emit: (write) => write(Buffer.from(values.buffer, values.byteOffset, values.byteLength)),
  });
  // One pattern per input width (1024 rows' worth, or the whole tensor when smaller).
  const patterns = new Map<number, Buffer>();
  const patternFor = (inDim: number) => {
    let p = patterns.get(inDim);
    if (!p) patterns.set(inDim, (p = q8Pattern(rand, (inDim / Q8_0_BLOCK_VALUES) * 1024, 0.5 / Math.sqrt(inDim))));
    return p;
  };
  const q8 = (name: string, inDim: number, outDim: number, zeroFirstRow = false): PlannedTensor => {
    const rowBytes = (inDim / Q8_0_BLOCK_VALUES) * Q8_0_BLOCK_BYTES;
    const pattern = patternFor(inDim);
    return {
      name,
      dims: [inDim, outDim],
      type: GGML_TYPE_Q8_0,
      byteLength: rowBytes * outDim,
      async emit(write) {
        let left = rowBytes * outDim;
        let first = true;
        while (left > 0) {
          const n = Math.min(left, pattern.length);
          let chunk = pattern.subarray(0, n);
          if (first && zeroFirstRow) {
            // Row 0 (output feature 0) all zero: residual dimension 0 stays the constant 1.
            chunk = Buffer.from(chunk);
            chunk.fill(0, 0, rowBytes);
          }
          first = false;
          await write(chunk);
          left -= n;
        }
      },
    };
  };

  const embd = new Float32Array(d * VOCAB);
  for (let i = 0; i < embd.length; i++) embd[i] = (rand() * 2 - 1) * 0.5;
  for (let t = 0; t < VOCAB; t++) embd[t * d] = 1;
  const ones = new Float32Array(d).fill(1);
  const out = new Float32Array(d * VOCAB);
  for (let i = 0; i < out.length; i++) out[i] = ((rand() * 2 - 1) * 2) / Math.sqrt(d);
  for (let t = 0; t < VOCAB; t++) {
    const byte = t - FIRST_BYTE;
    out[t * d] = t < FIRST_BYTE - 1 ? -50 : t === FIRST_BYTE - 1 ? 2.5 : byte >= 0x20 && byte < 0x7f ? 2 : 0;
  }

  const tensors: PlannedTensor[] = [f32("token_embd.weight", [d, VOCAB], embd)];
  for (let l = 0; l < spec.blockCount; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      f32(p + "attn_norm.weight", [d], ones),
      q8(p + "attn_q.weight", d, d),
      q8(p + "attn_k.weight", d, dKv),
      q8(p + "attn_v.weight", d, dKv),
      q8(p + "attn_output.weight", d, d, true),
      f32(p + "ffn_norm.weight", [d], ones),
      q8(p + "ffn_gate.weight", d, ff),
      q8(p + "ffn_up.weight", d, ff),
      q8(p + "ffn_down.weight", ff, d, true),
    );
  }
  tensors.push(f32("output_norm.weight", [d], ones), f32("output.weight", [d, VOCAB], out));

  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const file = await open(tmp, "w");
  const hash = createHash("sha256");
  let size = 0;
  // Buffered writes of ~8 MB: one syscall per chunk, not per tensor row.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const b = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    await file.write(b);
  };
  const write = async (b: Buffer) => {
    hash.update(b);
    size += b.length;
    pending.push(b);
    pendingBytes += b.length;
    if (pendingBytes >= 8 * 1024 * 1024) await flush();
  };
  try {
    await write(g.header(tensors));
    for (const t of tensors) {
      await t.emit(write);
      const pad = paddedSize(t.byteLength) - t.byteLength;
      if (pad) await write(Buffer.alloc(pad));
    }
    await flush();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
  const parameters = tensors.reduce((sum, t) => sum + t.dims.reduce((a, b) => a * b, 1), 0);
  return { path, size, sha256: hash.digest("hex"), parameters };
}
