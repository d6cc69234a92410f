// End to end: a real router and two real node processes, each running one llama.cpp engine
// process per demo model, driven with the official `openai` client.
import { execFileSync } from "node:child_process";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DEMO_CATALOG } from "../../src/catalog/builtin.js";
import { schemaErrors } from "../support/openapi-schemas.js";
import {
  AUTH_HEADERS,
  getJson,
  routerCredentialFor,
  startNode,
  startRouter,
  TEST_API_KEY,
  waitFor,
  waitForReady,
  type DroverProcess,
} from "../support/fleet.js";

const CHAT = "demo-chat";
const EMBED = "demo-embed";
const dims = (id: string) => DEMO_CATALOG.models.find((m) => m.id === id)!.source.generate!.embeddingLength;

let router: DroverProcess;
const nodes: DroverProcess[] = [];
let client: OpenAI;

beforeAll(async () => {
  router = await startRouter();
  nodes.push(await startNode(router.url, "node-a"), await startNode(router.url, "node-b"));
  await waitForReady(router.url, [CHAT, EMBED], 2);
  client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await router?.stop();
});

describe("OpenAI API through router → node → engine", () => {
  test("GET /v1/models lists the catalog", async () => {
    const list = await getJson(`${router.url}/v1/models`);
    expect(schemaErrors("ListModelsResponse", list)).toEqual([]);
    expect(list.data.map((m: { id: string }) => m.id)).toEqual(DEMO_CATALOG.models.map((m) => m.id));
    const one = await client.models.retrieve(CHAT);
    expect(one.id).toBe(CHAT);
    expect(schemaErrors("Model", one)).toEqual([]);
  });

  test("chat completion", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: CHAT, messages: [{ role: "user", content: "Hello, who are you?" }], max_tokens: 16, seed: 7, temperature: 0.7 })
      .withResponse();
    expect(schemaErrors("CreateChatCompletionResponse", data)).toEqual([]);
    expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(data.choices[0]!.finish_reason).toBe("length");
    expect(data.usage!.completion_tokens).toBe(16);
    expect(response.headers.get("x-request-id")).toMatch(/\S+/);
    expect(["node-a", "node-b"]).toContain(response.headers.get("x-drover-node"));
  });

  test("streamed chat completion: chunks arrive before the stream ends", async () => {
    const stream = await client.chat.completions.create({
      model: CHAT,
      messages: [{ role: "user", content: "Tell me a long story" }],
      max_tokens: 48,
      stream: true,
      stream_options: { include_usage: true },
    });
    const arrivals: number[] = [];
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      arrivals.push(Date.now());
      expect(schemaErrors("CreateChatCompletionStreamResponse", chunk)).toEqual([]);
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(arrivals.length).toBeGreaterThan(5);
    expect(text.length).toBeGreaterThan(0);
    expect(usage?.completion_tokens).toBe(48);

    // Causal, not timed: a client that leaves after its first chunk stops a 2,000-token generation,
    // which is only possible if that chunk arrived before the generation ended.
    const requestId = `openai-first-chunk-${Date.now()}`;
    const ac = new AbortController();
    const early = await client.chat.completions.create(
      { model: CHAT, messages: [{ role: "user", content: "Tell me a long story" }], max_tokens: 2000, stream: true },
      { headers: { "x-request-id": requestId }, signal: ac.signal },
    );
    for await (const chunk of early) {
      expect(chunk.object).toBe("chat.completion.chunk");
      break; // leaving the loop aborts the request
    }
    ac.abort();
    const rec = await waitFor("the aborted request's record", () => getJson(`${router.url}/api/requests/${requestId}`).catch(() => null), 15_000, 100);
    expect(rec.error).toBe("client disconnected");
  });

  test("the raw SSE stream ends with data: [DONE]", async () => {
    const res = await fetch(`${router.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH_HEADERS },
      body: JSON.stringify({ model: CHAT, messages: [{ role: "user", content: "hi" }], max_tokens: 8, stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const body = await res.text();
    expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
  });

  test("completion", async () => {
    const data = await client.completions.create({ model: CHAT, prompt: "Once upon a time", max_tokens: 12, stop: ["\n\n"] });
    expect(schemaErrors("CreateCompletionResponse", data)).toEqual([]);
    expect(data.choices[0]!.text.length).toBeGreaterThan(0);
  });

  test("embeddings have the model's dimension", async () => {
    for (const model of [EMBED, CHAT]) {
      const data = await client.embeddings.create({ model, input: ["first text", "second text"], encoding_format: "float" });
      expect(schemaErrors("CreateEmbeddingResponse", data)).toEqual([]);
      expect(data.data).toHaveLength(2);
      for (const d of data.data) expect(d.embedding).toHaveLength(dims(model));
    }
  });

  test("unknown model → 404 model_not_found; malformed body → 400, both in OpenAI's error shape", async () => {
    const missing = await fetch(`${router.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH_HEADERS },
      body: JSON.stringify({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }),
    });
    expect(missing.status).toBe(404);
    const missingBody = await missing.json();
    expect(missingBody.error.code).toBe("model_not_found");
    expect(schemaErrors("ErrorResponse", missingBody)).toEqual([]);

    for (const body of ["{not json", JSON.stringify({ model: CHAT }), JSON.stringify({ model: CHAT, messages: "hi" }), "[]"]) {
      const res = await fetch(`${router.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...AUTH_HEADERS }, body });
      expect(res.status).toBe(400);
      expect(schemaErrors("ErrorResponse", await res.json())).toEqual([]);
    }
  });
});

describe("engine supervision", () => {
  test("an engine killed with SIGKILL is restarted by its node and the next request succeeds", async () => {
    const node = nodes[0]!;
    const enginePid = () => {
      const out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(node.child.pid)], { encoding: "utf8" });
      const line = out.split("\n").find((l) => l.includes("engine") && l.includes(`--model-id ${CHAT}`));
      return line ? Number(line.trim().split(/\s+/)[0]) : null;
    };
    const before = enginePid();
    expect(before).toBeTypeOf("number");
    process.kill(before!, "SIGKILL");

    const status = () => getJson(`${node.url}/v1/models`).then((l) => l.data.find((m: { id: string }) => m.id === CHAT).drover);
    await waitFor("the engine to be restarted and ready", async () => {
      const s = await status();
      return s.restarts >= 1 && s.state === "ready";
    });
    expect(enginePid()).not.toBe(before);

    // Straight to the node, as a router of the fleet would (the node refuses anyone else).
    const direct = new OpenAI({ baseURL: `${node.url}/v1`, apiKey: await routerCredentialFor(node.url), maxRetries: 0 });
    const res = await direct.chat.completions.create({ model: CHAT, messages: [{ role: "user", content: "still there?" }], max_tokens: 8 });
    expect(res.choices[0]!.message.content!.length).toBeGreaterThan(0);
    const viaRouter = await client.chat.completions.create({ model: CHAT, messages: [{ role: "user", content: "and via the router?" }], max_tokens: 8 });
    expect(viaRouter.choices[0]!.message.content!.length).toBeGreaterThan(0);
  });
});
