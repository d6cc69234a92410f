// The nodes table: every node that ever registered (identity and operator settings), so a
// restarted router still lists them. Runtime state (models, load, liveness) stays in memory.
import type { Kysely, Selectable } from "kysely";
import type { Database, NodesTable } from "./schema.js";

export interface StoredNode {
  id: string;
  name: string;
  apiUrl: string;
  firstSeen: number;
  lastRegistered: number;
  /** sha256 of the node's secret (null: registered before node ids were bound). */
  secretHash: string | null;
  displayName: string | null;
  tags: string[];
  notes: string | null;
}

function toNode(row: Selectable<NodesTable>): StoredNode {
  return {
    id: row.id,
    name: row.name,
    apiUrl: row.api_url,
    firstSeen: row.first_seen,
    lastRegistered: row.last_registered,
    secretHash: row.secret_hash ?? null,
    displayName: row.display_name,
    tags: row.tags ? (JSON.parse(row.tags) as string[]) : [],
    notes: row.notes,
  };
}

export class NodesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Inserts or refreshes a node's identity; keeps its first-seen time and settings. */
  async save(node: { id: string; name: string; apiUrl: string; firstSeen: number; secretHash?: string | null }, now = Date.now()): Promise<void> {
    const secretHash = node.secretHash ?? null;
    await this.db
      .insertInto("nodes")
      .values({
        id: node.id,
        name: node.name,
        api_url: node.apiUrl,
        first_seen: node.firstSeen,
        last_registered: now,
        secret_hash: secretHash,
        display_name: null,
        tags: null,
        notes: null,
      })
      // A bound id keeps its first secret (COALESCE): only deleting the node frees it.
      .onConflict((oc) =>
        oc.column("id").doUpdateSet((eb) => ({
          name: node.name,
          api_url: node.apiUrl,
          last_registered: now,
          secret_hash: eb.fn.coalesce("nodes.secret_hash", eb.val(secretHash)),
        })),
      )
      .execute();
  }

  /** Deletes a node last registered (or refreshed) before `cutoff`; false when it is newer or gone. */
  async deleteStale(id: string, cutoff: number): Promise<boolean> {
    const r = await this.db.deleteFrom("nodes").where("id", "=", id).where("last_registered", "<", cutoff).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async list(): Promise<StoredNode[]> {
    const rows = await this.db.selectFrom("nodes").selectAll().orderBy("name").execute();
    return rows.map(toNode);
  }

  async get(id: string): Promise<StoredNode | null> {
    const row = await this.db.selectFrom("nodes").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? toNode(row) : null;
  }

  async updateSettings(id: string, settings: { displayName?: string | null; tags?: string[]; notes?: string | null }): Promise<boolean> {
    const set: Partial<Selectable<NodesTable>> = {};
    if (settings.displayName !== undefined) set.display_name = settings.displayName;
    if (settings.tags !== undefined) set.tags = JSON.stringify(settings.tags);
    if (settings.notes !== undefined) set.notes = settings.notes;
    if (Object.keys(set).length === 0) return (await this.get(id)) !== null;
    const r = await this.db.updateTable("nodes").set(set).where("id", "=", id).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom("nodes").where("id", "=", id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
