// Auth and request history with real processes: a router (SQLite in its data dir, body capture
// on) and one node running llama.cpp engines, driven with the official openai client, plain
// HTTP and the `drover keys` / `drover users` CLI against the running router's data dir.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { adminToken, DROVER_BIN, getJson, startNode, startRouter, tempDir, TEST_API_KEY, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";

const run = promisify(execFile);
const CHAT = "demo-chat";
const EMBED = "demo-embed";
const routerDir = tempDir("router-auth");
let router: DroverProcess;
let node: DroverProcess;
let admin: Record<string, string>;

const drover = async (...args: string[]) => (await run(process.execPath, [DROVER_BIN, ...args, "--data-dir", routerDir], { encoding: "utf8" })).stdout;
const client = (apiKey: string) => new OpenAI({ baseURL: `${router.url}/v1`, apiKey, maxRetries: 0 });
const chat = (apiKey: string, model = CHAT) => client(apiKey).chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
const api = (path: string, init: RequestInit = {}, headers: Record<string, string> = admin) =>
  fetch(`${router.url}${path}`, { ...init, headers: { "content-type": "application/json", ...headers, ...(init.headers as Record<string, string>) } });

beforeAll(async () => {
  router = await startRouter(["--data-dir", routerDir, "--history-body-bytes", "4096"]);
  node = await startNode(router.url, "auth-node");
  await waitForReady(router.url, [CHAT, EMBED], 1);
  admin = { authorization: `Bearer ${await adminToken(router.url)}` };
});

afterAll(async () => {
  await node?.stop();
  await router?.stop();
});

describe("inference keys", () => {
  test("no key or a wrong key → 401 in OpenAI's error shape (the SDK's AuthenticationError)", async () => {
    const raw = await fetch(`${router.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: CHAT, messages: [] }),
    });
    expect(raw.status).toBe(401);
    expect(await raw.json()).toEqual({ error: { message: expect.any(String), type: "invalid_request_error", param: null, code: "missing_api_key" } });
    await expect(chat("drv_not_a_key")).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    expect((await fetch(`${router.url}/v1/models`)).status).toBe(401);
    expect((await fetch(`${router.url}/healthz`)).status).toBe(200);
  });

  test("a key created with the CLI works at once on the running router; revoked with the CLI it gets 401", async () => {
    const out = await drover("keys", "create", "cli-key", "--json");
    const created = JSON.parse(out) as { key: string; name: string };
    expect(created.name).toBe("cli-key");
    expect((await chat(created.key)).choices).toHaveLength(1);
    expect(await drover("keys", "list")).toMatch(/cli-key\s+drv_\S+\s+active/);
    expect(await drover("keys", "revoke", "cli-key")).toContain('revoked API key "cli-key"');
    // The router trusts a looked-up key for up to 5 s.
    const err = await waitFor(
      "the revoked key to be refused",
      async () =>
        chat(created.key).then(
          () => null,
          (e: unknown) => e,
        ),
      15_000,
      250,
    );
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe("api_key_revoked");
  });

  test("an expired key → 401 api_key_expired", async () => {
    // Valid for 6 s: plenty for one use on a loaded machine (checked, not assumed).
    const expiresAt = Date.now() + 6_000;
    const res = await api("/api/keys", { method: "POST", body: JSON.stringify({ name: "brief", expiresAt }) });
    expect(res.status).toBe(201);
    const { key } = (await res.json()) as { key: string };
    expect((await client(key).models.list()).data.length).toBeGreaterThan(0);
    expect(Date.now()).toBeLessThan(expiresAt);
    // Then the clock passes the expiry (the event that matters) and the next use is refused.
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 50));
    const err = await chat(key).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe("api_key_expired");
  });

  test("a key limited to one model asking for another → 403 (the SDK's PermissionDeniedError)", async () => {
    const { key } = (await (await api("/api/keys", { method: "POST", body: JSON.stringify({ name: "embed-only", models: [EMBED] }) })).json()) as {
      key: string;
    };
    const emb = await client(key).embeddings.create({ model: EMBED, input: "x" });
    expect(emb.data).toHaveLength(1);
    const err = await chat(key, CHAT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((err as InstanceType<typeof OpenAI.PermissionDeniedError>).code).toBe("model_not_allowed");
  });
});

describe("users", () => {
  test("a viewer (made with the CLI) reads the fleet and history but gets 403 on admin routes", async () => {
    await drover("users", "create", "watcher", "--role", "viewer", "--password", "watcher-password");
    expect(await drover("users", "list")).toMatch(/watcher\s+viewer/);
    const login = await fetch(`${router.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "watcher", password: "watcher-password" }),
    });
    expect(login.status).toBe(200);
    expect(login.headers.get("set-cookie")).toMatch(/HttpOnly; SameSite=Strict/);
    const viewer = { authorization: `Bearer ${((await login.json()) as { token: string }).token}` };
    expect((await api("/api/nodes", {}, viewer)).status).toBe(200);
    expect((await api("/api/requests", {}, viewer)).status).toBe(200);
    for (const [path, method] of [
      ["/api/users", "GET"],
      ["/api/keys", "GET"],
      ["/api/keys", "POST"],
      ["/api/users/admin", "DELETE"],
    ] as const) {
      const res = await api(path, { method, body: method === "POST" ? JSON.stringify({ name: "nope" }) : undefined }, viewer);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("admin_required");
    }
    expect((await api("/api/users", {}, {})).status).toBe(401);
  });
});

