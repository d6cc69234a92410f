// The node token: the router's shared secret for nodes. Taken from DROVER_NODE_TOKEN, or
// generated on first start and kept in the data directory so nodes keep working after restarts.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

export async function resolveNodeToken(given: string | undefined, dataDir: string): Promise<{ token: string; generated: boolean }> {
  if (given) return { token: given, generated: false };
  const path = join(dataDir, "node-token");
  const existing = await readFile(path, "utf8").catch(() => "");
  if (existing.trim()) return { token: existing.trim(), generated: false };
  const token = `drv_node_${randomBytes(24).toString("base64url")}`;
  await mkdir(dataDir, { recursive: true });
  await writeFile(path, token + "\n", { mode: 0o600 });
  return { token, generated: true };
}
