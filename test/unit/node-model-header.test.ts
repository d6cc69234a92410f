// A router names the model of an inference request in x-drover-model: the node routes the request
// to that model's engine by the header and forwards the body without parsing it (the router
// validated it). Unknown models are still refused, and the body limit still holds.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelStatusBoard } from "../../src/node/model-status-board.js";
import { BODY_LIMIT_BYTES, buildNodeServer } from "../../src/node/server.js";
import type { CatalogEntry } from "../../src/protocol/catalog.js";
import { HEADER_MODEL } from "../../src/protocol/http.js";
import { captureLogger } from "../fixtures/capture-logger.js";

const entry = (id: string): CatalogEntry => ({
  id,
  description: "",
  sizeBytes: 1,
  memoryBytes: 1,
  tags: [],
  capabilities: ["chat"],
  contextLength: 4096,
  source: { gguf: { url: `https://example.com/${id}.gguf` } },
});

/** A stand-in engine that answers with its name and the bytes it received. */
interface FakeEngine {
  server: Server;
  port: number;
  seen: string[];
}

async function fakeEngine(name: string): Promise<FakeEngine> {
  const seen: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push(body);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ engine: name, body }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

let app: FastifyInstance;
let url: string;
const engines: Record<string, FakeEngine> = {};
const board = new ModelStatusBoard();
const agent = new Agent();

beforeAll(async () => {
  engines.a = await fakeEngine("a");
  engines.b = await fakeEngine("b");
  board.setCatalog([entry("a"), entry("b")], 4);
  board.setState("a", "ready");
  board.setState("b", "ready");
  app = await buildNodeServer({
    logger: captureLogger().logger,
    nodeId: "id",
    nodeName: "header-test",
    board,
    proxy: { dispatcher: agent, catalogLoaded: () => true, enginePort: (id) => engines[id]?.port },
  });
  url = await app.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await app.close();
  await agent.close();
  for (const e of Object.values(engines)) await new Promise<void>((r) => e.server.close(() => r()));
});

const post = (body: string | Buffer, headers: Record<string, string> = {}) =>
  request(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });

describe("routing by x-drover-model", () => {
  it("reaches the engine the header names, with the body's bytes unchanged and unparsed", async () => {
    // Not JSON at all: a node that parsed the body would refuse it with 400.
    const body = "opaque bytes the router validated {";
    const res = await post(body, { [HEADER_MODEL]: "b" });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ engine: "b", body });
    expect(engines.a!.seen).not.toContain(body);
    expect(board.get("b")!.inFlight).toBe(0);
  });

  it("refuses a model the node does not have with 404 model_not_found, sending nothing to an engine", async () => {
    const before = engines.a!.seen.length + engines.b!.seen.length;
    const res = await post(JSON.stringify({ model: "a", messages: [] }), { [HEADER_MODEL]: "nope" });
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toMatchObject({ error: { code: "model_not_found", param: "model" } });
    expect(engines.a!.seen.length + engines.b!.seen.length).toBe(before);
  });

  it("still refuses a body over the limit with 413", async () => {
    const res = await post(Buffer.alloc(BODY_LIMIT_BYTES + 1, 0x20), { [HEADER_MODEL]: "a" });
    expect(res.statusCode).toBe(413);
    expect(await res.body.json()).toMatchObject({ error: { code: "request_too_large" } });
  });

  it("without the header, parses and validates the body as before", async () => {
    const bad = await post("opaque bytes {");
    expect(bad.statusCode).toBe(400);
    expect(await bad.body.json()).toMatchObject({ error: { code: "invalid_json" } });
    const ok = await post(JSON.stringify({ model: "a", messages: [{ role: "user", content: "x" }] }));
    expect(ok.statusCode).toBe(200);
    expect(await ok.body.json()).toMatchObject({ engine: "a" });
  });
});
