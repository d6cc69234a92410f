// Node settings, disconnect and delete (the dashboard's admin actions on a node), over HTTP
// against a real SQLite store: validation, persistence across a router restart, and what each
// action does to the registry.
import Fastify, { type FastifyInstance } from "fastify";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import type { NodeRegistration } from "../../src/protocol/node-api.js";
import { installErrorHandlers, installJsonParser } from "../../src/router/http/http-errors.js";
import { NodeRegistry } from "../../src/router/fleet/node-registry.js";
import { registerNodeAdminRoutes } from "../../src/router/routes/node-admin-routes.js";
import { openStore, type RouterStore } from "../../src/router/store/router-store.js";

const reg: NodeRegistration = {
  nodeId: "node-1",
  name: "gpu-box-1",
  apiUrl: "http://127.0.0.1:9",
  version: "test",
  engine: "llama",
  metrics: {},
  models: [{ id: "demo-chat", state: "ready", slots: 2, inFlight: 0, restarts: 0 }],
};

const open: { app?: FastifyInstance; registry?: NodeRegistry; store?: RouterStore }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.app?.close();
    await o.registry?.close();
    await o.store?.close();
  }
});

/** A router's worth of node admin: store, registry restored from it, the routes. */
async function start(dataDir: string) {
  const store = await openStore({ dataDir });
  const registry = new NodeRegistry(5000);
  registry.restore(await store.nodes.list());
  const app = Fastify({ forceCloseConnections: true });
  installJsonParser(app);
  installErrorHandlers(app, () => {});
  registerNodeAdminRoutes(app, { registry, nodes: store.nodes });
  await app.ready();
  open.push({ app, registry, store });
  const call = async (method: string, url: string, body?: unknown) => {
    const res = await app.inject({
      method: method as "GET",
      url,
      ...(body === undefined ? {} : { payload: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
  };
  return { store, registry, call };
}

describe("node settings", () => {
  test("an admin names, tags and annotates a node; the settings survive a router restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "drover-node-admin-"));
    const first = await start(dataDir);
    first.registry.accept(reg);
    await first.store.nodes.save({ id: reg.nodeId, name: reg.name, apiUrl: reg.apiUrl, firstSeen: Date.now() });

    const res = await first.call("PATCH", "/api/nodes/node-1", {
      displayName: "  Rack 3 / A100  ",
      tags: ["a100", "rack-3", "a100"],
      notes: "fans replaced in May",
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: "node-1",
      name: "gpu-box-1",
      displayName: "Rack 3 / A100",
      tags: ["a100", "rack-3"],
      notes: "fans replaced in May",
      state: "online",
    });

    // One field at a time leaves the others alone; an empty string clears.
    const partial = await first.call("PATCH", "/api/nodes/node-1", { notes: "" });
    expect(partial.body).toMatchObject({ displayName: "Rack 3 / A100", tags: ["a100", "rack-3"], notes: null });
    expect(await first.store.nodes.get("node-1")).toMatchObject({ displayName: "Rack 3 / A100", tags: ["a100", "rack-3"], notes: null });
    await first.registry.close();
    await first.store.close();
    open.length = 0;

    const second = await start(dataDir);
    expect(second.registry.get("node-1")!.settings).toEqual({ displayName: "Rack 3 / A100", tags: ["a100", "rack-3"], notes: null });
  });

  test("a node the database does not hold yet is saved with its settings", async () => {
    const { registry, store, call } = await start(mkdtempSync(join(tmpdir(), "drover-node-admin-")));
    registry.accept(reg);
    expect((await call("PATCH", "/api/nodes/node-1", { tags: ["x"] })).status).toBe(200);
    expect((await store.nodes.get("node-1"))?.tags).toEqual(["x"]);
  });

  test("bad settings are a 400 naming the field; an unknown node a 404", async () => {
    const { registry, call } = await start(mkdtempSync(join(tmpdir(), "drover-node-admin-")));
    registry.accept(reg);
    const cases: [unknown, string | null][] = [
      [{ displayName: "x".repeat(129) }, "displayName"],
      [{ tags: "a,b" }, "tags"],
      [{ tags: ["ok", "  "] }, "tags.1"],
      [{ notes: 5 }, "notes"],
      [{ colour: "red" }, null],
      [{}, null],
      [[1, 2], null],
    ];
    for (const [body, param] of cases) {
      const res = await call("PATCH", "/api/nodes/node-1", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.type).toBe("invalid_request_error");
      expect(res.body.error.param, JSON.stringify(body)).toBe(param);
    }
    const missing = await call("PATCH", "/api/nodes/nope", { tags: [] });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("node_not_found");
  });
});

describe("disconnect and delete", () => {
  test("disconnect: listed offline, never routed, its next heartbeat must register again", async () => {
    const { registry, call } = await start(mkdtempSync(join(tmpdir(), "drover-node-admin-")));
    registry.accept(reg);
    const res = await call("POST", "/api/nodes/node-1/disconnect");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ state: "offline", registeredAt: null });
    expect(registry.isRoutable(registry.get("node-1")!, "demo-chat")).toBe(false);
    expect(registry.heartbeat({ nodeId: "node-1", models: reg.models, inFlight: 0, metrics: {} })).toBe("unknown");
    // Registering again brings it back.
    registry.accept(reg);
    expect(registry.get("node-1")!.state).toBe("online");
    expect((await call("POST", "/api/nodes/nope/disconnect")).status).toBe(404);
  });

  test("delete forgets the node in the registry and the database", async () => {
    const { registry, store, call } = await start(mkdtempSync(join(tmpdir(), "drover-node-admin-")));
    registry.accept(reg);
    await store.nodes.save({ id: reg.nodeId, name: reg.name, apiUrl: reg.apiUrl, firstSeen: Date.now() });
    expect((await call("DELETE", "/api/nodes/node-1")).status).toBe(204);
    expect(registry.get("node-1")).toBeUndefined();
    expect(await store.nodes.get("node-1")).toBeNull();
    const again = await call("DELETE", "/api/nodes/node-1");
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe("node_not_found");
  });
});
