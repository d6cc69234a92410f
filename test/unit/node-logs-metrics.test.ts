// The node's GET /api/logs and GET /metrics, and request ids / trace ids in its log lines, on
// the node's real HTTP server (engine unreachable: no engine process needed).
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseNvidiaSmiCsv } from "../../src/node/gpu-probe.js";
import { ModelStatusBoard } from "../../src/node/model-status-board.js";
import { NodeMetricsExporter } from "../../src/node/node-metrics.js";
import { buildNodeServer } from "../../src/node/server.js";
import { SystemMetricsSampler } from "../../src/node/system-metrics.js";
import { ggufEntry } from "../support/catalog-entry.js";
import { routerCredential } from "../../src/protocol/node-auth.js";
import { captureLogger, type CapturedLog } from "../fixtures/capture-logger.js";
import { waitFor } from "../fixtures/fake-router.js";
import { metricSamples, metricSum, parsePrometheus } from "../support/prometheus.js";

const TOKEN = "node-secret";
// What a router of the fleet presents to this node (id "id").
const AUTH = { authorization: `Bearer ${routerCredential(TOKEN, "id")}` };
const entry = (id: string) => ggufEntry(id);
// `nvidia-smi --query-gpu=index,name,memory.total,memory.used,utilization.gpu,temperature.gpu --format=csv,noheader,nounits` output.
const GPUS = parseNvidiaSmiCsv("0, NVIDIA H100 80GB HBM3, 81559, 40960, 87, 64\n1, NVIDIA H100 80GB HBM3, 81559, [N/A], [N/A], 35\n");

let dir: string;
let logFile: string;
let app: FastifyInstance;
let url: string;
let log: CapturedLog;
const board = new ModelStatusBoard();
const agent = new Agent();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "drover-node-logs-"));
  logFile = join(dir, "logs", "node.log");
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));

  board.setCatalog([entry("m"), entry("other")], 4);
  board.setState("m", "ready");
  board.setState("other", "downloading", { progress: 0.5, bytesDone: 500, bytesTotal: 1000, speed: 1 });
  log = captureLogger("info");
  const sampler = new SystemMetricsSampler(() => GPUS);
  const metrics = new NodeMetricsExporter({ board, system: () => sampler.sample() });
  app = await buildNodeServer({
    logger: log.logger,
    nodeId: "id",
    nodeName: "obs-test",
    board,
    logFiles: [logFile, `${logFile}.1`],
    nodeToken: TOKEN,
    metrics,
    proxy: { dispatcher: agent, catalogLoaded: () => true, enginePort: () => closedPort, onFinished: (r) => metrics.observeRequest(r) },
  });
  url = await app.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await app.close();
  await agent.close();
  await rm(dir, { recursive: true, force: true });
});

const logs = (query: string, headers: Record<string, string> = AUTH) => request(`${url}/api/logs${query}`, { headers, dispatcher: agent });
const line = (n: number) => JSON.stringify({ level: 30, n, msg: `line ${n}` });

describe("GET /api/logs", () => {
  test("a missing log file gives 200 and an empty body", async () => {
    const res = await logs("?tail=5");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/x-ndjson/);
    expect(await res.body.text()).toBe("");
  });

  test("tail=5 returns exactly the last 5 lines; no tail returns 200", async () => {
    await mkdir(join(dir, "logs"), { recursive: true });
    await writeFile(logFile, Array.from({ length: 300 }, (_, i) => line(i + 1)).join("\n") + "\n");
    const five = await logs("?tail=5");
    expect(five.statusCode).toBe(200);
    expect(await five.body.text()).toBe([296, 297, 298, 299, 300].map(line).join("\n") + "\n");
    const byDefault = (await (await logs("")).body.text()).trimEnd().split("\n");
    expect(byDefault).toHaveLength(200);
    expect(JSON.parse(byDefault[0]!).n).toBe(101);
    expect((await logs("?tail=5000")).statusCode).toBe(200);
  });

  test.each(["abc", "100000", "5001", "0", "-3", "1.5", ""])("tail=%s → 400 in OpenAI's error shape", async (tail) => {
    const res = await logs(`?tail=${tail}`);
    expect(res.statusCode).toBe(400);
    expect(await res.body.json()).toMatchObject({ error: { type: "invalid_request_error", code: "invalid_tail", param: "tail" } });
  });

  test("the node token is required", async () => {
    expect((await logs("?tail=5", {})).statusCode).toBe(401);
    expect((await logs("?tail=5", { authorization: "Bearer wrong" })).statusCode).toBe(401);
  });
});

