// Router memory: resident set and V8 heap idle, with 1,000 open streams, and after 10,000 and
// 100,000 non-streamed requests (growth between the last two is what traffic leaves behind).
import { Agent, request } from "undici";
import { BENCH_MODEL, startBenchFleet } from "./lib/drover-fleet.js";
import { assertClean, BenchFailure, fmt, rssOf, runLoad } from "./lib/processes.js";

const MB = 1024 * 1024;

/** The router's V8 heap in use, from its Prometheus default metrics (public /metrics). */
async function heapUsedOf(routerUrl: string): Promise<number> {
  const text = await (await fetch(`${routerUrl}/metrics`)).text();
  return Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? Number.NaN);
}

export async function runMemory(requests: number): Promise<{ result: Record<string, number>; markdown: string }> {
  // Streams of 200 chunks, 50 ms apart: ten seconds each, long enough to hold 1,000 open.
  const fleet = await startBenchFleet(["--chunks", "200", "--chunk-delay-ms", "50"]);
  const pid = fleet.router.child.pid!;
  const sample = async () => ({ rss: (await rssOf(pid)) / MB, heap: (await heapUsedOf(fleet.router.url)) / MB });
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const idle = await sample();

    const agent = new Agent({ connections: 1100, headersTimeout: 60_000, bodyTimeout: 60_000 });
    const body = JSON.stringify({ model: BENCH_MODEL, messages: [{ role: "user", content: "hi" }], stream: true });
    let open = 0;
    let completed = 0;
    const streams = Array.from({ length: 1000 }, async () => {
      const res = await request(`${fleet.router.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...fleet.headers }, body, dispatcher: agent });
      if (res.statusCode !== 200) throw new BenchFailure(`memory: stream answered ${res.statusCode}`);
      open++;
      let tail = "";
      for await (const chunk of res.body) tail = (tail + chunk.toString()).slice(-32);
      if (!tail.trimEnd().endsWith("data: [DONE]")) throw new BenchFailure("memory: a stream did not end with [DONE]");
      completed++;
    });
    while (open < 1000) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1000));
    const withStreams = await sample();
    await Promise.all(streams);
    await agent.close();
    if (completed !== 1000) throw new BenchFailure(`memory: ${completed} of 1000 streams completed`);

    // First a tenth of the requests, then the rest: RSS after all of them should be within 15 %
    // of RSS after the first tenth (no growth with traffic).
    const load = (total: number) =>
      runLoad({ url: `${fleet.router.url}/v1/chat/completions`, body: { model: BENCH_MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 }, concurrency: 64, durationS: 600, stream: false, headers: fleet.headers, total });
    const first = Math.round(requests / 10);
    const early = await load(first);
    assertClean(`memory: ${first} requests`, early);
    await new Promise((r) => setTimeout(r, 3000));
    const afterFirst = await sample();
    const rest = await load(requests - first);
    assertClean(`memory: ${requests} requests`, rest);
    await new Promise((r) => setTimeout(r, 3000));
    const after = await sample();
    const result = {
      idleMb: idle.rss,
      idleHeapMb: idle.heap,
      with1000StreamsMb: withStreams.rss,
      afterFirstMb: afterFirst.rss,
      afterFirstHeapMb: afterFirst.heap,
      afterAllMb: after.rss,
      afterAllHeapMb: after.heap,
      requests,
      rps: rest.rps,
    };
    const n = (k: number) => k.toLocaleString("en");
    const markdown = [
      `| | idle | with 1,000 open streams | after ${n(first)} requests | after ${n(requests)} requests | growth ${n(first)} → ${n(requests)} |`,
      "|---|---:|---:|---:|---:|---:|",
      `| router RSS MB | ${fmt(idle.rss, 1)} | ${fmt(withStreams.rss, 1)} | ${fmt(afterFirst.rss, 1)} | ${fmt(after.rss, 1)} | ${fmt(((after.rss - afterFirst.rss) / afterFirst.rss) * 100, 1)} % |`,
      `| router V8 heap used MB | ${fmt(idle.heap, 1)} | ${fmt(withStreams.heap, 1)} | ${fmt(afterFirst.heap, 1)} | ${fmt(after.heap, 1)} | ${fmt(((after.heap - afterFirst.heap) / afterFirst.heap) * 100, 1)} % |`,
      "",
    ].join("\n");
    return { result, markdown };
  } finally {
    await fleet.stop();
  }
}
