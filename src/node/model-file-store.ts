// Where model files live in the models directory, and which of them can be trusted:
// `<name>.gguf` is final, `<name>.gguf.part` is an unfinished download, and the sidecar
// `<name>.gguf.sha256` records the checksum the file was verified against.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface ModelFilePaths {
  final: string;
  part: string;
  sidecar: string;
}

/**
 * A file name for a catalog id: ids may hold ":" and "/", which are replaced by "_"; when that
 * changed the id, a short hash of the id keeps distinct ids ("a:b", "a_b") apart.
 */
export function modelFileName(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_");
  if (safe === id) return `${safe}.gguf`;
  const suffix = createHash("sha256").update(id).digest("hex").slice(0, 8);
  return `${safe}-${suffix}.gguf`;
}

export function modelFilePaths(modelsDir: string, id: string): ModelFilePaths {
  const final = join(modelsDir, modelFileName(id));
  return { final, part: `${final}.part`, sidecar: `${final}.sha256` };
}

/** Size of a file, or undefined when it does not exist. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * True when the final file exists, its sidecar names `sha256`, and the file was not modified
 * after the sidecar was written (a later write means its bytes must be hashed again).
 */
export async function isVerified(paths: ModelFilePaths, sha256: string): Promise<boolean> {
  try {
    const [file, sidecar] = await Promise.all([stat(paths.final), stat(paths.sidecar)]);
    if (!file.isFile() || file.mtimeMs > sidecar.mtimeMs) return false;
    const recorded = (await readFile(paths.sidecar, "utf8")).trim().split(/\s+/)[0];
    return recorded === sha256;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** Sidecar in `sha256sum` format, so operators can check files by hand. */
export async function writeSidecar(paths: ModelFilePaths, sha256: string, fileName: string): Promise<void> {
  await writeFile(paths.sidecar, `${sha256}  ${fileName}\n`);
}

/** Feeds the bytes of an existing file into `hash` (used to resume a partial download). */
export async function hashFileInto(path: string, hash: ReturnType<typeof createHash>): Promise<number> {
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return bytes;
}

export async function removeQuietly(...paths: string[]): Promise<void> {
  await Promise.all(paths.map((p) => rm(p, { force: true }).catch(() => undefined)));
}
