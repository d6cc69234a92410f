// Two router processes sharing one real PostgreSQL (started for this file): they migrate the
// empty database together, then share users, API keys, node identities and request history.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { adminToken, getJson, startNode, startRouter, TEST_ADMIN, TEST_API_KEY, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";

const CHAT = "demo-chat";
let pg: TestPostgres;
let a: DroverProcess;
let b: DroverProcess;
let node: DroverProcess;
/** Serves router A, so a conversation begun through B can continue through A. */
let nodeA: DroverProcess;

beforeAll(async () => {
  pg = await startPostgres();
  const url = await pg.createDatabase();
  // Both start at once against the empty database: migrations and bootstrap must not collide.
  const args = ["--database-url", url, "--history-body-bytes", "65536"];
  [a, b] = await Promise.all([startRouter(args), startRouter(args)]);
  [node, nodeA] = await Promise.all([startNode(b.url, "pg-node"), startNode(a.url, "pg-node-a")]);
  await Promise.all([waitForReady(b.url, [CHAT], 1), waitForReady(a.url, [CHAT], 1)]);
});

afterAll(async () => {
  await Promise.all([node?.stop(), nodeA?.stop()]);
  await Promise.all([a?.stop(), b?.stop()]);
  await pg?.stop();
});

const auth = async (router: DroverProcess) => ({ "content-type": "application/json", authorization: `Bearer ${await adminToken(router.url)}` });
const chat = (router: DroverProcess, apiKey: string) =>
  new OpenAI({ baseURL: `${router.url}/v1`, apiKey, maxRetries: 0 }).chat.completions.create({
    model: CHAT,
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 2,
  });

describe("routers sharing PostgreSQL", () => {
  test("both routers started; the database banner hides the password; one admin, one bootstrap key", async () => {
    for (const r of [a, b]) expect(r.output()).toMatch(/database\s+postgres:\/\/postgres@127\.0\.0\.1:\d+\/drover_test_/);
    const users = (await getJson(`${a.url}/api/users`)).users;
    expect(users.map((u: { username: string }) => u.username)).toEqual([TEST_ADMIN.username]);
    const keys = (await getJson(`${b.url}/api/keys`)).keys;
    expect(keys.map((k: { name: string }) => k.name)).toEqual(["bootstrap"]);
  });

  test("a key created on router A serves a completion on router B; revoked on A it is refused on B", async () => {
    const res = await fetch(`${a.url}/api/keys`, { method: "POST", headers: await auth(a), body: JSON.stringify({ name: "made-on-a" }) });
    expect(res.status).toBe(201);
    const { key } = (await res.json()) as { key: string };
    const done = await chat(b, key);
    expect(done.choices[0]!.message.content).toBeTypeOf("string");

    const revoked = await fetch(`${a.url}/api/keys/made-on-a`, { method: "DELETE", headers: { authorization: (await auth(a)).authorization } });
    expect(revoked.status).toBe(200);
    const err = await waitFor(
      "router B to refuse the revoked key",
      () =>
        chat(b, key).then(
          () => null,
          (e: unknown) => e,
        ),
      15_000,
      250,
    );
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
  });

  test("a user created on B logs in on A; B's request history and node are visible from A", async () => {
    const created = await fetch(`${b.url}/api/users`, {
      method: "POST",
      headers: await auth(b),
      body: JSON.stringify({ username: "ops", password: "ops-password", role: "viewer" }),
    });
    expect(created.status).toBe(201);
    const login = await fetch(`${a.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "ops", password: "ops-password" }),
    });
    expect(login.status).toBe(200);

    const requestId = `pg-${Date.now()}`;
    await new OpenAI({ baseURL: `${b.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 }).chat.completions.create(
      { model: CHAT, messages: [{ role: "user", content: "hello" }], max_tokens: 3 },
      { headers: { "x-request-id": requestId } },
    );
    const rec = await waitFor("B's record read through A", () => getJson(`${a.url}/api/requests/${requestId}`).catch(() => null), 10_000, 100);
    expect(rec).toMatchObject({ requestId, nodeName: "pg-node", keyName: "bootstrap", status: 200, completionTokens: 3 });
    expect((await getJson(`${a.url}/api/requests?node=pg-node&model=${CHAT}`)).total).toBeGreaterThanOrEqual(2);

    // A learns of the node from the shared table (listed offline: it registered with B only).
    const seen = await waitFor(
      "A to list B's node",
      async () => (await getJson(`${a.url}/api/nodes`)).nodes.find((n: { name: string }) => n.name === "pg-node"),
      40_000,
      500,
    );
    expect(seen.state).toBe("offline");
  }, 60_000);

  test("a Responses conversation stored through router B continues through router A (previous_response_id in the shared database)", async () => {
    const viaB = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    const viaA = new OpenAI({ baseURL: `${a.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    const first = await viaB.responses.create({ model: CHAT, input: "My name is Ada-7781.", max_output_tokens: 4 });
    expect((await viaA.responses.retrieve(first.id)).output_text).toBe(first.output_text);

    const requestId = `pg-resp-${Date.now()}`;
    const { data: second, response } = await viaA.responses
      .create({ model: CHAT, input: "What is my name?", previous_response_id: first.id, max_output_tokens: 4 }, { headers: { "x-request-id": requestId } })
      .withResponse();
    expect(response.headers.get("x-drover-node")).toBe("pg-node-a");
    expect(second.previous_response_id).toBe(first.id);
    const rec = await waitFor("A's record of the second turn", () => getJson(`${a.url}/api/requests/${requestId}`).catch(() => null), 10_000, 100);
    expect(JSON.parse(rec.requestBody).messages).toEqual([
      { role: "user", content: "My name is Ada-7781." },
      { role: "assistant", content: first.output_text },
      { role: "user", content: "What is my name?" },
    ]);
    // And back: B continues what A stored.
    const third = await viaB.responses.create({ model: CHAT, input: "Thanks.", previous_response_id: second.id, max_output_tokens: 2 });
    expect(third.usage!.input_tokens).toBeGreaterThan(second.usage!.input_tokens);
  }, 60_000);
});
