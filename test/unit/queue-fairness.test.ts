// Admission fairness (issue 13 §5): the queue is bounded per model as well as in total, and a
// request for a model that no node can serve is refused at once (503 model_unavailable) instead of
// filling the queue for everyone. A manual clock stands in for the grace period.
import { afterEach, describe, expect, test } from "vitest";
import type { ModelStatus, NodeRegistration } from "../../src/protocol/node-api.js";
import { AdmissionQueue, ModelUnavailableError, QueueFullError } from "../../src/router/request-path/admission-queue.js";
import { NodeRegistry } from "../../src/router/fleet/node-registry.js";
import { NodeSelector } from "../../src/router/request-path/node-selector.js";

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

function setup(opts: { limit?: number; perModelLimit?: number; graceMs?: number } = {}) {
  let now = 1_000_000;
  registry = new NodeRegistry(5000);
  const queue = new AdmissionQueue(registry, new NodeSelector(registry), {
    limit: opts.limit ?? 100,
    perModelLimit: opts.perModelLimit,
    timeoutMs: 0,
    unavailableGraceMs: opts.graceMs ?? 60_000,
    now: () => now,
  });
  return { registry, queue, advance: (ms: number) => (now += ms) };
}

const never = () => new AbortController().signal;
const settle = (p: Promise<unknown>) =>
  p.then(
    () => "admitted",
    (err: Error) => err,
  );

describe("queue limits", () => {
  test("one model cannot take the whole queue: its own limit refuses it while others still queue", async () => {
    const { registry, queue } = setup({ limit: 10, perModelLimit: 2 });
    // Both models are loading somewhere: servable soon, so requests wait.
    registry.recordPending(
      reg("n1", [
        { id: "a", state: "loading" },
        { id: "b", state: "loading" },
      ]),
    );
    const waiting = [queue.acquire("a", never()), queue.acquire("a", never())];
    const third = await settle(queue.acquire("a", never()));
    expect(third).toBeInstanceOf(QueueFullError);
    expect((third as Error).message).toMatch(/queue for 'a' is full \(2 requests waiting for it\)/);
    const b = queue.acquire("b", never());
    expect(queue.snapshot().models).toMatchObject({ a: { depth: 2 }, b: { depth: 1 } });
    queue.drain(new Error("end"));
    await Promise.allSettled([...waiting, b]);
  });
});

describe("models no node can serve", () => {
  test("unsupported on every node: refused at once with the nodes' reasons", async () => {
    const { registry, queue } = setup();
    registry.accept(reg("small", [{ id: "big", state: "unsupported", reason: "insufficient memory" }, { id: "a" }]));
    registry.recordPending(reg("other", [{ id: "big", state: "unsupported", reason: "insufficient memory" }]));
    const err = await settle(queue.acquire("big", never()));
    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect((err as Error).message).toBe("no node can serve 'big': small: unsupported (insufficient memory); other: unsupported (insufficient memory)");
    expect(queue.depth).toBe(0);
  });

  test("failed everywhere: requests wait through the grace period (an engine restarting), then are refused", async () => {
    const { registry, queue, advance } = setup({ graceMs: 30_000 });
    registry.accept(reg("n1", [{ id: "a", state: "failed", reason: "engine exited; restarting in 2s" }]));
    const early = queue.acquire("a", never());
    expect(queue.depth).toBe(1);
    advance(30_001);
    const late = await settle(queue.acquire("a", never()));
    expect(late).toBeInstanceOf(ModelUnavailableError);
    // The waiter from before is served once the engine is back.
    registry.heartbeat({ nodeId: "n1", inFlight: 0, metrics: {}, models: reg("n1", [{ id: "a", state: "ready" }]).models });
    expect((await early).node.id).toBe("n1");
  });

  test("no node at all: requests wait through the grace period, then are refused", async () => {
    const { queue, advance } = setup({ graceMs: 10_000 });
    const early = queue.acquire("a", never());
    advance(10_001);
    const err = await settle(queue.acquire("a", never()));
    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect((err as Error).message).toMatch(/no node is connected to the router/);
    queue.drain(new Error("end"));
    await settle(early);
  });

  test("waiters are refused when the last node that could serve their model reports it unsupported", async () => {
    const { registry, queue } = setup();
    registry.accept(reg("n1", [{ id: "a", state: "loading" }, { id: "b" }]));
    const waiting = settle(queue.acquire("a", never()));
    expect(queue.depth).toBe(1);
    registry.heartbeat({
      nodeId: "n1",
      inFlight: 0,
      metrics: {},
      models: reg("n1", [{ id: "a", state: "unsupported", reason: "insufficient memory" }, { id: "b" }]).models,
    });
    expect(await waiting).toBeInstanceOf(ModelUnavailableError);
    expect(queue.depth).toBe(0);
  });
});
