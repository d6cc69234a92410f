// The router's node log proxy (against fake nodes: a healthy one, a silent one, a gone one) and
// its Prometheus metrics, on a bare Fastify app with the real registry, queue and events.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdmissionQueue } from "../../src/router/request-path/admission-queue.js";
import { installErrorHandlers } from "../../src/router/http/http-errors.js";
import { NodeRegistry } from "../../src/router/fleet/node-registry.js";
import { NodeSelector } from "../../src/router/request-path/node-selector.js";
import type { RequestRecord } from "../../src/protocol/request-record.js";
import { RequestEvents } from "../../src/router/request-path/request-events.js";
import { RouterMetrics } from "../../src/router/overview/router-metrics.js";
import { registerMetricsRoutes } from "../../src/router/routes/metrics-routes.js";
import { registerNodeLogRoutes } from "../../src/router/routes/node-log-routes.js";
import type { NodeRegistration } from "../../src/protocol/node-api.js";
import { waitFor } from "../fixtures/fake-router.js";
import { routerCredential } from "../../src/protocol/node-auth.js";
import { metricSamples, metricSum, parsePrometheus } from "../support/prometheus.js";

const TOKEN = "router-node-token";
const LINES = '{"msg":"a","reqId":"r1"}\n{"msg":"b","reqId":"r2"}\n';
let app: FastifyInstance;
let registry: NodeRegistry;
let events: RequestEvents;
const servers: Server[] = [];
const seen: { url: string; auth: string | undefined }[] = [];

