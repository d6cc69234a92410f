// The router's proxy against nodes that fail in each way a review found mishandled (issue 13 §3,
// §4): every lease settles the node's breaker exactly once; a 5xx is a failure that does not make
// a node look fast; a node that is alive but silent past the timeout is not re-run elsewhere; a
// node's own 503 reaches the client whole; a node or engine that is shutting down gets the request
// retried on another node. The nodes are plain HTTP servers (a neighbour faked); the queue,
// registry, selector and proxy are the real ones, behind a real HTTP front.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { afterEach, describe, expect, test } from "vitest";
import type { ModelStatus, NodeRegistration } from "../../src/protocol/node-api.js";
import { AdmissionQueue } from "../../src/router/request-path/admission-queue.js";
import { openAiEdge } from "../../src/router/dialects/openai/edge.js";
import { InferenceProxy } from "../../src/router/request-path/inference-proxy.js";
import { NodeRegistry, type NodeRecord } from "../../src/router/fleet/node-registry.js";
import { NodeSelector } from "../../src/router/request-path/node-selector.js";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface FakeNode {
  url: string;
  /** Inference requests received (health checks not counted). */
  received: number;
  handler: Handler;
  server: Server;
}

const servers: Server[] = [];
let registry: NodeRegistry;

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  await registry?.close();
});

async function fakeNode(handler: Handler, health: Handler = (_q, s) => s.writeHead(200).end("{}")): Promise<FakeNode> {
  const node: FakeNode = { url: "", received: 0, handler, server: undefined as unknown as Server };
  node.server = createServer((req, res) => {
    if (req.url === "/healthz") return health(req, res);
    node.received++;
    req.resume();
    req.on("end", () => node.handler(req, res));
  });
  await new Promise<void>((r) => node.server.listen(0, "127.0.0.1", r));
  servers.push(node.server);
  node.url = `http://127.0.0.1:${(node.server.address() as AddressInfo).port}`;
  return node;
}

function registration(id: string, url: string): NodeRegistration {
  return {
    nodeId: id,
    name: id,
    apiUrl: url,
    version: "test",
    engine: "llama",
    metrics: {},
    models: [{ id: "m", state: "ready", slots: 4, inFlight: 0, restarts: 0 } as ModelStatus],
  };
}

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}): Handler =>
  (_req, res) =>
    res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
const OK = json(200, { id: "x", object: "chat.completion", choices: [] });
const hang: Handler = () => undefined;

/** A router front: the real queue and proxy, each client request run through proxy.run. */
async function front(headersTimeoutMs = 5_000) {
  registry = new NodeRegistry(5_000);
  const queue = new AdmissionQueue(registry, new NodeSelector(registry), { limit: 64, timeoutMs: 0 });
  const proxy = new InferenceProxy(registry, queue, { maxAttempts: 4, headersTimeoutMs, bodyTimeoutMs: 5_000 }, pino({ level: "silent" }));
  const outcomes: Awaited<ReturnType<InferenceProxy["run"]>>[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const ctrl = new AbortController();
      res.on("close", () => {
        if (!res.writableFinished) ctrl.abort();
      });
      proxy
        .run({
          path: "/v1/chat/completions",
          modelId: "m",
          body: Buffer.concat(chunks),
          requestId: "r",
          traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
          signal: ctrl.signal,
          res,
          edge: openAiEdge(),
          affinityKey: null,
        })
        .then(
          (o) => outcomes.push(o),
          () => res.destroy(),
        );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  servers.push(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const add = (id: string, node: FakeNode): NodeRecord => registry.accept(registration(id, node.url));
  const call = (signal?: AbortSignal) =>
    fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: '{"model":"m","messages":[]}', signal });
  return { add, call, outcomes };
}

/** Puts a node's breaker in half-open state: one failure, then a heartbeat allows a trial. */
function halfOpen(node: NodeRecord): void {
  node.breaker.onFailure();
  node.breaker.onHeartbeat();
  expect(node.breaker.state).toBe("half-open");
  expect(node.breaker.allows()).toBe(true);
}

