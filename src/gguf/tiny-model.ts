// Writes tiny llama-architecture GGUF v3 models with seeded random weights, a byte-level
// vocabulary and a ChatML chat template. The text they produce is noise, but llama.cpp loads,
// tokenizes, generates and embeds with them exactly as with a real model, so the whole serving
// path can be exercised on a machine with no GPU and no internet.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { splitPartPath } from "../catalog/split.js";
import { GgufBuilder } from "./writer.js";

/**
 * The chat format a tiny model carries: its template and its special tokens.
 *  - chatml (default): the ChatML template below.
 *  - gpt-oss: the real gpt-oss chat template (Harmony) with its special tokens.
 *  - qwen3-coder: the real Qwen3-Coder chat template (XML tool calls) with its special tokens.
 * The real templates are llama.cpp's copies (MIT), vendored in assets/chat-templates/ (see the
 * README there): reading them out of node-llama-cpp's git bundle at run time would need git on
 * every router machine.
 */
export type TinyChatFormat = "chatml" | "gpt-oss" | "qwen3-coder";

export interface TinyModelSpec {
  name: string;
  seed: number;
  embeddingLength: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  feedForwardLength: number;
  contextLength: number;
  chatFormat?: TinyChatFormat;
  /** Written as this many gguf-split parts (default 1). */
  parts?: number;
}

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// llama.cpp token types
const TOKEN_TYPE_NORMAL = 1;
const TOKEN_TYPE_UNKNOWN = 2;
const TOKEN_TYPE_CONTROL = 3;
const TOKEN_TYPE_USER_DEFINED = 4;
const TOKEN_TYPE_BYTE = 6;

interface Vocabulary {
  /** Token ids: these come first (index = id), then U+2581, then one token per byte value. */
  special: readonly (readonly [text: string, type: number])[];
  bos: string;
  eos: string;
  template: string;
}

const TEMPLATES_DIR = new URL("../../assets/chat-templates/", import.meta.url);

function vocabulary(format: TinyChatFormat): Vocabulary {
  switch (format) {
    case "gpt-oss":
      // o200k_harmony's special tokens; llama.cpp ends generation at <|return|> and <|call|>.
      return {
        special: [
          ["<unk>", TOKEN_TYPE_UNKNOWN],
          ["<|startoftext|>", TOKEN_TYPE_CONTROL],
          ["<|endoftext|>", TOKEN_TYPE_CONTROL],
          ["<|return|>", TOKEN_TYPE_CONTROL],
          ["<|constrain|>", TOKEN_TYPE_CONTROL],
          ["<|channel|>", TOKEN_TYPE_CONTROL],
          ["<|start|>", TOKEN_TYPE_CONTROL],
          ["<|end|>", TOKEN_TYPE_CONTROL],
          ["<|message|>", TOKEN_TYPE_CONTROL],
          ["<|call|>", TOKEN_TYPE_CONTROL],
        ],
        bos: "<|startoftext|>",
        eos: "<|return|>",
        template: readFileSync(new URL("openai-gpt-oss-120b.jinja", TEMPLATES_DIR), "utf8"),
      };
    case "qwen3-coder":
      // Qwen's ChatML control tokens; <tool_call> tags are single (user-defined) tokens as in Qwen's vocabulary.
      return {
        special: [
          ["<unk>", TOKEN_TYPE_UNKNOWN],
          ["<|endoftext|>", TOKEN_TYPE_CONTROL],
          ["<|im_start|>", TOKEN_TYPE_CONTROL],
          ["<|im_end|>", TOKEN_TYPE_CONTROL],
          ["<tool_call>", TOKEN_TYPE_USER_DEFINED],
          ["</tool_call>", TOKEN_TYPE_USER_DEFINED],
        ],
        bos: "<|endoftext|>",
        eos: "<|im_end|>",
        template: readFileSync(new URL("Qwen3-Coder.jinja", TEMPLATES_DIR), "utf8"),
      };
    default:
      return {
        special: [
          ["<unk>", TOKEN_TYPE_UNKNOWN],
          ["<s>", TOKEN_TYPE_CONTROL],
          ["</s>", TOKEN_TYPE_CONTROL],
          ["<|im_start|>", TOKEN_TYPE_CONTROL],
          ["<|im_end|>", TOKEN_TYPE_CONTROL],
        ],
        bos: "<s>",
        eos: "<|im_end|>",
        template: CHATML_TEMPLATE,
      };
  }
}

