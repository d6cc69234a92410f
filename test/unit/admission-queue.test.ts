import { afterEach, describe, expect, test } from "vitest";
import { AdmissionQueue, QueueAbortedError, QueueFullError, QueueTimeoutError, type Lease } from "../../src/router/request-path/admission-queue.js";
import { NodeRegistry } from "../../src/router/fleet/node-registry.js";
import { NodeSelector } from "../../src/router/request-path/node-selector.js";
import type { ModelStatus, NodeRegistration } from "../../src/protocol/node-api.js";

function reg(id: string, models: Partial<ModelStatus>[]): NodeRegistration {
  return {
    nodeId: id,
    name: id,
    apiUrl: `http://127.0.0.1:1/${id}`,
    version: "test",
    engine: "llama",
    metrics: {},
    models: models.map((m) => ({ id: "a", state: "ready", slots: 1, inFlight: 0, restarts: 0, ...m }) as ModelStatus),
  };
}

let registry: NodeRegistry;
afterEach(async () => registry?.close());

function setup(limit = 1024, timeoutMs = 0) {
  registry = new NodeRegistry(5000);
  const queue = new AdmissionQueue(registry, new NodeSelector(registry), { limit, timeoutMs });
  return { registry, queue };
}

const never = () => new AbortController().signal;
/** Lets every wake-up already triggered run (they are promise callbacks, not timers). */
const settle = () => new Promise((r) => setImmediate(r));

describe("admission queue", () => {
  test("a request takes a free slot at once and waits when none is free", async () => {
    const { registry, queue } = setup();
    registry.accept(reg("n1", [{ id: "a", slots: 1 }]));
    const first = await queue.acquire("a", never());
    expect(first.node.id).toBe("n1");
    let second: Lease | null = null;
    void queue.acquire("a", never()).then((l) => (second = l));
    await new Promise((r) => setImmediate(r));
    expect(second).toBeNull();
    expect(queue.snapshot().models.a?.depth).toBe(1);
    queue.release(first, "success");
    await new Promise((r) => setImmediate(r));
    expect(second).not.toBeNull();
    expect(queue.depth).toBe(0);
  });

  test("waiters are served in FIFO order", async () => {
    const { registry, queue } = setup();
    const order: number[] = [];
    const leases = Array.from({ length: 5 }, (_, i) =>
      queue.acquire("a", never()).then((l) => {
        order.push(i);
        return l;
      }),
    );
    registry.accept(reg("n1", [{ id: "a", slots: 1 }]));
    for (let i = 0; i < 5; i++) {
      const l = await leases[i]!;
      queue.release(l, "success");
    }
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  test("overflow past the limit is refused at once; the admitted ones all complete", async () => {
    const { registry, queue } = setup(10);
    const admitted = Array.from({ length: 10 }, () => queue.acquire("a", never()));
    const refused = await Promise.allSettled(Array.from({ length: 3 }, () => queue.acquire("a", never())));
    expect(refused.every((r) => r.status === "rejected" && r.reason instanceof QueueFullError)).toBe(true);
    registry.accept(reg("n1", [{ id: "a", slots: 4 }]));
    for (const p of admitted) queue.release(await p, "success");
    expect(queue.depth).toBe(0);
  });

  test("readiness of model B never unblocks a request for model A", async () => {
    const { registry, queue } = setup();
    let gotA = false;
    void queue.acquire("a", never()).then(() => (gotA = true));
    registry.accept(reg("n1", [{ id: "b", slots: 4 }]));
    const b = await queue.acquire("b", never());
    expect(b.modelId).toBe("b");
    await settle();
    expect(gotA).toBe(false);
    expect(queue.snapshot().models.a?.depth).toBe(1);
  });

  test("a client that goes away leaves the queue", async () => {
    const { queue } = setup();
    const ac = new AbortController();
    const p = queue.acquire("a", ac.signal);
    expect(queue.depth).toBe(1);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(QueueAbortedError);
    expect(queue.depth).toBe(0);
  });

  test("the optional queue timeout answers waiting requests", async () => {
    const { queue } = setup(1024, 30);
    await expect(queue.acquire("a", never())).rejects.toBeInstanceOf(QueueTimeoutError);
    expect(queue.depth).toBe(0);
  });

  test("slots are never exceeded and load follows slot counts", async () => {
    const { registry, queue } = setup();
    registry.accept(reg("big", [{ id: "a", slots: 3 }]));
    registry.accept(reg("small", [{ id: "a", slots: 1 }]));
    const leases = await Promise.all(Array.from({ length: 4 }, () => queue.acquire("a", never())));
    const count = (id: string) => leases.filter((l) => l.node.id === id).length;
    expect(count("big")).toBe(3);
    expect(count("small")).toBe(1);
    let fifth = false;
    void queue.acquire("a", never()).then(() => (fifth = true));
    await settle();
    expect(fifth).toBe(false);
  });

  test("an open breaker keeps traffic away until it half-opens", { timeout: 30_000 }, async () => {
    const { registry, queue } = setup();
    const n1 = registry.accept(reg("n1", [{ id: "a", slots: 2 }]));
    const openedAt = Date.now();
    n1.breaker.onFailure(); // open for 1 s
    let got: Lease | null = null;
    const waiting = queue.acquire("a", never()).then((l) => (got = l));
    await settle();
    expect(got).toBeNull();
    expect(queue.snapshot().models.a?.depth).toBe(1);
    // Served by the queue's own wake-up when the breaker half-opens: not before the cooldown ends,
    // and without a heartbeat or a release to wake it.
    const lease = await waiting;
    expect(Date.now() - openedAt).toBeGreaterThanOrEqual(999);
    expect(lease.node.id).toBe("n1");
    expect(n1.breaker.state).toBe("half-open");
  });

  test("a node that misses three heartbeats goes offline and is not routed to", async () => {
    const { registry, queue } = setup();
    const n1 = registry.accept(reg("n1", [{ id: "a", slots: 2 }]));
    registry.sweep(n1.lastSeen + 15_001);
    expect(n1.state).toBe("offline");
    let got = false;
    void queue.acquire("a", never()).then(() => (got = true));
    await settle();
    expect(got).toBe(false);
    expect(registry.heartbeat({ nodeId: "n1", inFlight: 0, metrics: {}, models: reg("n1", [{ id: "a", slots: 2 }]).models })).toBe("ok");
    await settle();
    expect(got).toBe(true);
  });
});
