import { describe, expect, it } from "vitest";
import { defaultMemoryBudget, planModelsForMemory } from "../../src/node/memory-budget.js";
import type { CatalogEntry } from "../../src/protocol/catalog.js";

const GIB = 1024 ** 3;
const entry = (id: string, memoryBytes: number): CatalogEntry => ({
  id,
  description: "",
  sizeBytes: 1,
  memoryBytes,
  tags: [],
  capabilities: ["chat"],
  contextLength: 4096,
  source: { ollama: id },
});

describe("memory budget", () => {
  it("reserves max(2 GiB, 10 %) of RAM", () => {
    expect(defaultMemoryBudget(8 * GIB)).toBe(6 * GIB);
    expect(defaultMemoryBudget(100 * GIB)).toBe(90 * GIB);
    expect(defaultMemoryBudget(1 * GIB)).toBe(0);
  });

  it("places models in catalog order and marks the rest unsupported with a reason", () => {
    const plan = planModelsForMemory([entry("a", 16e9), entry("big", 80e9), entry("b", 16e9), entry("c", 16e9)], 40e9);
    expect(plan.get("a")).toEqual({ fits: true });
    expect(plan.get("big")).toMatchObject({ fits: false, reason: expect.stringMatching(/^insufficient memory: needs 80\.0 GB, have 24\.0 GB/) });
    expect(plan.get("b")).toEqual({ fits: true });
    expect(plan.get("c")).toMatchObject({ fits: false });
  });
});
