// Placement: rendezvous (HRW) order over node ids, the bounded-load rule, and the selector that
// combines them with slots, breaker and readiness.
import { afterEach, describe, expect, test } from "vitest";
import type { ModelStatus, NodeRegistration } from "../../src/protocol/node-api.js";
import { AdmissionQueue } from "../../src/router/request-path/admission-queue.js";
import { NodeRegistry } from "../../src/router/fleet/node-registry.js";
import { NodeSelector, rendezvousOrder, withinLoadBound } from "../../src/router/request-path/node-selector.js";

function reg(id: string, slots: number, state: ModelStatus["state"] = "ready"): NodeRegistration {
  return {
    nodeId: id,
    name: id,
    apiUrl: `http://127.0.0.1:1/${id}`,
    version: "test",
    engine: "llama",
    metrics: {},
    models: [{ id: "m", state, slots, inFlight: 0, restarts: 0 } as ModelStatus],
  };
}

const keys = Array.from({ length: 2000 }, (_, i) => `key-${i}`);
const ids = ["node-a", "node-b", "node-c", "node-d", "node-e"];

describe("rendezvous order", () => {
  test("depends only on the key and the set of node ids, not on their order", () => {
    for (const key of keys.slice(0, 50)) {
      const order = rendezvousOrder(key, ids);
      expect([...order].sort()).toEqual([...ids].sort());
      expect(rendezvousOrder(key, [...ids].reverse())).toEqual(order);
    }
  });

  test("spreads keys evenly over the nodes", () => {
    const share = new Map<string, number>();
    for (const key of keys) {
      const top = rendezvousOrder(key, ids)[0]!;
      share.set(top, (share.get(top) ?? 0) + 1);
    }
    // 2000 keys over 5 nodes: 400 each on average; a broken hash puts most on one node.
    for (const id of ids) expect(share.get(id) ?? 0).toBeGreaterThan(300);
  });

  test("losing a node moves only the keys it held, each to its next node in order", () => {
    const without = ids.filter((id) => id !== "node-c");
    let moved = 0;
    for (const key of keys) {
      const before = rendezvousOrder(key, ids);
      const after = rendezvousOrder(key, without);
      if (before[0] === "node-c") {
        moved++;
        expect(after[0]).toBe(before[1]);
      } else {
        expect(after[0]).toBe(before[0]);
      }
    }
    expect(moved).toBeGreaterThan(0);
  });

  test("adding a node takes keys only for itself", () => {
    const withF = [...ids, "node-f"];
    let taken = 0;
    for (const key of keys) {
      const before = rendezvousOrder(key, ids)[0];
      const after = rendezvousOrder(key, withF)[0];
      if (after !== before) {
        expect(after).toBe("node-f");
        taken++;
      }
    }
    // About a sixth of the keys.
    expect(taken).toBeGreaterThan(200);
    expect(taken).toBeLessThan(500);
  });
});

describe("bounded load", () => {
  test("a node may hold up to ceil(factor × its share of the fleet's in-flight requests, this one included)", () => {
    // Idle fleet: the first request always goes to its node.
    expect(withinLoadBound(0, 4, 0, 8, 1.25)).toBe(true);
    // Two equal nodes, 2 requests already on this one and none on the other: mean after placing is
    // 1.5 per node, bound ceil(1.875) = 2, so a third goes to the next node.
    expect(withinLoadBound(2, 4, 2, 8, 1.25)).toBe(false);
    expect(withinLoadBound(1, 4, 1, 8, 1.25)).toBe(true);
    // Busy fleet: 8 in flight over 2 nodes of 4 slots: bound ceil(1.25 × 9 / 2) = 6.
    expect(withinLoadBound(5, 4, 8, 8, 1.25)).toBe(true);
    expect(withinLoadBound(6, 4, 8, 8, 1.25)).toBe(false);
    // A bigger factor tolerates more imbalance.
    expect(withinLoadBound(2, 4, 2, 8, 2)).toBe(true);
    // Slots weigh the share: a node with 3 of 4 slots may hold 3 of 3 requests.
    expect(withinLoadBound(2, 3, 2, 4, 1.25)).toBe(true);
  });
});

