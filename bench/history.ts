// Request history benchmarks.
//  history:   10,000 recorded requests (7 days, 4 models, 6 nodes, 3 keys, some errors) in a real
//             router's database (SQLite, and PostgreSQL where it is installed); GET /api/requests
//             with filters timed over HTTP, as the dashboard calls it.
//  recording: the proxy path with history recording off (--history-retention-days 0), on (the
//             default) and on with body capture: what recording adds to a request's latency.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adminToken, AUTH_HEADERS, startRouter, type DroverProcess } from "../test/support/fleet.js";
import { startPostgres } from "../test/support/postgres.js";
import { historyId } from "../src/router/history/history-recorder.js";
import type { HistoryRecord } from "../src/router/store/request-history.js";
import { openStore } from "../src/router/store/router-store.js";
import { BENCH_MODEL, startBenchFleet } from "./lib/drover-fleet.js";
import { assertClean, BenchFailure, fmt, runLoad, type LoadResult } from "./lib/processes.js";

const RECORDS = 10_000;
const RUNS = 30;

function seedRecords(now: number): HistoryRecord[] {
  const models = ["gpt-oss:20b", "gpt-oss:120b", "qwen3-coder:30b", "gpt-oss-safeguard:20b"];
  const rows: HistoryRecord[] = [];
  for (let i = 0; i < RECORDS; i++) {
    const startedAt = now - Math.floor((i / RECORDS) * 7 * 86_400_000);
    const status = i % 50 === 0 ? 503 : i % 37 === 0 ? 502 : 200;
    rows.push({
      id: historyId(startedAt),
      requestId: `req_bench_${i}`,
      startedAt,
      api: i % 4 === 0 ? "ollama" : "openai",
      endpoint: i % 4 === 0 ? "/api/chat" : "/v1/chat/completions",
      model: models[i % models.length]!,
      stream: i % 2 === 0,
      clientIp: `10.0.${i % 7}.${i % 250}`,
      keyName: ["team-a", "team-b", "ci"][i % 3]!,
      nodeId: `node-${i % 6}`,
      nodeName: `gpu-${i % 6}`,
      status,
      error: status === 200 ? null : "upstream_error",
      attempts: 1,
      queueWaitMs: i % 13,
      firstByteMs: 20 + (i % 100),
      durationMs: 200 + (i % 1000),
      promptTokens: 50 + (i % 400),
      completionTokens: 100 + (i % 900),
      traceId: null,
    });
  }
  return rows;
}

interface QueryRow {
  database: string;
  query: string;
  matched: number;
  p50: number;
  p95: number;
  max: number;
}

async function timeQueries(database: string, router: DroverProcess, now: number): Promise<QueryRow[]> {
  const headers = { authorization: `Bearer ${await adminToken(router.url)}` };
  const day = 86_400_000;
  const queries: [string, string][] = [
    ["newest 50, no filter", ""],
    ["model", "model=qwen3-coder:30b"],
    ["node + status class", "node=gpu-3&status=2xx"],
    ["errors only", "status=error"],
    ["key + last 24 h", `key=team-b&from=${now - day}`],
    ["model + node + key + 2-day range", `model=gpt-oss:20b&node=gpu-0&key=team-a&from=${now - 4 * day}&to=${now - 2 * day}`],
    ["page 100 (offset 5000)", "offset=5000&limit=50"],
    ["SQL metacharacters as data", `model=${encodeURIComponent("x' OR '1'='1")}`],
  ];
  const rows: QueryRow[] = [];
  for (const [name, q] of queries) {
    const times: number[] = [];
    let matched = 0;
    for (let i = 0; i < RUNS + 3; i++) {
      const t0 = performance.now();
      const res = await fetch(`${router.url}/api/requests?${q}`, { headers });
      const body = (await res.json()) as { total: number };
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new BenchFailure(`history ${database} ${name}: HTTP ${res.status}`);
      matched = body.total;
      if (i >= 3) times.push(ms); // the first runs warm caches and connections
    }
    times.sort((x, y) => x - y);
    rows.push({ database, query: name, matched, p50: times[Math.floor(times.length / 2)]!, p95: times[Math.floor(times.length * 0.95)]!, max: times[times.length - 1]! });
  }
  // The export of every record, once.
  const t0 = performance.now();
  const csv = await (await fetch(`${router.url}/api/requests/export?format=csv`, { headers })).text();
  const ms = performance.now() - t0;
  rows.push({ database, query: "CSV export of all records", matched: csv.trimEnd().split("\r\n").length - 1, p50: ms, p95: ms, max: ms });
  return rows;
}

