#!/usr/bin/env node
// Closed-loop load generator, run as its own process: `concurrency` workers each send the next
// request as soon as the previous one completed, for `duration` seconds. Every response is
// checked (status 2xx; streams must end with data: [DONE]); any failure is reported and makes
// the benchmark fail instead of printing a figure. Prints one JSON summary line on stdout.
// autocannon does not measure time to first chunk or check stream completion, hence this tool.
import { parseArgs } from "node:util";
import { Agent, request } from "undici";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    concurrency: { type: "string", default: "16" },
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    body: { type: "string" },
    header: { type: "string", multiple: true, default: [] },
    stream: { type: "boolean", default: false },
    // Stop after this many measured requests instead of after `duration` (0 = use duration).
    total: { type: "string", default: "0" },
  },
});
const concurrency = Number(values.concurrency);
const headers = { "content-type": "application/json" };
for (const h of values.header) {
  const i = h.indexOf(":");
  headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
}
const agent = new Agent({ connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
const latencies = [];
const firstChunk = [];
let errors = 0;
const errorSamples = [];
let measuring = false;
let stop = false;

async function one() {
  const t0 = performance.now();
  const res = await request(values.url, { method: "POST", headers, body: values.body, dispatcher: agent });
  let first = null;
  let tail = "";
  for await (const chunk of res.body) {
    if (first === null) first = performance.now() - t0;
    tail = (tail + chunk.toString()).slice(-64);
  }
  const total = performance.now() - t0;
  const ok = res.statusCode >= 200 && res.statusCode < 300 && (!values.stream || tail.trimEnd().endsWith("data: [DONE]"));
  if (!measuring) return;
  if (!ok) {
    errors++;
    if (errorSamples.length < 3) errorSamples.push(`${res.statusCode} ${tail}`);
    return;
  }
  latencies.push(total);
  firstChunk.push(first ?? total);
}

const total = Number(values.total);
let finishTotal;
const totalReached = new Promise((r) => (finishTotal = r));

async function worker() {
  while (!stop) {
    if (total > 0 && measuring && latencies.length + errors >= total) {
      finishTotal();
      break;
    }
    try {
      await one();
    } catch (err) {
      if (measuring) {
        errors++;
        if (errorSamples.length < 3) errorSamples.push(String(err?.code ?? err?.message ?? err));
      }
    }
  }
}

const pct = (arr, p) => {
  if (!arr.length) return null;
  const s = [...arr].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const workers = Array.from({ length: concurrency }, worker);
await new Promise((r) => setTimeout(r, Number(values.warmup) * 1000));
measuring = true;
const start = performance.now();
await (total > 0 ? totalReached : new Promise((r) => setTimeout(r, Number(values.duration) * 1000)));
measuring = false;
const elapsed = (performance.now() - start) / 1000;
stop = true;
await Promise.allSettled(workers);
await agent.close();
console.log(
  JSON.stringify({
    requests: latencies.length,
    errors,
    errorSamples,
    rps: latencies.length / elapsed,
    mean: latencies.length ? latencies.reduce((a, b) => a + b, 0) / latencies.length : null,
    p50: pct(latencies, 50),
    p90: pct(latencies, 90),
    p99: pct(latencies, 99),
    firstChunkP50: pct(firstChunk, 50),
    firstChunkP99: pct(firstChunk, 99),
  }),
);