describe("selector", () => {
  let registry: NodeRegistry;
  afterEach(async () => registry?.close());

  function fleet(slots: Record<string, number>, opts: ConstructorParameters<typeof NodeSelector>[1] = {}) {
    registry = new NodeRegistry(5000);
    for (const [id, n] of Object.entries(slots)) registry.accept(reg(id, n));
    return new NodeSelector(registry, opts);
  }

  /** A key whose rendezvous order over `nodeIds` starts with `first`. */
  function keyFor(first: string, nodeIds: string[]): string {
    return keys.find((k) => rendezvousOrder(k, nodeIds)[0] === first)!;
  }

  const take = (node: { id: string }) => registry.addInFlight(registry.get(node.id)!, "m", 1);
  /** Places `n` requests of one key one after another, each holding its slot. */
  const placeInTurn = (selector: NodeSelector, key: string, n: number) =>
    Array.from({ length: n }, () => {
      const p = selector.pick("m", key)!;
      take(p.node);
      return p;
    });

  test("every request of one key goes to the key's first node while it stays within the bound", () => {
    const selector = fleet({ x: 4, y: 4 });
    for (const first of ["x", "y"]) {
      const key = keyFor(first, ["x", "y"]);
      for (let i = 0; i < 5; i++) expect(selector.pick("m", key)).toMatchObject({ node: { id: first }, routing: "prefix", affinity: "hit" });
    }
  });

  test("a node above the load bound passes the request to the next node in the key's order", () => {
    const selector = fleet({ x: 4, y: 4, z: 4 }, { loadFactor: 1.25 });
    const key = keyFor("x", ["x", "y", "z"]);
    const second = rendezvousOrder(key, ["x", "y", "z"])[1]!;
    const placed = placeInTurn(selector, key, 3);
    // Bounds for x (a third of the slots): ceil(1.25 × 1/3) = 1 for the first request; the second
    // finds x at 1 with a bound of ceil(1.25 × 2/3) = 1 and goes to the next node; the third finds
    // x at 1 with a bound of ceil(1.25 × 3/3) = 2 and stays.
    expect(placed.map((p) => [p.node.id, p.affinity])).toEqual([
      ["x", "hit"],
      [second, "miss"],
      ["x", "hit"],
    ]);
  });

  test("by default (factor 2) a node takes up to twice its share before passing the request on", () => {
    const selector = fleet({ x: 4, y: 4, z: 4 });
    const key = keyFor("x", ["x", "y", "z"]);
    const second = rendezvousOrder(key, ["x", "y", "z"])[1]!;
    const placed = placeInTurn(selector, key, 3);
    // Bounds for x: ceil(2 × 1/3) = 1, ceil(2 × 2/3) = 2, then x at 2 against ceil(2 × 3/3) = 2.
    expect(placed.map((p) => [p.node.id, p.affinity])).toEqual([
      ["x", "hit"],
      ["x", "hit"],
      [second, "miss"],
    ]);
  });

  test("a node with no free slot is skipped; with no free slot anywhere the request waits (null)", () => {
    const selector = fleet({ x: 1, y: 1 });
    const key = keyFor("x", ["x", "y"]);
    take(registry.get("x")!);
    expect(selector.pick("m", key)).toMatchObject({ node: { id: "y" }, affinity: "miss" });
    take(registry.get("y")!);
    expect(selector.pick("m", key)).toBeNull();
  });

  test("the order is over ready nodes only: a node that stops being ready gives its keys to the next", () => {
    const selector = fleet({ x: 4, y: 4, z: 4 });
    const key = keyFor("x", ["x", "y", "z"]);
    const next = rendezvousOrder(key, ["y", "z"])[0]!;
    registry.accept(reg("x", 4, "loading"));
    // Hit: x is not ready, so the key's first node among the ready ones is `next`.
    expect(selector.pick("m", key)).toMatchObject({ node: { id: next }, affinity: "hit" });
  });

  test("least-load places by load but still reports whether it hit the key's node; no key means no affinity", () => {
    const selector = fleet({ x: 2, y: 2 }, { policy: "least-load" });
    const key = keyFor("x", ["x", "y"]);
    take(registry.get("x")!);
    expect(selector.pick("m", key)).toMatchObject({ node: { id: "y" }, routing: "least-load", affinity: "miss" });
    const prefix = new NodeSelector(registry, { policy: "prefix" });
    expect(prefix.pick("m", key)).toMatchObject({ node: { id: "x" }, routing: "prefix", affinity: "hit" });
    expect(prefix.pick("m", null)).toMatchObject({ node: { id: "y" }, routing: "least-load", affinity: null });
  });

  test("a load factor below 1 is refused", () => {
    expect(() => fleet({ x: 1 }, { loadFactor: 0.9 })).toThrow(/at least 1/);
  });

  test("a request whose node is full is leased elsewhere at once instead of waiting, and queued ones keep their key", async () => {
    registry = new NodeRegistry(5000);
    const queue = new AdmissionQueue(registry, new NodeSelector(registry), { limit: 10, timeoutMs: 0 });
    registry.accept(reg("x", 1));
    registry.accept(reg("y", 1));
    const key = keyFor("x", ["x", "y"]);
    const signal = new AbortController().signal;
    const first = await queue.acquire("m", signal, false, key);
    expect(first).toMatchObject({ node: { id: "x" }, routing: "prefix", affinity: "hit" });
    const second = await queue.acquire("m", signal, false, key);
    expect(second).toMatchObject({ node: { id: "y" }, affinity: "miss" });
    // Both full: the third waits, and gets x back (its key's node) when x frees up.
    const third = queue.acquire("m", signal, false, key);
    expect(queue.depth).toBe(1);
    queue.release(first, "success");
    expect(await third).toMatchObject({ node: { id: "x" }, affinity: "hit" });
  });
});
