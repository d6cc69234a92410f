// Stored Responses: what POST /v1/responses answered (with `store`), and the conversation that led
// to it, so a later request on any router sharing the database continues it through
// previous_response_id. Each belongs to the API key that made it. Kept as long as history.
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

export interface StoredResponse {
  id: string;
  createdAt: number;
  keyId: string | null;
  model: string;
  /** The input items of the conversation up to this turn (JSON-ready). */
  context: unknown[];
  /** The Response object as answered. */
  response: Record<string, unknown>;
}

export class ResponsesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async save(r: StoredResponse): Promise<void> {
    await this.db
      .insertInto("responses")
      .values({ id: r.id, created_at: r.createdAt, key_id: r.keyId, model: r.model, context: JSON.stringify(r.context), response: JSON.stringify(r.response) })
      .execute();
  }

  /** The response with this id made by this key (null: none, or another key's). */
  async get(id: string, keyId: string | null): Promise<StoredResponse | null> {
    let q = this.db.selectFrom("responses").selectAll().where("id", "=", id);
    q = keyId === null ? q.where("key_id", "is", null) : q.where("key_id", "=", keyId);
    const row = await q.executeTakeFirst();
    if (!row) return null;
    return {
      id: row.id,
      createdAt: Number(row.created_at),
      keyId: row.key_id,
      model: row.model,
      context: JSON.parse(row.context) as unknown[],
      response: JSON.parse(row.response) as Record<string, unknown>,
    };
  }

  /** Deletes this key's response; false when there was none. */
  async delete(id: string, keyId: string | null): Promise<boolean> {
    let q = this.db.deleteFrom("responses").where("id", "=", id);
    q = keyId === null ? q.where("key_id", "is", null) : q.where("key_id", "=", keyId);
    const r = await q.executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Retention: deletes responses created before `cutoff`, in chunks. */
  async deleteOlderThan(cutoff: number, chunk = 5000): Promise<number> {
    let total = 0;
    for (;;) {
      const r = await this.db
        .deleteFrom("responses")
        .where("id", "in", (eb) => eb.selectFrom("responses").select("id").where("created_at", "<", cutoff).limit(chunk))
        .executeTakeFirst();
      const n = Number(r.numDeletedRows);
      total += n;
      if (n < chunk) return total;
    }
  }
}
