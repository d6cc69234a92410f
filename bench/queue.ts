// Queue admission: 5,000 requests at once while no node is ready. The 1,024 admitted wait; the
// rest must get 503 queue_full at once. Then a node becomes ready and the queue drains; none lost.
import { Agent, request } from "undici";
import { BENCH_MODEL, benchCatalog } from "./lib/drover-fleet.js";
import { BenchFailure, fmt, UPSTREAM_SCRIPT } from "./lib/processes.js";
import { AUTH_HEADERS, startNode, startRouter, waitForReady } from "../test/support/fleet.js";

export async function runQueue(): Promise<{ result: Record<string, number>; markdown: string }> {
  const total = 5000;
  const limit = 1024;
  const router = await startRouter(["--catalog", benchCatalog(), "--log-level", "warn"]);
  const agent = new Agent({ connections: total + 10, headersTimeout: 600_000, bodyTimeout: 600_000 });
  const url = `${router.url}/v1/chat/completions`;
  const body = JSON.stringify({ model: BENCH_MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 });
  try {
    const t0 = performance.now();
    const calls = Array.from({ length: total }, async () => {
      const sent = performance.now();
      const res = await request(url, { method: "POST", headers: { "content-type": "application/json", ...AUTH_HEADERS }, body, dispatcher: agent });
      const text = await res.body.text();
      const done = performance.now();
      return {
        status: res.statusCode,
        code: res.statusCode === 503 ? (JSON.parse(text) as { error: { code: string } }).error.code : null,
        latency: done - sent,
        at: done - t0,
      };
    });
    const settled: { status: number; code: string | null; latency: number; at: number }[] = [];
    for (const c of calls) void c.then((r) => settled.push(r));
    const overflowCount = total - limit;
    while (settled.length < overflowCount) await new Promise((r) => setTimeout(r, 5));
    const overflow = settled.slice(0, overflowCount);
    if (!overflow.every((r) => r.status === 503 && r.code === "queue_full")) throw new BenchFailure("queue: an early answer was not 503 queue_full");
    const lat = overflow.map((r) => r.latency).sort((a, b) => a - b);
    const allOverflowAt = Math.max(...overflow.map((r) => r.at));

    const nodeStart = performance.now();
    const template = `${process.execPath} ${UPSTREAM_SCRIPT} --port {port} --model {model} --model-id ${BENCH_MODEL}`;
    const node = await startNode(router.url, "queue-node", ["--engine", "command", "--engine-command", template, "--slots", "64", "--log-level", "warn"]);
    await waitForReady(router.url, [BENCH_MODEL], 1);
    const readyAt = performance.now();
    const results = await Promise.all(calls);
    const drainedAt = performance.now();
    await node.stop();
    const ok = results.filter((r) => r.status === 200).length;
    const refused = results.filter((r) => r.status === 503).length;
    if (ok !== limit || refused !== total - limit)
      throw new BenchFailure(`queue: expected ${limit} x 200 and ${total - limit} x 503, got ${ok} and ${refused} (lost ${total - ok - refused})`);
    const result = {
      sent: total,
      admitted: ok,
      refused,
      lost: total - ok - refused,
      overflowLatencyP50Ms: lat[Math.floor(lat.length * 0.5)]!,
      overflowLatencyP99Ms: lat[Math.floor(lat.length * 0.99)]!,
      overflowLatencyMaxMs: lat[lat.length - 1]!,
      allOverflowAnsweredMs: allOverflowAt,
      nodeStartToReadyMs: readyAt - nodeStart,
      drainAfterReadyMs: drainedAt - readyAt,
    };
    const markdown = [
      "| sent at once | admitted (200) | refused (503 queue_full) | lost | 503 latency p50 / p99 / max ms | all 503s answered after ms | drain of 1,024 after node ready ms |",
      "|---:|---:|---:|---:|---:|---:|---:|",
      `| ${total} | ${ok} | ${refused} | ${result.lost} | ${fmt(result.overflowLatencyP50Ms)} / ${fmt(result.overflowLatencyP99Ms)} / ${fmt(result.overflowLatencyMaxMs)} | ${fmt(allOverflowAt, 0)} | ${fmt(result.drainAfterReadyMs, 0)} |`,
      "",
    ].join("\n");
    return { result, markdown };
  } finally {
    await agent.close();
    await router.stop();
  }
}
