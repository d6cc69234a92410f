// The catalog: the set of models the fleet supports. Owned by the router, fetched by nodes.
import { z } from "zod";

export const Capability = z.enum(["chat", "completion", "embedding"]);
export type Capability = z.infer<typeof Capability>;

/** Parameters of a model the project writes itself (see src/gguf/tiny-model.ts). */
export const GeneratedModelSpec = z.object({
  name: z.string(),
  seed: z.number().int().nonnegative(),
  embeddingLength: z.number().int().positive(),
  blockCount: z.number().int().positive(),
  headCount: z.number().int().positive(),
  headCountKv: z.number().int().positive(),
  feedForwardLength: z.number().int().positive(),
  contextLength: z.number().int().min(2048),
  /** Chat template and special tokens: ChatML (default), or gpt-oss's / Qwen3-Coder's real ones. */
  chatFormat: z.enum(["chatml", "gpt-oss", "qwen3-coder"]).optional(),
  /** Write the model as this many gguf-split parts (default 1: one file). */
  parts: z.number().int().min(1).max(99).optional(),
});
export type GeneratedModelSpec = z.infer<typeof GeneratedModelSpec>;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "a sha256: 64 lowercase hex digits");

/**
 * A GGUF file, or a split model (llama.cpp's gguf-split: `<name>-00001-of-0000N.gguf`, ...). `url`
 * is the first (or only) file and `sha256` its checksum. A split model's other parts are derived
 * from the first part's name, or listed in `parts` (all of them, the first included, each with
 * an optional sha256).
 */
export const GgufSource = z
  .object({
    url: z.string().url(),
    sha256: Sha256.optional(),
    parts: z
      .array(z.object({ url: z.string().url(), sha256: Sha256.optional() }).strict())
      .min(1)
      .max(99)
      .optional(),
  })
  .strict()
  .refine((g) => !g.parts || g.parts[0]!.url === g.url, { message: "parts[0].url must be the same as url (the first part)", path: ["parts"] })
  .refine((g) => !g.parts || !g.sha256 || !g.parts[0]!.sha256 || g.parts[0]!.sha256 === g.sha256, {
    message: "sha256 and parts[0].sha256 differ",
    path: ["parts"],
  });
export type GgufSource = z.infer<typeof GgufSource>;

export const ModelSource = z
  .object({
    /** GGUF weights for the `llama` and `command` engines. */
    gguf: GgufSource.optional(),
    /** Written by the router itself (demo catalog). */
    generate: GeneratedModelSpec.optional(),
    /** Tag for the `ollama` engine. */
    ollama: z.string().min(1).optional(),
  })
  .strict()
  .refine((s) => s.gguf || s.generate || s.ollama, "a model needs at least one source: gguf, generate or ollama");
export type ModelSource = z.infer<typeof ModelSource>;

export const CatalogEntry = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:\-/]*$/, "letters, digits and . _ : - / only"),
    description: z.string().default(""),
    /** Bytes on disk. */
    sizeBytes: z.number().int().nonnegative(),
    /** Bytes of (GPU or host) memory needed to serve it. */
    memoryBytes: z.number().int().nonnegative(),
    tags: z.array(z.string()).default([]),
    capabilities: z.array(Capability).default(["chat", "completion"]),
    contextLength: z.number().int().positive().default(4096),
    source: ModelSource,
    /** Filled in by the router once the file is known (generated or cached); the first part's for a split model. */
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    /** Filled in by the router for a split model: one row per part, in order (sha256 and size once known). */
    parts: z
      .array(z.object({ sha256: Sha256.optional(), sizeBytes: z.number().int().nonnegative().optional() }).strict())
      .min(2)
      .optional(),
  })
  .strict();
export type CatalogEntry = z.infer<typeof CatalogEntry>;

export const Catalog = z
  .object({
    name: z.string().default("custom"),
    models: z.array(CatalogEntry).min(1),
  })
  .strict();
export type Catalog = z.infer<typeof Catalog>;
