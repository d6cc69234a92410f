// Auth pieces of the router with a real SQLite store: password hashing, the login rate limit,
// API key checks (cache, revocation, expiry, last-used), and the route-auth hook with login,
// users and keys routes on a Fastify app driven by inject().
import Fastify, { type FastifyInstance } from "fastify";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ApiKeyService } from "../../src/router/auth/api-keys.js";
import { bootstrapSecrets } from "../../src/router/auth/bootstrap.js";
import { LoginRateLimiter } from "../../src/router/auth/login-rate-limit.js";
import { generatePassword, hashPassword, verifyPassword } from "../../src/router/auth/passwords.js";
import { apiKeyNameOf, installRouteAuth } from "../../src/router/auth/route-auth.js";
import { SessionService } from "../../src/router/auth/sessions.js";
import { UserAccounts } from "../../src/router/auth/user-accounts.js";
import { installErrorHandlers, installJsonParser } from "../../src/router/http/http-errors.js";
import { registerAuthRoutes } from "../../src/router/routes/auth-routes.js";
import { registerKeyRoutes } from "../../src/router/routes/key-routes.js";
import { registerUserRoutes } from "../../src/router/routes/user-routes.js";
import { openStore, type RouterStore } from "../../src/router/store/router-store.js";

const tempStore = () => openStore({ dataDir: mkdtempSync(join(tmpdir(), "drover-auth-")) });

