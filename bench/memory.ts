// Router memory: resident set idle, with 1,000 open streams, and after 100,000 requests.
import { Agent, request } from "undici";
import { BENCH_MODEL, startBenchFleet } from "./lib/drover-fleet.js";
import { assertClean, BenchFailure, fmt, rssOf, runLoad } from "./lib/processes.js";

const MB = 1024 * 1024;

export async function runMemory(requests: number): Promise<{ result: Record<string, number>; markdown: string }> {
  // Streams of 200 chunks, 50 ms apart: ten seconds each, long enough to hold 1,000 open.
  const fleet = await startBenchFleet(["--chunks", "200", "--chunk-delay-ms", "50"]);
  const pid = fleet.router.child.pid!;
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const idle = await rssOf(pid);

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
    const withStreams = await rssOf(pid);
    await Promise.all(streams);
    await agent.close();
    if (completed !== 1000) throw new BenchFailure(`memory: ${completed} of 1000 streams completed`);

    const load = await runLoad({
      url: `${fleet.router.url}/v1/chat/completions`,
      body: { model: BENCH_MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 },
      concurrency: 64,
      durationS: 600,
      stream: false,
      headers: fleet.headers,
      total: requests,
    });
    assertClean("memory: 100k requests", load);
    await new Promise((r) => setTimeout(r, 3000));
    const after = await rssOf(pid);
    const result = { idleMb: idle / MB, with1000StreamsMb: withStreams / MB, after100kMb: after / MB, requests: load.requests, rps: load.rps };
    const markdown = [
      `| router RSS idle MB | with 1,000 open streams MB | after ${requests.toLocaleString("en")} requests MB | growth vs idle MB |`,
      "|---:|---:|---:|---:|",
      `| ${fmt(result.idleMb, 1)} | ${fmt(result.with1000StreamsMb, 1)} | ${fmt(result.after100kMb, 1)} | ${fmt(result.after100kMb - result.idleMb, 1)} |`,
      "",
    ].join("\n");
    return { result, markdown };
  } finally {
    await fleet.stop();
  }
}
