// The router's stream relay when the node dies in the middle of an event: the real proxy, queue and
// registry in front of a fake node that sends the first k bytes of a stream and then drops the
// connection, for every k. The client must always get complete events followed by one well-formed
// error event (never a partial event with the error glued to it), through the official SDKs too.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { NodeRegistration } from "../../src/protocol/node-api.js";
import { AdmissionQueue } from "../../src/router/request-path/admission-queue.js";
import { InferenceProxy } from "../../src/router/request-path/inference-proxy.js";
import { NodeRegistry } from "../../src/router/fleet/node-registry.js";
import { NodeSelector } from "../../src/router/request-path/node-selector.js";
import { openAiEdge, openAiStreamError } from "../../src/router/dialects/openai/edge.js";
import { OLLAMA_ERRORS } from "../../src/router/dialects/ollama/ollama-http-error.js";
import { OllamaGenerationAdapter } from "../../src/router/dialects/ollama/generation-adapter.js";
import { SseDataParser } from "../../src/router/dialects/ollama/sse-parser.js";
import { lastBoundary, PassthroughAdapter } from "../../src/router/request-path/passthrough-adapter.js";

const chunk = (content: string | null, finish: string | null = null) => ({
  id: "chatcmpl-relay",
  object: "chat.completion.chunk",
  created: 0,
  model: "m",
  choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }],
});
const EVENTS = [chunk("Hello"), chunk(", wörld ✓"), chunk(null, "stop")];
const SSE = Buffer.from(EVENTS.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + "data: [DONE]\n\n");
const NDJSON = Buffer.from(EVENTS.map((e) => `${JSON.stringify(e)}\n`).join(""));

