// Split GGUF models (llama.cpp's gguf-split): parts named `<prefix>-00001-of-0000N.gguf`, ... .
// llama.cpp is given the first part and finds the others beside it by that naming, so every copy
// of a split model (router cache, node models directory) keeps the parts together under it.
import type { CatalogEntry, GgufSource } from "../protocol/catalog.js";

const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/** `<prefix>-0000N-of-0000M.gguf` (N is 1-based), as llama.cpp's llama_split_path writes it. */
export function splitPartName(prefix: string, index: number, count: number): string {
  return `${prefix}-${String(index + 1).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.gguf`;
}

/** A single-file path `x.gguf` becomes `x-0000N-of-0000M.gguf` for part `index` (0-based) of a split model. */
export function splitPartPath(singlePath: string, index: number, count: number): string {
  if (count <= 1) return singlePath;
  return splitPartName(singlePath.replace(/\.gguf$/, ""), index, count);
}

/** The split position a file name says, e.g. `x-00002-of-00003.gguf` → { index: 1, count: 3 }. */
export function parseSplitName(name: string): { prefix: string; index: number; count: number } | undefined {
  const m = SPLIT_NAME.exec(name);
  if (!m) return undefined;
  const index = Number(m[2]) - 1;
  const count = Number(m[3]);
  return count >= 1 && index >= 0 && index < count ? { prefix: m[1]!, index, count } : undefined;
}

export interface GgufPart {
  url: string;
  sha256?: string;
}

/** Every file of a GGUF source, in order: the listed parts, the parts the first URL's name implies, or the one file. */
export function ggufParts(gguf: GgufSource): GgufPart[] {
  if (gguf.parts) return gguf.parts.map((p, i) => ({ url: p.url, sha256: p.sha256 ?? (i === 0 ? gguf.sha256 : undefined) }));
  const url = new URL(gguf.url);
  const name = url.pathname.split("/").pop() ?? "";
  const split = parseSplitName(name);
  if (!split || split.count === 1) return [{ url: gguf.url, sha256: gguf.sha256 }];
  return Array.from({ length: split.count }, (_, i) => {
    const partUrl = new URL(url);
    partUrl.pathname = url.pathname.slice(0, url.pathname.length - name.length) + splitPartName(split.prefix, i, split.count);
    return { url: partUrl.toString(), sha256: i === 0 ? gguf.sha256 : undefined };
  });
}

/** How many files the model's weights are (1 for an ordinary GGUF file or an Ollama-only model). */
export function partCount(entry: CatalogEntry): number {
  if (entry.parts) return entry.parts.length;
  if (entry.source.generate) return entry.source.generate.parts ?? 1;
  if (entry.source.gguf) return ggufParts(entry.source.gguf).length;
  return 1;
}
