// The dashboard's live data on the router: request/error rate over the last minute, the per-node
// metric history, and GET /api/events (SSE) + GET /api/nodes/:id/metrics on a real HTTP server.
import Fastify, { type FastifyInstance } from "fastify";
import { request } from "undici";
import { afterEach, describe, expect, test } from "vitest";
import { DEMO_CATALOG } from "../../src/catalog/builtin.js";
import type { ModelStatus, NodeRegistration } from "../../src/protocol/node-api.js";
import { AdmissionQueue } from "../../src/router/request-path/admission-queue.js";
import { FleetActivity } from "../../src/router/overview/fleet-activity.js";
import { installErrorHandlers } from "../../src/router/http/http-errors.js";
import { NodeMetricHistory } from "../../src/router/overview/node-metric-history.js";
import { NodeRegistry, type NodeRecord } from "../../src/router/fleet/node-registry.js";
import { NodeSelector } from "../../src/router/request-path/node-selector.js";
import type { RequestRecord } from "../../src/protocol/request-record.js";
import { RequestEvents } from "../../src/router/request-path/request-events.js";
import { registerLiveRoutes } from "../../src/router/routes/live-routes.js";

const CHAT = DEMO_CATALOG.models[0]!.id;

function reg(id: string, models: Partial<ModelStatus>[], metrics: NodeRegistration["metrics"] = {}): NodeRegistration {
  return {
    nodeId: id,
    name: `name-${id}`,
    apiUrl: "http://127.0.0.1:9",
    version: "test",
    engine: "llama",
    metrics,
    models: models.map((m) => ({ id: CHAT, state: "ready", slots: 2, inFlight: 0, restarts: 0, ...m }) as ModelStatus),
  };
}

function finished(status: number): RequestRecord {
  return {
    requestId: `r-${Math.random()}`,
    startedAt: Date.now(),
    api: "openai",
    endpoint: "/v1/chat/completions",
    modelId: CHAT,
    stream: false,
    clientIp: "127.0.0.1",
    keyName: "test",
    nodeId: "n1",
    nodeName: "name-n1",
    status,
    error: null,
    attempts: 1,
    queueWaitMs: 0,
    firstByteMs: 5,
    durationMs: 10,
    promptTokens: 3,
    completionTokens: 4,
    traceId: null,
  };
}

describe("fleet activity (last minute)", () => {
  test("counts requests and 5xx answers within 60 s and forgets older ones", () => {
    const a = new FleetActivity();
    const t0 = 1_000_000;
    a.record({ status: 200 }, t0);
    a.record({ status: 503 }, t0 + 1000);
    a.record({ status: 404 }, t0 + 2000);
    expect(a.summary(t0 + 3000)).toEqual({ requestsPerMinute: 3, errorsPerMinute: 1, errorRate: 1 / 3 });
    // 60.5 s after the first: it has left the window, the 503 is still in.
    expect(a.summary(t0 + 60_500)).toEqual({ requestsPerMinute: 2, errorsPerMinute: 1, errorRate: 0.5 });
    expect(a.summary(t0 + 200_000)).toEqual({ requestsPerMinute: 0, errorsPerMinute: 0, errorRate: 0 });
  });

  test("subscribes to finished-request events", () => {
    const events = new RequestEvents();
    const a = new FleetActivity(events);
    events.emitFinished(finished(200));
    events.emitFinished(finished(500));
    expect(a.summary().requestsPerMinute).toBe(2);
    expect(a.summary().errorRate).toBe(0.5);
  });

  test("stays bounded under a long stream of requests", () => {
    const a = new FleetActivity();
    for (let i = 0; i < 100_000; i++) a.record({ status: 200 }, i * 10);
    // A 60 s window at one per 10 ms: the records at 940,000 … 999,990 ms remain (the one exactly
    // 60 s old is still in), 6,000 of them.
    expect(a.summary(100_000 * 10).requestsPerMinute).toBe(6000);
    expect((a as unknown as { times: number[] }).times.length).toBeLessThan(20_000);
  });
});

describe("node metric history", () => {
  const node = (id: string, lastSeen: number, cpu: number): NodeRecord =>
    ({
      id,
      lastSeen,
      metrics: {
        cpuPercent: cpu,
        memoryUsedBytes: 1,
        memoryTotalBytes: 2,
        gpus: [
          { index: 0, name: "g", utilizationPercent: 40 },
          { index: 1, name: "g", utilizationPercent: 60, memoryUsedBytes: 5 },
        ],
      },
      inFlight: new Map([[CHAT, 2]]),
      totalRequests: 7,
      failedRequests: 1,
      latencyEwmaMs: 12,
    }) as unknown as NodeRecord;

  test("records one sample per heartbeat, oldest first, bounded per node", () => {
    const h = new NodeMetricHistory(3);
    h.observe([node("a", 1000, 10)]);
    h.observe([node("a", 1000, 11)]); // same heartbeat: no new sample
    for (let t = 2000; t <= 5000; t += 1000) h.observe([node("a", t, t / 100)]);
    const samples = h.samples("a");
    expect(samples.map((s) => s.t)).toEqual([3000, 4000, 5000]);
    expect(samples[2]).toMatchObject({ cpuPercent: 50, gpuPercent: 50, gpuMemoryUsedBytes: 5, inFlight: 2, totalRequests: 7, latencyEwmaMs: 12 });
    expect(h.samples("a", 4000).map((s) => s.t)).toEqual([4000, 5000]);
  });

  test("forgets nodes that left the registry", () => {
    const h = new NodeMetricHistory();
    h.observe([node("a", 1, 1), node("b", 1, 1)]);
    h.observe([node("b", 2, 1)]);
    expect(h.samples("a")).toEqual([]);
    expect(h.samples("b")).toHaveLength(2);
  });
});

