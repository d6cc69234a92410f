// The routers table: the routers sharing this database, each with the URL nodes reach it at and
// when it last said it was alive. Nodes learn the live ones through any router.
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

export interface StoredRouter {
  id: string;
  url: string;
  startedAt: number;
  lastSeen: number;
}

export class RoutersRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records (or refreshes) a running router. */
  async upsert(router: { id: string; url: string; startedAt: number }, now = Date.now()): Promise<void> {
    await this.db
      .insertInto("routers")
      .values({ id: router.id, url: router.url, started_at: router.startedAt, last_seen: now })
      .onConflict((oc) => oc.column("id").doUpdateSet({ url: router.url, last_seen: now }))
      .execute();
  }

  /** Routers seen since `since` (epoch ms), oldest first. */
  async listLive(since: number): Promise<StoredRouter[]> {
    const rows = await this.db.selectFrom("routers").selectAll().where("last_seen", ">=", since).orderBy("started_at").orderBy("id").execute();
    return rows.map((r) => ({ id: r.id, url: r.url, startedAt: r.started_at, lastSeen: r.last_seen }));
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom("routers").where("id", "=", id).execute();
  }

  /** Rows of routers that stopped refreshing long ago (killed without a chance to delete theirs). */
  async deleteStale(before: number): Promise<number> {
    const result = await this.db.deleteFrom("routers").where("last_seen", "<", before).executeTakeFirst();
    return Number(result.numDeletedRows ?? 0);
  }
}
