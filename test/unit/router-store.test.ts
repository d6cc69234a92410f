// The data-access layer against both databases it supports: SQLite (a temp file) and a real
// PostgreSQL server started for this file. Every test runs on both, from empty databases.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { historyId } from "../../src/router/history/history-recorder.js";
import { openDatabase } from "../../src/router/store/database.js";
import { isUniqueViolation } from "../../src/router/store/errors.js";
import { migrateToLatest } from "../../src/router/store/migrations.js";
import type { HistoryRecord } from "../../src/protocol/request-record.js";
import { openStore, type RouterStore } from "../../src/router/store/router-store.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);
afterAll(async () => {
  await pg?.stop();
});

type Kind = "sqlite" | "postgres";
const fresh = async (kind: Kind): Promise<RouterStore> =>
  kind === "sqlite" ? openStore({ dataDir: mkdtempSync(join(tmpdir(), "drover-store-")) }) : openStore({ dataDir: "", databaseUrl: await pg.createDatabase() });

function rec(over: Partial<HistoryRecord> & { startedAt: number }): HistoryRecord {
  return {
    id: historyId(over.startedAt),
    requestId: `req_${Math.random().toString(36).slice(2)}`,
    api: "openai",
    endpoint: "/v1/chat/completions",
    model: "m-a",
    stream: false,
    clientIp: "127.0.0.1",
    keyName: "k1",
    nodeId: "node-1",
    nodeName: "alpha",
    status: 200,
    error: null,
    attempts: 1,
    queueWaitMs: 0,
    firstByteMs: 5,
    durationMs: 10,
    promptTokens: 3,
    completionTokens: 4,
    traceId: null,
    ...over,
  };
}

