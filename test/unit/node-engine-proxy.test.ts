// The node's HTTP server in isolation: an engine that cannot be reached, and a node that has no
// catalog yet.
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { ModelStatusBoard } from "../../src/node/model-status-board.js";
import { buildNodeServer } from "../../src/node/server.js";
import type { CatalogEntry } from "../../src/protocol/catalog.js";
import { captureLogger } from "../fixtures/capture-logger.js";

const entry: CatalogEntry = {
  id: "m",
  description: "",
  sizeBytes: 1,
  memoryBytes: 1,
  tags: [],
  capabilities: ["chat"],
  contextLength: 4096,
  source: { gguf: { url: "https://example.com/m.gguf" } },
};

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
