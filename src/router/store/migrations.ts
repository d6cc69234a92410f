// Schema migrations, in code and in order. Kysely's migrator records applied ones in
// kysely_migration and holds a lock while it runs, so several routers starting at once against
// one PostgreSQL apply each migration exactly once. Never edit a released migration: add one.
import { Migrator, type Kysely, type Migration } from "kysely";

const MIGRATIONS: Record<string, Migration> = {
  "0001_initial": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("users")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("username", "text", (c) => c.notNull().unique())
        .addColumn("password_hash", "text", (c) => c.notNull())
        .addColumn("role", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("api_keys")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("prefix", "text", (c) => c.notNull())
        .addColumn("key_hash", "text", (c) => c.notNull().unique())
        .addColumn("models", "text")
        .addColumn("expires_at", "bigint")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("created_by", "text")
        .addColumn("last_used_at", "bigint")
        .addColumn("revoked_at", "bigint")
        .execute();

      await db.schema
        .createTable("sessions")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("sessions_user_id").on("sessions").column("user_id").execute();

      await db.schema
        .createTable("nodes")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("api_url", "text", (c) => c.notNull())
        .addColumn("first_seen", "bigint", (c) => c.notNull())
        .addColumn("last_registered", "bigint", (c) => c.notNull())
        .addColumn("display_name", "text")
        .addColumn("tags", "text")
        .addColumn("notes", "text")
        .execute();

      await db.schema
        .createTable("requests")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("request_id", "text", (c) => c.notNull())
        .addColumn("started_at", "bigint", (c) => c.notNull())
        .addColumn("api", "text", (c) => c.notNull())
        .addColumn("endpoint", "text", (c) => c.notNull())
        .addColumn("model", "text", (c) => c.notNull())
        .addColumn("stream", "integer", (c) => c.notNull())
        .addColumn("client_ip", "text", (c) => c.notNull())
        .addColumn("key_name", "text")
        .addColumn("node_id", "text")
        .addColumn("node_name", "text")
        .addColumn("status", "integer", (c) => c.notNull())
        .addColumn("error", "text")
        .addColumn("attempts", "integer", (c) => c.notNull())
        .addColumn("queue_wait_ms", "integer", (c) => c.notNull())
        .addColumn("first_byte_ms", "integer")
        .addColumn("duration_ms", "integer", (c) => c.notNull())
        .addColumn("prompt_tokens", "integer")
        .addColumn("completion_tokens", "integer")
        .addColumn("trace_id", "text")
        .addColumn("request_body", "text")
        .addColumn("response_body", "text")
        .execute();
      // Newest first, alone or after one equality filter: what the history list asks for.
      await db.schema.createIndex("requests_started_at").on("requests").columns(["started_at", "id"]).execute();
      for (const col of ["model", "node_name", "status", "key_name"]) {
        await db.schema.createIndex(`requests_${col}_started_at`).on("requests").columns([col, "started_at"]).execute();
      }
      await db.schema.createIndex("requests_request_id").on("requests").column("request_id").execute();
    },
  },
  // Agents' requests: how many tool calls each answer carried (null: unknown).
  "0002_request_tool_calls": {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable("requests").addColumn("tool_calls", "integer").execute();
    },
  },
  // Stored Responses (POST /v1/responses with store), continued through previous_response_id.
  "0003_responses": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("responses")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("key_id", "text")
        .addColumn("model", "text", (c) => c.notNull())
        .addColumn("context", "text", (c) => c.notNull())
        .addColumn("response", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("responses_created_at").on("responses").column("created_at").execute();
    },
  },
  // Cache-aware routing: the policy that placed a request, whether it ran on its affinity key's
  // first node, and the prompt tokens the engine reused.
  "0004_affinity": {
    async up(db: Kysely<any>) {
      await db.schema.alterTable("requests").addColumn("routing", "text").execute();
      await db.schema.alterTable("requests").addColumn("affinity", "text").execute();
      await db.schema.alterTable("requests").addColumn("cached_tokens", "integer").execute();
    },
  },
  "0005_node_secret": {
    async up(db: Kysely<any>) {
      await db.schema.alterTable("nodes").addColumn("secret_hash", "text").execute();
    },
  },
  // Several routers, one fleet: each router sharing the database records its advertised URL and
  // refreshes last_seen; nodes learn the live ones from any router (src/router/fleet/router-peers.ts).
  "0006_routers": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("routers")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("url", "text", (c) => c.notNull())
        .addColumn("started_at", "bigint", (c) => c.notNull())
        .addColumn("last_seen", "bigint", (c) => c.notNull())
        .execute();
    },
  },
};

export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => MIGRATIONS } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    throw new Error(`database migration${failed ? ` ${failed}` : ""} failed: ${(error as Error).message ?? String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