describe.each<Kind>(["sqlite", "postgres"])("store on %s", (kind) => {
  test("migrations run from empty, create every table, and a second run applies nothing", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "drover-mig-"));
    const url = kind === "postgres" ? await pg.createDatabase() : null;
    const { db, close } = await openDatabase({ dataDir, databaseUrl: url });
    try {
      const tables = (await db.introspection.getTables()).map((t) => t.name).sort();
      expect(tables).toEqual(expect.arrayContaining(["api_keys", "nodes", "requests", "responses", "sessions", "users"]));
      expect(await migrateToLatest(db)).toEqual([]);
      const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
      expect(applied.rows.map((r) => r.name)).toEqual(["0001_initial", "0002_request_tool_calls", "0003_responses", "0004_affinity", "0005_node_secret"]);
    } finally {
      await close();
    }
  });

  test("users: create, unique usernames, role and password changes, delete with sessions", async () => {
    const s = await fresh(kind);
    try {
      const u = await s.users.create({ username: "ann", passwordHash: "h1", role: "admin" }, 1000);
      await expect(s.users.create({ username: "ann", passwordHash: "h2", role: "viewer" })).rejects.toSatisfy(isUniqueViolation);
      expect(await s.users.findByUsername("ann")).toMatchObject({ id: u.id, role: "admin", passwordHash: "h1", createdAt: 1000 });
      expect(await s.users.count()).toBe(1);
      expect(await s.users.countAdmins()).toBe(1);
      expect(await s.users.setRole(u.id, "viewer")).toBe(true);
      expect(await s.users.setPassword(u.id, "h3")).toBe(true);
      expect(await s.users.findByUsername("ann")).toMatchObject({ role: "viewer", passwordHash: "h3" });

      await s.sessions.create("sess-1", u.id, Date.now() + 60_000);
      await s.sessions.create("sess-old", u.id, Date.now() - 1);
      expect((await s.sessions.find("sess-1"))?.user.username).toBe("ann");
      expect(await s.sessions.find("sess-old")).toBeNull();
      expect(await s.sessions.deleteExpired()).toBe(1);
      expect(await s.users.delete(u.id)).toBe(true);
      expect(await s.sessions.find("sess-1")).toBeNull();
      expect(await s.users.list()).toEqual([]);
    } finally {
      await s.close();
    }
  });

  test("api keys: stored by hash, model list round-trips, revoke once, last-used never goes back", async () => {
    const s = await fresh(kind);
    try {
      const k = await s.apiKeys.create({
        name: "ci",
        prefix: "drv_ab",
        keyHash: "hash-1",
        models: ["m-a", "m-b"],
        expiresAt: 5_000_000_000_000,
        createdBy: "test",
      });
      await expect(s.apiKeys.create({ name: "other", prefix: "x", keyHash: "hash-1", models: null, expiresAt: null, createdBy: null })).rejects.toSatisfy(
        isUniqueViolation,
      );
      expect(await s.apiKeys.findByHash("hash-1")).toMatchObject({ id: k.id, models: ["m-a", "m-b"], expiresAt: 5_000_000_000_000, revokedAt: null });
      expect(typeof (await s.apiKeys.findByHash("hash-1"))!.expiresAt).toBe("number");
      expect((await s.apiKeys.findActiveByName("ci")).map((x) => x.id)).toEqual([k.id]);
      await s.apiKeys.touch(new Map([[k.id, 2000]]));
      await s.apiKeys.touch(new Map([[k.id, 1000]]));
      expect((await s.apiKeys.findById(k.id))!.lastUsedAt).toBe(2000);
      expect(await s.apiKeys.revoke(k.id, 3000)).toBe(true);
      expect(await s.apiKeys.revoke(k.id, 4000)).toBe(false);
      expect((await s.apiKeys.findById(k.id))!.revokedAt).toBe(3000);
      expect(await s.apiKeys.findActiveByName("ci")).toEqual([]);
      expect(await s.apiKeys.count()).toBe(1);
    } finally {
      await s.close();
    }
  });

  test("nodes: saved identities keep first-seen time and settings across updates", async () => {
    const s = await fresh(kind);
    try {
      await s.nodes.save({ id: "n1", name: "gpu-1", apiUrl: "http://a:1", firstSeen: 100 }, 200);
      expect(await s.nodes.updateSettings("n1", { displayName: "Rack 1", tags: ["a100"], notes: "spare" })).toBe(true);
      await s.nodes.save({ id: "n1", name: "gpu-1b", apiUrl: "http://b:2", firstSeen: 999 }, 300);
      expect(await s.nodes.list()).toEqual([
        {
          id: "n1",
          name: "gpu-1b",
          apiUrl: "http://b:2",
          firstSeen: 100,
          lastRegistered: 300,
          secretHash: null,
          displayName: "Rack 1",
          tags: ["a100"],
          notes: "spare",
        },
      ]);
      expect(await s.nodes.delete("n1")).toBe(true);
      expect(await s.nodes.get("n1")).toBeNull();
    } finally {
      await s.close();
    }
  });

  test("request history: filters, newest first, paging, keyset, lookup by id or request id, retention", async () => {
    const s = await fresh(kind);
    try {
      const base = 1_700_000_000_000;
      const rows: HistoryRecord[] = [];
      for (let i = 0; i < 30; i++) {
        rows.push(
          rec({
            startedAt: base + i * 1000,
            model: i % 3 === 0 ? "m-b" : "m-a",
            nodeName: i % 2 ? "beta" : "alpha",
            nodeId: i % 2 ? "node-2" : "node-1",
            status: i % 5 === 0 ? 503 : 200,
            keyName: i < 10 ? "k1" : "k2",
            requestId: `req-${i}`,
            requestBody: i === 7 ? '{"model":"m-a"}' : null,
            responseBody: i === 7 ? "hello" : null,
            ...(i === 7 ? { routing: "prefix" as const, affinity: "hit" as const, cachedTokens: 2 } : {}),
          }),
        );
      }
      await s.requests.insertMany(rows);
      await s.requests.insertMany([rows[0]!]); // a replayed row is ignored

      const all = await s.requests.list({}, { limit: 100 });
      expect(all).toHaveLength(30);
      expect(all.map((r) => r.startedAt)).toEqual([...rows].reverse().map((r) => r.startedAt));
      expect(all[0]).not.toHaveProperty("requestBody");
      expect(await s.requests.count({})).toBe(30);

      expect(await s.requests.count({ model: "m-b" })).toBe(10);
      expect(await s.requests.count({ node: "beta" })).toBe(15);
      expect(await s.requests.count({ node: "node-2" })).toBe(15);
      expect(await s.requests.count({ statusMin: 500, statusMax: 599 })).toBe(6);
      expect(await s.requests.count({ keyName: "k1", model: "m-a" })).toBe(6);
      expect(await s.requests.count({ from: base + 10_000, to: base + 20_000 })).toBe(10);

      const page2 = await s.requests.list({}, { limit: 10, offset: 10 });
      expect(page2.map((r) => r.requestId)).toEqual(all.slice(10, 20).map((r) => r.requestId));
      const after = await s.requests.list({}, { limit: 5, after: { startedAt: all[4]!.startedAt, id: all[4]!.id } });
      expect(after.map((r) => r.id)).toEqual(all.slice(5, 10).map((r) => r.id));

      const one = await s.requests.get(rows[7]!.id);
      expect(one).toMatchObject({
        requestId: "req-7",
        stream: false,
        requestBody: '{"model":"m-a"}',
        responseBody: "hello",
        promptTokens: 3,
        routing: "prefix",
        affinity: "hit",
        cachedTokens: 2,
      });
      expect(all.find((r) => r.requestId === "req-8")).toMatchObject({ routing: null, affinity: null, cachedTokens: null });
      expect((await s.requests.get("req-7"))?.id).toBe(rows[7]!.id);
      expect(await s.requests.get("no-such-id")).toBeNull();

      expect(await s.requests.deleteOlderThan(base + 5_000, 2)).toBe(5);
      expect(await s.requests.count({})).toBe(25);
    } finally {
      await s.close();
    }
  });

  test("stored responses: saved whole, read and deleted only with the key that made them, retention by age", async () => {
    const s = await fresh(kind);
    try {
      const context = [{ role: "user", content: "héllo 'quoted' \"text\"" }];
      const response = {
        id: "resp_1",
        object: "response",
        output: [{ type: "message", content: [{ type: "output_text", text: "hi" }] }],
        usage: { input_tokens: 3 },
      };
      await s.responses.save({ id: "resp_1", createdAt: 1_000, keyId: "key-a", model: "m-a", context, response });
      await s.responses.save({ id: "resp_2", createdAt: 5_000, keyId: "key-a", model: "m-a", context: [], response: { id: "resp_2" } });
      await s.responses.save({ id: "resp_3", createdAt: 5_000, keyId: null, model: "m-a", context: [], response: { id: "resp_3" } });
      await expect(s.responses.save({ id: "resp_1", createdAt: 2_000, keyId: "key-b", model: "m-a", context: [], response: {} })).rejects.toSatisfy(
        isUniqueViolation,
      );
      expect(await s.responses.get("resp_1", "key-a")).toEqual({ id: "resp_1", createdAt: 1_000, keyId: "key-a", model: "m-a", context, response });
      expect(await s.responses.get("resp_1", "key-b")).toBeNull();
      expect(await s.responses.get("resp_1", null)).toBeNull();
      expect((await s.responses.get("resp_3", null))?.id).toBe("resp_3");
      expect(await s.responses.delete("resp_2", "key-b")).toBe(false);
      expect(await s.responses.delete("resp_2", "key-a")).toBe(true);
      expect(await s.responses.get("resp_2", "key-a")).toBeNull();
      expect(await s.responses.deleteOlderThan(3_000)).toBe(1);
      expect(await s.responses.get("resp_1", "key-a")).toBeNull();
      expect((await s.responses.get("resp_3", null))?.id).toBe("resp_3");
    } finally {
      await s.close();
    }
  });

  test("filter values with SQL metacharacters are data, never SQL", async () => {
    const s = await fresh(kind);
    try {
      const evil = ["x' OR '1'='1", "'; DROP TABLE requests; --", 'a"b\\c%_', "m-a' --", "%", "_"];
      await s.requests.insertMany([rec({ startedAt: 1000, model: "m-a" }), rec({ startedAt: 2000, model: evil[0]!, keyName: evil[1]! })]);
      for (const v of evil) {
        const expected = v === evil[0] ? 1 : 0;
        expect(await s.requests.count({ model: v })).toBe(expected);
        expect(await s.requests.count({ node: v })).toBe(0);
      }
      expect(await s.requests.count({ keyName: evil[1]! })).toBe(1);
      expect(await s.users.findByUsername("' OR 1=1 --")).toBeNull();
      expect(await s.requests.count({})).toBe(2);
    } finally {
      await s.close();
    }
  });
});
