#!/usr/bin/env node
// A minimal, fast OpenAI-compatible server for the benchmarks: fixed small completions and
// fixed-length SSE streams, so what is measured is the proxy path, not inference.
// Usage: node bench/lib/upstream.mjs --port N [--model-id ID] [--chunks 16] [--chunk-delay-ms 0]
import { createServer } from "node:http";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
    "model-id": { type: "string", default: "bench" },
    chunks: { type: "string", default: "16" },
    "chunk-delay-ms": { type: "string", default: "0" },
    model: { type: "string" },
  },
  strict: false,
});
const chunks = Number(values.chunks);
const delay = Number(values["chunk-delay-ms"]);
const model = values["model-id"];

const completion = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1700000000,
  model,
  choices: [{ index: 0, message: { role: "assistant", content: "Hello from the benchmark upstream.", refusal: null }, logprobs: null, finish_reason: "stop" }],
  usage: { prompt_tokens: 8, completion_tokens: 8, total_tokens: 16 },
});
const chunk = (content, finish = null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1700000000, model, choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }] })}\n\n`;

const server = createServer((req, res) => {
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ object: "list", data: [{ id: model, object: "model", created: 1700000000, owned_by: "bench" }] }));
    return;
  }
  const body = [];
  req.on("data", (d) => body.push(d));
  req.on("end", async () => {
    let stream = false;
    try {
      stream = JSON.parse(Buffer.concat(body).toString()).stream === true;
    } catch {
      res.writeHead(400, { "content-type": "application/json" });
      res.end('{"error":{"message":"bad json","type":"invalid_request_error","param":null,"code":null}}');
      return;
    }
    if (!stream) {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(completion) });
      res.end(completion);
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    for (let i = 0; i < chunks; i++) {
      if (res.destroyed) return;
      res.write(chunk(`tok${i} `));
      if (delay) await new Promise((r) => setTimeout(r, delay));
    }
    res.write(chunk(null, "stop"));
    res.end("data: [DONE]\n\n");
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), values.host, () => {
  // Same readiness convention as drover's engines, so the bench can read the port.
  console.log(`DROVER_ENGINE_READY ${JSON.stringify({ port: server.address().port })}`);
});
process.on("SIGTERM", () => process.exit(0));
