// Request history: the batching recorder (with a fake repository where a failing database is
// needed, a real SQLite one otherwise) and the history routes: filters, paging, one record,
// CSV/JSON exports, and malformed or hostile query parameters.
import Fastify, { type FastifyInstance } from "fastify";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { waitFor } from "../fixtures/fake-router.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ApiKeyService } from "../../src/router/auth/api-keys.js";
import { LoginRateLimiter } from "../../src/router/auth/login-rate-limit.js";
import { installRouteAuth } from "../../src/router/auth/route-auth.js";
import { SessionService } from "../../src/router/auth/sessions.js";
import { UserAccounts } from "../../src/router/auth/user-accounts.js";
import { csvCell } from "../../src/router/history/history-export.js";
import { HistoryRecorder, toHistoryRecord } from "../../src/router/history/history-recorder.js";
import { installErrorHandlers, installJsonParser } from "../../src/router/http/http-errors.js";
import type { RequestRecord } from "../../src/protocol/request-record.js";
import { RequestEvents } from "../../src/router/request-path/request-events.js";
import { registerAuthRoutes } from "../../src/router/routes/auth-routes.js";
import { registerHistoryRoutes } from "../../src/router/routes/history-routes.js";
import type { HistoryRecord } from "../../src/protocol/request-record.js";
import type { RequestHistoryRepository } from "../../src/router/store/request-history.js";
import { openStore, type RouterStore } from "../../src/router/store/router-store.js";

const quiet = pino({ level: "silent" });

