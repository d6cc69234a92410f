// A minimal GGUF catalog entry for node unit tests that only need a model to exist.
import type { CatalogEntry } from "../../src/protocol/catalog.js";

export function ggufEntry(id = "m", contextLength = 4096): CatalogEntry {
  return {
    id,
    description: "",
    sizeBytes: 1,
    memoryBytes: 1,
    tags: [],
    capabilities: ["chat"],
    contextLength,
    source: { gguf: { url: "https://example.com/m.gguf" } },
  };
}
