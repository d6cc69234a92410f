// Table-driven auth check over the router's ACTUAL route list (collected by Fastify's onRoute
// hook in startRouter): every route must appear in EXPECTED with the level it declares, so a new
// route cannot ship without someone deciding who may call it; then every route is called as
// anonymous, inference key, node token, viewer and admin, and each caller the level excludes
// must get 401 (403 for a viewer on admin routes) while each caller it admits must get past auth.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadCatalog } from "../../src/catalog/load.js";
import type { AuthLevel } from "../../src/router/auth/route-auth.js";
import { startRouter, type RunningRouter } from "../../src/router/main.js";
import { Agent } from "undici";
import { ModelStatusBoard } from "../../src/node/model-status-board.js";
import { NodeMetricsExporter } from "../../src/node/node-metrics.js";
import { buildNodeServer, type NodeRouteAuth, type NodeRouteSummary } from "../../src/node/server.js";
import { routerCredential } from "../../src/protocol/node-auth.js";

/** Who may call each route ("METHOD url"; a GET's HEAD twin inherits its level). */
const EXPECTED: Record<string, AuthLevel> = {
  "POST /api/auth/login": "public",
  "POST /api/auth/logout": "viewer",
  "GET /api/auth/me": "viewer",
  "POST /api/auth/password": "viewer",
  "GET /api/users": "admin",
  "POST /api/users": "admin",
  "PATCH /api/users/:username": "admin",
  "DELETE /api/users/:username": "admin",
  "GET /api/keys": "admin",
  "POST /api/keys": "admin",
  "DELETE /api/keys/:id": "admin",
  "GET /api/requests": "viewer",
  "GET /api/requests/export": "viewer",
  "GET /api/requests/:id": "viewer",
  "GET /healthz": "public",
  "GET /api/nodes": "viewer",
  "GET /api/nodes/:id": "viewer",
  "GET /api/queue": "viewer",
  "GET /api/models": "viewer",
  "POST /api/nodes/register": "node",
  "POST /api/nodes/heartbeat": "node",
  "GET /api/catalog": "node",
  "GET /api/models/:id/file": "node",
  "GET /api/cache": "admin",
  "GET /v1/models": "inference",
  "GET /v1/models/*": "inference",
  "POST /v1/chat/completions": "inference",
  "POST /v1/completions": "inference",
  "POST /v1/embeddings": "inference",
  "POST /v1/responses": "inference",
  "GET /v1/responses/:id": "inference",
  "DELETE /v1/responses/:id": "inference",
  "POST /v1/messages": "inference",
  "POST /v1/messages/count_tokens": "inference",
  "GET /": "public",
  "GET /api/version": "public",
  "GET /api/tags": "inference",
  "GET /api/ps": "inference",
  "POST /api/show": "inference",
  "POST /api/chat": "inference",
  "POST /api/generate": "inference",
  "POST /api/embed": "inference",
  "POST /api/embeddings": "inference",
  "GET /metrics": "public",
  "GET /api/nodes/:id/logs": "admin",
  "GET /api/agents/:id/logs": "admin",
  "GET /api/events": "viewer",
  "GET /api/nodes/:id/metrics": "viewer",
  "PATCH /api/nodes/:id": "admin",
  "POST /api/nodes/:id/disconnect": "admin",
  "DELETE /api/nodes/:id": "admin",
  "GET /dashboard": "public",
  "GET /dashboard/*": "public",
};

type Caller = "anonymous" | "key" | "node" | "viewer" | "admin";
const CALLERS: Caller[] = ["anonymous", "key", "node", "viewer", "admin"];
const ADMITS: Record<AuthLevel, Caller[]> = {
  public: CALLERS,
  inference: ["key"],
  node: ["node"],
  viewer: ["viewer", "admin"],
  admin: ["admin"],
};

/** Error codes the auth hook answers with. */
const AUTH_CODES = new Set([
  "missing_api_key",
  "invalid_api_key",
  "api_key_revoked",
  "api_key_expired",
  "invalid_node_token",
  "not_authenticated",
  "admin_required",
  "csrf_rejected",
]);

const API_KEY = "drv-route-table-key";
const NODE_TOKEN = "route-table-node-token";
const ADMIN_PASSWORD = "route-table-admin-pw";

const expectedKey = (method: string, url: string) => `${method === "HEAD" ? "GET" : method} ${url}`;
// Parameters name things that do not exist, and bodies are empty, so admitted calls change nothing.
const concretePath = (url: string) => url.replace(/:[a-z]+/gi, "no-such-thing").replace(/\*$/, "no-such-thing");