/** mulberry32: small, fast and identical on every platform, so one seed gives one file. */
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

function randomMatrix(rand: () => number, count: number, scale: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (rand() * 2 - 1) * scale;
  return out;
}

/**
 * Builds the model bytes. Dimension 0 of the residual stream is held at a constant 1 (every token
 * embedding has it, and no layer writes to it), so after the final norm it is always positive.
 * The output rows use it as a bias: control tokens get a large negative logit (so generation never
 * ends by itself and callers stop it with max_tokens or a stop string) and printable ASCII bytes a
 * positive one (so the noise is readable text rather than invalid UTF-8).
 */
/**
 * A GGUF builder holding a llama model's general and hyperparameter keys (`fileType`: 0 for F32,
 * 7 for Q8_0), shared by the tiny models and gpu-check's Q8_0 model.
 */
export function llamaHeader(spec: TinyModelSpec, fileType: number, vocabSize: number): GgufBuilder {
  const headDim = spec.embeddingLength / spec.headCount;
  const g = new GgufBuilder();
  g.string("general.architecture", "llama");
  g.string("general.name", spec.name);
  g.uint32("general.file_type", fileType);
  g.uint32("llama.context_length", spec.contextLength);
  g.uint32("llama.embedding_length", spec.embeddingLength);
  g.uint32("llama.block_count", spec.blockCount);
  g.uint32("llama.feed_forward_length", spec.feedForwardLength);
  g.uint32("llama.attention.head_count", spec.headCount);
  g.uint32("llama.attention.head_count_kv", spec.headCountKv);
  g.float32("llama.attention.layer_norm_rms_epsilon", 1e-5);
  g.uint32("llama.rope.dimension_count", headDim);
  g.float32("llama.rope.freq_base", 10000);
  g.uint32("llama.vocab_size", vocabSize);
  return g;
}

export function buildTinyModel(spec: TinyModelSpec): Buffer {
  return tinyModelBuilder(spec).build();
}

/** The model as `spec.parts` gguf-split files (one file when parts is 1): same seed, same tensors. */
export function buildTinyModelParts(spec: TinyModelSpec): Buffer[] {
  return tinyModelBuilder(spec).buildSplit(spec.parts ?? 1);
}

