// The node's placement from the GGUF header: the larger of the estimate and the catalog's figure
// is reserved, the context per slot is cut so that the model fits, and a model that cannot fit
// even at the minimum context is refused with the figures.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readModelShape } from "../../src/gguf/header.js";
import { estimateMemory } from "../../src/gguf/memory-estimate.js";
import { writeTinyModelParts, type TinyModelSpec } from "../../src/gguf/tiny-model.js";
import { InsufficientMemoryError, MemoryLedger } from "../../src/node/model-placement.js";
import type { CatalogEntry } from "../../src/protocol/catalog.js";
import { captureLogger } from "../fixtures/capture-logger.js";

const SPEC: TinyModelSpec = {
  name: "long",
  seed: 5,
  embeddingLength: 64,
  blockCount: 2,
  headCount: 4,
  headCountKv: 4,
  feedForwardLength: 128,
  contextLength: 32768,
  parts: 2,
};
let work: string;
let first: string;
let entry: CatalogEntry;
const MB = 1_000_000;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "drover-place-"));
  const parts = await writeTinyModelParts(SPEC, join(work, "long.gguf"));
  first = parts[0]!.path;
  const size = parts.reduce((s, p) => s + p.size, 0);
  entry = {
    id: "long",
    description: "",
    sizeBytes: size,
    memoryBytes: 20 * MB,
    tags: [],
    capabilities: ["chat"],
    contextLength: 32768,
    source: { generate: SPEC },
  };
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const estimateAt = async (ctx: number, slots: number) =>
  estimateMemory(await readModelShape(first), { weightsBytes: entry.sizeBytes, contextPerSlot: ctx, slots }).totalBytes;

describe("placement from the GGUF header", () => {
  it("reserves the estimate when it is above the catalog's figure, with the wanted context when it fits", async () => {
    const log = captureLogger();
    const ledger = new MemoryLedger(10_000 * MB, [entry], 4, log.logger);
    const p = await ledger.place(entry, first, 32768);
    expect(p.contextPerSlot).toBe(32768);
    expect(p.reservedBytes).toBe(await estimateAt(32768, 4));
    expect(p.reservedBytes).toBeGreaterThan(entry.memoryBytes);
  });

  it("keeps the catalog's figure when it is the larger", async () => {
    const ledger = new MemoryLedger(10_000 * MB, [{ ...entry, memoryBytes: 5000 * MB }], 1, captureLogger().logger);
    expect((await ledger.place({ ...entry, memoryBytes: 5000 * MB }, first, 2048)).reservedBytes).toBe(5000 * MB);
  });

  it("cuts the context per slot so that the model fits what is left, and says so", async () => {
    const log = captureLogger();
    const budget = Math.round((await estimateAt(8192, 4)) * 1.01);
    const ledger = new MemoryLedger(budget, [entry], 4, log.logger);
    const p = await ledger.place(entry, first, 32768);
    expect(p.contextPerSlot).toBe(8192);
    expect(p.reservedBytes).toBeLessThanOrEqual(budget);
    expect(log.lines.some((l) => String(l.msg).includes("context per slot cut from 32768 to 8192 tokens"))).toBe(true);
  });

  it("refuses a model that does not fit even at 2048 tokens per slot, with the figures", async () => {
    const ledger = new MemoryLedger(entry.memoryBytes + 1000, [entry], 4, captureLogger().logger);
    const err = await ledger.place(entry, first, 32768).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientMemoryError);
    expect((err as Error).message).toMatch(
      /^insufficient memory: the GGUF header says [\d.]+ MB at least \(weights [\d.]+ kB \+ KV cache [\d.]+ MB for 4 × 2048 tokens \+ compute [\d.]+ MB\), have 20\.0 MB$/,
    );
  });

  it("models placed earlier take their share: a later one sees only what is left", async () => {
    const other: CatalogEntry = { ...entry, id: "other", memoryBytes: 1 * MB };
    const big = await estimateAt(32768, 4);
    const ledger = new MemoryLedger(big + 2 * MB, [entry, other], 4, captureLogger().logger);
    expect((await ledger.place(entry, first, 32768)).contextPerSlot).toBe(32768);
    // `entry` now holds its estimate: `other` has its own 1 MB and the ~1 MB left, too little for its estimate even at 2048.
    await expect(ledger.place(other, first, 32768)).rejects.toBeInstanceOf(InsufficientMemoryError);
  });
});

describe("a node placing by the GGUF header", () => {
  it("marks a model whose header estimate exceeds the memory left `unsupported` with the figures, ", async () => {
    const { fileURLToPath } = await import("node:url");
    const { LlamaEngineLauncher } = await import("../../src/node/engine-launcher.js");
    const { startNode } = await import("../../src/node/main.js");
    const { FakeRouter, makeTinyModel, waitFor } = await import("../fixtures/fake-router.js");
    // The catalog says 1 MB and the limit is 5 MB: the catalog plan accepts it; its header says ~13 MB.
    const model = await makeTinyModel(work, "tiny", 12, 1 * MB);
    const router = await new FakeRouter([model]).start();
    const dir = join(work, "node");
    const node = await startNode({
      routerUrl: router.url,
      host: "127.0.0.1",
      port: 0,
      name: "n",
      dataDir: join(dir, "data"),
      modelsDir: join(dir, "models"),
      engine: "llama",
      threads: 1,
      slots: 1,
      memoryLimitBytes: 5 * MB,
      heartbeatMs: 100,
      logger: captureLogger().logger,
      launcher: new LlamaEngineLauncher({ prefixArgs: [fileURLToPath(new URL("../fixtures/fake-engine.mjs", import.meta.url))] }),
    });
    try {
      const status = await waitFor(async () => node.models().find((m) => m.id === "tiny" && m.state === "unsupported"), 10_000, "tiny unsupported");
      expect(status.reason).toMatch(/^insufficient memory: the GGUF header says [\d.]+ MB at least \(weights .* for 1 × 2048 tokens .*\), have 5\.0 MB$/);
    } finally {
      await node.close();
      await router.close();
    }
  });
});
