// response_format on the llama engine, in-process on a generated random-weight model: without a
// grammar its output is noise, with one it is always parseable JSON (or JSON that fits a schema).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DEMO_CATALOG } from "../../src/catalog/builtin.js";
import { runLlamaEngine } from "../../src/engine/llama/main.js";
import { writeTinyModel, type TinyModelSpec } from "../../src/gguf/tiny-model.js";

const MODEL_ID = "demo-chat";
const spec = (DEMO_CATALOG.models.find((m) => m.id === MODEL_ID)!.source as { generate: TinyModelSpec }).generate;
const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: "user", content: "Answer in JSON." }];

let dir: string;
let engine: { port: number; close(): Promise<void> };
let base: string;
let client: OpenAI;

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "drover-engine-rf-"));
  const modelPath = join(dir, "demo-chat.gguf");
  await writeTinyModel(spec, modelPath);
  const spy = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
  try {
    engine = await runLlamaEngine({
      modelPath,
      modelId: MODEL_ID,
      host: "127.0.0.1",
      port: 0,
      threads: 1,
      slots: 2,
      contextSize: 2048,
      handleSignals: false,
      logger: pino({ level: process.env.DROVER_TEST_LOG ?? "warn" }, pino.destination(2)),
    });
  } finally {
    spy.mockRestore();
  }
  base = `http://127.0.0.1:${engine.port}`;
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "x", maxRetries: 0, timeout: 30_000 });
}, 60_000);

afterAll(async () => {
  await engine?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("llama engine response_format", { timeout: 60_000 }, () => {
  it("without a grammar the random model's text is not JSON", async () => {
    const r = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 32, seed: 1, temperature: 0 });
    expect(parses(r.choices[0]!.message.content!)).toBe(false);
  });

  it("json_object: every answer is a JSON object, ended by the grammar (finish_reason stop)", async () => {
    for (const seed of [1, 2, 3, 4]) {
      const r = await client.chat.completions.create({
        model: MODEL_ID,
        messages,
        max_tokens: 1500,
        seed,
        temperature: 0.8,
        response_format: { type: "json_object" },
      });
      const text = r.choices[0]!.message.content!;
      expect(parses(text), `seed ${seed}: ${text}`).toBe(true);
      expect(typeof JSON.parse(text)).toBe("object");
      expect(r.choices[0]!.finish_reason).toBe("stop");
    }
  });

  it("json_schema: the answer fits the schema, and the grammar's trailing newlines are cut", async () => {
    const schema = { type: "object", properties: { ok: { type: "boolean" }, n: { type: "integer" }, tag: { enum: ["a", "b"] } }, required: ["ok", "n", "tag"] };
    const r = await client.chat.completions.create({
      model: MODEL_ID,
      messages,
      max_tokens: 300,
      seed: 5,
      temperature: 1,
      response_format: { type: "json_schema", json_schema: { name: "answer", schema } },
    });
    const text = r.choices[0]!.message.content!;
    const value = JSON.parse(text) as { ok: unknown; n: unknown; tag: unknown };
    expect(typeof value.ok).toBe("boolean");
    // node-llama-cpp's integer rule allows an exponent ("12E3"): a number, not always a safe integer.
    expect(typeof value.n).toBe("number");
    expect(["a", "b"]).toContain(value.tag);
    expect(text).not.toMatch(/\n\n\n\n/);
    expect(r.choices[0]!.finish_reason).toBe("stop");
    expect(r.usage!.completion_tokens).toBeLessThan(300);
  });

  it("streamed json_object: the concatenated deltas are JSON", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL_ID,
      messages,
      max_tokens: 1500,
      seed: 3,
      stream: true,
      response_format: { type: "json_object" },
    });
    let text = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(parses(text), text).toBe(true);
    expect(finish).toBe("stop");
  });

  it("completions accept response_format too (Ollama's raw generate with format uses it)", async () => {
    const res = await fetch(`${base}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL_ID, prompt: "{", max_tokens: 1500, seed: 2, response_format: { type: "json_object" } }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { text: string; finish_reason: string }[] };
    expect(parses(body.choices[0]!.text), body.choices[0]!.text).toBe(true);
  });

  it("a schema the grammar generator cannot express is a 400, not a silent `null`", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL_ID,
        messages,
        response_format: { type: "json_schema", json_schema: { name: "x", schema: { not: { type: "string" } } } },
      }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string; param: string } }).error).toMatchObject({ code: "invalid_schema", param: "response_format" });
  });

  it("an unknown response_format type is a 400", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL_ID, messages, response_format: { type: "xml" } }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toMatch(/^response_format/);
  });
});
