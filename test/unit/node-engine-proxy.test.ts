// The node's HTTP server in isolation: an engine that cannot be reached, and a node that has no
// catalog yet.
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { createServer as createHttpServer, type ServerResponse } from "node:http";
import { ModelStatusBoard } from "../../src/node/model-status-board.js";
import { NodeMetricsExporter } from "../../src/node/node-metrics.js";
import { buildNodeServer } from "../../src/node/server.js";
import { ggufEntry } from "../support/catalog-entry.js";
import { captureLogger } from "../fixtures/capture-logger.js";

const entry = ggufEntry();

let app: FastifyInstance;
let url: string;
let closedPort: number;
let catalogLoaded = true;
const board = new ModelStatusBoard();
const agent = new Agent();

beforeAll(async () => {
  // A port nobody listens on.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));

  board.setCatalog([entry], 4);
  board.setState("m", "ready");
  app = await buildNodeServer({
    logger: captureLogger().logger,
    nodeId: "id",
    nodeName: "proxy-test",
    board,
    proxy: { dispatcher: agent, catalogLoaded: () => catalogLoaded, enginePort: () => closedPort },
  });
  url = await app.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await app.close();
  await agent.close();
});

const chat = () =>
  request(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "x" }] }),
  });

describe("engine proxy", () => {
  it("answers 503 engine_unavailable when the engine cannot be reached, and releases the slot", async () => {
    const res = await chat();
    expect(res.statusCode).toBe(503);
    expect(res.headers["x-drover-node"]).toBe("proxy-test");
    expect(await res.body.json()).toMatchObject({ error: { type: "server_error", code: "engine_unavailable" } });
    expect(board.get("m")!.inFlight).toBe(0);
  });

  it("answers 503 model_not_ready before the catalog arrived", async () => {
    catalogLoaded = false;
    const res = await chat();
    catalogLoaded = true;
    expect(res.statusCode).toBe(503);
    expect(await res.body.json()).toMatchObject({ error: { code: "model_not_ready" } });
  });

  it("answers unknown routes with an OpenAI-shaped 404", async () => {
    const res = await request(`${url}/v1/nope`);
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toMatchObject({ error: { type: "invalid_request_error" } });
  });

  it("accepts JSON sent with another content type (curl -d)", async () => {
    const res = await request(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: JSON.stringify({ model: "unknown", messages: [{ role: "user", content: "x" }] }),
    });
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toMatchObject({ error: { code: "model_not_found" } });
  });
});

// Several routers may send to one node, each counting only its own requests (PRODUCT.md §13): the
// node admits at most its slots per model and refuses the excess at once with 503 node_busy.
describe("a node's slots hold whatever the number of routers", () => {
  it("the request past the slots is refused at once with node_busy; the max-in-flight metric never passes the slots", async () => {
    const held: ServerResponse[] = [];
    const engine = createHttpServer((req, res) => {
      req.resume();
      req.on("end", () => held.push(res));
    });
    await new Promise<void>((r) => engine.listen(0, "127.0.0.1", r));
    const slotsBoard = new ModelStatusBoard();
    slotsBoard.setCatalog([entry], 2);
    slotsBoard.setState("m", "ready");
    const metrics = new NodeMetricsExporter({ board: slotsBoard, system: () => ({}) });
    const node = await buildNodeServer({
      logger: captureLogger().logger,
      nodeId: "busy",
      nodeName: "busy-test",
      board: slotsBoard,
      metrics,
      proxy: { dispatcher: agent, catalogLoaded: () => true, enginePort: () => (engine.address() as AddressInfo).port },
    });
    const base = await node.listen({ host: "127.0.0.1", port: 0 });
    const send = (signal?: AbortSignal) =>
      request(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "x" }] }),
        signal,
      });
    try {
      const running = [send(), send()];
      await new Promise<void>((resolve) => {
        const check = () => (held.length === 2 ? resolve() : setTimeout(check, 10));
        check();
      });
      // At once: not queued behind the two running.
      const refused = await send(AbortSignal.timeout(5_000));
      expect(refused.statusCode).toBe(503);
      expect(refused.headers["retry-after"]).toBe("1");
      expect(await refused.body.json()).toMatchObject({ error: { type: "server_error", code: "node_busy" } });
      expect(held).toHaveLength(2);
      for (const res of held.splice(0)) res.writeHead(200, { "content-type": "application/json" }).end("{}");
      for (const res of await Promise.all(running)) expect(res.statusCode).toBe(200);
      const again = send();
      await new Promise<void>((resolve) => {
        const check = () => (held.length === 1 ? resolve() : setTimeout(check, 10));
        check();
      });
      held.pop()!.writeHead(200, { "content-type": "application/json" }).end("{}");
      expect((await again).statusCode).toBe(200);
      expect(await metrics.registry.getSingleMetricAsString("drover_model_max_in_flight")).toContain('drover_model_max_in_flight{model="m"} 2');
    } finally {
      for (const res of held.splice(0)) res.destroy();
      await node.close();
      engine.closeAllConnections();
      await new Promise((r) => engine.close(r));
    }
  });
});
