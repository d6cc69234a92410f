// End to end: Ollama's API on a real router in front of a real node running llama.cpp engines on
// the demo models, driven with the official `ollama` client (and raw fetch where the wire matters).
import { execFileSync } from "node:child_process";
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DEMO_CATALOG } from "../../src/catalog/builtin.js";
import { AUTH_HEADERS, getJson, startNode, startRouter, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";

const CHAT = "demo-chat";
const EMBED = "demo-embed";
const dims = (id: string) => DEMO_CATALOG.models.find((m) => m.id === id)!.source.generate!.embeddingLength;

let router: DroverProcess;
let node: DroverProcess;
let ollama: Ollama;

beforeAll(async () => {
  router = await startRouter();
  node = await startNode(router.url, "node-a");
  // Every demo model, so that /api/ps below lists a settled set.
  await waitForReady(
    router.url,
    DEMO_CATALOG.models.map((m) => m.id),
    1,
  );
  ollama = new Ollama({ host: router.url, headers: AUTH_HEADERS });
});

afterAll(async () => {
  await node?.stop();
  await router?.stop();
});

function post(path: string, body: string, headers: Record<string, string> = {}) {
  return fetch(`${router.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...AUTH_HEADERS, ...headers }, body });
}

/** Durations are nanoseconds: a generation of several tokens takes well over a microsecond. */
function expectTimings(r: { total_duration: number; load_duration: number; prompt_eval_duration: number; eval_duration: number }) {
  for (const d of [r.total_duration, r.load_duration, r.prompt_eval_duration, r.eval_duration]) expect(Number.isInteger(d) && d >= 0).toBe(true);
  expect(r.total_duration).toBeGreaterThan(1_000_000);
  expect(r.eval_duration).toBeGreaterThan(1_000);
  expect(r.total_duration).toBeGreaterThanOrEqual(r.prompt_eval_duration + r.eval_duration);
}

describe("Ollama API through router → node → engine", () => {
  test("GET and HEAD / answer 'Ollama is running'; /api/version answers drover's version", async () => {
    const res = await fetch(`${router.url}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("Ollama is running");
    expect((await fetch(`${router.url}/`, { method: "HEAD" })).status).toBe(200);
    const { version } = await ollama.version();
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
  });

  test("list (/api/tags): the catalog with sizes, digests and details", async () => {
    const { models } = await ollama.list();
    expect(models.map((m) => m.name)).toEqual(DEMO_CATALOG.models.map((m) => m.id));
    for (const m of models) {
      expect(m.model).toBe(m.name);
      expect(m.size).toBeGreaterThan(100_000);
      expect(m.digest).toMatch(/^[0-9a-f]{64}$/);
      expect(Number.isNaN(new Date(m.modified_at).getTime())).toBe(false);
      expect(m.details).toMatchObject({ format: "gguf", family: "llama", quantization_level: "F32" });
      expect(m.details.parameter_size).toMatch(/^\d+(\.\d)?[KMB]$/);
    }
  });

  test("ps (/api/ps): models ready in the fleet, with node counts", async () => {
    const { models } = await ollama.ps();
    expect(models.map((m) => m.name).sort()).toEqual(DEMO_CATALOG.models.map((m) => m.id).sort());
    for (const m of models) {
      expect((m as unknown as { ready_nodes: number }).ready_nodes).toBe(1);
      expect(m.size).toBeGreaterThan(0);
      expect(Number.isNaN(new Date(m.expires_at).getTime())).toBe(false);
    }
  });

  test("show (/api/show): details, capabilities and model info; :latest resolves", async () => {
    const info = await ollama.show({ model: `${CHAT}:latest` });
    expect(info.details.format).toBe("gguf");
    expect(info.capabilities).toContain("completion");
    expect((info.model_info as unknown as Record<string, unknown>)["llama.context_length"]).toBe(4096);
    const embed = await ollama.show({ model: EMBED });
    expect(embed.capabilities).toEqual(["embedding"]);
  });

  test("chat, not streamed: one object with the answer, counts and nanosecond durations", async () => {
    const r = await ollama.chat({
      model: CHAT,
      messages: [{ role: "user", content: "Hello there" }],
      stream: false,
      options: { num_predict: 12, seed: 3, temperature: 0.7 },
    });
    expect(r.model).toBe(CHAT);
    expect(r.message.role).toBe("assistant");
    expect(r.message.content.length).toBeGreaterThan(0);
    expect(r.done).toBe(true);
    expect(r.done_reason).toBe("length");
    expect(r.eval_count).toBe(12);
    expect(r.prompt_eval_count).toBeGreaterThan(3);
    expect(Number.isNaN(new Date(r.created_at).getTime())).toBe(false);
    expectTimings(r);
  });

  test("chat, streamed: pieces, then one done object", async () => {
    const stream = await ollama.chat({ model: CHAT, messages: [{ role: "user", content: "Tell me a story" }], stream: true, options: { num_predict: 24 } });
    const parts = [];
    for await (const part of stream) parts.push(part);
    const last = parts.at(-1)!;
    expect(parts.length).toBeGreaterThan(5);
    expect(parts.slice(0, -1).every((p) => !p.done && p.message.content.length > 0)).toBe(true);
    expect(last.done).toBe(true);
    expect(last.done_reason).toBe("length");
    expect(last.eval_count).toBe(24);
    expectTimings(last);
  });

  test("a streamed /api/chat delivers its first line long before generation ends", async () => {
    const res = await post("/api/chat", JSON.stringify({ model: CHAT, messages: [{ role: "user", content: "Go on" }], options: { num_predict: 400 } }));
    expect(res.headers.get("content-type")).toMatch(/application\/x-ndjson/);
    expect(res.headers.get("x-request-id")).toMatch(/\S+/);
    expect(res.headers.get("x-drover-node")).toBe("node-a");
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    let firstLineAt: number | null = null;
    const lines: Record<string, unknown>[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      const complete = buffered.split("\n");
      buffered = complete.pop()!;
      for (const l of complete) {
        firstLineAt ??= Date.now();
        lines.push(JSON.parse(l) as Record<string, unknown>);
      }
    }
    expect(buffered).toBe("");
    expect(lines.at(-1)).toMatchObject({ done: true, eval_count: 400 });
    expect(firstLineAt).not.toBeNull();

    // Causal, not timed: a client that leaves right after its first line stops the generation. Had
    // the router held the lines back, the 400 tokens would all be generated before the first one
    // arrived, and the request would be recorded as complete.
    const requestId = `ollama-first-line-${Date.now()}`;
    const ac = new AbortController();
    const early = await fetch(`${router.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH_HEADERS, "x-request-id": requestId },
      body: JSON.stringify({ model: CHAT, messages: [{ role: "user", content: "Go on" }], options: { num_predict: 400 } }),
      signal: ac.signal,
    });
    const earlyReader = early.body!.getReader();
    let first = "";
    while (!first.includes("\n")) {
      const { done, value } = await earlyReader.read();
      if (done) break;
      first += decoder.decode(value, { stream: true });
    }
    expect(JSON.parse(first.split("\n")[0]!)).toMatchObject({ done: false });
    ac.abort();
    const rec = await waitFor("the aborted request's record", () => getJson(`${router.url}/api/requests/${requestId}`).catch(() => null), 15_000, 100);
    expect(rec.error).toBe("client disconnected");
    expect(rec.completionTokens ?? 0).toBeLessThan(400);
  });

  test("generate, streamed and not", async () => {
    const r = await ollama.generate({ model: CHAT, prompt: "Once upon a time", stream: false, options: { num_predict: 8, seed: 1 } });
    expect(r.response!.length).toBeGreaterThan(0);
    expect(r).toMatchObject({ model: CHAT, done: true, done_reason: "length", eval_count: 8 });
    expectTimings(r);
    const stream = await ollama.generate({ model: CHAT, prompt: "Once upon a time", raw: true, stream: true, options: { num_predict: 8 } });
    let text = "";
    let last: (typeof stream extends AsyncIterable<infer P> ? P : never) | undefined;
    for await (const part of stream) {
      text += part.response;
      last = part;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(last).toMatchObject({ done: true, eval_count: 8 });
  });

  test("format: json gives parseable JSON; a JSON schema gives JSON that fits it", async () => {
    const chat = await ollama.chat({
      model: CHAT,
      messages: [{ role: "user", content: "JSON please" }],
      format: "json",
      stream: false,
      options: { num_predict: 1500, temperature: 0.8, seed: 2 },
    });
    expect(typeof JSON.parse(chat.message.content)).toBe("object");
    expect(chat.done_reason).toBe("stop");
    const schema = { type: "object", properties: { ok: { type: "boolean" }, color: { enum: ["red", "green", "blue"] } }, required: ["ok", "color"] };
    const gen = await ollama.generate({ model: CHAT, prompt: "JSON please", format: schema, stream: false, options: { num_predict: 300, seed: 4 } });
    const value = JSON.parse(gen.response!) as { ok: unknown; color: unknown };
    expect(typeof value.ok).toBe("boolean");
    expect(["red", "green", "blue"]).toContain(value.color);
    expect(gen.done_reason).toBe("stop");
  });

  test("embed and the legacy embeddings route", async () => {
    const r = await ollama.embed({ model: EMBED, input: ["first text", "second text"] });
    expect(r.model).toBe(EMBED);
    expect(r.embeddings).toHaveLength(2);
    for (const v of r.embeddings) {
      expect(v).toHaveLength(dims(EMBED));
      expect(Math.hypot(...v)).toBeCloseTo(1, 4);
    }
    expect(r.embeddings[0]).not.toEqual(r.embeddings[1]);
    expect(r.prompt_eval_count).toBeGreaterThan(0);
    const legacy = await ollama.embeddings({ model: EMBED, prompt: "first text" });
    expect(legacy.embedding).toHaveLength(dims(EMBED));
    expect(legacy.embedding[0]).toBeCloseTo(r.embeddings[0]![0]!, 5);
  });

  test("unknown model → 404 in Ollama's shape, through the client and on the wire", async () => {
    await expect(ollama.chat({ model: "no-such-model", messages: [{ role: "user", content: "hi" }], stream: false })).rejects.toMatchObject({
      status_code: 404,
      error: 'model "no-such-model" not found',
    });
    const res = await post("/api/generate", JSON.stringify({ model: "no-such-model", prompt: "hi" }));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'model "no-such-model" not found' });
    expect((await post("/api/show", JSON.stringify({ model: "no-such-model" }))).status).toBe(404);
  });

  test("malformed bodies → 400 with {error}", async () => {
    for (const [path, body] of [
      ["/api/chat", "{not json"],
      ["/api/chat", JSON.stringify({ model: CHAT, messages: "hello" })],
      ["/api/generate", JSON.stringify({ prompt: "no model" })],
      ["/api/generate", JSON.stringify({ model: CHAT, prompt: "x", options: { num_predict: "many" } })],
      ["/api/embed", JSON.stringify({ model: EMBED })],
      ["/api/chat", JSON.stringify({ model: EMBED, messages: [{ role: "user", content: "x" }] })],
    ]) {
      const res = await post(path!, body!);
      expect(res.status, `${path} ${body}`).toBe(400);
      const json = (await res.json()) as { error: unknown };
      expect(Object.keys(json)).toEqual(["error"]);
      expect(typeof json.error).toBe("string");
    }
  });

  test("bodies sent without a JSON content type (curl -d) are read as JSON, as Ollama does", async () => {
    const res = await post("/api/generate", JSON.stringify({ model: CHAT, prompt: "hi", stream: false, options: { num_predict: 2 } }), {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ done: true, eval_count: 2 });
  });

  test("inference routes need the API key; the answer is Ollama-shaped", async () => {
    const res = await fetch(`${router.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: CHAT, messages: [] }),
    });
    expect(res.status).toBe(401);
    expect(typeof ((await res.json()) as { error: unknown }).error).toBe("string");
  });

  test("requests go into the history like the OpenAI routes', with the key, node and token counts", async () => {
    const requestId = `ollama-hist-${Date.now()}`;
    const res = await post("/api/chat", JSON.stringify({ model: CHAT, messages: [{ role: "user", content: "hi" }], options: { num_predict: 6 } }), {
      "x-request-id": requestId,
    });
    expect(res.headers.get("x-request-id")).toBe(requestId);
    await res.text();
    const rec = await waitFor("the history record", () => getJson(`${router.url}/api/requests/${requestId}`).catch(() => null), 10_000, 100);
    expect(rec).toMatchObject({
      requestId,
      api: "ollama",
      endpoint: "/api/chat",
      model: CHAT,
      stream: true,
      keyName: "bootstrap",
      nodeName: "node-a",
      status: 200,
      error: null,
      completionTokens: 6,
    });
    expect(rec.promptTokens).toBeGreaterThan(0);
  });

  // Last: it kills the node's chat engine.
  test("an engine killed mid-stream ends the NDJSON stream with an error line the client raises", async () => {
    const stream = await ollama.chat({ model: CHAT, messages: [{ role: "user", content: "go" }], stream: true, options: { num_predict: 4000 } });
    let parts = 0;
    let failure: unknown = null;
    try {
      for await (const _ of stream) {
        if (++parts === 3) {
          const out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(node.child.pid)], { encoding: "utf8" });
          const line = out.split("\n").find((l) => l.includes(`--model-id ${CHAT}`))!;
          process.kill(Number(line.trim().split(/\s+/)[0]), "SIGKILL");
        }
      }
    } catch (err) {
      failure = err;
    }
    expect(parts).toBeGreaterThanOrEqual(3);
    // The router's error line, raised by the client: not a socket reset, not a missing `done`.
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/^stream from node-a broke: /);
  });
});

describe("Ollama API: a full queue", () => {
  let small: DroverProcess;
  beforeAll(async () => {
    small = await startRouter(["--queue-limit", "0"]);
  });
  afterAll(async () => {
    await small?.stop();
  });

  test("503 with Retry-After and {error}", async () => {
    const res = await fetch(`${small.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH_HEADERS },
      body: JSON.stringify({ model: CHAT, messages: [{ role: "user", content: "hi" }] }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect((await res.json()) as { error: string }).toEqual({ error: expect.stringMatching(/queue is full/) });
  });
});
