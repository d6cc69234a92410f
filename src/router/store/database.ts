// Opens the router's database: SQLite in the data directory by default, PostgreSQL when a
// postgres:// URL is given (several routers then share users, keys, nodes and history).
// Migrations run on open.
import { Kysely, PostgresDialect } from "kysely";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type pg from "pg";
import { migrateToLatest } from "./migrations.js";
import type { Database } from "./schema.js";
import { WorkerSqliteDialect } from "./sqlite-worker-dialect.js";

export type DatabaseKind = "sqlite" | "postgres";

export interface StoreDatabase {
  db: Kysely<Database>;
  kind: DatabaseKind;
  /** Where it lives, without credentials: for banners and logs. */
  location: string;
  close(): Promise<void>;
}

export const SQLITE_FILE = "drover.db";

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** The URL with its password masked, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable database URL)";
  }
}

// int8 (bigint) arrives from pg as a string by default; our bigints are epoch milliseconds
// and counts, far below 2^53.
const PG_INT8 = 20;
function pgTypes(types: typeof pg.types) {
  return {
    getTypeParser: ((oid: number, format?: string) =>
      oid === PG_INT8 ? (v: string) => Number(v) : types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
  };
}

export interface OpenDatabaseOptions {
  /** Directory for the SQLite file when no URL is given. */
  dataDir: string;
  databaseUrl?: string | null;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
}

export async function openDatabase(opts: OpenDatabaseOptions): Promise<StoreDatabase> {
  let store: StoreDatabase;
  if (opts.databaseUrl) {
    if (!isPostgresUrl(opts.databaseUrl)) throw new Error(`--database-url must be a postgres:// URL, got "${redactUrl(opts.databaseUrl)}"`);
    // Loaded only for PostgreSQL: a router on SQLite does not carry pg in its memory.
    const { default: pg } = await import("pg");
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: opts.poolSize ?? 10, types: pgTypes(pg.types) });
    // An idle client losing its connection emits 'error' on the pool; without a listener that
    // would crash the router. The next query gets a fresh connection.
    pool.on("error", () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    store = { db, kind: "postgres", location: redactUrl(opts.databaseUrl), close: () => db.destroy() };
  } else {
    mkdirSync(opts.dataDir, { recursive: true });
    const path = join(opts.dataDir, SQLITE_FILE);
    // WAL lets the CLI (`drover keys ...`) write while a router reads; busy_timeout makes the
    // rare concurrent writer wait instead of failing.
    const pragmas = ["journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 5000", "foreign_keys = ON"];
    const db = new Kysely<Database>({ dialect: new WorkerSqliteDialect({ path, pragmas }) });
    store = { db, kind: "sqlite", location: path, close: () => db.destroy() };
  }
  try {
    await migrateToLatest(store.db);
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}
