// The memory estimate from a GGUF header: a generated model's header and the published shapes of
// the default catalog's models (test data), at 4k and 128k context, checked against hand-computed
// KV cache sizes and against node-llama-cpp's own estimate (GgufInsights).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GgufInsights, readGgufFileInfo } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_CATALOG } from "../../src/catalog/builtin.js";
import { readModelShape } from "../../src/gguf/header.js";
import { estimateMemory, fitContextPerSlot, kvCacheBytes, type ModelShape } from "../../src/gguf/memory-estimate.js";
import { writeTinyModelParts } from "../../src/gguf/tiny-model.js";
import { PUBLISHED_SHAPES, writePublishedHeader } from "../fixtures/published-shapes.js";

let work: string;
const headers = new Map<string, string>();
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "drover-mem-"));
  for (const s of PUBLISHED_SHAPES) {
    const path = join(work, `${s.architecture}-${s.blockCount}.gguf`);
    await writePublishedHeader(s, path);
    headers.set(s.id, path);
  }
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const K4 = 4096;
const K128 = 131072;

/** node-llama-cpp's estimate of what a context needs besides the weights (all on the CPU). */
async function theirs(path: string, contextSize: number, sequences: number): Promise<number> {
  const insights = await GgufInsights.from(await readGgufFileInfo(path, { logWarnings: false }));
  return insights.estimateContextResourceRequirements({ contextSize, sequences, modelGpuLayers: 0 }).cpuRam;
}

describe("memory estimate from a GGUF header", () => {
  it("a generated model: the header's shape, and the KV cache of llama.cpp's formula", async () => {
    const spec = DEMO_CATALOG.models.find((m) => m.id === "demo-split")!.source.generate!;
    const [first] = await writeTinyModelParts(spec, join(work, "demo-split.gguf"));
    // The first part of a split model holds all the metadata.
    const shape = await readModelShape(first!.path);
    expect(shape).toMatchObject({
      architecture: "llama",
      blockCount: 2,
      embeddingLength: 64,
      headCount: 4,
      headCountKv: 2,
      trainContextLength: 2048,
      vocabSize: 262,
    });
    // 2 layers × 2 KV heads × (16 + 16) dims × 2 bytes per cell; 2 slots × 2048 cells.
    expect(kvCacheBytes(shape, 2048, 2)).toBe(2 * 2 * 32 * 2 * 4096);
    const e = estimateMemory(shape, { weightsBytes: 440_000, contextPerSlot: 2048, slots: 2 });
    expect(e.totalBytes).toBe(e.weightsBytes + e.kvCacheBytes + e.computeBytes);
    const reference = await theirs(first!.path, 2048, 2);
    expect(Math.abs(e.totalBytes - e.weightsBytes - reference) / reference).toBeLessThan(0.02);
  });

  // Hand-computed KV cache (F16): full-attention layers hold slots × context cells, gpt-oss's
  // sliding-window layers (every other one, window 128) hold pad256(slots × 128 + 512 + 1).
  const EXPECTED_KV: Record<string, Record<number, number>> = {
    // 12 full layers × 4096 × 8 heads × 128 × 2 B + 12 SWA layers × 768 × 8 × 128 × 2 B
    "gpt-oss:20b": { [K4]: 12 * 4096 * 2048 + 12 * 768 * 2048, [K128]: 12 * 131072 * 2048 + 12 * 768 * 2048 },
    "gpt-oss:120b": { [K4]: 18 * 4096 * 2048 + 18 * 768 * 2048, [K128]: 18 * 131072 * 2048 + 18 * 768 * 2048 },
    // 48 layers × 4 heads × 256 × 2 B per cell
    "qwen3-coder:30b": { [K4]: 48 * 4096 * 2048, [K128]: 48 * 131072 * 2048 },
  };

  for (const s of PUBLISHED_SHAPES) {
    for (const ctx of [K4, K128]) {
      it(`${s.id} at ${ctx / 1024}k context, 1 slot: KV cache as llama.cpp allocates it, total close to node-llama-cpp's`, async () => {
        const path = headers.get(s.id)!;
        const shape: ModelShape = await readModelShape(path);
        expect(shape).toMatchObject({
          architecture: s.architecture,
          blockCount: s.blockCount,
          headCountKv: s.headCountKv,
          slidingWindow: s.slidingWindow,
          vocabSize: s.vocabSize,
        });
        const e = estimateMemory(shape, { weightsBytes: s.fileBytes, contextPerSlot: ctx, slots: 1 });
        expect(e.kvCacheBytes).toBe(EXPECTED_KV[s.id]![ctx]);
        const reference = await theirs(path, ctx, 1);
        expect(Math.abs(e.totalBytes - e.weightsBytes - reference) / reference).toBeLessThan(0.02);
      });
    }
  }

  it("4 slots multiply the full-attention cells; gpt-oss's sliding-window layers stay small", async () => {
    const shape = await readModelShape(headers.get("gpt-oss:20b")!);
    expect(kvCacheBytes(shape, K4, 4)).toBe(12 * 4 * 4096 * 2048 + 12 * 1280 * 2048);
    const qwen = await readModelShape(headers.get("qwen3-coder:30b")!);
    expect(kvCacheBytes(qwen, K128, 4)).toBe(4 * kvCacheBytes(qwen, K128, 1));
  });

  it("caps the context per slot to the largest multiple of 256 that fits the budget", async () => {
    const s = PUBLISHED_SHAPES.find((p) => p.id === "qwen3-coder:30b")!;
    const shape = await readModelShape(headers.get(s.id)!);
    const budget = 24 * 1e9;
    const ctx = fitContextPerSlot(shape, { weightsBytes: s.fileBytes, slots: 4, wanted: K128, min: 2048, budgetBytes: budget })!;
    expect(ctx % 256).toBe(0);
    expect(ctx).toBeGreaterThanOrEqual(2048);
    expect(ctx).toBeLessThan(K128);
    expect(estimateMemory(shape, { weightsBytes: s.fileBytes, contextPerSlot: ctx, slots: 4 }).totalBytes).toBeLessThanOrEqual(budget);
    expect(estimateMemory(shape, { weightsBytes: s.fileBytes, contextPerSlot: ctx + 256, slots: 4 }).totalBytes).toBeGreaterThan(budget);
    // The whole context when it fits; nothing when not even the minimum does.
    expect(fitContextPerSlot(shape, { weightsBytes: s.fileBytes, slots: 1, wanted: K4, min: 2048, budgetBytes: 80e9 })).toBe(K4);
    expect(fitContextPerSlot(shape, { weightsBytes: s.fileBytes, slots: 1, wanted: K4, min: 2048, budgetBytes: 18e9 })).toBeUndefined();
  });
});