describe("passwords", () => {
  test("scrypt hashes verify, carry their parameters, and differ per salt", async () => {
    const h1 = await hashPassword("correct horse");
    const h2 = await hashPassword("correct horse");
    expect(h1).toMatch(/^scrypt\$32768\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(h1).not.toBe(h2);
    expect(await verifyPassword("correct horse", h1)).toBe(true);
    expect(await verifyPassword("correct horsE", h1)).toBe(false);
    expect(await verifyPassword("x", "not-a-hash")).toBe(false);
    expect(await verifyPassword("x", "scrypt$99999999$8$1$aa$bb")).toBe(false);
    expect(generatePassword()).toMatch(/^[\w-]{20}$/);
  });
});

describe("login rate limit", () => {
  test("five failures per IP and username lock that pair for the window; success clears it", () => {
    const l = new LoginRateLimiter({ maxFailures: 5, windowMs: 60_000 });
    for (let i = 0; i < 5; i++) {
      expect(l.retryAfterS("1.1.1.1", "admin", 1000 + i)).toBe(0);
      l.fail("1.1.1.1", "admin", 1000 + i);
    }
    expect(l.retryAfterS("1.1.1.1", "admin", 2000)).toBe(59);
    expect(l.retryAfterS("1.1.1.1", "ADMIN", 2000)).toBeGreaterThan(0);
    expect(l.retryAfterS("2.2.2.2", "admin", 2000)).toBe(0);
    expect(l.retryAfterS("1.1.1.1", "bob", 2000)).toBe(0);
    expect(l.retryAfterS("1.1.1.1", "admin", 61_001)).toBe(0);
    l.fail("3.3.3.3", "x", 0);
    l.succeed("3.3.3.3", "x");
    expect(l.retryAfterS("3.3.3.3", "x", 1)).toBe(0);
  });
});

describe("API keys", () => {
  let store: RouterStore;
  beforeAll(async () => {
    store = await tempStore();
  });
  afterAll(() => store.close());

  test("a key is shown once, stored as a hash, and checked; revoked and expired keys fail", async () => {
    const svc = new ApiKeyService(store.apiKeys, undefined, { cacheTtlMs: 60_000 });
    const { key, record } = await svc.create({ name: "team-a", models: ["m1"] });
    expect(key).toMatch(/^drv_[\w-]{32}$/);
    expect(record.prefix).toBe(key.slice(0, 12));
    expect(JSON.stringify(await store.apiKeys.list())).not.toContain(key);
    expect(await svc.check(key)).toMatchObject({ ok: true, key: { name: "team-a", models: ["m1"] } });
    expect(await svc.check("drv_nope")).toEqual({ ok: false, reason: "unknown" });
    await expect(svc.create({ name: "team-a" })).rejects.toMatchObject({ statusCode: 409 });
    await expect(svc.create({ name: " bad" })).rejects.toMatchObject({ statusCode: 400 });
    await expect(svc.create({ name: "past", expiresAt: Date.now() - 1 })).rejects.toMatchObject({ statusCode: 400 });

    // Revocation through the service applies at once, despite the cache.
    await svc.revoke("team-a");
    expect(await svc.check(key)).toEqual({ ok: false, reason: "revoked" });
    // The name is free again once revoked.
    await svc.create({ name: "team-a" });

    // Checked at explicit times around the expiry (no race with the wall clock).
    const t = Date.now();
    const soon = await svc.create({ name: "short", expiresAt: t + 60_000 });
    expect((await svc.check(soon.key, t + 59_999)).ok).toBe(true);
    expect(await svc.check(soon.key, t + 60_000)).toEqual({ ok: false, reason: "expired" });
    await expect(svc.revoke("no-such")).rejects.toMatchObject({ statusCode: 404 });
  });

  test("a key revoked elsewhere (CLI, another router) stops working here after the cache time", async () => {
    const here = new ApiKeyService(store.apiKeys, undefined, { cacheTtlMs: 1000 });
    const elsewhere = new ApiKeyService(store.apiKeys);
    const { key } = await elsewhere.create({ name: "shared" });
    const t0 = Date.now();
    expect((await here.check(key, t0)).ok).toBe(true);
    await elsewhere.revoke("shared");
    expect((await here.check(key, t0 + 500)).ok).toBe(true);
    expect(await here.check(key, t0 + 1500)).toEqual({ ok: false, reason: "revoked" });
  });

  test("an unreachable database: a key seen before keeps working, an unseen one gets 503 (not 401 or 500)", async () => {
    let down = false;
    const real = store.apiKeys;
    const flaky = Object.assign(Object.create(real) as typeof real, {
      findByHash: (h: string) => (down ? Promise.reject(new Error("connect ECONNREFUSED")) : real.findByHash(h)),
    });
    const svc = new ApiKeyService(flaky, undefined, { cacheTtlMs: 10 });
    const { key } = await new ApiKeyService(real).create({ name: "flaky" });
    expect((await svc.check(key)).ok).toBe(true);
    down = true;
    expect((await svc.check(key, Date.now() + 1000)).ok).toBe(true);
    await expect(svc.check("drv_never_seen")).rejects.toMatchObject({ statusCode: 503, code: "auth_unavailable" });
  });

  test("last-used times are written in the background, not per request", async () => {
    const svc = new ApiKeyService(store.apiKeys);
    const { key, record } = await svc.create({ name: "usage" });
    await svc.check(key, 5_000_000_000_000);
    expect((await store.apiKeys.findById(record.id))!.lastUsedAt).toBeNull();
    await svc.flushUsage();
    expect((await store.apiKeys.findById(record.id))!.lastUsedAt).toBe(5_000_000_000_000);
  });

  test("bootstrap: DROVER_API_KEY with its exact value, admin once; generated secrets only on first start", async () => {
    const s = await tempStore();
    try {
      const keys = new ApiKeyService(s.apiKeys);
      const accounts = new UserAccounts(s.users, s.sessions);
      const first = await bootstrapSecrets(s, accounts, keys, {});
      expect(first.generatedAdminPassword).toMatch(/\S{20}/);
      expect(first.generatedApiKey).toMatch(/^drv_/);
      expect(await accounts.authenticate("admin", first.generatedAdminPassword!)).toMatchObject({ role: "admin" });
      expect((await keys.check(first.generatedApiKey!)).ok).toBe(true);

      const again = await bootstrapSecrets(s, accounts, keys, { adminPassword: "another-password", apiKey: "my-exact-key-value" });
      expect(again).toEqual({ generatedAdminPassword: null, generatedApiKey: null, createdAdmin: null });
      expect(await accounts.authenticate("admin", "another-password")).toBeNull();
      expect(await keys.check("my-exact-key-value")).toMatchObject({ ok: true, key: { name: "bootstrap" } });
      await bootstrapSecrets(s, accounts, keys, { apiKey: "my-exact-key-value" });
      expect((await keys.list()).filter((k) => k.name.startsWith("bootstrap"))).toHaveLength(1);
    } finally {
      await s.close();
    }
  });
});

describe("route auth", () => {
  let store: RouterStore;
  let app: FastifyInstance;
  let apiKey: string;
  const NODE_TOKEN = "node-secret";

  beforeAll(async () => {
    store = await tempStore();
    const apiKeys = new ApiKeyService(store.apiKeys);
    const sessions = new SessionService(store.sessions);
    const accounts = new UserAccounts(store.users, store.sessions);
    await accounts.create({ username: "root", password: "root-password", role: "admin" });
    await accounts.create({ username: "val", password: "viewer-password", role: "viewer" });
    apiKey = (await apiKeys.create({ name: "everything" })).key;

    app = Fastify();
    installJsonParser(app);
    installErrorHandlers(app, () => {});
    installRouteAuth(app, { apiKeys, sessions, nodeToken: NODE_TOKEN });
    registerAuthRoutes(app, { accounts, sessions, limiter: new LoginRateLimiter({ maxFailures: 3 }), sessionTtlMs: 60_000 });
    registerUserRoutes(app, { accounts });
    registerKeyRoutes(app, { apiKeys, catalog: { name: "t", models: [{ id: "model-a" }, { id: "model-b" }] } as never });
    app.get("/open", { config: { auth: "public" } }, async () => ({ ok: true }));
    app.get("/undeclared", async () => ({ ok: true }));
    app.get("/fleet", { config: { auth: "node" } }, async () => ({ ok: true }));
    app.get("/watch", { config: { auth: "viewer" } }, async () => ({ ok: true }));
    app.post("/v1/chat/completions", { config: { auth: "inference" } }, async (req) => ({ key: apiKeyNameOf(req) }));
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await store.close();
  });

  const login = async (username: string, password: string) => {
    const res = await app.inject({ method: "POST", url: "/api/auth/login", payload: { username, password } });
    return { res, token: res.json().token as string };
  };
  const chat = (key: string | null, model = "model-a") =>
    app.inject({ method: "POST", url: "/v1/chat/completions", headers: key ? { authorization: `Bearer ${key}` } : {}, payload: { model, messages: [] } });

  test("inference: no key, a wrong key, a revoked key → 401 in OpenAI's error shape; a good key passes with its name", async () => {
    const none = await chat(null);
    expect(none.statusCode).toBe(401);
    expect(none.headers["www-authenticate"]).toContain("Bearer");
    expect(none.json()).toEqual({ error: { message: expect.any(String), type: "invalid_request_error", param: null, code: "missing_api_key" } });
    expect((await chat("drv_wrong")).json().error.code).toBe("invalid_api_key");
    expect((await chat(apiKey)).json()).toEqual({ key: "everything" });

    const { token } = await login("root", "root-password");
    const created = await app.inject({ method: "POST", url: "/api/keys", headers: { authorization: `Bearer ${token}` }, payload: { name: "temp" } });
    expect(created.statusCode).toBe(201);
    expect((await chat(created.json().key)).statusCode).toBe(200);
    const revoked = await app.inject({ method: "DELETE", url: `/api/keys/${created.json().id}`, headers: { authorization: `Bearer ${token}` } });
    expect(revoked.json().state).toBe("revoked");
    const after = await chat(created.json().key);
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe("api_key_revoked");
  });

  test("a key limited to model A asking for model B → 403 model_not_allowed", async () => {
    const { token } = await login("root", "root-password");
    const auth = { authorization: `Bearer ${token}` };
    const bad = await app.inject({ method: "POST", url: "/api/keys", headers: auth, payload: { name: "bad-models", models: ["model-z"] } });
    expect(bad.statusCode).toBe(400);
    const limited = (
      await app.inject({ method: "POST", url: "/api/keys", headers: auth, payload: { name: "only-a", models: ["model-a"], expiresInDays: 1 } })
    ).json();
    expect(limited.models).toEqual(["model-a"]);
    expect((await chat(limited.key, "model-a")).statusCode).toBe(200);
    const denied = await chat(limited.key, "model-b");
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error).toMatchObject({ type: "permission_error", code: "model_not_allowed", param: "model" });
  });

  test("viewer and admin routes: 401 without login, 403 for a viewer on an admin route; undeclared routes are admin", async () => {
    expect((await app.inject({ url: "/open" })).statusCode).toBe(200);
    expect((await app.inject({ url: "/watch" })).statusCode).toBe(401);
    expect((await app.inject({ url: "/api/users" })).json().error.code).toBe("not_authenticated");
    expect((await app.inject({ url: "/undeclared" })).statusCode).toBe(401);
    expect((await app.inject({ url: "/no-such-route" })).statusCode).toBe(404);

    const viewer = { authorization: `Bearer ${(await login("val", "viewer-password")).token}` };
    expect((await app.inject({ url: "/watch", headers: viewer })).statusCode).toBe(200);
    for (const [method, url] of [
      ["GET", "/api/users"],
      ["GET", "/api/keys"],
      ["POST", "/api/keys"],
      ["GET", "/undeclared"],
    ] as const) {
      const res = await app.inject({ method, url, headers: viewer, payload: method === "POST" ? { name: "x" } : undefined });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json().error).toMatchObject({ type: "permission_error", code: "admin_required" });
    }
    // An API key is not a login.
    expect((await app.inject({ url: "/watch", headers: { authorization: `Bearer ${apiKey}` } })).statusCode).toBe(401);
    const admin = { authorization: `Bearer ${(await login("root", "root-password")).token}` };
    expect((await app.inject({ url: "/undeclared", headers: admin })).statusCode).toBe(200);
  });

  test("node routes need the node token", async () => {
    expect((await app.inject({ url: "/fleet" })).statusCode).toBe(401);
    expect((await app.inject({ url: "/fleet", headers: { authorization: `Bearer ${apiKey}` } })).statusCode).toBe(401);
    expect((await app.inject({ url: "/fleet", headers: { authorization: `Bearer ${NODE_TOKEN}` } })).statusCode).toBe(200);
  });

  test("login sets an httpOnly SameSite cookie; cookie writes from another origin are refused; logout ends the session", async () => {
    const { res, token } = await login("root", "root-password");
    const cookie = String(res.headers["set-cookie"]);
    expect(cookie).toMatch(/^drover_session=drv_sess_[\w-]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=60$/);
    const jar = { cookie: cookie.split(";")[0]! };
    expect((await app.inject({ url: "/api/auth/me", headers: jar })).json()).toMatchObject({ username: "root", role: "admin" });
    const cross = await app.inject({
      method: "POST",
      url: "/api/users",
      headers: { ...jar, origin: "https://evil.example", host: "router:8080" },
      payload: { username: "mallory", password: "mallory-pass" },
    });
    expect(cross.statusCode).toBe(403);
    expect(cross.json().error.code).toBe("csrf_rejected");
    const same = await app.inject({
      method: "POST",
      url: "/api/users",
      headers: { ...jar, origin: "http://router:8080", host: "router:8080" },
      payload: { username: "sam", password: "sam-password" },
    });
    expect(same.statusCode).toBe(201);
    // A Bearer token is not sent by browsers on their own: no origin check.
    expect(
      (await app.inject({ method: "DELETE", url: "/api/users/sam", headers: { authorization: `Bearer ${token}`, origin: "https://evil.example" } })).statusCode,
    ).toBe(204);

    const out = await app.inject({ method: "POST", url: "/api/auth/logout", headers: { authorization: `Bearer ${token}` } });
    expect(String(out.headers["set-cookie"])).toContain("Max-Age=0");
    expect((await app.inject({ url: "/api/auth/me", headers: jar })).statusCode).toBe(401);
  });

  test("failed logins are rate-limited per IP and username with 429 and Retry-After", async () => {
    for (let i = 0; i < 3; i++) expect((await login("val", "wrong-password")).res.statusCode).toBe(401);
    const limited = (await login("val", "viewer-password")).res;
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(limited.json().error.code).toBe("too_many_login_attempts");
    expect((await login("root", "root-password")).res.statusCode).toBe(200);
    expect((await app.inject({ method: "POST", url: "/api/auth/login", payload: { username: "x" } })).statusCode).toBe(400);
  });

  test("users: validation, last admin protected, password change ends other sessions", async () => {
    const admin = { authorization: `Bearer ${(await login("root", "root-password")).token}` };
    expect((await app.inject({ method: "POST", url: "/api/users", headers: admin, payload: { username: "short", password: "123" } })).statusCode).toBe(400);
    expect(
      (await app.inject({ method: "POST", url: "/api/users", headers: admin, payload: { username: "r", password: "long-enough", role: "root" } })).statusCode,
    ).toBe(400);
    expect((await app.inject({ method: "POST", url: "/api/users", headers: admin, payload: { username: "val", password: "long-enough" } })).statusCode).toBe(
      409,
    );
    expect((await app.inject({ method: "DELETE", url: "/api/users/root", headers: admin })).statusCode).toBe(409);
    expect((await app.inject({ method: "PATCH", url: "/api/users/root", headers: admin, payload: { role: "viewer" } })).statusCode).toBe(409);
    expect((await app.inject({ method: "DELETE", url: "/api/users/nobody", headers: admin })).statusCode).toBe(404);

    await app.inject({ method: "POST", url: "/api/users", headers: admin, payload: { username: "pat", password: "pat-password-1" } });
    const patSession = { authorization: `Bearer ${(await login("pat", "pat-password-1")).token}` };
    const changed = await app.inject({ method: "PATCH", url: "/api/users/pat", headers: admin, payload: { password: "pat-password-2", role: "admin" } });
    expect(changed.json()).toMatchObject({ username: "pat", role: "admin" });
    expect((await app.inject({ url: "/api/auth/me", headers: patSession })).statusCode).toBe(401);
    const pat = { authorization: `Bearer ${(await login("pat", "pat-password-2")).token}` };
    const own = await app.inject({
      method: "POST",
      url: "/api/auth/password",
      headers: pat,
      payload: { currentPassword: "wrong", newPassword: "pat-password-3" },
    });
    expect(own.statusCode).toBe(403);
    expect(
      (
        await app.inject({
          method: "POST",
          url: "/api/auth/password",
          headers: pat,
          payload: { currentPassword: "pat-password-2", newPassword: "pat-password-3" },
        })
      ).statusCode,
    ).toBe(200);
    expect((await app.inject({ url: "/api/auth/me", headers: pat })).statusCode).toBe(200);
    const users = (await app.inject({ url: "/api/users", headers: admin })).json().users;
    expect(JSON.stringify(users)).not.toMatch(/password|scrypt/);
  });
});