/** Seeds a fresh database, starts a router on it, times the queries. */
async function queryBench(database: "sqlite" | "postgres", databaseUrl: string | null): Promise<QueryRow[]> {
  const dataDir = mkdtempSync(join(tmpdir(), "drover-bench-history-"));
  const now = Date.now();
  const store = await openStore({ dataDir, databaseUrl });
  await store.requests.insertMany(seedRecords(now));
  await store.close();
  const router = await startRouter(["--data-dir", dataDir, "--log-level", "warn", ...(databaseUrl ? ["--database-url", databaseUrl] : [])]);
  try {
    const rows = await timeQueries(database, router, now);
    if (rows[0]!.matched !== RECORDS) throw new BenchFailure(`history ${database}: expected ${RECORDS} records, the router lists ${rows[0]!.matched}`);
    return rows;
  } finally {
    await router.stop();
  }
}

export async function runHistoryQueries(): Promise<{ rows: QueryRow[]; markdown: string }> {
  const rows = await queryBench("sqlite", null);
  let pgNote = "";
  try {
    const pg = await startPostgres();
    try {
      rows.push(...(await queryBench("postgres", await pg.createDatabase())));
    } finally {
      await pg.stop();
    }
  } catch (err) {
    if (err instanceof BenchFailure) throw err;
    pgNote = `\nPostgreSQL skipped: ${(err as Error).message}\n`;
  }
  const out = [
    `GET /api/requests over HTTP (list of 50 + total count), ${RECORDS.toLocaleString("en")} records over 7 days; ${RUNS} timed runs per query after 3 warm-up runs.`,
    "",
    "| database | query | matching records | p50 ms | p95 ms | max ms |",
    "|---|---|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.database} | ${r.query} | ${r.matched} | ${fmt(r.p50)} | ${fmt(r.p95)} | ${fmt(r.max)} |`),
    pgNote,
  ];
  return { rows, markdown: out.join("\n") };
}

interface RecordingRow {
  mode: "off" | "on" | "on + bodies";
  stream: boolean;
  concurrency: number;
  result: LoadResult;
}

const MODES: { mode: RecordingRow["mode"]; args: string[] }[] = [
  { mode: "off", args: ["--history-retention-days", "0"] },
  { mode: "on", args: [] },
  { mode: "on + bodies", args: ["--history-body-bytes", "4096"] },
];

export async function runRecordingOverhead(durationS: number): Promise<{ rows: RecordingRow[]; markdown: string }> {
  const rows: RecordingRow[] = [];
  for (const { mode, args } of MODES) {
    const fleet = await startBenchFleet(["--chunks", "16"], args);
    try {
      for (const stream of [false, true]) {
        for (const concurrency of [1, 16, 64]) {
          const body = { model: BENCH_MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 16, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) };
          const result = await runLoad({ url: `${fleet.router.url}/v1/chat/completions`, body, concurrency, durationS, stream, headers: AUTH_HEADERS });
          assertClean(`recording ${mode} c=${concurrency} stream=${stream}`, result);
          rows.push({ mode, stream, concurrency, result });
          process.stderr.write(`  recording ${mode.padEnd(11)} stream=${String(stream).padEnd(5)} c=${String(concurrency).padEnd(3)} ${fmt(result.rps, 0)} req/s p50 ${fmt(result.p50)} ms p99 ${fmt(result.p99)} ms\n`);
        }
      }
      if (mode !== "off") {
        // Recording must really have happened for the comparison to mean anything.
        await new Promise((r) => setTimeout(r, 500));
        const headers = { authorization: `Bearer ${await adminToken(fleet.router.url)}` };
        const { total } = (await (await fetch(`${fleet.router.url}/api/requests?limit=1`, { headers })).json()) as { total: number };
        const sent = rows.filter((r) => r.mode === mode).reduce((n, r) => n + r.result.requests, 0);
        if (total < sent) throw new BenchFailure(`recording ${mode}: ${sent} requests sent but ${total} recorded`);
      }
    } finally {
      await fleet.stop();
    }
  }
  const out = [
    `The fast upstream behind router → node, ${durationS} s per cell; each mode on a fresh router (SQLite). "added" is against recording off.`,
    "",
    "| stream | concurrency | recording | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms |",
    "|---|---:|---|---:|---:|---:|---:|---:|",
  ];
  for (const stream of [false, true]) {
    for (const concurrency of [1, 16, 64]) {
      const off = rows.find((r) => r.mode === "off" && r.stream === stream && r.concurrency === concurrency)!.result;
      for (const { mode } of MODES) {
        const r = rows.find((x) => x.mode === mode && x.stream === stream && x.concurrency === concurrency)!.result;
        out.push(`| ${stream} | ${concurrency} | ${mode} | ${fmt(r.rps, 0)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${mode === "off" ? "" : fmt(r.p50! - off.p50!)} | ${mode === "off" ? "" : fmt(r.p99! - off.p99!)} |`);
      }
    }
  }
  return { rows, markdown: out.join("\n") + "\n" };
}
