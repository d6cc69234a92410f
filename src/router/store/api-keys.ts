// The api_keys table: inference keys, stored as hashes, with an optional model allow-list,
// expiry, last-used time and revocation.
import { randomUUID } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import type { ApiKeysTable, Database } from "./schema.js";

export interface ApiKeyRecord {
  id: string;
  name: string;
  prefix: string;
  /** null = every model. */
  models: string[] | null;
  expiresAt: number | null;
  createdAt: number;
  createdBy: string | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

function toRecord(row: Selectable<ApiKeysTable>): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    models: row.models === null ? null : (JSON.parse(row.models) as string[]),
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    createdBy: row.created_by,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

export interface NewApiKey {
  name: string;
  prefix: string;
  keyHash: string;
  models: string[] | null;
  expiresAt: number | null;
  createdBy: string | null;
}

export class ApiKeysRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Throws a unique violation (see isUniqueViolation) when a key with this hash exists. */
  async create(input: NewApiKey, now = Date.now()): Promise<ApiKeyRecord> {
    const row: Selectable<ApiKeysTable> = {
      id: randomUUID(),
      name: input.name,
      prefix: input.prefix,
      key_hash: input.keyHash,
      models: input.models === null ? null : JSON.stringify(input.models),
      expires_at: input.expiresAt,
      created_at: now,
      created_by: input.createdBy,
      last_used_at: null,
      revoked_at: null,
    };
    await this.db.insertInto("api_keys").values(row).execute();
    return toRecord(row);
  }

  async findByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    const row = await this.db.selectFrom("api_keys").selectAll().where("key_hash", "=", keyHash).executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async list(): Promise<ApiKeyRecord[]> {
    const rows = await this.db.selectFrom("api_keys").selectAll().orderBy("created_at", "desc").orderBy("id").execute();
    return rows.map(toRecord);
  }

  async findById(id: string): Promise<ApiKeyRecord | null> {
    const row = await this.db.selectFrom("api_keys").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  /** Keys not revoked with this name (names are unique among them; see the api-keys service). */
  async findActiveByName(name: string): Promise<ApiKeyRecord[]> {
    const rows = await this.db.selectFrom("api_keys").selectAll().where("name", "=", name).where("revoked_at", "is", null).execute();
    return rows.map(toRecord);
  }

  async count(): Promise<number> {
    const r = await this.db
      .selectFrom("api_keys")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** False when the key does not exist or was already revoked. */
  async revoke(id: string, now = Date.now()): Promise<boolean> {
    const r = await this.db.updateTable("api_keys").set({ revoked_at: now }).where("id", "=", id).where("revoked_at", "is", null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Records last-used times collected in memory; never moves a time backwards. */
  async touch(lastUsed: ReadonlyMap<string, number>): Promise<void> {
    if (lastUsed.size === 0) return;
    await this.db.transaction().execute(async (tx) => {
      for (const [id, at] of lastUsed) {
        await tx
          .updateTable("api_keys")
          .set({ last_used_at: at })
          .where("id", "=", id)
          .where((eb) => eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", at)]))
          .execute();
      }
    });
  }
}
