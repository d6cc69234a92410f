// Overhead: the same fast upstream measured directly, through drover (router → node → engine)
// and through nginx, at several concurrencies, non-streaming and streaming.
import { startNginx } from "./lib/nginx.js";
import { BENCH_MODEL, startBenchFleet } from "./lib/drover-fleet.js";
import { assertClean, fmt, freePort, runLoad, startUpstream, type LoadResult } from "./lib/processes.js";

export const CONCURRENCIES = [1, 16, 64, 256];

export interface OverheadRow {
  path: "direct" | "drover" | "nginx";
  stream: boolean;
  concurrency: number;
  result: LoadResult;
}

export async function runOverhead(durationS: number): Promise<{ rows: OverheadRow[]; markdown: string }> {
  const upstream = await startUpstream(["--chunks", "16"]);
  const nginx = await startNginx(upstream.port, await freePort());
  const fleet = await startBenchFleet(["--chunks", "16"]);
  const rows: OverheadRow[] = [];
  try {
    const targets = [
      { path: "direct" as const, url: `http://127.0.0.1:${upstream.port}/v1/chat/completions`, headers: {} },
      { path: "nginx" as const, url: `${nginx.url}/v1/chat/completions`, headers: {} },
      { path: "drover" as const, url: `${fleet.router.url}/v1/chat/completions`, headers: fleet.headers },
    ];
    for (const stream of [false, true]) {
      for (const concurrency of CONCURRENCIES) {
        for (const t of targets) {
          const body = { model: BENCH_MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 16, stream };
          const result = await runLoad({ url: t.url, body, concurrency, durationS, stream, headers: t.headers });
          assertClean(`${t.path} c=${concurrency} stream=${stream}`, result);
          rows.push({ path: t.path, stream, concurrency, result });
          process.stderr.write(
            `  overhead ${t.path.padEnd(6)} stream=${String(stream).padEnd(5)} c=${String(concurrency).padEnd(3)} ${fmt(result.rps, 0)} req/s p50 ${fmt(result.p50)} ms\n`,
          );
        }
      }
    }
  } finally {
    await fleet.stop();
    await nginx.stop();
    upstream.stop();
  }
  return { rows, markdown: overheadMarkdown(rows) };
}

function overheadMarkdown(rows: OverheadRow[]): string {
  const find = (path: string, stream: boolean, c: number) => rows.find((r) => r.path === path && r.stream === stream && r.concurrency === c)!.result;
  const out: string[] = [];
  for (const stream of [false, true]) {
    out.push(`#### ${stream ? "Streaming (16 SSE chunks + [DONE])" : "Non-streaming"}`, "");
    out.push(
      "| concurrency | path | req/s | mean ms | p50 ms | p90 ms | p99 ms | first chunk p50 ms | first chunk p99 ms |",
      "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const c of CONCURRENCIES) {
      for (const path of ["direct", "nginx", "drover"]) {
        const r = find(path, stream, c);
        out.push(
          `| ${c} | ${path} | ${fmt(r.rps, 0)} | ${fmt(r.mean)} | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p99)} | ${fmt(r.firstChunkP50)} | ${fmt(r.firstChunkP99)} |`,
        );
      }
    }
    out.push("");
    out.push("| concurrency | drover added mean ms | drover added p50 ms | drover added p99 ms | drover / nginx throughput |", "|---:|---:|---:|---:|---:|");
    for (const c of CONCURRENCIES) {
      const d = find("direct", stream, c);
      const v = find("drover", stream, c);
      const n = find("nginx", stream, c);
      out.push(`| ${c} | ${fmt(v.mean! - d.mean!)} | ${fmt(v.p50! - d.p50!)} | ${fmt(v.p99! - d.p99!)} | ${fmt(v.rps / n.rps)} |`);
    }
    out.push("");
  }
  return out.join("\n");
}
