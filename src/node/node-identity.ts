// The node's stable id (a UUID in `${dataDir}/node-id`, so the router recognises restarts) and its
// secret (`${dataDir}/node-secret`), which proves to the router that it is the node of that id.
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

const ID_FILE = "node-id";
const VALID_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Reads the node id from the data directory, creating (and persisting) one on first start. */
export async function loadOrCreateNodeId(dataDir: string): Promise<string> {
  const file = join(dataDir, ID_FILE);
  try {
    const existing = (await readFile(file, "utf8")).trim();
    if (VALID_ID.test(existing)) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const id = randomUUID();
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${id}\n`, { mode: 0o644 });
  await rename(tmp, file);
  return id;
}

const SECRET_FILE = "node-secret";

/**
 * The node's secret, kept in `${dataDir}/node-secret` (mode 0600): the router binds the node id to
 * it on first registration, so no other holder of the node token can take the id over.
 */
export async function loadOrCreateNodeSecret(dataDir: string): Promise<string> {
  const file = join(dataDir, SECRET_FILE);
  try {
    const existing = (await readFile(file, "utf8")).trim();
    if (existing.length >= 16) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32).toString("base64url");
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${secret}\n`, { mode: 0o600 });
  await rename(tmp, file);
  return secret;
}
