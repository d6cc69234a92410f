// The router's model file cache: the weights nodes download, so a fleet fetches each file from
// outside once. Generated (demo) models are written here at start-up.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { writeTinyModel } from "../gguf/tiny-model.js";
import type { Catalog, CatalogEntry } from "../protocol/catalog.js";

export interface CachedFile {
  path: string;
  size: number;
  sha256: string;
}

/** A file name that cannot escape the cache directory, whatever the model id holds. */
export function modelFileName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, "_") + ".gguf";
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export class ModelCache {
  private files = new Map<string, CachedFile>();

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /** Writes the generated models and indexes files already present; fills sha256/size in the catalog. */
  async prepare(catalog: Catalog): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const entry of catalog.models) {
      const path = join(this.dir, modelFileName(entry.id));
      if (entry.source.generate) {
        const { sha256, size } = await writeTinyModel(entry.source.generate, path);
        this.files.set(entry.id, { path, size, sha256 });
      } else {
        const present = await stat(path).catch(() => null);
        if (present?.isFile()) {
          const sha256 = await sha256OfFile(path);
          if (entry.source.gguf?.sha256 && entry.source.gguf.sha256 !== sha256) {
            this.logger.warn({ model: entry.id }, "cached file does not match the catalog sha256; ignoring it");
            continue;
          }
          this.files.set(entry.id, { path, size: present.size, sha256 });
        }
      }
      this.annotate(entry);
    }
  }

  private annotate(entry: CatalogEntry): void {
    const file = this.files.get(entry.id);
    if (file) {
      entry.sha256 = file.sha256;
      entry.sizeBytes = file.size;
    } else if (entry.source.gguf?.sha256) {
      entry.sha256 = entry.source.gguf.sha256;
    }
  }

  get(id: string): CachedFile | undefined {
    return this.files.get(id);
  }
}