describe("route auth table", () => {
  let router: RunningRouter;
  const bearer: Partial<Record<Caller, string>> = { key: API_KEY, node: NODE_TOKEN };

  const login = async (username: string, password: string) => {
    const res = await fetch(`${router.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { token: string }).token;
  };

  beforeAll(async () => {
    router = await startRouter({
      host: "127.0.0.1",
      port: 0,
      catalog: await loadCatalog("demo"),
      dataDir: mkdtempSync(join(tmpdir(), "drover-route-table-")),
      queueLimit: 16,
      queueTimeoutMs: 1_000,
      heartbeatMs: 5_000,
      nodeToken: NODE_TOKEN,
      logger: pino({ level: "silent" }),
      adminPassword: ADMIN_PASSWORD,
      apiKey: API_KEY,
    });
    bearer.admin = await login("admin", ADMIN_PASSWORD);
    const created = await fetch(`${router.url}/api/users`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${bearer.admin}` },
      body: JSON.stringify({ username: "watcher", password: "watcher-password", role: "viewer" }),
    });
    expect(created.status).toBe(201);
    bearer.viewer = await login("watcher", "watcher-password");
  });
  afterAll(() => router?.close());

  test("every registered route has an entry in the table, with the level it declares", () => {
    expect(router.routes.length).toBeGreaterThan(40);
    const declared = Object.fromEntries(router.routes.map((r) => [expectedKey(r.method, r.url), r.auth ?? "(none: treated as admin)"]));
    const missing = Object.keys(declared).filter((k) => !(k in EXPECTED));
    expect(missing, "routes with no entry in EXPECTED — decide who may call them").toEqual([]);
    for (const r of router.routes) expect(`${r.method} ${r.url} → ${r.auth}`).toBe(`${r.method} ${r.url} → ${EXPECTED[expectedKey(r.method, r.url)]}`);
    const stale = Object.keys(EXPECTED).filter((k) => !(k in declared));
    expect(stale, "entries in EXPECTED for routes that no longer exist").toEqual([]);
  });

  test("each caller a route's level excludes is refused; each it admits gets past auth", async () => {
    const results: string[] = [];
    for (const r of router.routes) {
      const level = EXPECTED[expectedKey(r.method, r.url)]!;
      for (const caller of CALLERS) {
        const admitted = ADMITS[level].includes(caller);
        // Logging out would end the session the other rows use: admitted callers log out a fresh one.
        let token = bearer[caller];
        if (admitted && r.url === "/api/auth/logout")
          token = await login(caller === "admin" ? "admin" : "watcher", caller === "admin" ? ADMIN_PASSWORD : "watcher-password");
        const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
        const withBody = r.method === "POST" || r.method === "PATCH";
        if (withBody) headers["content-type"] = "application/json";
        const ctrl = new AbortController();
        // The auth hook answers at once; a route still silent after 2 s got past it.
        const timer = setTimeout(() => ctrl.abort(), 2_000);
        const res = await fetch(`${router.url}${concretePath(r.url)}`, {
          method: r.method,
          headers,
          body: withBody ? "{}" : undefined,
          signal: ctrl.signal,
        }).catch(() => null);
        clearTimeout(timer);
        const status = res?.status ?? "no answer within 2 s";
        // Only the status and error code matter; streams are not read to the end.
        const body =
          res && r.method !== "HEAD" && res.headers.get("content-type")?.includes("json")
            ? ((await res.json()) as { type?: string; error?: string | { code?: string; type?: string } })
            : null;
        // OpenAI shape carries error.code; the Ollama routes answer {"error": "..."}; Anthropic's {"type":"error","error":{"type"}}.
        const code =
          body?.type === "error" && typeof body.error === "object"
            ? `anthropic_${body.error.type}`
            : typeof body?.error === "object"
              ? (body.error.code ?? null)
              : typeof body?.error === "string"
                ? "ollama_error"
                : null;
        ctrl.abort();
        const refusedWith = caller === "viewer" && level === "admin" ? 403 : 401;
        // An admitted caller may still get 403 from the handler (wrong current password), never an auth code.
        const ok = admitted
          ? status !== 401 && !AUTH_CODES.has(code ?? "") && code !== "anthropic_authentication_error" && (typeof status !== "number" || status < 500)
          : status === refusedWith &&
            (r.method === "HEAD" || AUTH_CODES.has(code ?? "") || code === "ollama_error" || code === "anthropic_authentication_error");
        if (!ok) results.push(`${r.method} ${r.url} as ${caller}: ${status} ${code ?? ""} (expected ${admitted ? "past auth" : refusedWith})`);
      }
    }
    expect(results).toEqual([]);
  });
});