function finished(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    requestId: "req_1",
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

class FakeRepo {
  batches: HistoryRecord[][] = [];
  failing = false;
  failedCalls = 0;
  async insertMany(rows: readonly HistoryRecord[]) {
    if (this.failing) {
      this.failedCalls++;
      throw new Error("database down");
    }
    this.batches.push([...rows]);
  }
  async deleteOlderThan() {
    return 0;
  }
  get rows() {
    return this.batches.flat();
  }
}

describe("history recorder", () => {
  test("records arrive through request events and are written in batches off the request path", async () => {
    const repo = new FakeRepo();
    const rec = new HistoryRecorder(repo as unknown as RequestHistoryRepository, quiet, { retentionMs: 1000, flushEveryMs: 40, maxBatch: 100 });
    const events = new RequestEvents();
    rec.attach(events);
    rec.start();
    for (let i = 0; i < 250; i++) events.emitFinished(finished({ requestId: `r${i}` }));
    // Nothing is written synchronously by emitFinished.
    expect(repo.rows).toHaveLength(0);
    // The timer writes them (no flush() called here).
    await waitFor(() => repo.rows.length === 250, 10_000, "all 250 rows written");
    expect(repo.rows.map((r) => r.requestId)).toEqual(Array.from({ length: 250 }, (_, i) => `r${i}`));
    expect(Math.max(...repo.batches.map((b) => b.length))).toBeLessThanOrEqual(100);
    expect(new Set(repo.rows.map((r) => r.id)).size).toBe(250);
    await rec.close();
  });

  test("a failing database delays writes, keeps the rows, and drops the oldest beyond the cap", async () => {
    const repo = new FakeRepo();
    repo.failing = true;
    // The timer path: nothing here calls flush() or close() until the rows have landed.
    const rec = new HistoryRecorder(repo as unknown as RequestHistoryRepository, quiet, { retentionMs: 1000, flushEveryMs: 20, maxBatch: 10, maxPending: 25 });
    rec.start();
    for (let i = 0; i < 30; i++) rec.record(finished({ requestId: `r${i}` }));
    // Several timer ticks fail: the rows wait, the oldest beyond the cap are dropped.
    await waitFor(() => repo.failedCalls >= 3, 10_000, "three failed writes");
    expect(repo.rows).toHaveLength(0);
    expect(rec.pendingCount).toBe(25);
    expect(rec.dropped).toBe(5);
    // The database is back: the next ticks write everything that waited, in order.
    repo.failing = false;
    await waitFor(() => repo.rows.length === 25, 10_000, "the delayed rows written by the timer");
    expect(repo.rows.map((r) => r.requestId)).toEqual(Array.from({ length: 25 }, (_, i) => `r${i + 5}`));
    expect(rec.written).toBe(25);
    expect(rec.pendingCount).toBe(0);
    await rec.close();
  });

  test("ids sort by start time", () => {
    const a = toHistoryRecord(finished({ startedAt: 1_700_000_000_000 }));
    const b = toHistoryRecord(finished({ startedAt: 1_700_000_000_001 }));
    expect(a.id < b.id).toBe(true);
    expect(a.id).toMatch(/^[0-9a-f]{28}$/);
  });

  test("retention removes records older than the window from a real database", async () => {
    const store = await openStore({ dataDir: mkdtempSync(join(tmpdir(), "drover-ret-")) });
    try {
      const rec = new HistoryRecorder(store.requests, quiet, { retentionMs: 7 * 86_400_000 });
      const now = Date.now();
      rec.record(finished({ requestId: "old", startedAt: now - 8 * 86_400_000 }));
      rec.record(finished({ requestId: "new", startedAt: now - 6 * 86_400_000 }));
      await rec.flush();
      expect(await rec.sweep(now)).toBe(1);
      expect((await store.requests.list({}, { limit: 10 })).map((r) => r.requestId)).toEqual(["new"]);
    } finally {
      await store.close();
    }
  });
});

describe("history routes", () => {
  let store: RouterStore;
  let app: FastifyInstance;
  let admin: Record<string, string>;
  let viewer: Record<string, string>;
  const base = Date.parse("2025-03-01T00:00:00Z");

  beforeAll(async () => {
    store = await openStore({ dataDir: mkdtempSync(join(tmpdir(), "drover-hist-")) });
    const sessions = new SessionService(store.sessions);
    const accounts = new UserAccounts(store.users, store.sessions);
    await accounts.create({ username: "root", password: "root-password", role: "admin" });
    await accounts.create({ username: "val", password: "viewer-password", role: "viewer" });
    app = Fastify();
    installJsonParser(app);
    installErrorHandlers(app, () => {});
    installRouteAuth(app, { apiKeys: new ApiKeyService(store.apiKeys), sessions, nodeToken: null });
    registerAuthRoutes(app, { accounts, sessions, limiter: new LoginRateLimiter(), sessionTtlMs: 60_000 });
    const recorder = new HistoryRecorder(store.requests, quiet, { retentionMs: 1e12 });
    registerHistoryRoutes(app, { requests: store.requests, recorder });
    await app.ready();
    const token = async (username: string, password: string) =>
      (await app.inject({ method: "POST", url: "/api/auth/login", payload: { username, password } })).json().token;
    admin = { authorization: `Bearer ${await token("root", "root-password")}` };
    viewer = { authorization: `Bearer ${await token("val", "viewer-password")}` };

    for (let i = 0; i < 120; i++) {
      recorder.record(
        finished({
          requestId: `req-${i}`,
          startedAt: base + i * 60_000,
          modelId: i % 2 ? "demo-chat" : "demo-embed",
          nodeName: i % 3 ? "alpha" : "beta",
          nodeId: i % 3 ? "id-alpha" : "id-beta",
          status: i % 10 === 0 ? 503 : 200,
          error: i % 10 === 0 ? '=HYPERLINK("http://x")' : null,
          keyName: i < 60 ? "team-a" : 'team, "b"',
          requestBody: i === 5 ? '{"secret":"prompt"}' : null,
          responseBody: i === 5 ? "the answer" : null,
        }),
      );
    }
    await recorder.flush();
  });
  afterAll(async () => {
    await app.close();
    await store.close();
  });

  const get = (url: string, headers = admin) => app.inject({ url, headers });

  test("the list is newest first, paged, with the total, and needs a login", async () => {
    expect((await app.inject({ url: "/api/requests" })).statusCode).toBe(401);
    const page = (await get("/api/requests?limit=10&offset=5", viewer)).json();
    expect(page.total).toBe(120);
    expect(page.requests.map((r: { requestId: string }) => r.requestId)).toEqual(Array.from({ length: 10 }, (_, i) => `req-${114 - i}`));
    expect(page.requests[0]).toMatchObject({
      startedAt: new Date(base + 114 * 60_000).toISOString(),
      model: "demo-embed",
      nodeName: "beta",
      status: 200,
      promptTokens: 4,
    });
    expect((await get("/api/requests")).json().requests).toHaveLength(50);
  });

  test("filters: model, node (name or id), status code/class/error, key, time range — combined", async () => {
    const total = async (q: string) => (await get(`/api/requests?${q}`)).json().total;
    expect(await total("model=demo-chat")).toBe(60);
    expect(await total("node=beta")).toBe(40);
    expect(await total("node=id-beta")).toBe(40);
    expect(await total("status=503")).toBe(12);
    expect(await total("status=5xx")).toBe(12);
    expect(await total("status=error")).toBe(12);
    expect(await total("status=ok")).toBe(108);
    expect(await total(`key=${encodeURIComponent('team, "b"')}`)).toBe(60);
    expect(await total(`from=${new Date(base + 10 * 60_000).toISOString()}&to=${base + 20 * 60_000}`)).toBe(10);
    expect(await total("model=demo-embed&node=beta&status=5xx")).toBe(4);
  });

  test("hostile and malformed parameters: metacharacters are data; bad values are 400 naming the parameter", async () => {
    for (const v of ["' OR 1=1 --", "demo-chat'; DROP TABLE requests; --", "%", "_", "\\", '"']) {
      const res = await get(`/api/requests?model=${encodeURIComponent(v)}&node=${encodeURIComponent(v)}`);
      expect(res.statusCode).toBe(200);
      expect(res.json().total).toBe(0);
    }
    expect((await get("/api/requests")).json().total).toBe(120);
    for (const [q, param] of [
      ["limit=0", "limit"],
      ["limit=5000", "limit"],
      ["offset=-1", "offset"],
      ["status=600x", "status"],
      ["from=yesterday", "from"],
      ["model=a&model=b", "model"],
      [`node=${"x".repeat(300)}`, "node"],
    ]) {
      const res = await get(`/api/requests?${q}`);
      expect(res.statusCode, q).toBe(400);
      expect(res.json().error.param).toBe(param);
    }
  });

  test("one record by id or x-request-id; bodies for admins only; unknown id → 404", async () => {
    const byRequestId = (await get("/api/requests/req-5")).json();
    expect(byRequestId).toMatchObject({ requestId: "req-5", requestBody: '{"secret":"prompt"}', responseBody: "the answer", bodiesHidden: false });
    const byId = await get(`/api/requests/${byRequestId.id}`, viewer);
    expect(byId.json()).toMatchObject({ requestId: "req-5", requestBody: null, responseBody: null, bodiesHidden: true });
    const missing = await get("/api/requests/does-not-exist");
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe("request_not_found");
    expect((await get(`/api/requests/${encodeURIComponent("' OR '1'='1")}`)).statusCode).toBe(404);
  });

  test("CSV export honours the filters, quotes per RFC 4180 and defuses formulas", async () => {
    const res = await get("/api/requests/export?format=csv&status=5xx&model=demo-embed");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toContain("text/csv");
    expect(res.headers["content-disposition"]).toMatch(/attachment; filename="drover-requests-.*\.csv"/);
    const lines = res.body.trimEnd().split("\r\n");
    expect(lines[0]).toBe(
      "id,requestId,startedAt,api,endpoint,model,stream,clientIp,keyName,nodeId,nodeName,status,error,attempts,queueWaitMs,firstByteMs,durationMs,promptTokens,completionTokens,toolCalls,traceId,routing,affinity,cachedTokens",
    );
    expect(lines).toHaveLength(13);
    expect(lines[1]).toContain(",req-110,");
    expect(lines[1]).toContain(`,"team, ""b""",`);
    expect(lines[1]).toContain(`,"'=HYPERLINK(""http://x"")",`);
    expect(csvCell(-5)).toBe("-5");
    expect(csvCell("-5")).toBe("'-5");
  });

  test("JSON export: the same records as the list, all pages, filters applied", async () => {
    const all = (await get("/api/requests/export?format=json")).json();
    expect(all).toHaveLength(120);
    expect(all[0].requestId).toBe("req-119");
    expect(all[119].requestId).toBe("req-0");
    const some = (await get("/api/requests/export?format=json&node=alpha&limit=7")).json();
    expect(some.map((r: { requestId: string }) => r.requestId)).toEqual(["req-119", "req-118", "req-116", "req-115", "req-113", "req-112", "req-110"]);
    expect((await get("/api/requests/export?format=json&model=none")).json()).toEqual([]);
    expect((await get("/api/requests/export?format=xml")).statusCode).toBe(400);
  });
});
