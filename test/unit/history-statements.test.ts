// The history writer and the SQLite worker keep a bounded set of prepared statements whatever
// the traffic: on SQLite a batch of any size is one statement (rows as JSON), on PostgreSQL INSERTs
// come from a fixed ladder of row counts, and the worker's statement cache is an LRU of bounded
// size (each statement holds native memory). Every row arrives intact either way.
import { CompiledQuery, Kysely } from "kysely";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { HistoryRecord } from "../../src/protocol/request-record.js";
import { openDatabase } from "../../src/router/store/database.js";
import { migrateToLatest } from "../../src/router/store/migrations.js";
import { INSERT_ROW_LADDER, RequestHistoryRepository } from "../../src/router/store/request-history.js";
import type { Database } from "../../src/router/store/schema.js";
import { WorkerSqliteDialect } from "../../src/router/store/sqlite-worker-dialect.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";

let db: Kysely<Database> | null = null;

afterEach(async () => {
  await db?.destroy();
  db = null;
});

async function open(maxStatements?: number): Promise<WorkerSqliteDialect> {
  const dialect = new WorkerSqliteDialect({
    path: join(mkdtempSync(join(tmpdir(), "drover-stmts-")), "drover.db"),
    pragmas: ["journal_mode = WAL", "synchronous = OFF"],
    maxStatements,
  });
  db = new Kysely<Database>({ dialect });
  await migrateToLatest(db);
  return dialect;
}

let seq = 0;
function record(): HistoryRecord {
  const n = seq++;
  return {
    id: `rec_${String(n).padStart(8, "0")}`,
    requestId: `req_${n}`,
    startedAt: 1_700_000_000_000 + n,
    api: "openai",
    endpoint: "/v1/chat/completions",
    model: "demo-chat",
    stream: false,
    clientIp: "127.0.0.1",
    keyName: "k",
    nodeId: "n1",
    nodeName: "alpha",
    status: 200,
    error: null,
    attempts: 1,
    queueWaitMs: 0,
    firstByteMs: 1,
    durationMs: 2,
    promptTokens: 3,
    completionTokens: 4,
    toolCalls: null,
    traceId: null,
    routing: null,
    affinity: null,
    cachedTokens: null,
  };
}

describe("prepared statements stay bounded", () => {
  test("history batches of every size from 1 to 500 add at most a handful of prepared statements", async () => {
    const dialect = await open();
    const repo = new RequestHistoryRepository(db!, "sqlite");
    const before = await dialect.driver!.cachedStatements();
    let total = 0;
    for (let size = 1; size <= 500; size++) {
      await repo.insertMany(Array.from({ length: size }, record));
      total += size;
    }
    const added = (await dialect.driver!.cachedStatements()) - before;
    expect(added).toBeLessThanOrEqual(INSERT_ROW_LADDER.length + 2);
    const { rows } = await db!.executeQuery<{ n: number }>(CompiledQuery.raw("select count(*) as n from requests"));
    expect(rows[0]!.n).toBe(total);
  }, 120_000);

  test("the worker keeps at most maxStatements prepared statements, evicting the least recently used", async () => {
    const dialect = await open(8);
    for (let i = 0; i < 40; i++) await db!.executeQuery(CompiledQuery.raw(`select ${i} as n`));
    expect(await dialect.driver!.cachedStatements()).toBe(8);
    // Still answers correctly after evictions, including a statement evicted and prepared again.
    const { rows } = await db!.executeQuery<{ n: number }>(CompiledQuery.raw("select 0 as n"));
    expect(rows[0]!.n).toBe(0);
  });
});

describe.each(["sqlite", "postgres"] as const)("history batches on %s", (kind) => {
  let pg: TestPostgres | null = null;
  beforeAll(async () => {
    if (kind === "postgres") pg = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await pg?.stop();
  });

  test("batches across the ladder's steps land whole, every field as written", async () => {
    const store = await openDatabase({ dataDir: mkdtempSync(join(tmpdir(), "drover-batches-")), databaseUrl: pg ? await pg.createDatabase() : null });
    try {
      const repo = new RequestHistoryRepository(store.db, store.kind);
      const sizes = [1, 3, 4, 5, 17, 63, 64, 65, 255, 256, 257, 333, 500];
      const odd: HistoryRecord = {
        ...record(),
        stream: true,
        error: 'quote " backslash \\ newline \n and ünïcödé 🚀',
        firstByteMs: null,
        toolCalls: 2,
        routing: "prefix",
        affinity: "hit",
        cachedTokens: 7,
        requestBody: '{"messages":[{"role":"user","content":"hé"}]}',
        responseBody: "data: {}\n\n",
      };
      let total = 0;
      for (const size of sizes) {
        const batch = Array.from({ length: size }, record);
        if (size === 65) batch[40] = odd;
        await repo.insertMany(batch);
        total += size;
      }
      // A batch written again (after an unclear failure) adds nothing and fails nothing.
      await repo.insertMany([odd]);
      expect(await repo.count({})).toBe(total);
      expect(await repo.get(odd.id)).toEqual(odd);
    } finally {
      await store.close();
    }
  }, 120_000);
});
