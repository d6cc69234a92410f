import { Agent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { Backoff } from "../../src/shared/backoff.js";
import { RouterEndpoint } from "../../src/node/router-endpoint.js";
import { RouterLink } from "../../src/node/router-link.js";
import type { ModelStatus } from "../../src/protocol/node-api.js";
import { captureLogger } from "../fixtures/capture-logger.js";
import { FakeRouter, waitFor } from "../fixtures/fake-router.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(opts: { heartbeatMs?: number; routerUrl?: string; registerRetryMs?: number } = {}) {
  const router = await new FakeRouter([]).start();
  const agent = new Agent();
  const models: ModelStatus[] = [{ id: "m", state: "loading", slots: 2, inFlight: 0, restarts: 0 }];
  const log = captureLogger();
  const link = new RouterLink({
    router: new RouterEndpoint(opts.routerUrl ?? router.url, "tok"),
    dispatcher: agent,
    logger: log.logger,
    heartbeatMs: opts.heartbeatMs,
    registerBackoff: () => new Backoff({ initialMs: opts.registerRetryMs ?? 50, maxMs: Math.max(200, opts.registerRetryMs ?? 0), jitter: 0.3 }),
    registration: () => ({
      nodeId: "node-1",
      name: "n1",
      apiUrl: "http://127.0.0.1:1",
      version: "0.1.0",
      engine: "llama",
      models: structuredClone(models),
      metrics: {},
    }),
    heartbeat: () => ({ nodeId: "node-1", models: structuredClone(models), inFlight: 0, metrics: {} }),
  });
  cleanups.push(async () => {
    await link.stop();
    await router.close();
    await agent.close();
  });
  return { router, link, models, log };
}

describe("router link", () => {
  it("retries registration after 503 until accepted, then heartbeats", async () => {
    const { router, link } = await setup();
    router.registerStatus = (n) => (n < 3 ? 503 : 200);
    link.start();
    await waitFor(() => router.heartbeats.length >= 2, 5000, "heartbeats");
    expect(router.registrations).toHaveLength(3);
    expect(link.registered).toBe(true);
    expect(router.heartbeats[0]).toMatchObject({ nodeId: "node-1", inFlight: 0 });
    expect(router.authHeaders.every((h) => h === "Bearer tok")).toBe(true);
    expect(router.invalidMessages).toEqual([]);
  });

  it("registers again when a heartbeat is answered 404", async () => {
    const { router, link, log } = await setup();
    router.registerStatus = () => 200;
    router.heartbeatStatus = (n) => (n === 2 ? 404 : 200);
    link.start();
    await waitFor(() => router.heartbeats.length >= 4, 5000, "heartbeats after re-registration");
    expect(router.registrations).toHaveLength(2);
    expect(log.find("registering again")).toHaveLength(1);
  });

  it("re-tries registration promptly when a model becomes ready", async () => {
    // Slow backoff: only a state change can make the next attempt come soon.
    const { router, link, models } = await setup({ registerRetryMs: 30_000 });
    router.registerStatus = (_n, reg) => (reg.models.some((m) => m.state === "ready") ? 200 : 503);
    link.start();
    await waitFor(() => router.registrations.length >= 1, 5000, "first registration");
    models[0]!.state = "ready";
    const changedAt = Date.now();
    link.notifyChange();
    // Long before the 21–30 s the backoff would have waited.
    await waitFor(() => link.registered, 15_000, "registration after readiness");
    expect(Date.now() - changedAt).toBeLessThan(21_000);
    expect(router.registrations).toHaveLength(2);
  });

  it("sends a heartbeat soon after a state change instead of waiting the interval", async () => {
    const { router, link, models } = await setup({ heartbeatMs: 60_000 });
    router.registerStatus = () => 200;
    link.start();
    await waitFor(() => link.registered, 5000, "registration");
    expect(router.heartbeats).toHaveLength(0);
    models[0]!.state = "failed";
    link.notifyChange();
    link.notifyChange(); // debounced into one heartbeat
    await waitFor(() => router.heartbeats.length >= 1, 10_000, "prompt heartbeat");
    // One more change: its heartbeat comes next. Had the two notifications above not been
    // debounced, a second "failed" heartbeat would sit in between.
    models[0]!.state = "ready";
    link.notifyChange();
    await waitFor(() => router.heartbeats.some((h) => h.models[0]!.state === "ready"), 10_000, "the next prompt heartbeat");
    expect(router.heartbeats.map((h) => h.models[0]!.state)).toEqual(["failed", "ready"]);
  });

  it("keeps retrying while the router is unreachable", async () => {
    const { link, log } = await setup({ routerUrl: "http://127.0.0.1:9" });
    link.start();
    // Four attempts (each one logged, repeats at debug level), with waits growing from 50 ms to
    // the 200 ms cap (less up to 30 % jitter).
    const attempts = () => log.lines.filter((l) => String(l.msg).includes("router unreachable"));
    await waitFor(() => attempts().length >= 4, 10_000, "four attempts");
    const waits = attempts().map((l) => l.retryInMs as number);
    expect(waits[0]).toBeLessThanOrEqual(50);
    expect(waits[1]).toBeGreaterThanOrEqual(70);
    expect(waits[2]).toBeGreaterThanOrEqual(140);
    expect(link.registered).toBe(false);
  });
});