function tinyModelBuilder(spec: TinyModelSpec): GgufBuilder {
  const rand = prng(spec.seed);
  const d = spec.embeddingLength;
  const headDim = d / spec.headCount;
  if (!Number.isInteger(headDim)) throw new Error("embeddingLength must be a multiple of headCount");
  const dKv = headDim * spec.headCountKv;
  const ff = spec.feedForwardLength;

  const vocab = vocabulary(spec.chatFormat ?? "chatml");
  const tokens: string[] = vocab.special.map(([text]) => text);
  const types: number[] = vocab.special.map(([, type]) => type);
  // llama.cpp's SentencePiece tokenizer writes spaces as U+2581; a normal token for it makes
  // text round-trip (byte tokens are not un-escaped on the way back).
  const SPACE_TOKEN = tokens.length;
  const FIRST_BYTE_TOKEN = SPACE_TOKEN + 1;
  const VOCAB_SIZE = FIRST_BYTE_TOKEN + 256;
  tokens.push("\u2581");
  types.push(TOKEN_TYPE_NORMAL);
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TOKEN_TYPE_BYTE);
  }

  const g = llamaHeader(spec, 0, VOCAB_SIZE);
  g.string("tokenizer.ggml.model", "llama");
  g.stringArray("tokenizer.ggml.tokens", tokens);
  g.float32Array(
    "tokenizer.ggml.scores",
    tokens.map(() => 0),
  );
  g.int32Array("tokenizer.ggml.token_type", types);
  g.uint32("tokenizer.ggml.bos_token_id", tokens.indexOf(vocab.bos));
  g.uint32("tokenizer.ggml.eos_token_id", tokens.indexOf(vocab.eos));
  g.uint32("tokenizer.ggml.unknown_token_id", 0);
  g.bool("tokenizer.ggml.add_bos_token", false);
  g.bool("tokenizer.ggml.add_eos_token", false);
  g.bool("tokenizer.ggml.add_space_prefix", false);
  g.string("tokenizer.chat_template", vocab.template);

  const scale = 0.5;
  const embd = randomMatrix(rand, d * VOCAB_SIZE, scale);
  for (let t = 0; t < VOCAB_SIZE; t++) embd[t * d] = 1;
  g.tensor("token_embd.weight", [d, VOCAB_SIZE], embd);

  const ones = new Float32Array(d).fill(1);
  for (let l = 0; l < spec.blockCount; l++) {
    const p = `blk.${l}.`;
    // Rows are output features (ggml ne[1]); zeroing row 0 keeps residual dimension 0 untouched.
    const outputProjection = (inDim: number) => {
      const m = randomMatrix(rand, inDim * d, scale / Math.sqrt(inDim));
      m.fill(0, 0, inDim);
      return m;
    };
    g.tensor(p + "attn_norm.weight", [d], ones);
    g.tensor(p + "attn_q.weight", [d, d], randomMatrix(rand, d * d, scale / Math.sqrt(d)));
    g.tensor(p + "attn_k.weight", [d, dKv], randomMatrix(rand, d * dKv, scale / Math.sqrt(d)));
    g.tensor(p + "attn_v.weight", [d, dKv], randomMatrix(rand, d * dKv, scale / Math.sqrt(d)));
    g.tensor(p + "attn_output.weight", [d, d], outputProjection(d));
    g.tensor(p + "ffn_norm.weight", [d], ones);
    g.tensor(p + "ffn_gate.weight", [d, ff], randomMatrix(rand, d * ff, scale / Math.sqrt(d)));
    g.tensor(p + "ffn_up.weight", [d, ff], randomMatrix(rand, d * ff, scale / Math.sqrt(d)));
    g.tensor(p + "ffn_down.weight", [ff, d], outputProjection(ff));
  }
  g.tensor("output_norm.weight", [d], ones);

  const out = randomMatrix(rand, d * VOCAB_SIZE, 2 / Math.sqrt(d));
  for (let t = 0; t < VOCAB_SIZE; t++) {
    const byte = t - FIRST_BYTE_TOKEN;
    let bias = 0;
    if (t < SPACE_TOKEN) bias = -50;
    else if (t === SPACE_TOKEN) bias = 2.5;
    else if (byte >= 0x20 && byte < 0x7f) bias = 2;
    out[t * d] = bias;
  }
  g.tensor("output.weight", [d, VOCAB_SIZE], out);
  return g;
}

/**
 * Writes every part of the model atomically beside each other (`x.gguf` becomes
 * `x-00001-of-00003.gguf`, ... for a split model) and returns their paths, sha256s and sizes.
 */
export async function writeTinyModelParts(spec: TinyModelSpec, path: string): Promise<{ path: string; sha256: string; size: number }[]> {
  const parts = buildTinyModelParts(spec);
  await mkdir(dirname(path), { recursive: true });
  const written = [];
  for (const [i, bytes] of parts.entries()) {
    const partPath = splitPartPath(path, i, parts.length);
    const tmp = `${partPath}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, partPath);
    written.push({ path: partPath, sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length });
  }
  return written;
}

/** Writes the model atomically (temp file, then rename) and returns its sha256 and size. */
export async function writeTinyModel(spec: TinyModelSpec, path: string): Promise<{ sha256: string; size: number }> {
  const bytes = buildTinyModel(spec);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
  return { sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length };
}
