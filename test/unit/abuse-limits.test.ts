// Abuse at scale (issue 13 §9): failed logins are limited per client IP across usernames (each
// attempt costs an scrypt hash); behind a load balancer (--trust-proxy) that IP is the client's,
// not the balancer's; and unknown API keys are remembered briefly so a flood of bad keys does not
// reach the database. A real router (in process) and a real SQLite store.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadCatalog } from "../../src/catalog/load.js";
import { ApiKeyService } from "../../src/router/auth/api-keys.js";
import { LoginRateLimiter } from "../../src/router/auth/login-rate-limit.js";
import { startRouter, type RunningRouter } from "../../src/router/main.js";
import type { ApiKeysRepository } from "../../src/router/store/api-keys.js";
import { openStore } from "../../src/router/store/router-store.js";

describe("login limits", () => {
  test("one address spraying usernames is stopped after 20 failures; the pair limit still applies at 5", () => {
    const limiter = new LoginRateLimiter();
    const now = 1_000_000;
    for (let i = 0; i < 20; i++) {
      expect(limiter.retryAfterS("198.51.100.7", `user${i}`, now)).toBe(0);
      limiter.fail("198.51.100.7", `user${i}`, now);
    }
    expect(limiter.retryAfterS("198.51.100.7", "someone-new", now)).toBeGreaterThan(0);
    expect(limiter.retryAfterS("198.51.100.8", "someone-new", now)).toBe(0);
    for (let i = 0; i < 5; i++) limiter.fail("198.51.100.9", "admin", now);
    expect(limiter.retryAfterS("198.51.100.9", "admin", now)).toBeGreaterThan(0);
    expect(limiter.retryAfterS("198.51.100.9", "other", now)).toBe(0);
    // The window passes.
    expect(limiter.retryAfterS("198.51.100.7", "someone-new", now + 15 * 60_000 + 1)).toBe(0);
  });
});

describe("behind a load balancer (trustProxy)", () => {
  let router: RunningRouter;
  beforeAll(async () => {
    router = await startRouter({
      host: "127.0.0.1",
      port: 0,
      catalog: await loadCatalog("demo"),
      dataDir: mkdtempSync(join(tmpdir(), "drover-abuse-")),
      queueLimit: 8,
      queueTimeoutMs: 0,
      heartbeatMs: 5_000,
      nodeToken: "abuse-node-token",
      logger: pino({ level: "silent" }),
      adminPassword: "abuse-admin-password",
      trustProxy: "127.0.0.1",
    });
  });
  afterAll(() => router?.close());

  const login = (clientIp: string, username: string) =>
    fetch(`${router.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": clientIp },
      body: JSON.stringify({ username, password: "wrong-password" }),
    });

  test("login limits count the client's address from X-Forwarded-For, not the balancer's", async () => {
    for (let i = 0; i < 20; i++) expect((await login("203.0.113.10", `spray${i}`)).status).toBe(401);
    const blocked = await login("203.0.113.10", "spray-next");
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get("retry-after")).toMatch(/^\d+$/);
    // Another client behind the same balancer is not locked out.
    expect((await login("203.0.113.11", "spray-next")).status).toBe(401);
  });
});

describe("unknown API keys", () => {
  test("are remembered for a few seconds: repeated bad keys cost one database lookup; a key created here works at once", async () => {
    const store = await openStore({ dataDir: mkdtempSync(join(tmpdir(), "drover-negkey-")) });
    let lookups = 0;
    const counting = new Proxy(store.apiKeys, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop === "findByHash")
          return (...args: unknown[]) => {
            lookups++;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        return typeof value === "function" ? value.bind(target) : value;
      },
    }) as ApiKeysRepository;
    const keys = new ApiKeyService(counting, undefined, { negativeTtlMs: 60_000 });
    const bad = "drv-not-a-key-0123456789";
    for (let i = 0; i < 50; i++) expect(await keys.check(bad)).toEqual({ ok: false, reason: "unknown" });
    expect(lookups).toBe(1);
    // Past the time, the database is asked again.
    expect(await keys.check(bad, Date.now() + 60_001)).toEqual({ ok: false, reason: "unknown" });
    expect(lookups).toBe(2);
    // Creating the key on this router clears its "unknown" mark.
    await keys.create({ name: "late", value: bad });
    expect((await keys.check(bad)).ok).toBe(true);
    await keys.close();
    await store.close();
  });
});