describe("request history", () => {
  test("a streamed request is recorded with key, node, timings, usage and its assembled text", async () => {
    const requestId = `hist-${Date.now()}`;
    const stream = await client(TEST_API_KEY).chat.completions.create(
      { model: CHAT, messages: [{ role: "user", content: "tell me" }], max_tokens: 12, stream: true, stream_options: { include_usage: true } },
      { headers: { "x-request-id": requestId } },
    );
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? "";
      if (c.usage) usage = c.usage;
    }
    const rec = await waitFor("the record", () => getJson(`${router.url}/api/requests/${requestId}`).catch(() => null), 10_000, 100);
    expect(rec).toMatchObject({
      requestId,
      api: "openai",
      endpoint: "/v1/chat/completions",
      model: CHAT,
      stream: true,
      keyName: "bootstrap",
      nodeName: "auth-node",
      status: 200,
      error: null,
      promptTokens: usage!.prompt_tokens,
      completionTokens: 12,
      responseBody: text,
    });
    expect(rec.clientIp).toMatch(/127\.0\.0\.1/);
    expect(rec.firstByteMs).toBeGreaterThanOrEqual(0);
    expect(rec.durationMs).toBeGreaterThanOrEqual(rec.firstByteMs);
    expect(JSON.parse(rec.requestBody).messages[0].content).toBe("tell me");
  });

  test("the list filters by model, node, status and key; exports honour the filters; unknown id → 404", async () => {
    await client(TEST_API_KEY).embeddings.create({ model: EMBED, input: ["a", "b"] });
    await fetch(`${router.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TEST_API_KEY}` },
      body: JSON.stringify({ model: "no-such-model", messages: [] }),
    });
    const list = await waitFor(
      "the embedding in the history",
      async () => {
        const l = await getJson(`${router.url}/api/requests?model=${EMBED}&key=bootstrap&node=auth-node&status=2xx`);
        return l.total >= 1 ? l : null;
      },
      10_000,
      100,
    );
    expect(list.requests[0]).toMatchObject({ model: EMBED, endpoint: "/v1/embeddings", promptTokens: expect.any(Number), completionTokens: null });
    expect(list.requests.every((r: { model: string }) => r.model === EMBED)).toBe(true);

    const all = await getJson(`${router.url}/api/requests?limit=1000`);
    const times = all.requests.map((r: { startedAt: string }) => Date.parse(r.startedAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    // Unknown models are refused before admission: not an inference request, no record.
    // Requests refused for auth are not recorded either: the limited key's 403. Checked once a
    // request sent after them is in the history, so any record of theirs would have landed too.
    const marker = `after-refusals-${Date.now()}`;
    await client(TEST_API_KEY).embeddings.create({ model: EMBED, input: "marker" }, { headers: { "x-request-id": marker } });
    await waitFor("the marker's record", () => getJson(`${router.url}/api/requests/${marker}`).catch(() => null), 10_000, 100);
    const later = await getJson(`${router.url}/api/requests?limit=1000`);
    expect(later.requests.some((r: { requestId: string }) => r.requestId === marker)).toBe(true);
    expect(later.requests.some((r: { model: string }) => r.model === "no-such-model")).toBe(false);
    expect(later.requests.some((r: { keyName: string; model: string }) => r.keyName === "embed-only" && r.model === CHAT)).toBe(false);

    const csv = await (await api(`/api/requests/export?format=csv&model=${EMBED}`)).text();
    const rows = csv.trimEnd().split("\r\n");
    expect(rows[0]!.split(",")).toContain("completionTokens");
    expect(rows.length - 1).toBe((await getJson(`${router.url}/api/requests?model=${EMBED}`)).total);
    expect(rows.slice(1).every((r) => r.includes(`,${EMBED},`))).toBe(true);
    const json = await (await api(`/api/requests/export?format=json&model=${CHAT}`)).json();
    expect(json.length).toBe((await getJson(`${router.url}/api/requests?model=${CHAT}`)).total);

    expect((await api("/api/requests/no-such-record")).status).toBe(404);
    expect((await api(`/api/requests?model=${encodeURIComponent("x' OR '1'='1")}`)).status).toBe(200);
    expect((await getJson(`${router.url}/api/requests?model=${encodeURIComponent("x' OR '1'='1")}`)).total).toBe(0);
  });
});

describe("persistence across restarts", () => {
  test("a restarted router keeps users, keys and history and lists known nodes", async () => {
    const before = await getJson(`${router.url}/api/requests?limit=1`);
    await node.stop();
    await router.stop();
    router = await startRouter(["--data-dir", routerDir]);
    admin = { authorization: `Bearer ${await adminToken(router.url)}` };
    // No node serves this router now, so the key is checked on the model list.
    expect((await client(TEST_API_KEY).models.list()).data.map((m) => m.id)).toContain(CHAT);
    await expect(client("drv_not_a_key").models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const after = await getJson(`${router.url}/api/requests?limit=1`);
    expect(after.total).toBe(before.total);
    const { nodes } = await getJson(`${router.url}/api/nodes`);
    expect(nodes).toEqual([expect.objectContaining({ name: "auth-node", state: "offline" })]);
    expect((await getJson(`${router.url}/api/users`)).users.map((u: { username: string }) => u.username).sort()).toEqual(["admin", "watcher"]);
    expect(router.output()).not.toMatch(/admin login|API key {9}drv_/);
  });
});
