// Logs, metrics and tracing with real processes: a router and a node (with its llama.cpp
// engines), the log files they write, the node's /api/logs through the router's proxy, /metrics
// on both, and one request followed by its id through router, node and engine log lines.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  AUTH_HEADERS,
  authHeadersFor,
  getJson,
  routerCredentialFor,
  startDrover,
  startNode,
  startRouter,
  tempDir,
  TEST_ADMIN,
  TEST_API_KEY,
  TEST_NODE_TOKEN,
  waitFor,
  waitForReady,
  type DroverProcess,
} from "../support/fleet.js";
import { metricSum, parsePrometheus } from "../support/prometheus.js";

const CHAT = "demo-chat";
const routerDir = tempDir("router-logs");
const nodeDir = tempDir("node-logs");
let router: DroverProcess;
let node: DroverProcess;
let nodeId: string;
let admin: Record<string, string> = {};

/** Admin credentials for the router's admin routes, once login exists (none needed before). */
async function adminHeaders(routerUrl: string): Promise<Record<string, string>> {
  const res = await fetch(`${routerUrl}/api/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(TEST_ADMIN) });
  if (res.status === 404) return {};
  expect(res.status).toBe(200);
  return { authorization: `Bearer ${((await res.json()) as { token: string }).token}` };
}

const jsonLines = (text: string) =>
  text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const proxiedLogs = (tail: string, id = nodeId) => fetch(`${router.url}/api/nodes/${id}/logs?tail=${tail}`, { headers: admin });
// A node serves its logs and metrics to routers of its fleet only (the router credential).
const nodeLogs = async (tail: string, headers?: Record<string, string>) =>
  fetch(`${node.url}/api/logs?tail=${tail}`, { headers: headers ?? (await authHeadersFor(`${node.url}/api/logs`)) });
const scrape = async (url: string, headers: Record<string, string> = {}) =>
  parsePrometheus(await (await fetch(`${url}/metrics`, { headers: url === node.url ? await authHeadersFor(`${url}/metrics`) : headers })).text());

beforeAll(async () => {
  router = await startRouter(["--data-dir", routerDir]);
  node = await startNode(router.url, "logs-node", [], {}, nodeDir);
  await waitForReady(router.url, [CHAT], 1);
  admin = await adminHeaders(router.url);
  const { nodes } = await getJson<{ nodes: { id: string; name: string }[] }>(`${router.url}/api/nodes`, { headers: admin });
  nodeId = nodes.find((n) => n.name === "logs-node")!.id;
});

afterAll(async () => {
  await node?.stop();
  await router?.stop();
});

describe("tracing", () => {
  test("one request id (and its trace id) appears in the router's, the node's and the engine's log lines", async () => {
    const requestId = `e2e-trace-${Date.now()}`;
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    const { response } = await client.chat.completions
      .create(
        { model: CHAT, messages: [{ role: "user", content: "Hello" }], max_tokens: 4 },
        { headers: { "x-request-id": requestId, traceparent: `00-${traceId}-b7ad6b7169203331-01` } },
      )
      .withResponse();
    expect(response.headers.get("x-request-id")).toBe(requestId);

    // The router's own file.
    const routerLines = await waitFor(
      "the request in router.log",
      async () => {
        const lines = jsonLines(await readFile(join(routerDir, "logs", "router.log"), "utf8")).filter((l) => l.reqId === requestId);
        return lines.length ? lines : undefined;
      },
      10_000,
    );
    expect(routerLines[0]).toMatchObject({ component: "router", traceId, msg: "request", status: 200, node: "logs-node" });

    // The node's file (engine output included), read through the router's proxy.
    const { nodeLines, engineLines } = await waitFor(
      "the request in the node's and the engine's lines",
      async () => {
        const lines = jsonLines(await (await proxiedLogs("5000")).text()).filter((l) => l.reqId === requestId);
        const nodeLines = lines.filter((l) => l.engine === undefined);
        const engineLines = lines.filter((l) => l.engine === "llama");
        return nodeLines.length && engineLines.length ? { nodeLines, engineLines } : undefined;
      },
      10_000,
    );
    expect(nodeLines[0]).toMatchObject({ component: "node", msg: "request", model: CHAT, status: 200 });
    expect(engineLines[0]).toMatchObject({ component: "node", model: CHAT, stream: "stderr" });
    for (const l of [...routerLines, ...nodeLines, ...engineLines]) expect(l.traceId).toBe(traceId);
  });
});

describe("node logs", () => {
  test("the node's /api/logs returns exactly the last N lines, behind the router credential", async () => {
    // Lines may be appended between two reads: retry until both reads saw the same file.
    await waitFor(
      "tail=5 to be the end of tail=50",
      async () => {
        const five = await nodeLogs("5");
        expect(five.status).toBe(200);
        expect(five.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
        const fiveText = await five.text();
        const fifty = (await (await nodeLogs("50")).text()).split("\n").filter(Boolean);
        expect(jsonLines(fiveText)).toHaveLength(5);
        return fiveText === fifty.slice(-5).join("\n") + "\n";
      },
      10_000,
    );
    expect((await nodeLogs("5", {})).status).toBe(401);
    expect((await nodeLogs("5", { authorization: `Bearer ${TEST_NODE_TOKEN}` })).status).toBe(401);
  });

  test("the router passes the node's lines through", async () => {
    await waitFor(
      "proxied tail=20 to equal the node's",
      async () => {
        const proxied = await proxiedLogs("20");
        expect(proxied.status).toBe(200);
        expect(proxied.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
        const text = await proxied.text();
        expect(jsonLines(text)).toHaveLength(20);
        return text === (await (await nodeLogs("20")).text());
      },
      10_000,
    );
    const alias = await fetch(`${router.url}/api/agents/${nodeId}/logs?tail=3`, { headers: admin });
    expect(alias.status).toBe(200);
    expect(jsonLines(await alias.text())).toHaveLength(3);
  });

  test("tail=abc and tail=100000 → 400 (router and node); unknown node → 404; admins only", async () => {
    for (const tail of ["abc", "100000"]) {
      const viaRouter = await proxiedLogs(tail);
      expect(viaRouter.status).toBe(400);
      expect(await viaRouter.json()).toMatchObject({ error: { type: "invalid_request_error", param: "tail" } });
      expect((await nodeLogs(tail)).status).toBe(400);
    }
    expect((await fetch(`${router.url}/api/nodes/${nodeId}/logs?tail=5`)).status).toBe(401); // admin only
    expect((await fetch(`${router.url}/api/nodes/${nodeId}/logs?tail=5`, { headers: AUTH_HEADERS })).status).toBe(401); // an inference key is not enough
    const unknown = await proxiedLogs("5", "no-such-node");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "node_not_found" } });
  });
});

describe("metrics", () => {
  test("/metrics on router and node: the request counters rise after a request", async () => {
    const routerKey = { endpoint: "/v1/completions", model: CHAT, node: "logs-node", status: "200" };
    const nodeKey = { endpoint: "/v1/completions", model: CHAT, status: "200" };
    const [routerBefore, nodeBefore] = [await scrape(router.url), await scrape(node.url)];
    const res = await fetch(`${router.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH_HEADERS },
      body: JSON.stringify({ model: CHAT, prompt: "hi", max_tokens: 2 }),
    });
    expect(res.status).toBe(200);
    await res.text();
    await waitFor(
      "the counters to rise",
      async () => {
        const [r, n] = [await scrape(router.url), await scrape(node.url)];
        return (
          metricSum(r, "drover_requests_total", routerKey) === metricSum(routerBefore, "drover_requests_total", routerKey) + 1 &&
          metricSum(n, "drover_node_requests_total", nodeKey) === metricSum(nodeBefore, "drover_node_requests_total", nodeKey) + 1
        );
      },
      5_000,
    );
    const r = await scrape(router.url);
    expect(metricSum(r, "drover_nodes", { state: "online" })).toBe(1);
    expect(metricSum(r, "drover_node_model_state", { node: "logs-node", model: CHAT, state: "ready" })).toBe(1);
    expect(metricSum(r, "drover_model_file_bytes_sent_total", { model: CHAT })).toBeGreaterThan(0);
    const n = await scrape(node.url);
    expect(metricSum(n, "drover_model_state", { model: CHAT, state: "ready" })).toBe(1);
  });
});

