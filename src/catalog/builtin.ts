// The two built-in catalogs: `default` (the supported production models) and `demo` (tiny
// models the router writes itself, for machines with no GPU and no internet).
import type { Catalog } from "../protocol/catalog.js";

const GB = 1_000_000_000;

export const DEFAULT_CATALOG: Catalog = {
  name: "default",
  models: [
    {
      id: "gpt-oss:20b",
      description: "OpenAI gpt-oss 20B (MXFP4)",
      sizeBytes: 14.5 * GB,
      memoryBytes: 16 * GB,
      tags: ["llm", "code", "reasoning"],
      capabilities: ["chat", "completion"],
      contextLength: 131072,
      source: {
        gguf: { url: "https://huggingface.co/ggml-org/gpt-oss-20b-GGUF/resolve/main/gpt-oss-20b-mxfp4.gguf" },
        ollama: "gpt-oss:20b",
      },
    },
    {
      id: "gpt-oss:120b",
      description: "OpenAI gpt-oss 120B (MXFP4)",
      sizeBytes: 65 * GB,
      memoryBytes: 80 * GB,
      tags: ["llm", "reasoning"],
      capabilities: ["chat", "completion"],
      contextLength: 131072,
      source: {
        gguf: { url: "https://huggingface.co/ggml-org/gpt-oss-120b-GGUF/resolve/main/gpt-oss-120b-mxfp4-00001-of-00003.gguf" },
        ollama: "gpt-oss:120b",
      },
    },
    {
      id: "gpt-oss-safeguard:20b",
      description: "OpenAI gpt-oss-safeguard 20B, a policy-following safety classifier",
      sizeBytes: 14 * GB,
      memoryBytes: 16 * GB,
      tags: ["safety", "moderation"],
      capabilities: ["chat", "completion"],
      contextLength: 131072,
      source: {
        gguf: { url: "https://huggingface.co/ggml-org/gpt-oss-safeguard-20b-GGUF/resolve/main/gpt-oss-safeguard-20b-mxfp4.gguf" },
        ollama: "gpt-oss-safeguard:20b",
      },
    },
    {
      id: "qwen3-coder:30b",
      description: "Qwen3-Coder 30B-A3B Instruct (Q4_K_M)",
      sizeBytes: 18.6 * GB,
      memoryBytes: 24 * GB,
      tags: ["code"],
      capabilities: ["chat", "completion"],
      contextLength: 65536,
      source: {
        gguf: { url: "https://huggingface.co/unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF/resolve/main/Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf" },
        ollama: "qwen3-coder:30b",
      },
    },
  ],
};

const MB = 1_000_000;

export const DEMO_CATALOG: Catalog = {
  name: "demo",
  models: [
    {
      id: "demo-chat",
      description: "Tiny generated llama model (random weights): chat and completions",
      sizeBytes: Math.round(1.2 * MB),
      memoryBytes: 64 * MB,
      tags: ["demo", "llm"],
      capabilities: ["chat", "completion", "embedding"],
      contextLength: 4096,
      source: {
        generate: { name: "demo-chat", seed: 1, embeddingLength: 96, blockCount: 3, headCount: 4, headCountKv: 2, feedForwardLength: 192, contextLength: 4096 },
      },
    },
    {
      id: "demo-embed",
      description: "Tiny generated llama model (random weights) for embeddings",
      sizeBytes: Math.round(0.5 * MB),
      memoryBytes: 48 * MB,
      tags: ["demo", "embedding"],
      capabilities: ["embedding"],
      contextLength: 2048,
      source: {
        generate: {
          name: "demo-embed",
          seed: 2,
          embeddingLength: 64,
          blockCount: 2,
          headCount: 4,
          headCountKv: 4,
          feedForwardLength: 128,
          contextLength: 2048,
        },
      },
    },
    {
      id: "demo-gpt-oss",
      description: "Tiny generated model (random weights) with gpt-oss's chat template and Harmony tokens: tools and reasoning",
      sizeBytes: Math.round(1.2 * MB),
      memoryBytes: 64 * MB,
      tags: ["demo", "llm", "reasoning"],
      capabilities: ["chat", "completion"],
      contextLength: 4096,
      source: {
        generate: {
          name: "demo-gpt-oss",
          seed: 3,
          embeddingLength: 96,
          blockCount: 3,
          headCount: 4,
          headCountKv: 2,
          feedForwardLength: 192,
          contextLength: 4096,
          chatFormat: "gpt-oss",
        },
      },
    },
    {
      id: "demo-qwen3-coder",
      description: "Tiny generated model (random weights) with Qwen3-Coder's chat template and tokens: XML tool calls",
      sizeBytes: Math.round(1.2 * MB),
      memoryBytes: 64 * MB,
      tags: ["demo", "llm", "code"],
      capabilities: ["chat", "completion"],
      contextLength: 4096,
      source: {
        generate: {
          name: "demo-qwen3-coder",
          seed: 4,
          embeddingLength: 96,
          blockCount: 3,
          headCount: 4,
          headCountKv: 2,
          feedForwardLength: 192,
          contextLength: 4096,
          chatFormat: "qwen3-coder",
        },
      },
    },
    {
      // A split GGUF (llama.cpp's gguf-split, three files) like the default catalog's gpt-oss:120b,
      // so the multi-part path is exercised wherever the demo catalog runs.
      id: "demo-split",
      description: "Tiny generated llama model (random weights) in three gguf-split parts",
      sizeBytes: Math.round(0.45 * MB),
      memoryBytes: 48 * MB,
      tags: ["demo", "llm", "split"],
      capabilities: ["chat", "completion"],
      contextLength: 2048,
      source: {
        generate: {
          name: "demo-split",
          seed: 3,
          embeddingLength: 64,
          blockCount: 2,
          headCount: 4,
          headCountKv: 2,
          feedForwardLength: 128,
          contextLength: 2048,
          parts: 3,
        },
      },
    },
  ],
};