/** The node's routes: only /healthz is public; everything else needs the router credential. */
const EXPECTED_NODE: Record<string, NodeRouteAuth> = {
  "GET /healthz": "public",
  "GET /v1/models": "router",
  "GET /api/logs": "router",
  "GET /metrics": "router",
  "POST /v1/chat/completions": "router",
  "POST /v1/completions": "router",
  "POST /v1/embeddings": "router",
};

describe("node route auth table", () => {
  const routes: NodeRouteSummary[] = [];
  let url: string;
  let close: () => Promise<void>;
  const agent = new Agent();

  beforeAll(async () => {
    const board = new ModelStatusBoard();
    const app = await buildNodeServer({
      logger: pino({ level: "silent" }),
      nodeId: "table-node",
      nodeName: "table-node",
      board,
      nodeToken: NODE_TOKEN,
      metrics: new NodeMetricsExporter({ board, system: () => ({}) }),
      onRoute: (r) => routes.push(r),
      proxy: { dispatcher: agent, catalogLoaded: () => false, enginePort: () => undefined },
    });
    url = await app.listen({ host: "127.0.0.1", port: 0 });
    close = async () => {
      await app.close();
      await agent.close();
    };
  });
  afterAll(() => close?.());

  test("every node route has an entry, with the level it declares", () => {
    const declared = Object.fromEntries(routes.map((r) => [expectedKey(r.method, r.url), r.auth]));
    expect(
      Object.keys(declared).filter((k) => !(k in EXPECTED_NODE)),
      "node routes with no entry in EXPECTED_NODE",
    ).toEqual([]);
    expect(
      Object.keys(EXPECTED_NODE).filter((k) => !(k in declared)),
      "entries for node routes that no longer exist",
    ).toEqual([]);
    for (const r of routes) expect(`${r.method} ${r.url} → ${r.auth}`).toBe(`${r.method} ${r.url} → ${EXPECTED_NODE[expectedKey(r.method, r.url)]}`);
  });

  test("only a router of the fleet gets past a router route; the node token itself, an API key or nothing are refused", async () => {
    const callers: Record<string, string | undefined> = {
      anonymous: undefined,
      "node token": NODE_TOKEN,
      "API key": API_KEY,
      "another node's credential": routerCredential(NODE_TOKEN, "some-other-node"),
      router: routerCredential(NODE_TOKEN, "table-node"),
    };
    const results: string[] = [];
    for (const r of routes) {
      const level = EXPECTED_NODE[expectedKey(r.method, r.url)]!;
      for (const [caller, token] of Object.entries(callers)) {
        const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
        if (r.method === "POST") headers["content-type"] = "application/json";
        const res = await fetch(`${url}${r.url}`, { method: r.method, headers, body: r.method === "POST" ? "{}" : undefined });
        const text = await res.text();
        let body: { error?: { code?: string } } | null = null;
        try {
          body = text ? (JSON.parse(text) as { error?: { code?: string } }) : null;
        } catch {
          body = null;
        }
        const refused = res.status === 401 && (r.method === "HEAD" || body?.error?.code === "router_credential_required");
        const admitted = level === "public" || caller === "router";
        if (admitted === refused)
          results.push(`${r.method} ${r.url} as ${caller}: ${res.status} ${body?.error?.code ?? ""} (expected ${admitted ? "past auth" : "401"})`);
      }
    }
    expect(results).toEqual([]);
  });

  test("--public-metrics opens /metrics alone", async () => {
    const board = new ModelStatusBoard();
    const app = await buildNodeServer({
      logger: pino({ level: "silent" }),
      nodeId: "open-metrics",
      nodeName: "open-metrics",
      board,
      nodeToken: NODE_TOKEN,
      metrics: new NodeMetricsExporter({ board, system: () => ({}) }),
      publicMetrics: true,
      proxy: { dispatcher: agent, catalogLoaded: () => false, enginePort: () => undefined },
    });
    const base = await app.listen({ host: "127.0.0.1", port: 0 });
    try {
      expect((await fetch(`${base}/metrics`)).status).toBe(200);
      expect((await fetch(`${base}/v1/models`)).status).toBe(401);
    } finally {
      await app.close();
    }
  });
});
