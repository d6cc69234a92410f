// The request history never stalls on one bad row (issue 13 §6), against a real PostgreSQL (the
// strict database: 32-bit integer columns, no NUL in text): values it cannot store are repaired,
// a row it still refuses is dropped with a log line while the rows around it are written, and the
// pending buffer is bounded in bytes while the database is down.
import pino from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { HistoryRecorder } from "../../src/router/history/history-recorder.js";
import type { RequestRecord } from "../../src/protocol/request-record.js";
import type { RequestHistoryRepository } from "../../src/router/store/request-history.js";
import { openStore, type RouterStore } from "../../src/router/store/router-store.js";
import { captureLogger } from "../fixtures/capture-logger.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";

let pg: TestPostgres;
let store: RouterStore;
beforeAll(async () => {
  pg = await startPostgres();
  store = await openStore({ dataDir: "", databaseUrl: await pg.createDatabase() });
}, 60_000);
afterAll(async () => {
  await store?.close();
  await pg?.stop();
});

function finished(requestId: string, over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    requestId,
    startedAt: Date.now(),
    api: "openai",
    endpoint: "/v1/chat/completions",
    modelId: "demo-chat",
    stream: false,
    clientIp: "10.0.0.1",
    keyName: "team",
    nodeId: "n1",
    nodeName: "alpha",
    status: 200,
    error: null,
    attempts: 1,
    queueWaitMs: 1,
    firstByteMs: 2,
    durationMs: 3,
    promptTokens: 4,
    completionTokens: 5,
    traceId: "t",
    ...over,
  };
}

describe("history on PostgreSQL", () => {
  test("rows PostgreSQL cannot store as they are are repaired; one it refuses is dropped; the rest are written", async () => {
    const log = captureLogger("info");
    const recorder = new HistoryRecorder(store.requests, log.logger, { retentionMs: 1e12 });
    recorder.record(finished("before"));
    recorder.record(finished("huge-tokens", { promptTokens: 2 ** 40, completionTokens: 1e300, durationMs: 2 ** 33 }));
    recorder.record(finished("nul-body", { requestBody: '{"content":"a\u0000b"}', responseBody: "x\u0000", error: "e\u0000" }));
    // Nothing repairs a start time past PostgreSQL's bigint: the database refuses that row alone.
    recorder.record(finished("unstorable", { startedAt: 1e30 }));
    recorder.record(finished("after"));
    await recorder.flush();
    expect(recorder.pendingCount).toBe(0);
    expect({ written: recorder.written, repaired: recorder.repaired, rejected: recorder.rejected }).toEqual({ written: 4, repaired: 2, rejected: 1 });
    expect(log.find("refused this row")).toHaveLength(1);

    const rows = await store.requests.list({}, { limit: 50 });
    expect(rows.map((r) => r.requestId).sort()).toEqual(["after", "before", "huge-tokens", "nul-body"]);
    expect(rows.find((r) => r.requestId === "huge-tokens")).toMatchObject({ promptTokens: null, completionTokens: null, durationMs: 2_147_483_647 });
    const nul = await store.requests.get(rows.find((r) => r.requestId === "nul-body")!.id);
    expect(nul).toMatchObject({ requestBody: '{"content":"a\uFFFDb"}', responseBody: "x\uFFFD", error: "e\uFFFD" });

    // Later rows keep flowing.
    recorder.record(finished("later"));
    await recorder.flush();
    expect(recorder.written).toBe(5);
  });
});

describe("pending rows while the database is down", () => {
  test("are bounded in bytes, not only in rows: the oldest are dropped and counted", async () => {
    const down = {
      insertMany: async () => {
        throw new Error("connection refused");
      },
      ping: async () => {
        throw new Error("connection refused");
      },
      deleteOlderThan: async () => 0,
    } as unknown as RequestHistoryRepository;
    const recorder = new HistoryRecorder(down, pino({ level: "silent" }), { retentionMs: 1e12, maxPendingBytes: 1_000_000, maxPending: 100_000 });
    const body = "x".repeat(100_000); // ~200 kB each in memory
    for (let i = 0; i < 50; i++) recorder.record(finished(`r${i}`, { requestBody: body, responseBody: body }));
    await recorder.flush();
    expect(recorder.pendingByteCount).toBeLessThanOrEqual(1_000_000);
    expect(recorder.pendingCount).toBeLessThan(5);
    expect(recorder.dropped).toBe(50 - recorder.pendingCount);
  });
});
