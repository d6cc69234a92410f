// Captured request and response bodies are admin-only on every route and stream (PRODUCT.md §12):
// the dashboard's live stream GET /api/events sends a viewer each finished request without its
// bodies, and an admin with them. Real auth hook, sessions and SQLite store; real SSE over HTTP.
import Fastify, { type FastifyInstance } from "fastify";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadCatalog } from "../../src/catalog/load.js";
import { AdmissionQueue } from "../../src/router/request-path/admission-queue.js";
import { ApiKeyService } from "../../src/router/auth/api-keys.js";
import { LoginRateLimiter } from "../../src/router/auth/login-rate-limit.js";
import { installRouteAuth } from "../../src/router/auth/route-auth.js";
import { SessionService } from "../../src/router/auth/sessions.js";
import { UserAccounts } from "../../src/router/auth/user-accounts.js";
import { FleetActivity } from "../../src/router/overview/fleet-activity.js";
import { installErrorHandlers, installJsonParser } from "../../src/router/http/http-errors.js";
import { NodeMetricHistory } from "../../src/router/overview/node-metric-history.js";
import { NodeRegistry } from "../../src/router/fleet/node-registry.js";
import { NodeSelector } from "../../src/router/request-path/node-selector.js";
import type { RequestRecord } from "../../src/protocol/request-record.js";
import { RequestEvents } from "../../src/router/request-path/request-events.js";
import { registerAuthRoutes } from "../../src/router/routes/auth-routes.js";
import { registerLiveRoutes } from "../../src/router/routes/live-routes.js";
import { openStore, type RouterStore } from "../../src/router/store/router-store.js";

let store: RouterStore;
let app: FastifyInstance;
let url: string;
let events: RequestEvents;
let registry: NodeRegistry;
const tokens: Record<"admin" | "viewer", string> = { admin: "", viewer: "" };

beforeAll(async () => {
  store = await openStore({ dataDir: mkdtempSync(join(tmpdir(), "drover-live-privacy-")) });
  const sessions = new SessionService(store.sessions);
  const accounts = new UserAccounts(store.users, store.sessions);
  await accounts.create({ username: "root", password: "root-password", role: "admin" });
  await accounts.create({ username: "val", password: "viewer-password", role: "viewer" });
  registry = new NodeRegistry(5000);
  events = new RequestEvents();
  app = Fastify({ forceCloseConnections: true });
  installJsonParser(app);
  installErrorHandlers(app, () => {});
  installRouteAuth(app, { apiKeys: new ApiKeyService(store.apiKeys), sessions, nodeToken: null });
  registerAuthRoutes(app, { accounts, sessions, limiter: new LoginRateLimiter(), sessionTtlMs: 60_000 });
  const queue = new AdmissionQueue(registry, new NodeSelector(registry), { limit: 8, timeoutMs: 0 });
  registerLiveRoutes(app, {
    catalog: await loadCatalog("demo"),
    registry,
    queue,
    startedAt: Date.now(),
    events,
    activity: new FleetActivity(events),
    history: new NodeMetricHistory(),
  });
  url = await app.listen({ host: "127.0.0.1", port: 0 });
  const login = async (username: string, password: string) =>
    (await app.inject({ method: "POST", url: "/api/auth/login", payload: { username, password } })).json().token as string;
  tokens.admin = await login("root", "root-password");
  tokens.viewer = await login("val", "viewer-password");
});

afterAll(async () => {
  await app.close();
  await registry.close();
  await store.close();
});

/** Opens /api/events as `who` and resolves with the first `request` event's data. */
async function firstRequestEvent(who: "admin" | "viewer", opened: () => void): Promise<Record<string, unknown>> {
  const res = await request(`${url}/api/events`, { headers: { authorization: `Bearer ${tokens[who]}` } });
  expect(res.statusCode).toBe(200);
  let buf = "";
  let announced = false;
  for await (const chunk of res.body) {
    buf += (chunk as Buffer).toString("utf8");
    if (!announced && buf.includes("event: snapshot")) {
      announced = true;
      opened();
    }
    const m = /event: request\ndata: (.*)\n\n/.exec(buf);
    if (m) {
      res.body.destroy();
      return JSON.parse(m[1]!) as Record<string, unknown>;
    }
  }
  throw new Error("stream ended before a request event");
}

const record: RequestRecord = {
  requestId: "req-private",
  startedAt: Date.now(),
  api: "openai",
  endpoint: "/v1/chat/completions",
  modelId: "demo-chat",
  stream: false,
  clientIp: "127.0.0.1",
  keyName: "k",
  nodeId: "n",
  nodeName: "n",
  status: 200,
  error: null,
  attempts: 1,
  queueWaitMs: 0,
  firstByteMs: 5,
  durationMs: 9,
  promptTokens: 3,
  completionTokens: 2,
  traceId: null,
  requestBody: '{"messages":[{"role":"user","content":"my medical history"}]}',
  responseBody: '{"choices":[{"message":{"content":"private answer"}}]}',
};

describe("GET /api/events", () => {
  test("a viewer gets finished requests without their bodies; an admin gets them", async () => {
    let open = 0;
    let bothOpen!: () => void;
    const opened = new Promise<void>((resolve) => (bothOpen = resolve));
    const onOpen = () => ++open === 2 && bothOpen();
    const received = Promise.all([firstRequestEvent("viewer", onOpen), firstRequestEvent("admin", onOpen)]);
    await opened;
    events.emitFinished(record);
    const [viewer, admin] = await received;
    expect(viewer).toMatchObject({ requestId: "req-private", status: 200, requestBody: null, responseBody: null, bodiesHidden: true });
    expect(JSON.stringify(viewer)).not.toContain("medical");
    expect(JSON.stringify(viewer)).not.toContain("private answer");
    expect(admin).toMatchObject({ requestId: "req-private", requestBody: record.requestBody, responseBody: record.responseBody });
  });
});