async function until(what: string, cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("every lease settles the breaker exactly once", () => {
  test("a half-open trial whose client disconnects frees the trial: the node is routed to again", async () => {
    const { add, call } = await front();
    const a = await fakeNode(hang);
    const node = add("a", a);
    halfOpen(node);
    const ctrl = new AbortController();
    const pending = call(ctrl.signal).catch(() => null);
    await until("the trial to reach the node", () => a.received === 1);
    expect(node.breaker.allows()).toBe(false); // one trial at a time
    ctrl.abort();
    await pending;
    await until("the slot to be released", () => registry.inFlight(node, "m") === 0);
    expect(node.breaker.allows()).toBe(true);
    a.handler = OK;
    const res = await call();
    expect(res.status).toBe(200);
    expect(node.breaker.state).toBe("closed");
  });

  test("a half-open trial answered 503 'not started' frees the trial and the request runs elsewhere", async () => {
    const { add, call } = await front();
    const a = await fakeNode(json(503, { error: { message: "loading", type: "server_error", code: "model_not_ready" } }));
    const b = await fakeNode(OK);
    const nodeA = add("a", a);
    const nodeB = add("b", b);
    halfOpen(nodeA);
    registry.recordLatency(nodeB, 1_000); // a is tried first
    const res = await call();
    expect(res.status).toBe(200);
    expect([a.received, b.received]).toEqual([1, 1]);
    // Neutral: neither closed nor re-opened, and free for the next trial once it reports again.
    expect(nodeA.breaker.state).toBe("half-open");
    expect(nodeA.breaker.allows()).toBe(true);
  });

  test("a 5xx from the engine is a failure: the breaker opens and the fast error does not lower its latency", async () => {
    const { add, call, outcomes } = await front();
    const a = await fakeNode(json(500, { error: { message: "engine crashed", type: "server_error", code: null } }));
    const node = add("a", a);
    const res = await call();
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe("engine crashed");
    await until("the outcome", () => outcomes.length === 1);
    expect(node.breaker.state).toBe("open");
    expect(node.failedRequests).toBe(1);
    expect(node.latencyEwmaMs).toBeNull();
  });
});

describe("which failures are retried", () => {
  test("a node that is alive but does not answer in time is not re-run elsewhere: 504", async () => {
    const { add, call, outcomes } = await front(300);
    const a = await fakeNode(hang);
    const b = await fakeNode(OK);
    add("a", a);
    registry.recordLatency(add("b", b), 1_000);
    const res = await call();
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("upstream_timeout");
    expect(b.received).toBe(0);
    await until("the outcome", () => outcomes.length === 1);
    expect(outcomes[0]).toMatchObject({ status: 504, attempts: 1 });
    expect(registry.get("a")!.breaker.state).toBe("open");
  });

  test("a node that answers nothing at all (hung process) is retried elsewhere", async () => {
    const { add, call } = await front(300);
    const a = await fakeNode(hang, hang);
    const b = await fakeNode(OK);
    add("a", a);
    registry.recordLatency(add("b", b), 1_000);
    const res = await call();
    expect(res.status).toBe(200);
    expect([a.received, b.received]).toEqual([1, 1]);
  });
});

describe("503s and restarts", () => {
  test("a node's own 503 reaches the client with its body and code", async () => {
    const { add, call } = await front();
    const body = { error: { message: "the GPU is being serviced", type: "server_error", code: "maintenance" } };
    add("a", await fakeNode(json(503, body, { "retry-after": "7" })));
    const res = await call();
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual(body);
  });

  const closingAnswers: [string, Handler][] = [
    // What Fastify answers while the node's server is closing (return503OnClosing).
    [
      "Fastify's closing answer",
      (_req, res) =>
        res
          .writeHead(503, { "content-type": "application/json", connection: "close" })
          .end('{"error":"Service Unavailable","message":"Service Unavailable","statusCode":503}'),
    ],
    [
      "the engine shutting down",
      json(503, { error: { message: "The engine is shutting down; retry the request.", type: "server_error", code: "engine_closing" } }),
    ],
    ["the node draining", json(503, { error: { message: "this node is shutting down", type: "server_error", code: "node_closing" } })],
  ];
  for (const [what, answer] of closingAnswers) {
    test(`${what}: the request is retried on another node`, async () => {
      const { add, call } = await front();
      const a = await fakeNode(answer);
      const b = await fakeNode(OK);
      add("a", a);
      registry.recordLatency(add("b", b), 1_000);
      const res = await call();
      expect(res.status).toBe(200);
      expect([a.received, b.received]).toEqual([1, 1]);
    });
  }
});
