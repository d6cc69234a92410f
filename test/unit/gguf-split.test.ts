// The model writers: a tiny model written as gguf-split parts (llama.cpp's layout: names,
// split.* keys, metadata in the first part only) that llama.cpp loads from its first part, and the
// Q8_0 writer behind `npm run gpu-check`, at a small size.
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { getLlama, readGgufFileInfo, type Llama } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ggufParts, parseSplitName, splitPartPath } from "../../src/catalog/split.js";
import { writeQ8Model } from "../../src/gguf/q8-model.js";
import { buildTinyModel, buildTinyModelParts, writeTinyModelParts, type TinyModelSpec } from "../../src/gguf/tiny-model.js";

const SPEC: TinyModelSpec = {
  name: "t",
  seed: 9,
  embeddingLength: 64,
  blockCount: 3,
  headCount: 4,
  headCountKv: 2,
  feedForwardLength: 128,
  contextLength: 2048,
};
let work: string;
let llama: Llama;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "drover-split-"));
  llama = await getLlama({ gpu: false, build: "never", skipDownload: true, maxThreads: 1 });
}, 60_000);
afterAll(async () => {
  await llama?.dispose();
  await rm(work, { recursive: true, force: true });
});

async function generate(path: string, tokens: number): Promise<string> {
  const model = await llama.loadModel({ modelPath: path });
  try {
    const context = await model.createContext({ contextSize: 256, threads: 1 });
    let text = "";
    let n = 0;
    for await (const t of context.getSequence().evaluate(model.tokenize("hi"))) {
      text += model.detokenize([t]);
      if (++n >= tokens) break;
    }
    await context.dispose();
    return text;
  } finally {
    await model.dispose();
  }
}

describe("split GGUF", () => {
  it("names parts as llama.cpp's llama_split_path does, and derives a catalog's parts from the first URL", () => {
    expect(splitPartPath("/m/x.gguf", 1, 3)).toBe("/m/x-00002-of-00003.gguf");
    expect(splitPartPath("/m/x.gguf", 0, 1)).toBe("/m/x.gguf");
    expect(parseSplitName("gpt-oss-120b-mxfp4-00001-of-00003.gguf")).toEqual({ prefix: "gpt-oss-120b-mxfp4", index: 0, count: 3 });
    expect(ggufParts({ url: "https://hf.co/r/resolve/main/gpt-oss-120b-mxfp4-00001-of-00003.gguf?download=1", sha256: "a".repeat(64) })).toEqual([
      { url: "https://hf.co/r/resolve/main/gpt-oss-120b-mxfp4-00001-of-00003.gguf?download=1", sha256: "a".repeat(64) },
      { url: "https://hf.co/r/resolve/main/gpt-oss-120b-mxfp4-00002-of-00003.gguf?download=1", sha256: undefined },
      { url: "https://hf.co/r/resolve/main/gpt-oss-120b-mxfp4-00003-of-00003.gguf?download=1", sha256: undefined },
    ]);
    expect(ggufParts({ url: "https://hf.co/m.gguf" })).toEqual([{ url: "https://hf.co/m.gguf", sha256: undefined }]);
  });

  it("one part is the single file, byte for byte; the same seed gives the same parts", () => {
    expect(buildTinyModelParts({ ...SPEC, parts: 1 })[0]!.equals(buildTinyModel(SPEC))).toBe(true);
    const a = buildTinyModelParts({ ...SPEC, parts: 4 });
    const b = buildTinyModelParts({ ...SPEC, parts: 4 });
    expect(a).toHaveLength(4);
    for (const [i, part] of a.entries()) expect(part.equals(b[i]!)).toBe(true);
  });

  it("writes llama.cpp's split layout, and node-llama-cpp loads and runs the model from its first part", async () => {
    const written = await writeTinyModelParts({ ...SPEC, parts: 3 }, join(work, "t.gguf"));
    expect(written.map((w) => basename(w.path))).toEqual(["t-00001-of-00003.gguf", "t-00002-of-00003.gguf", "t-00003-of-00003.gguf"]);
    for (const w of written)
      expect(w.sha256).toBe(
        createHash("sha256")
          .update(await readFile(w.path))
          .digest("hex"),
      );
    const infos = await Promise.all(written.map((w) => readGgufFileInfo(w.path, { spliceSplitFiles: false, logWarnings: false })));
    infos.forEach((info, i) => {
      expect((info.metadata as unknown as { split?: unknown }).split).toEqual({ no: i, count: 3, tensors: { count: 3 + 9 * SPEC.blockCount } });
      // Only the first part holds the model's metadata.
      expect(info.metadata.general?.architecture).toBe(i === 0 ? "llama" : undefined);
    });
    const all = await readGgufFileInfo(written[0]!.path, { logWarnings: false });
    expect(all.fullTensorInfo).toHaveLength(3 + 9 * SPEC.blockCount);
    expect((await generate(written[0]!.path, 4)).length).toBeGreaterThan(0);
  });

  it("the Q8_0 writer (gpu-check's model, small here) writes a model llama.cpp runs", async () => {
    const m = await writeQ8Model(
      { name: "q8", seed: 1, embeddingLength: 128, blockCount: 2, headCount: 4, headCountKv: 2, feedForwardLength: 256, contextLength: 2048 },
      join(work, "q8.gguf"),
    );
    expect(m.sha256).toBe(
      createHash("sha256")
        .update(await readFile(m.path))
        .digest("hex"),
    );
    const info = await readGgufFileInfo(m.path, { logWarnings: false });
    expect(new Set(info.fullTensorInfo!.filter((t) => t.name.startsWith("blk.")).map((t) => t.ggmlType))).toEqual(new Set([0, 8])); // F32 norms, Q8_0 matrices
    // Control tokens are disfavoured: generation runs to the limit, in printable text.
    expect(await generate(m.path, 6)).toMatch(/^[\x20-\x7e]+$/);
  });
});