describe("GET /metrics and request logging", () => {
  const scrape = async () => {
    const res = await request(`${url}/metrics`, { headers: AUTH, dispatcher: agent });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    return parsePrometheus(await res.body.text());
  };

  test("the request counter rises after a request, which is logged with its reqId and traceId", async () => {
    const key = { endpoint: "/v1/chat/completions", model: "m", status: "503" };
    const before = metricSum(await scrape(), "drover_node_requests_total", key);
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const res = await request(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json", "x-request-id": "req-node-metrics-1", traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "x" }] }),
      dispatcher: agent,
    });
    expect(res.statusCode).toBe(503); // the engine's port is closed
    expect(res.headers["x-request-id"]).toBe("req-node-metrics-1");
    await res.body.dump();
    // Counted when the response has finished: wait for the count (and the log line), then check exactly.
    await waitFor(
      async () =>
        metricSum(await scrape(), "drover_node_requests_total", key) > before && log.lines.some((l) => l.reqId === "req-node-metrics-1" && l.msg === "request"),
      10_000,
      "the request counted and logged",
    );
    const after = await scrape();
    expect(metricSum(after, "drover_node_requests_total", key)).toBe(before + 1);
    expect(metricSum(after, "drover_node_request_duration_seconds_count", { endpoint: "/v1/chat/completions", model: "m" })).toBeGreaterThanOrEqual(1);

    const lines = log.lines.filter((l) => l.reqId === "req-node-metrics-1");
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(["engine unavailable", "request"]));
    for (const l of lines) expect(l.traceId).toBe(traceId);
  });

  test("a model id that is not in the catalog is counted as unknown, not as a new label", async () => {
    const res = await request(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: JSON.stringify({ model: "made-up-by-a-client", messages: [{ role: "user", content: "x" }] }),
      dispatcher: agent,
    });
    expect(res.statusCode).toBe(404);
    await res.body.dump();
    await waitFor(async () => metricSum(await scrape(), "drover_node_requests_total", { model: "unknown", status: "404" }) > 0, 10_000, "the request counted");
    const samples = await scrape();
    expect(metricSum(samples, "drover_node_requests_total", { model: "unknown", status: "404" })).toBe(1);
    expect(metricSamples(samples, "drover_node_requests_total", { model: "made-up-by-a-client" })).toEqual([]);
  });

  test("per-model state, slots and download progress; host CPU/memory; GPUs from nvidia-smi", async () => {
    const s = await scrape();
    expect(metricSum(s, "drover_model_state", { model: "m", state: "ready" })).toBe(1);
    expect(metricSum(s, "drover_model_state", { model: "m", state: "loading" })).toBe(0);
    expect(metricSum(s, "drover_model_state", { model: "other", state: "downloading" })).toBe(1);
    expect(metricSum(s, "drover_model_slots", { model: "m" })).toBe(4);
    expect(metricSum(s, "drover_model_download_bytes", { model: "other" })).toBe(500);
    expect(metricSum(s, "drover_memory_total_bytes")).toBeGreaterThan(0);
    expect(metricSum(s, "drover_gpu_utilization_percent", { gpu: "0" })).toBe(87);
    expect(metricSum(s, "drover_gpu_memory_used_bytes", { gpu: "0" })).toBe(40960 * 1024 * 1024);
    expect(metricSum(s, "drover_gpu_temperature_celsius", { gpu: "1" })).toBe(35);
    // [N/A] fields are left out, not reported as 0.
    expect(metricSamples(s, "drover_gpu_utilization_percent", { gpu: "1" })).toEqual([]);
    expect(metricSamples(s, "drover_gpu_memory_used_bytes", { gpu: "1" })).toEqual([]);
    expect(metricSum(s, "process_resident_memory_bytes")).toBeGreaterThan(0);
  });
});
