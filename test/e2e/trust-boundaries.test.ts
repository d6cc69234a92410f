// Trust boundaries with real processes (PRODUCT.md §12, docs/SECURITY.md): a node serves only the
// routers of its fleet; a node id belongs to the node that first registered it; registration
// answers say nothing about the hosts the router probed; registrations that never succeed are
// forgotten; and a node named in any script works end to end.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { FLEET_PATHS } from "../../src/protocol/http.js";
import { AUTH_HEADERS, getJson, startNode, startRouter, TEST_API_KEY, TEST_NODE_TOKEN, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";

const CHAT = "demo-chat";
/** Japanese and an emoji: not Latin-1, so it cannot go into an HTTP header as it is. */
const NODE_NAME = "推論ノード🚀";
const PRUNE_AFTER_MS = 1_500;

let router: DroverProcess;
let node: DroverProcess;
let nodeId: string;
let other: Server;

beforeAll(async () => {
  router = await startRouter(["--node-prune-after", String(PRUNE_AFTER_MS)]);
  node = await startNode(router.url, NODE_NAME);
  await waitForReady(router.url, [CHAT], 1);
  const { nodes } = await getJson<{ nodes: { id: string; name: string }[] }>(`${router.url}/api/nodes`);
  nodeId = nodes.find((n) => n.name === NODE_NAME)!.id;
  // Some other HTTP service the router can reach (not a drover node).
  other = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end('{"hello":"world"}'));
  await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
});

afterAll(async () => {
  other?.close();
  await node?.stop();
  await router?.stop();
});

const register = (body: Record<string, unknown>, secret: string) =>
  fetch(`${router.url}${FLEET_PATHS.register}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TEST_NODE_TOKEN}`, "x-drover-node-secret": secret },
    body: JSON.stringify({ version: "0.0.0", engine: "llama", models: [{ id: CHAT, state: "ready", slots: 1 }], ...body }),
  });

describe("a node named in any script", () => {
  test("serves through the router; the x-drover-node header carries the name percent-encoded", async () => {
    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    const { data, response } = await client.chat.completions.create({ model: CHAT, messages: [{ role: "user", content: "hi" }], max_tokens: 2 }).withResponse();
    expect(data.choices[0]!.message.role).toBe("assistant");
    expect(decodeURIComponent(response.headers.get("x-drover-node")!)).toBe(NODE_NAME);
    // Streams and the Ollama dialect too.
    const ollama = await fetch(`${router.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH_HEADERS },
      body: JSON.stringify({ model: CHAT, messages: [{ role: "user", content: "hi" }], options: { num_predict: 2 } }),
    });
    expect(ollama.status).toBe(200);
    expect(decodeURIComponent(ollama.headers.get("x-drover-node")!)).toBe(NODE_NAME);
    await ollama.text();
    // The node's own answers carry it as well (its health check is public).
    const health = await fetch(`${node.url}/healthz`);
    expect(health.status).toBe(200);
    expect(decodeURIComponent(health.headers.get("x-drover-node")!)).toBe(NODE_NAME);
  });
});

describe("the node serves only routers of its fleet", () => {
  test("every route but /healthz refuses a caller without the router credential, even one holding the node token", async () => {
    const attempts: [string, RequestInit][] = [
      [
        "/v1/chat/completions",
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: CHAT, messages: [{ role: "user", content: "hi" }], max_tokens: 2 }),
        },
      ],
      [
        "/v1/completions",
        { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: CHAT, prompt: "hi", max_tokens: 2 }) },
      ],
      ["/v1/models", {}],
      ["/api/logs?tail=5", {}],
      ["/metrics", {}],
    ];
    const seen: string[] = [];
    for (const [path, init] of attempts) {
      for (const auth of [undefined, `Bearer ${TEST_NODE_TOKEN}`, `Bearer ${TEST_API_KEY}`]) {
        const headers = new Headers(init.headers);
        if (auth) headers.set("authorization", auth);
        const res = await fetch(`${node.url}${path}`, { ...init, headers });
        const body = (await res.json().catch(() => null)) as { error?: { code?: string } } | null;
        seen.push(`${path} ${auth ? auth.slice(7, 15) : "none"}: ${res.status} ${body?.error?.code ?? ""}`);
      }
    }
    expect(seen.filter((s) => !/: 401 router_credential_required$/.test(s))).toEqual([]);
    // The router itself reaches the node's logs with its credential.
    const logs = await fetch(`${router.url}/api/nodes/${nodeId}/logs?tail=5`, { headers: { authorization: `Bearer ${await adminSession()}` } });
    expect(logs.status).toBe(200);
  });
});

async function adminSession(): Promise<string> {
  const res = await fetch(`${router.url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: "test-admin-password" }),
  });
  return ((await res.json()) as { token: string }).token;
}

describe("node identity", () => {
  test("another holder of the node token cannot register or heartbeat under a registered node's id", async () => {
    const thief = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    const res = await register({ nodeId, name: "impostor", apiUrl: thief }, "not-the-nodes-secret-0123456789");
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("node_id_taken");
    const hb = await fetch(`${router.url}${FLEET_PATHS.heartbeat}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TEST_NODE_TOKEN}`, "x-drover-node-secret": "not-the-nodes-secret-0123456789" },
      body: JSON.stringify({ nodeId, models: [], inFlight: 0 }),
    });
    expect(hb.status).toBe(403);
    // The real node is untouched: same name, same address, still online with its model.
    const detail = await getJson<{ name: string; apiUrl: string; state: string }>(`${router.url}/api/nodes/${nodeId}`);
    expect(detail).toMatchObject({ name: NODE_NAME, apiUrl: node.url, state: "online" });
  });

  test("a registration answer is the same whatever the probed URL did: no port-scan oracle", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const targets = {
      refused: `http://127.0.0.1:${closedPort}`,
      "a web service": `http://127.0.0.1:${(other.address() as AddressInfo).port}`,
      "a service answering 401": router.url,
    };
    const messages: Record<string, string> = {};
    for (const [what, apiUrl] of Object.entries(targets)) {
      const res = await register({ nodeId: `probe-${what.replace(/\W/g, "")}`, name: "probe", apiUrl }, `probe-secret-${closedPort}-0123456789`);
      expect(res.status).toBe(503);
      messages[what] = ((await res.json()) as { message: string }).message;
    }
    expect(new Set(Object.values(messages)).size, JSON.stringify(messages, null, 1)).toBe(1);
    expect(messages.refused).not.toMatch(/ECONNREFUSED|refused|\d{4,5}|401|200/);
  });

  test("registrations that never pass the gate are forgotten after --node-prune-after", async () => {
    const res = await register(
      { nodeId: "never-ready", name: "never-ready", apiUrl: `http://127.0.0.1:${(other.address() as AddressInfo).port}` },
      "never-ready-secret-0123456789",
    );
    expect(res.status).toBe(503);
    const listed = async () => (await getJson<{ nodes: { id: string }[] }>(`${router.url}/api/nodes`)).nodes.some((n) => n.id === "never-ready");
    expect(await listed()).toBe(true);
    await waitFor("the silent registration to be pruned", async () => !(await listed()), 30_000);
    // The live node stays.
    expect((await getJson<{ state: string }>(`${router.url}/api/nodes/${nodeId}`)).state).toBe("online");
  });
});
