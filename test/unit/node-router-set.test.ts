// The node's set of routers (src/node/router-set.ts): from the URL it was given (a router or a
// load balancer) to one link per router of the fleet, following routers that join, dropping one
// that says it is leaving or misses answers, and falling back to the given URL when none is left.
// First against fake links (the hooks driven by hand), then with real RouterLinks and fake routers.
import { Agent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { Backoff } from "../../src/shared/backoff.js";
import { RouterEndpoint } from "../../src/node/router-endpoint.js";
import { RouterLink } from "../../src/node/router-link.js";
import { RouterSet, type RouterLinkHooks, type RouterSetLink } from "../../src/node/router-set.js";
import type { ModelStatus } from "../../src/protocol/node-api.js";
import { captureLogger } from "../fixtures/capture-logger.js";
import { FakeRouter, waitFor } from "../fixtures/fake-router.js";

class FakeLink implements RouterSetLink {
  started = false;
  stopped = false;
  changes = 0;
  registered = false;
  constructor(
    readonly url: string,
    readonly hooks: RouterLinkHooks,
  ) {}
  start(): void {
    this.started = true;
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
  notifyChange(): void {
    this.changes++;
  }
}

function fakeSet(seed: string) {
  const created: FakeLink[] = [];
  const log = captureLogger();
  const set = new RouterSet({
    seed,
    logger: log.logger,
    createLink: (url, hooks) => {
      const link = new FakeLink(url, hooks);
      created.push(link);
      return link;
    },
  });
  /** The live link to `url` (the newest one created for it). */
  const link = (url: string) => [...created].reverse().find((l) => l.url === url)!;
  return { set, created, link, log };
}

const LB = "http://lb.example:8000";
const A = "http://10.0.0.1:8080";
const B = "http://10.0.0.2:8080";
const C = "http://10.0.0.3:8080";

describe("router set (fake links)", () => {
  it("given a load balancer: links to each listed router, and stops talking to the load balancer", () => {
    const { set, link } = fakeSet(LB);
    set.start();
    expect(set.urls()).toEqual([LB]);
    link(LB).hooks.onRouters([A, `${B}/`]);
    expect(set.urls().sort()).toEqual([A, B]);
    expect(link(A).started && link(B).started).toBe(true);
    expect(link(LB).stopped).toBe(true);
    set.notifyChange();
    expect([link(A).changes, link(B).changes]).toEqual([1, 1]);
  });

  it("given one router of the fleet: keeps it and adds the others; an answer without a list changes nothing", () => {
    const { set, link } = fakeSet(A);
    set.start();
    link(A).hooks.onRouters([]);
    expect(set.urls()).toEqual([A]);
    link(A).hooks.onRouters([A, B]);
    expect(set.urls().sort()).toEqual([A, B]);
    expect(link(A).stopped).toBe(false);
  });

  it("follows a router that joins the fleet", () => {
    const { set, link } = fakeSet(LB);
    set.start();
    link(LB).hooks.onRouters([A, B]);
    link(B).hooks.onRouters([A, B, C]);
    expect(set.urls().sort()).toEqual([A, B, C]);
  });

  it("drops a router after 3 answers missed in a row; a stale list does not bring it back, a later rejoin does", () => {
    const { set, link, log } = fakeSet(LB);
    set.start();
    link(LB).hooks.onRouters([A, B]);
    const b = link(B);
    b.hooks.onMissed(1);
    b.hooks.onMissed(2);
    expect(set.urls()).toContain(B);
    b.hooks.onMissed(3);
    expect(set.urls()).toEqual([A]);
    expect(b.stopped).toBe(true);
    expect(log.find("dropped a router")).toHaveLength(1);
    // A's list still names B (its row is not stale yet): B stays dropped.
    link(A).hooks.onRouters([A, B]);
    expect(set.urls()).toEqual([A]);
    // B's row went stale, then B came back (restarted): linked again.
    link(A).hooks.onRouters([A]);
    link(A).hooks.onRouters([A, B]);
    expect(set.urls().sort()).toEqual([A, B]);
    expect(link(B)).not.toBe(b);
  });

  it("a misses count from a link already dropped is ignored", () => {
    const { set, link } = fakeSet(LB);
    set.start();
    link(LB).hooks.onRouters([A, B]);
    link(LB).hooks.onMissed(5);
    expect(set.urls().sort()).toEqual([A, B]);
  });

  it("drops a router that says it is leaving at once; an unknown router's goodbye is refused", () => {
    const { set, link } = fakeSet(LB);
    set.start();
    link(LB).hooks.onRouters([A, B]);
    expect(set.leaving(`${B}/`)).toBe(true);
    expect(set.urls()).toEqual([A]);
    expect(link(B).stopped).toBe(true);
    expect(set.leaving(C)).toBe(false);
    expect(set.leaving("not a url")).toBe(false);
  });

  it("the given URL is never dropped while it is all the node has; with every router gone it is used again", () => {
    const { set, link, log } = fakeSet(LB);
    set.start();
    link(LB).hooks.onMissed(10);
    expect(set.urls()).toEqual([LB]);
    link(LB).hooks.onRouters([A]);
    link(A).hooks.onMissed(3);
    expect(set.urls()).toEqual([LB]);
    expect(link(LB).started && !link(LB).stopped).toBe(true);
    expect(log.find("registering through the given URL again")).toHaveLength(1);
  });
});

describe("router set with real links", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  async function fleet(n: number) {
    const routers = await Promise.all(Array.from({ length: n }, () => new FakeRouter([]).start()));
    for (const r of routers) cleanups.push(() => r.close());
    return routers;
  }

  function node(seed: string) {
    const agent = new Agent();
    const log = captureLogger();
    const models: ModelStatus[] = [{ id: "m", state: "ready", slots: 2, inFlight: 0, restarts: 0 }];
    const set = new RouterSet({
      seed,
      logger: log.logger,
      createLink: (url, hooks) =>
        new RouterLink({
          ...hooks,
          router: new RouterEndpoint(url, "tok"),
          dispatcher: agent,
          logger: log.logger,
          registerBackoff: () => new Backoff({ initialMs: 30, maxMs: 100, jitter: 0.3 }),
          requestTimeoutMs: 2_000,
          registration: () => ({ nodeId: "node-1", name: "n1", apiUrl: "http://127.0.0.1:1", version: "0.1.0", engine: "llama", models, metrics: {} }),
          heartbeat: () => ({ nodeId: "node-1", models, inFlight: 0, metrics: {} }),
        }),
    });
    cleanups.push(async () => {
      await set.stop();
      await agent.close();
    });
    return { set, log };
  }

  it("through a load balancer to every router; a killed router is dropped after missed heartbeats, a new one is joined", async () => {
    const [lb, a, b] = await fleet(3);
    for (const r of [lb!, a!, b!]) r.routers = [a!.url, b!.url];
    const { set, log } = node(lb!.url);
    set.start();
    await waitFor(() => a!.heartbeats.length >= 2 && b!.heartbeats.length >= 2, 10_000, "heartbeats to both routers");
    expect(set.urls().sort()).toEqual([a!.url, b!.url].sort());
    const lbHeartbeats = lb!.heartbeats.length;

    // b is killed: its heartbeats fail (connection refused) and the node drops it.
    await b!.close();
    await waitFor(() => !set.urls().includes(b!.url), 10_000, "b dropped");
    expect(log.find("dropped a router")[0]).toMatchObject({ router: b!.url });

    // A router joins: a's answers list it, and the node registers and heartbeats there too.
    const [c] = await fleet(1);
    c!.routers = a!.routers = [a!.url, c!.url];
    await waitFor(() => c!.heartbeats.length >= 1, 10_000, "heartbeats to the new router");
    expect(c!.registrations).toHaveLength(1);
    expect(set.urls().sort()).toEqual([a!.url, c!.url].sort());
    // The load balancer was only the way in.
    expect(lb!.heartbeats.length).toBe(lbHeartbeats);
  });

  it("a router's goodbye stops the node's heartbeats to it at once", async () => {
    const [a, b] = await fleet(2);
    for (const r of [a!, b!]) r.routers = [a!.url, b!.url];
    const { set } = node(a!.url);
    set.start();
    await waitFor(() => b!.heartbeats.length >= 1, 10_000, "heartbeats to b");
    expect(set.leaving(b!.url)).toBe(true);
    const count = b!.heartbeats.length;
    const aCount = a!.heartbeats.length;
    await waitFor(() => a!.heartbeats.length >= aCount + 3, 10_000, "more heartbeats to a");
    expect(b!.heartbeats.length).toBeLessThanOrEqual(count + 1);
  });
});