describe("GET /api/events and GET /api/nodes/:id/metrics", () => {
  let app: FastifyInstance | undefined;
  let registry: NodeRegistry | undefined;
  afterEach(async () => {
    await app?.close();
    await registry?.close();
  });

  async function start() {
    registry = new NodeRegistry(5000);
    const queue = new AdmissionQueue(registry, new NodeSelector(registry), { limit: 8, timeoutMs: 0 });
    const events = new RequestEvents();
    const history = new NodeMetricHistory();
    app = Fastify({ forceCloseConnections: true });
    installErrorHandlers(app, () => {});
    registerLiveRoutes(app, {
      catalog: DEMO_CATALOG,
      registry,
      queue,
      startedAt: Date.now(),
      events,
      activity: new FleetActivity(events),
      history,
      tickMs: 50,
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = app.server.address() as { port: number };
    return { url: `http://127.0.0.1:${port}`, registry, events };
  }

  /** Reads SSE frames from one response body, across calls, until `until` says stop. */
  function sseReader(body: AsyncIterable<Buffer>) {
    const it = body[Symbol.asyncIterator]();
    const frames: { event: string; data: any }[] = [];
    let buf = "";
    return async (until: (frames: { event: string; data: any }[]) => boolean) => {
      while (!until(frames)) {
        const { value, done } = await it.next();
        if (done) throw new Error("stream ended");
        buf += (value as Buffer).toString("utf8");
        let end: number;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const raw = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const event = /^event: (.*)$/m.exec(raw)?.[1];
          const data = /^data: (.*)$/m.exec(raw)?.[1];
          if (event && data) frames.push({ event, data: JSON.parse(data) });
        }
      }
      return frames;
    };
  }

  test("streams fleet snapshots and finished requests", async () => {
    const { url, registry, events } = await start();
    registry.accept(reg("n1", [{}], { cpuPercent: 12 }));
    registry.recordPending(reg("n2", [{ state: "downloading", progress: 0.4 }]));
    const res = await request(`${url}/api/events`);
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
    const read = sseReader(res.body);
    const first = await read((f) => f.length >= 1);
    const snap = first[0]!;
    expect(snap.event).toBe("snapshot");
    expect(snap.data.summary).toMatchObject({ nodesOnline: 1, nodesInitializing: 1, nodesOffline: 0, queueDepth: 0, requestsPerMinute: 0 });
    expect(snap.data.nodes.map((n: { name: string }) => n.name).sort()).toEqual(["name-n1", "name-n2"]);
    expect(snap.data.models.find((m: { id: string }) => m.id === CHAT)).toMatchObject({ readyNodes: 1, loadingNodes: 1, slots: 2 });

    events.emitFinished(finished(200));
    const more = await read((f) => f.some((x) => x.event === "request") && f.some((x) => x.event === "snapshot" && x.data.summary.requestsPerMinute === 1));
    expect(more.find((f) => f.event === "request")!.data).toMatchObject({ modelId: CHAT, status: 200, nodeName: "name-n1" });
    res.body.destroy();
  });

  test("metric history per node: 404 for an unknown node, 400 for a bad `since`", async () => {
    const { url, registry } = await start();
    registry.accept(reg("n1", [{}], { cpuPercent: 33, memoryUsedBytes: 10, memoryTotalBytes: 20 }));
    const samples = async () => (await (await request(`${url}/api/nodes/n1/metrics`)).body.json()) as { samples: { cpuPercent: number }[] };
    // The sampler runs on the tick: wait for the registration's sample.
    const deadline = Date.now() + 15_000;
    while ((await samples()).samples.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await samples()).samples[0]).toMatchObject({ cpuPercent: 33, memoryUsedBytes: 10, memoryTotalBytes: 20 });

    const unknown = await request(`${url}/api/nodes/nope/metrics`);
    expect(unknown.statusCode).toBe(404);
    expect(((await unknown.body.json()) as { error: { code: string } }).error.code).toBe("node_not_found");
    const bad = await request(`${url}/api/nodes/n1/metrics?since=yesterday`);
    expect(bad.statusCode).toBe(400);
    expect(((await bad.body.json()) as { error: { param: string } }).error.param).toBe("since");
  });
});
