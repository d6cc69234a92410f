// startNode end to end against a fake router and the fake engine fixture.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngineLauncher } from "../../src/node/engine-launcher.js";
import { startNode, type RunningNode } from "../../src/node/main.js";
import { modelFilePaths } from "../../src/node/model-file-store.js";
import { NodeModelList, type ModelStatus } from "../../src/protocol/node-api.js";
import { routerCredential } from "../../src/protocol/node-auth.js";
import { captureLogger, type CapturedLog } from "../fixtures/capture-logger.js";
import { FakeRouter, makeTinyModel, waitFor } from "../fixtures/fake-router.js";

const FAKE_ENGINE = fileURLToPath(new URL("../fixtures/fake-engine.mjs", import.meta.url));

let work: string;
let router: FakeRouter;
let node: RunningNode;
let log: CapturedLog;

/** What a router of the fleet presents to this node. */
const auth = () => ({ authorization: `Bearer ${routerCredential("node-secret", node.nodeId)}` });

async function models(): Promise<Map<string, ModelStatus>> {
  const res = await request(`${node.url}/v1/models`, { headers: auth() });
  const list = NodeModelList.parse(await res.body.json());
  return new Map(list.data.map((m) => [m.id, m.drover]));
}

function chat(body: unknown, headers: Record<string, string> = {}) {
  return request(`${node.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth(), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "drover-node-"));
  const tiny = await makeTinyModel(work, "tiny:chat", 3, 50_000_000);
  const huge = await makeTinyModel(work, "huge", 4, 500_000_000_000);
  router = await new FakeRouter([tiny, huge]).start();
  router.catalogAvailable = false; // the router "starts after the node"
  log = captureLogger();
  node = await startNode({
    routerUrl: router.url,
    host: "127.0.0.1",
    port: 0,
    name: "test-node",
    dataDir: join(work, "data"),
    modelsDir: join(work, "models"),
    engine: "llama",
    threads: 1,
    slots: 3,
    memoryLimitBytes: 1_000_000_000,
    heartbeatMs: 150,
    nodeToken: "node-secret",
    logger: log.logger,
    launcher: new LlamaEngineLauncher({ prefixArgs: [FAKE_ENGINE] }),
    timings: { registerRetryInitialMs: 100 },
  });
  await waitFor(() => router.catalogRequests >= 1, 5000, "first catalog request");
  router.catalogAvailable = true;
  await waitFor(() => router.heartbeats.some((h) => h.models.find((m) => m.id === "tiny:chat")?.state === "ready"), 15_000, "ready heartbeat");
}, 30_000);

afterAll(async () => {
  await node?.close();
  await router?.close();
  await rm(work, { recursive: true, force: true });
});

describe("node", () => {
  it("persists its id, registers after the router's 503s and reports models", async () => {
    expect(await readFile(join(work, "data", "node-id"), "utf8")).toContain(node.nodeId);
    expect(router.registrations.length).toBeGreaterThanOrEqual(2);
    expect(router.registrations[0]!.models.some((m) => m.state === "ready")).toBe(false);
    const last = router.registrations.at(-1)!;
    expect(last).toMatchObject({ nodeId: node.nodeId, name: "test-node", apiUrl: node.url, engine: "llama" });
    expect(last.metrics.memoryTotalBytes).toBeGreaterThan(0);
    expect(router.invalidMessages).toEqual([]);
    expect(router.authHeaders.every((h) => h === "Bearer node-secret")).toBe(true);

    const status = await models();
    expect(status.get("tiny:chat")).toMatchObject({ state: "ready", slots: 3, inFlight: 0, restarts: 0 });
    expect(status.get("huge")).toMatchObject({ state: "unsupported", reason: expect.stringMatching(/^insufficient memory: needs 500\.0 GB, have/) });
    // Only the model that fits was downloaded.
    expect(router.fileRequests.map((r) => r.id)).toEqual(["tiny:chat"]);
    const health = await request(`${node.url}/healthz`);
    expect(health.statusCode).toBe(200);
    expect(await health.body.json()).toMatchObject({ status: "ok", nodeId: node.nodeId });
  });

  it("started the engine with the documented flags and captured its output", async () => {
    const res = await chat({ model: "tiny:chat", messages: [{ role: "user", content: "hi" }] });
    const body = (await res.body.json()) as { fake: { args: Record<string, string> } };
    expect(body.fake.args).toEqual({
      "model-path": modelFilePaths(join(work, "models"), "tiny:chat").final,
      "model-id": "tiny:chat",
      port: "0",
      threads: "1",
      slots: "3",
      "context-size": "2048",
    });
    expect(log.lines.some((l) => l.model === "tiny:chat" && l.stream === "stderr" && String(l.msg).includes("fake engine loading"))).toBe(true);
  });

  it("proxies a chat completion with request id, traceparent and node headers", async () => {
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const res = await chat({ model: "tiny:chat", messages: [{ role: "user", content: "hello" }], extra_field: 1 }, { "x-request-id": "req-123", traceparent });
    expect(res.statusCode).toBe(200);
    expect(res.headers["x-drover-node"]).toBe("test-node");
    expect(res.headers["x-request-id"]).toBe("req-123");
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const body = (await res.body.json()) as { choices: { message: { content: string } }[]; fake: { requestId: string; traceparent: string } };
    expect(body.choices[0]!.message.content).toBe("echo: hello");
    expect(body.fake).toMatchObject({ requestId: "req-123", traceparent });
  });

  it("proxies completions and embeddings", async () => {
    for (const [path, body] of [
      ["/v1/completions", { model: "tiny:chat", prompt: "x" }],
      ["/v1/embeddings", { model: "tiny:chat", input: "x" }],
    ] as const) {
      const res = await request(`${node.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth() },
        body: JSON.stringify(body),
      });
      expect(res.statusCode).toBe(200);
      await res.body.json();
    }
  });

  it("answers client mistakes with OpenAI-shaped 4xx errors, never 500", async () => {
    const cases: [unknown, number, string | null][] = [
      ["{not json", 400, "invalid_json"],
      [{ model: "tiny:chat" }, 400, null],
      [{ model: "tiny:chat", messages: [] }, 400, null],
      [[1, 2], 400, null],
      [{ model: "nope", messages: [{ role: "user", content: "x" }] }, 404, "model_not_found"],
      [{ model: "huge", messages: [{ role: "user", content: "x" }] }, 503, "model_not_ready"],
    ];
    for (const [body, status, code] of cases) {
      const res = await chat(body);
      const json = (await res.body.json()) as { error: { message: string; type: string; code: string | null } };
      expect(res.statusCode, JSON.stringify(body)).toBe(status);
      expect(json.error.message).toBeTruthy();
      expect(json.error.code).toBe(code);
      expect(res.headers["x-drover-node"]).toBe("test-node");
    }
    const empty = await request(`${node.url}/v1/chat/completions`, { method: "POST", headers: auth() });
    expect(empty.statusCode).toBe(400);
    await empty.body.dump();

    const big = await chat(JSON.stringify({ model: "tiny:chat", messages: [{ role: "user", content: "x".repeat(9 * 1024 * 1024) }] }));
    expect(big.statusCode).toBe(413);
    expect(((await big.body.json()) as { error: { code: string } }).error.code).toBe("request_too_large");
  });

  it("streams SSE chunk by chunk and aborts the engine request when the client leaves", async () => {
    const abort = new AbortController();
    const res = await request(`${node.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "sse-1", ...auth() },
      body: JSON.stringify({ model: "tiny:chat", stream: true, messages: [{ role: "user", content: "hold" }] }),
      signal: abort.signal,
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
    // The engine never ends this stream: the first chunk can only arrive if nothing buffers it.
    const first = await new Promise<string>((resolve, reject) => {
      res.body.once("data", (c: Buffer) => resolve(c.toString("utf8")));
      res.body.once("error", reject);
    });
    expect(first).toMatch(/^data: .*"first"/);
    expect((await models()).get("tiny:chat")!.inFlight).toBe(1);

    abort.abort();
    res.body.on("error", () => undefined);
    await waitFor(() => log.find("FAKE_ENGINE_CLIENT_CLOSED sse-1").length > 0, 5000, "engine noticing the disconnect");
    await waitFor(async () => (await models()).get("tiny:chat")!.inFlight === 0, 5000, "in-flight back to 0");
  });

  it("passes a finite SSE stream through to the end", async () => {
    const res = await chat({ model: "tiny:chat", stream: true, messages: [{ role: "user", content: "hi" }] });
    const arrivals: number[] = [];
    let text = "";
    for await (const c of res.body) {
      arrivals.push(Date.now());
      text += (c as Buffer).toString("utf8");
    }
    expect(text).toContain('"first"');
    expect(text.trim().endsWith("data: [DONE]")).toBe(true);
    // The first chunk arrived well before the engine's 300 ms pause ended the stream.
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(200);
  });

  it("restarts a killed engine and proxies again", async () => {
    const before = (await (await chat({ model: "tiny:chat", messages: [{ role: "user", content: "a" }] })).body.json()) as { fake: { pid: number } };
    process.kill(before.fake.pid, "SIGKILL");
    await waitFor(async () => (await models()).get("tiny:chat")!.state !== "ready", 5000, "model leaving ready");
    const notReady = await chat({ model: "tiny:chat", messages: [{ role: "user", content: "a" }] });
    expect([503]).toContain(notReady.statusCode);
    await notReady.body.dump();
    await waitFor(async () => (await models()).get("tiny:chat")!.state === "ready", 10_000, "engine restarted");
    expect((await models()).get("tiny:chat")!.restarts).toBe(1);
    const after = await chat({ model: "tiny:chat", messages: [{ role: "user", content: "b" }] });
    expect(after.statusCode).toBe(200);
    const body = (await after.body.json()) as { fake: { pid: number } };
    expect(body.fake.pid).not.toBe(before.fake.pid);
    // The router heard about it.
    await waitFor(() => router.heartbeats.at(-1)!.models.find((m) => m.id === "tiny:chat")!.restarts === 1, 3000, "heartbeat with restarts");
  }, 20_000);

  it("stops its engines on close", async () => {
    const res = await chat({ model: "tiny:chat", messages: [{ role: "user", content: "a" }] });
    const { fake } = (await res.body.json()) as { fake: { pid: number } };
    await node.close();
    expect(() => process.kill(fake.pid, 0)).toThrow();
  });
});