describe("log proxy failures", () => {
  test("a node that does not answer within 5 s → 502, and answers again once it resumes", async () => {
    node.child.kill("SIGSTOP");
    try {
      const started = Date.now();
      const res = await proxiedLogs("5");
      const tookMs = Date.now() - started;
      expect(res.status).toBe(502);
      expect(await res.json()).toMatchObject({ error: { type: "server_error", message: expect.stringMatching(/did not answer within 5 s/) } });
      expect(tookMs).toBeGreaterThanOrEqual(4_500);
      expect(tookMs).toBeLessThan(30_000); // it does time out (generous: a loaded machine answers late)
    } finally {
      node.child.kill("SIGCONT");
    }
    expect((await proxiedLogs("5")).status).toBe(200);
  });

  test("a stopped node → 502", async () => {
    await node.stop();
    const res = await proxiedLogs("5");
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: { type: "server_error", message: expect.stringMatching(/could not be reached/) } });
  });
});

describe("drover up", () => {
  test("router and local node write separate log files and expose separate metrics", async () => {
    const dataDir = tempDir("up-logs");
    const up = await startDrover(
      [
        "up",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--catalog",
        "demo",
        "--data-dir",
        dataDir,
        "--threads",
        "1",
        "--slots",
        "1",
        "--node-token",
        TEST_NODE_TOKEN,
      ],
      /drover router\s+(http:\/\/\S+)/,
      {
        DROVER_API_KEY: TEST_API_KEY,
        DROVER_ADMIN_PASSWORD: TEST_ADMIN.password,
      },
    );
    try {
      const nodeUrl = /local node\s+(http:\/\/\S+)/.exec(up.output())![1]!;
      const components = async (file: string) => new Set(jsonLines(await readFile(file, "utf8")).map((l) => l.component));
      await waitFor(
        "both log files",
        async () => {
          const [r, n] = [await components(join(dataDir, "router", "logs", "router.log")), await components(join(dataDir, "node", "logs", "node.log"))];
          return r.size === 1 && r.has("router") && n.size === 1 && n.has("node");
        },
        20_000,
      );
      const routerMetrics = await scrape(up.url);
      const nodeMetrics = await scrape(nodeUrl, { authorization: `Bearer ${await routerCredentialFor(nodeUrl)}` });
      expect(routerMetrics.some((s) => s.name === "drover_nodes")).toBe(true);
      expect(routerMetrics.some((s) => s.name === "drover_model_state")).toBe(false);
      expect(nodeMetrics.some((s) => s.name === "drover_model_state")).toBe(true);
      expect(nodeMetrics.some((s) => s.name === "drover_nodes")).toBe(false);
    } finally {
      await up.stop();
    }
  });
});
