// Ollama model names: "name:tag", where a name without a tag means "name:latest". Clients that
// add ":latest" themselves must still find catalog ids that have no tag.
import type { CatalogEntry } from "../../../protocol/catalog.js";

const LATEST = ":latest";

export function resolveOllamaModel(byId: ReadonlyMap<string, CatalogEntry>, name: string): CatalogEntry | undefined {
  return byId.get(name) ?? (name.endsWith(LATEST) ? byId.get(name.slice(0, -LATEST.length)) : undefined);
}