/** What the fake node sends next: its body, where it dies, and its content type. */
let script = { body: SSE, cut: 0, contentType: "text/event-stream" };
const servers: Server[] = [];
let routerUrl = "";
let registry: NodeRegistry;

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const readBody = async (req: IncomingMessage) => {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

beforeAll(async () => {
  const nodeUrl = await listen(
    createServer(async (req, res) => {
      await readBody(req);
      const { body, cut, contentType } = script;
      res.writeHead(200, { "content-type": contentType });
      res.flushHeaders();
      // The node dies with the first `cut` bytes sent: the connection is dropped, the body unfinished.
      if (cut === 0) return void setImmediate(() => res.socket?.destroy());
      res.write(body.subarray(0, cut), () => res.socket?.destroy());
    }),
  );
  registry = new NodeRegistry(60_000);
  const registration: NodeRegistration = {
    nodeId: "n",
    name: "n",
    apiUrl: nodeUrl,
    version: "0",
    engine: "llama",
    models: [{ id: "m", state: "ready", slots: 4, inFlight: 0, restarts: 0 }],
    metrics: {},
  };
  registry.accept(registration);
  const queue = new AdmissionQueue(registry, new NodeSelector(registry), { limit: 10, timeoutMs: 0 });
  const proxy = new InferenceProxy(registry, queue, { maxAttempts: 2, headersTimeoutMs: 10_000, bodyTimeoutMs: 10_000 }, pino({ level: "silent" }));
  routerUrl = await listen(
    createServer(async (req, res) => {
      const body = await readBody(req);
      const ctrl = new AbortController();
      res.on("close", () => {
        if (!res.writableFinished) ctrl.abort();
      });
      const ollama = req.url === "/api/chat";
      const ndjson = ollama || req.url === "/ndjson"; // /ndjson: relayed unchanged, errors as NDJSON
      await proxy.run({
        path: "/v1/chat/completions",
        modelId: "m",
        body,
        requestId: randomUUID(),
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        signal: ctrl.signal,
        res,
        affinityKey: null,
        edge: ollama
          ? {
              api: "ollama",
              errors: OLLAMA_ERRORS,
              adapter: new OllamaGenerationAdapter({ kind: "chat", stream: true, model: "m", receivedAt: performance.now() }),
            }
          : ndjson
            ? { api: "openai", errors: OLLAMA_ERRORS, adapter: new PassthroughAdapter((message) => `${JSON.stringify({ error: message })}\n`) }
            : openAiEdge(),
      });
    }),
  );
});

afterAll(async () => {
  await registry?.close();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

// Every cut is its own scenario of a node dying mid-stream, which (rightly) opens the node's
// circuit breaker; each request starts with the breaker closed again, or the next one would wait
// out the cooldown. The breaker's own reaction is tested in circuit-breaker.test.ts.
const post = (path: string) => {
  registry.get("n")!.breaker.onSuccess();
  return postNow(path);
};
const postNow = (path: string) =>
  fetch(`${routerUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], stream: true }),
  });

/** Byte offsets at which the first `n` events of the node's body are complete. */
function completeBefore(body: Buffer, cut: number, separator: string): number {
  return body.subarray(0, cut).toString("utf8").split(separator).length - 1;
}

describe("a node that dies in the middle of an SSE event (OpenAI routes)", () => {
  test("at every byte offset, the client gets the complete events, then one well-formed error event", async () => {
    for (let cut = 0; cut < SSE.length; cut++) {
      script = { body: SSE, cut, contentType: "text/event-stream" };
      const res = await post("/v1/chat/completions");
      expect(res.status).toBe(200);
      const raw = await res.text();
      // Every event in the client's stream is whole: the parser's payloads are all JSON.
      const parser = new SseDataParser();
      const payloads = [...parser.push(raw), ...parser.end()];
      const parsed = payloads.map((p) => {
        try {
          return JSON.parse(p) as unknown;
        } catch {
          throw new Error(`cut at byte ${cut}: the client got an event that is not JSON: ${JSON.stringify(p)}\n--- stream ---\n${raw}`);
        }
      });
      const complete = Math.min(completeBefore(SSE, cut, "\n\n"), EVENTS.length);
      expect(parsed.slice(0, -1), `cut at byte ${cut}`).toEqual(EVENTS.slice(0, complete));
      expect(parsed.at(-1), `cut at byte ${cut}`).toEqual({
        error: { message: expect.stringMatching(/^stream from n broke: /), type: "server_error", param: null, code: "upstream_failed" },
      });
      expect(raw.endsWith("\n\n")).toBe(true);
    }
  });

  test("the OpenAI SDK raises the router's error (an APIError), not a JSON parse error", async () => {
    // Cut inside the second event's JSON.
    script = { body: SSE, cut: SSE.indexOf("wörld"), contentType: "text/event-stream" };
    const client = new OpenAI({ baseURL: `${routerUrl}/v1`, apiKey: "unused", maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }], stream: true });
    const seen: string[] = [];
    const failure = await (async () => {
      for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? "");
    })().then(
      () => null,
      (err: unknown) => err,
    );
    expect(seen).toEqual(["Hello"]);
    expect(failure).toBeInstanceOf(OpenAI.APIError);
    expect((failure as InstanceType<typeof OpenAI.APIError>).message).toMatch(/stream from n broke/);
  });

  test("a node's NDJSON stream relayed unchanged is cut at a line boundary, then one error line", async () => {
    for (let cut = 0; cut < NDJSON.length; cut++) {
      script = { body: NDJSON, cut, contentType: "application/x-ndjson" };
      const raw = await (await post("/ndjson")).text();
      expect(raw.endsWith("\n"), `cut at byte ${cut}: ${raw}`).toBe(true);
      const lines = raw
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as unknown);
      expect(lines.slice(0, -1), `cut at byte ${cut}`).toEqual(EVENTS.slice(0, completeBefore(NDJSON, cut, "\n")));
      expect(lines.at(-1)).toEqual({ error: expect.stringMatching(/^stream from n broke: /) });
    }
  });
});

describe("a node that dies in the middle of an event under an Ollama route (NDJSON)", () => {
  test("at every byte offset, the client gets whole NDJSON lines ending with one error line", async () => {
    for (let cut = 0; cut < SSE.length; cut++) {
      script = { body: SSE, cut, contentType: "text/event-stream" };
      const res = await post("/api/chat");
      expect(res.status).toBe(200);
      const raw = await res.text();
      expect(raw.endsWith("\n"), `cut at byte ${cut}: ${raw}`).toBe(true);
      const lines = raw
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as { message?: { content: string }; error?: string; done?: boolean });
      const texts = lines.slice(0, -1).map((l) => l.message?.content);
      const complete = completeBefore(SSE, cut, "\n\n");
      expect(texts, `cut at byte ${cut}`).toEqual(["Hello", ", wörld ✓"].slice(0, complete));
      // The node never sent [DONE]: no `done` line, the error line ends the stream.
      expect(lines.at(-1), `cut at byte ${cut}`).toEqual({ error: expect.stringMatching(/^stream from n broke: /) });
    }
  });

  test("the ollama client raises the router's error line", async () => {
    script = { body: SSE, cut: SSE.indexOf("wörld"), contentType: "text/event-stream" };
    const stream = await new Ollama({ host: routerUrl }).chat({ model: "m", messages: [{ role: "user", content: "hi" }], stream: true });
    const seen: string[] = [];
    const failure = await (async () => {
      for await (const part of stream) seen.push(part.message.content);
    })().then(
      () => null,
      (err: unknown) => err,
    );
    expect(seen).toEqual(["Hello"]);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/^stream from n broke: /);
  });
});

describe("event boundaries", () => {
  test("fed byte by byte, the relay passes on only whole events, with any line ends", () => {
    for (const eol of ["\n", "\r\n", "\r"]) {
      const events = EVENTS.map((e) => `data: ${JSON.stringify(e)}${eol}${eol}`).concat([`: keep-alive${eol}${eol}`, `data: [DONE]${eol}${eol}`]);
      const body = Buffer.from(events.join(""));
      const adapter = new PassthroughAdapter(openAiStreamError);
      adapter.start({ status: 200, contentType: "text/event-stream", nodeName: "n", queueWaitMs: 0 });
      const pieces: Buffer[] = [];
      for (let i = 0; i < body.length; i++) {
        const piece = adapter.chunk(body.subarray(i, i + 1));
        if (piece.length > 0) pieces.push(Buffer.from(piece));
      }
      pieces.push(Buffer.from(adapter.end()));
      expect(Buffer.concat(pieces).equals(body), JSON.stringify(eol)).toBe(true);
      // Each piece, read on its own to its end, holds whole events only: cut inside an event, it
      // would yield a truncated payload, and the payloads would not add up to the events.
      const payloads = pieces.flatMap((p) => {
        const parser = new SseDataParser();
        return [...parser.push(p), ...parser.end()];
      });
      expect(payloads, JSON.stringify(eol)).toEqual([...EVENTS.map((e) => JSON.stringify(e)), "[DONE]"]);
    }
  });

  test("SSE events end at a blank line with LF, CRLF or CR line ends; NDJSON lines at LF", () => {
    const at = (s: string, f: "sse" | "ndjson" = "sse") => lastBoundary(Buffer.from(s), f);
    expect(at("data: a\n\ndata: b")).toBe(9);
    expect(at("data: a\r\n\r\ndata: b\r\n")).toBe(11);
    expect(at("data: a\r\rdata")).toBe(9);
    // A final CR may be half of a CRLF: not a boundary until the next byte is known.
    expect(at("data: a\r\n\r")).toBe(0);
    expect(at("data: a\n\ndata: b\r\r")).toBe(9);
    expect(at("data: a\n")).toBe(0);
    expect(at("data: a\r\n")).toBe(0);
    expect(at("")).toBe(0);
    expect(at('{"a":1}\n{"b"', "ndjson")).toBe(8);
    expect(at('{"a":1}', "ndjson")).toBe(0);
  });
});
