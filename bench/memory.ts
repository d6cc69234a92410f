// Router memory: resident set and V8 heap idle, with 1,000 open streams, and after 10,000 and
// 100,000 non-streamed requests (growth between the last two is what traffic leaves behind), each
// as found and again after the router ran a full garbage collection (what it retains).
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import { BENCH_MODEL, startBenchFleet } from "./lib/drover-fleet.js";
import { assertClean, BenchFailure, fmt, rssOf, runLoad } from "./lib/processes.js";

const MB = 1024 * 1024;
const GC_PRELOAD = fileURLToPath(new URL("./lib/gc-preload.mjs", import.meta.url));

/** The router's V8 heap in use, from its Prometheus default metrics (public /metrics). */
async function heapUsedOf(routerUrl: string): Promise<number> {
  const text = await (await fetch(`${routerUrl}/metrics`)).text();
  return Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? Number.NaN);
}

export async function runMemory(requests: number): Promise<{ result: Record<string, number>; markdown: string }> {
  // Streams of 200 chunks, 50 ms apart: ten seconds each, long enough to hold 1,000 open.
  const fleet = await startBenchFleet(["--chunks", "200", "--chunk-delay-ms", "50"], [], {
    router: {
      NODE_OPTIONS: `--import ${GC_PRELOAD}`,
      ...(process.env.BENCH_HEAP_SNAPSHOT_DIR ? { BENCH_HEAP_SNAPSHOT_DIR: process.env.BENCH_HEAP_SNAPSHOT_DIR } : {}),
    },
  });
  const pid = fleet.router.child.pid!;
  const sample = async () => {
    const rss = (await rssOf(pid)) / MB;
    const heap = (await heapUsedOf(fleet.router.url)) / MB;
    process.kill(pid, "SIGUSR2");
    await new Promise((r) => setTimeout(r, 1000));
    return { rss, heap, rssGc: (await rssOf(pid)) / MB, heapGc: (await heapUsedOf(fleet.router.url)) / MB };
  };
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const idle = await sample();

    const agent = new Agent({ connections: 1100, headersTimeout: 60_000, bodyTimeout: 60_000 });
    const body = JSON.stringify({ model: BENCH_MODEL, messages: [{ role: "user", content: "hi" }], stream: true });
    let open = 0;
    let completed = 0;
    const streams = Array.from({ length: 1000 }, async () => {
      const res = await request(`${fleet.router.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...fleet.headers },
        body,
        dispatcher: agent,
      });
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
      runLoad({
        url: `${fleet.router.url}/v1/chat/completions`,
        body: { model: BENCH_MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 },
        concurrency: 64,
        durationS: 600,
        stream: false,
        headers: fleet.headers,
        total,
      });
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
      with1000StreamsMb: withStreams.rss,
      afterFirstMb: afterFirst.rss,
      afterAllMb: after.rss,
      idleGcMb: idle.rssGc,
      afterFirstGcMb: afterFirst.rssGc,
      afterAllGcMb: after.rssGc,
      idleHeapMb: idle.heapGc,
      afterFirstHeapMb: afterFirst.heapGc,
      afterAllHeapMb: after.heapGc,
      requests,
      rps: rest.rps,
    };
    const n = (k: number) => k.toLocaleString("en");
    const growth = (a: number, b: number) => `${fmt(((b - a) / a) * 100, 1)} %`;
    const row = (what: string, key: "rss" | "rssGc" | "heap" | "heapGc") =>
      `| ${what} | ${fmt(idle[key], 1)} | ${fmt(withStreams[key], 1)} | ${fmt(afterFirst[key], 1)} | ${fmt(after[key], 1)} | ${growth(afterFirst[key], after[key])} |`;
    const markdown = [
      `| | idle | with 1,000 open streams | after ${n(first)} requests | after ${n(requests)} requests | growth ${n(first)} → ${n(requests)} |`,
      "|---|---:|---:|---:|---:|---:|",
      row("router RSS MB", "rss"),
      row("router RSS after a full GC MB", "rssGc"),
      row("V8 heap used MB", "heap"),
      row("V8 heap used after a full GC MB", "heapGc"),
      "",
    ].join("\n");
    return { result, markdown };
  } finally {
    await fleet.stop();
  }
}
