// The catalog and the fleet as Ollama's model listings see them: /api/tags (the supported set),
// /api/ps (models ready somewhere in the fleet) and /api/show (one model).
import type { CatalogEntry } from "../../../protocol/catalog.js";
import type { NodeRecord } from "../../fleet/node-registry.js";

export interface OllamaModelDetails {
  parent_model: string;
  format: string;
  family: string;
  families: string[];
  parameter_size: string;
  quantization_level: string;
}

/** Ollama reports models that never unload with a far-future expiry; drover's engines stay loaded. */
const NEVER_EXPIRES = "9999-12-31T23:59:59Z";

/** "20.9B", "137.0M": Ollama's way of writing parameter counts. */
export function formatParameterCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e3).toFixed(1)}K`;
}

function family(entry: CatalogEntry): string {
  // Generated demo models are llama-architecture; others are named after their family ("gpt-oss:20b").
  if (entry.source.generate) return "llama";
  return entry.id.split(":")[0]!.split("/").pop()!;
}

function parameterSize(entry: CatalogEntry): string {
  // Generated models store every weight as a 4-byte float.
  if (entry.source.generate) return formatParameterCount(Math.round(entry.sizeBytes / 4));
  const tag = /:(\d+(?:\.\d+)?)([bm])\b/i.exec(entry.id);
  return tag ? `${tag[1]}${tag[2]!.toUpperCase()}` : "";
}

function quantization(entry: CatalogEntry): string {
  if (entry.source.generate) return "F32";
  const file = entry.source.gguf?.url.split("/").pop() ?? "";
  const q = /(?:^|[-_.])(MXFP4|I?Q\d(?:_K)?(?:_[SMLX]{1,2}|_\d)?|BF16|F16|F32)(?=[-_.])/i.exec(file);
  return q ? q[1]!.toUpperCase() : "";
}

export function modelDetails(entry: CatalogEntry): OllamaModelDetails {
  const fam = family(entry);
  return { parent_model: "", format: "gguf", family: fam, families: [fam], parameter_size: parameterSize(entry), quantization_level: quantization(entry) };
}

/** What every listing of one model shares. */
function modelBase(entry: CatalogEntry, modifiedAt: number) {
  return {
    name: entry.id,
    model: entry.id,
    modified_at: new Date(modifiedAt).toISOString(),
    size: entry.sizeBytes,
    digest: entry.sha256 ?? "",
    details: modelDetails(entry),
  };
}

/** GET /api/tags: the supported set, whether or not a node serves it right now. */
export function tagsView(models: readonly CatalogEntry[], modifiedAt: (id: string) => number) {
  return { models: models.map((m) => modelBase(m, modifiedAt(m.id))) };
}

/** GET /api/ps: models ready on at least one online node, with the fleet's counts as extra fields. */
export function psView(models: readonly CatalogEntry[], nodes: readonly NodeRecord[], modifiedAt: (id: string) => number) {
  const rows = [];
  for (const entry of models) {
    let readyNodes = 0;
    let slots = 0;
    let inFlight = 0;
    let onGpu = false;
    for (const node of nodes) {
      const m = node.models.get(entry.id);
      if (node.state !== "online" || m?.state !== "ready") continue;
      readyNodes++;
      slots += m.slots;
      inFlight += node.inFlight.get(entry.id) ?? 0;
      if ((node.metrics.gpus?.length ?? 0) > 0) onGpu = true;
    }
    if (readyNodes === 0) continue;
    const { modified_at: _, ...base } = modelBase(entry, modifiedAt(entry.id));
    rows.push({
      ...base,
      // Per engine: what one loaded copy needs.
      size: entry.memoryBytes,
      size_vram: onGpu ? entry.memoryBytes : 0,
      expires_at: NEVER_EXPIRES,
      context_length: entry.contextLength,
      ready_nodes: readyNodes,
      slots,
      in_flight: inFlight,
    });
  }
  return { models: rows };
}

/** Ollama's capability names: "completion" covers chat and generate. */
function capabilities(entry: CatalogEntry): string[] {
  const out: string[] = [];
  if (entry.capabilities.includes("chat") || entry.capabilities.includes("completion")) out.push("completion");
  if (entry.capabilities.includes("embedding")) out.push("embedding");
  return out;
}

/** POST /api/show. drover has no Modelfile or Go template to show: those fields are descriptive. */
export function showView(entry: CatalogEntry, modifiedAt: number) {
  const details = modelDetails(entry);
  const arch = details.family;
  return {
    license: "",
    modelfile: `# drover catalog model ${entry.id}${entry.description ? `: ${entry.description}` : ""}\nFROM ${entry.id}\n`,
    parameters: "",
    template: "",
    details,
    model_info: {
      "general.architecture": arch,
      "general.basename": entry.id,
      ...(entry.description ? { "general.description": entry.description } : {}),
      [`${arch}.context_length`]: entry.contextLength,
      ...(entry.source.generate
        ? { [`${arch}.embedding_length`]: entry.source.generate.embeddingLength, [`${arch}.block_count`]: entry.source.generate.blockCount }
        : {}),
    },
    capabilities: capabilities(entry),
    modified_at: new Date(modifiedAt).toISOString(),
  };
}