async function fakeNode(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function registration(nodeId: string, apiUrl: string, metrics: NodeRegistration["metrics"] = {}): NodeRegistration {
  return { nodeId, name: nodeId, apiUrl, version: "0", engine: "llama", models: [{ id: "m", state: "ready", slots: 2, inFlight: 0, restarts: 3 }], metrics };
}

beforeAll(async () => {
  registry = new NodeRegistry(5000);
  const queue = new AdmissionQueue(registry, new NodeSelector(registry), { limit: 10, timeoutMs: 0 });
  events = new RequestEvents();
  app = Fastify();
  installErrorHandlers(app, () => undefined);
  registerNodeLogRoutes(app, { registry, nodeToken: TOKEN, timeoutMs: 400 });
  registerMetricsRoutes(app, new RouterMetrics({ registry, queue, events, modelIds: ["m", "idle-model"] }));
  app.get("/api/models/:id/file", async (_req, reply) => reply.header("content-length", 1234).send(Buffer.alloc(1234)));

  const healthy = await fakeNode((req, res) => {
    seen.push({ url: req.url!, auth: req.headers.authorization });
    res.writeHead(200, { "content-type": "application/x-ndjson" }).end(LINES);
  });
  const silent = await fakeNode(() => undefined); // accepts, never answers
  const refusing = await fakeNode((_req, res) => res.writeHead(401).end('{"error":{"message":"a valid node token is required"}}'));
  const goneServer = createServer();
  await new Promise<void>((r) => goneServer.listen(0, "127.0.0.1", r));
  const gone = `http://127.0.0.1:${(goneServer.address() as AddressInfo).port}`;
  await new Promise<void>((r) => goneServer.close(() => r()));

  registry.accept(
    registration("healthy", healthy, {
      cpuPercent: 12.5,
      memoryUsedBytes: 1,
      memoryTotalBytes: 2,
      gpus: [{ index: 0, name: "H100", utilizationPercent: 70, memoryTotalBytes: 80 }],
    }),
  );
  registry.accept(registration("silent", silent));
  registry.accept(registration("refusing", refusing));
  registry.accept(registration("gone", gone));
});

afterAll(async () => {
  await app.close();
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await registry.close();
});

describe("GET /api/nodes/:id/logs", () => {
  test("passes the node's lines through, asking with the router credential derived from the node token, and the tail", async () => {
    for (const path of ["/api/nodes/healthy/logs?tail=2", "/api/agents/healthy/logs?tail=2"]) {
      const res = await app.inject(path);
      expect(res.statusCode).toBe(200);
      expect(res.headers["content-type"]).toMatch(/^application\/x-ndjson/);
      expect(res.body).toBe(LINES);
    }
    expect(seen.at(-1)).toEqual({ url: "/api/logs?tail=2", auth: `Bearer ${routerCredential(TOKEN, "healthy")}` });
    await app.inject("/api/nodes/healthy/logs");
    expect(seen.at(-1)!.url).toBe("/api/logs?tail=200");
  });

  test("unknown node → 404", async () => {
    const res = await app.inject("/api/nodes/nope/logs");
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: { code: "node_not_found" } });
  });

  test.each(["abc", "100000"])("tail=%s → 400", async (tail) => {
    const res = await app.inject(`/api/nodes/healthy/logs?tail=${tail}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: { type: "invalid_request_error", code: "invalid_tail", param: "tail" } });
  });

  test("a node that does not answer within the timeout → 502", async () => {
    const started = Date.now();
    const res = await app.inject("/api/nodes/silent/logs?tail=5");
    expect(res.statusCode).toBe(502);
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(res.json()).toMatchObject({ error: { type: "server_error", code: "node_unavailable", message: expect.stringMatching(/did not answer within/) } });
  });

  test("a node that cannot be reached, or refuses, → 502", async () => {
    const gone = await app.inject("/api/nodes/gone/logs?tail=5");
    expect(gone.statusCode).toBe(502);
    expect(gone.json().error.message).toMatch(/could not be reached/);
    const refusing = await app.inject("/api/nodes/refusing/logs?tail=5");
    expect(refusing.statusCode).toBe(502);
    expect(refusing.json().error.message).toMatch(/answered HTTP 401/);
  });
});

describe("GET /metrics", () => {
  const finished = (over: Partial<RequestRecord> = {}): RequestRecord => ({
    requestId: "r",
    startedAt: Date.now(),
    api: "openai",
    endpoint: "/v1/chat/completions",
    modelId: "m",
    stream: true,
    clientIp: "127.0.0.1",
    keyName: null,
    nodeId: "healthy",
    nodeName: "healthy",
    status: 200,
    error: null,
    attempts: 1,
    queueWaitMs: 20,
    firstByteMs: 150,
    durationMs: 900,
    promptTokens: 11,
    completionTokens: 7,
    traceId: null,
    ...over,
  });
  const scrape = async () => {
    const res = await app.inject("/metrics");
    expect(res.statusCode).toBe(200);
    return parsePrometheus(res.body);
  };

  test("the request counter rises after a request; latency, TTFT, queue wait and tokens are recorded", async () => {
    const key = { api: "openai", endpoint: "/v1/chat/completions", model: "m", node: "healthy", status: "200" };
    const before = await scrape();
    events.emitFinished(finished());
    const after = await scrape();
    expect(metricSum(after, "drover_requests_total", key)).toBe(metricSum(before, "drover_requests_total", key) + 1);
    expect(metricSum(after, "drover_request_duration_seconds_count", { model: "m" })).toBe(1);
    expect(metricSum(after, "drover_request_duration_seconds_sum", { model: "m" })).toBeCloseTo(0.9);
    expect(metricSum(after, "drover_time_to_first_token_seconds_count", { model: "m" })).toBe(1);
    expect(metricSum(after, "drover_time_to_first_token_seconds_bucket", { model: "m", le: "0.25" })).toBe(1);
    expect(metricSum(after, "drover_time_to_first_token_seconds_bucket", { model: "m", le: "0.1" })).toBe(0);
    expect(metricSum(after, "drover_queue_wait_seconds_count", { model: "m" })).toBe(1);
    expect(metricSum(after, "drover_tokens_total", { model: "m", kind: "prompt" })).toBe(11);
    expect(metricSum(after, "drover_tokens_total", { model: "m", kind: "completion" })).toBe(7);

    // Refused before routing: counted with node "none", no queue wait, no TTFT.
    events.emitFinished(finished({ nodeId: null, nodeName: null, status: 503, stream: false, firstByteMs: null, promptTokens: null, completionTokens: null }));
    const refused = await scrape();
    expect(metricSum(refused, "drover_requests_total", { node: "none", status: "503" })).toBe(1);
    expect(metricSum(refused, "drover_queue_wait_seconds_count", { model: "m" })).toBe(1);
    expect(metricSum(refused, "drover_time_to_first_token_seconds_count", { model: "m" })).toBe(1);
  });

  test("affinity hits and misses are counted per model and policy; cached prompt tokens are counted", async () => {
    events.emitFinished(finished({ routing: "prefix", affinity: "hit", cachedTokens: 9 }));
    events.emitFinished(finished({ routing: "prefix", affinity: "hit" }));
    events.emitFinished(finished({ routing: "prefix", affinity: "miss" }));
    events.emitFinished(finished({ routing: "least-load", affinity: "miss" }));
    // No key (embeddings): neither.
    events.emitFinished(finished({ routing: "least-load", affinity: null }));
    const s = await scrape();
    expect(metricSum(s, "drover_affinity_hits_total", { model: "m", routing: "prefix" })).toBe(2);
    expect(metricSum(s, "drover_affinity_misses_total", { model: "m", routing: "prefix" })).toBe(1);
    expect(metricSum(s, "drover_affinity_misses_total", { model: "m", routing: "least-load" })).toBe(1);
    expect(metricSum(s, "drover_affinity_hits_total", { model: "m" }) + metricSum(s, "drover_affinity_misses_total", { model: "m" })).toBe(4);
    expect(metricSum(s, "drover_tokens_total", { model: "m", kind: "cached" })).toBe(9);
  });

  test("fleet gauges: nodes by state, per-model state, slots, restarts, in-flight, queue depth, node hardware", async () => {
    const s = await scrape();
    expect(metricSum(s, "drover_nodes", { state: "online" })).toBe(4);
    expect(metricSum(s, "drover_nodes", { state: "offline" })).toBe(0);
    expect(metricSum(s, "drover_node_model_state", { node: "healthy", model: "m", state: "ready" })).toBe(1);
    expect(metricSum(s, "drover_node_model_state", { node: "healthy", model: "m", state: "failed" })).toBe(0);
    expect(metricSum(s, "drover_node_model_slots", { node: "healthy", model: "m" })).toBe(2);
    expect(metricSum(s, "drover_engine_restarts", { node: "healthy", model: "m" })).toBe(3);
    expect(metricSamples(s, "drover_in_flight", { node: "healthy", model: "m" })).toHaveLength(1);
    expect(metricSamples(s, "drover_queue_depth", { model: "idle-model" })).toEqual([
      { name: "drover_queue_depth", labels: { model: "idle-model" }, value: 0 },
    ]);
    expect(metricSum(s, "drover_node_cpu_percent", { node: "healthy" })).toBe(12.5);
    expect(metricSum(s, "drover_node_gpu_utilization_percent", { node: "healthy", gpu: "0", name: "H100" })).toBe(70);
    // A node reporting no GPUs has no GPU series at all.
    expect(metricSamples(s, "drover_node_gpu_utilization_percent", { node: "silent" })).toEqual([]);
  });

  test("model file bytes served to nodes are counted", async () => {
    const before = metricSum(await scrape(), "drover_model_file_bytes_sent_total", { model: "m" });
    // Over a real socket: the hook counts responses that went out completely.
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    const res = await fetch(`${url}/api/models/m/file`);
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(1234);
    // Counted by the response hook once the response has gone out: wait for it, then check the exact sum.
    await waitFor(async () => metricSum(await scrape(), "drover_model_file_bytes_sent_total", { model: "m" }) > before, 10_000, "the bytes counted");
    expect(metricSum(await scrape(), "drover_model_file_bytes_sent_total", { model: "m" })).toBe(before + 1234);
  });
});
