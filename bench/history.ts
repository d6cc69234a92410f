// Request history benchmarks.
//  history:   10,000 recorded requests (7 days, 4 models, 6 nodes, 3 keys, some errors) in a real
//             router's database (SQLite, and PostgreSQL where it is installed); GET /api/requests
//             with filters timed over HTTP, as the dashboard calls it.
//  recording: the proxy path with history recording off (--history-retention-days 0), on (the
//             default) and on with body capture: what recording adds to a request's latency.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance as perf } from "node:perf_hooks";
import pino from "pino";
import { HistoryRecorder, historyId } from "../src/router/history/history-recorder.js";
import type { RequestRecord } from "../src/protocol/request-record.js";
import { ResponseTap } from "../src/router/request-path/response-tap.js";
import type { HistoryRecord } from "../src/protocol/request-record.js";
import { openStore } from "../src/router/store/router-store.js";
import { adminToken, AUTH_HEADERS, startRouter, type DroverProcess } from "../test/support/fleet.js";
import { startPostgres } from "../test/support/postgres.js";
import { BENCH_MODEL, startBenchFleet, type BenchFleet } from "./lib/drover-fleet.js";
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
    rows.push({
      database,
      query: name,
      matched,
      p50: times[Math.floor(times.length / 2)]!,
      p95: times[Math.floor(times.length * 0.95)]!,
      max: times[times.length - 1]!,
    });
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

export async function runRecordingOverhead(
  durationS: number,
): Promise<{ rows: RecordingRow[]; markdown: string; cost: Awaited<ReturnType<typeof measureRecordingCost>> }> {
  // All three routers run at once and every cell measures the modes back to back, in rotating
  // order, REPS times (median kept): drift on a shared machine hits all modes alike.
  const REPS = 3;
  const cellS = Math.max(1, durationS / 2);
  const fleets: BenchFleet[] = [];
  try {
    for (const { args } of MODES) fleets.push(await startBenchFleet(["--chunks", "16"], args));
    const rows: RecordingRow[] = [];
    let turn = 0;
    for (const stream of [false, true]) {
      for (const concurrency of [1, 16, 64]) {
        const body = {
          model: BENCH_MODEL,
          messages: [{ role: "user", content: "hi" }],
          max_tokens: 16,
          stream,
          ...(stream ? { stream_options: { include_usage: true } } : {}),
        };
        const runs: LoadResult[][] = MODES.map(() => []);
        for (let rep = 0; rep < REPS; rep++) {
          for (let k = 0; k < MODES.length; k++) {
            const m = (k + turn) % MODES.length;
            const result = await runLoad({
              url: `${fleets[m]!.router.url}/v1/chat/completions`,
              body,
              concurrency,
              durationS: cellS,
              stream,
              headers: AUTH_HEADERS,
            });
            assertClean(`recording ${MODES[m]!.mode} c=${concurrency} stream=${stream}`, result);
            runs[m]!.push(result);
          }
          turn++;
        }
        MODES.forEach(({ mode }, m) => {
          const sorted = [...runs[m]!].sort((x, y) => x.p50! - y.p50!);
          const result = sorted[Math.floor(sorted.length / 2)]!;
          rows.push({ mode, stream, concurrency, result });
          process.stderr.write(
            `  recording ${mode.padEnd(11)} stream=${String(stream).padEnd(5)} c=${String(concurrency).padEnd(3)} ${fmt(result.rps, 0)} req/s p50 ${fmt(result.p50)} ms p99 ${fmt(result.p99)} ms\n`,
          );
        });
      }
    }
    // Recording must really have happened for the comparison to mean anything.
    await new Promise((r) => setTimeout(r, 1000));
    for (let m = 1; m < MODES.length; m++) {
      const url = fleets[m]!.router.url;
      const headers = { authorization: `Bearer ${await adminToken(url)}` };
      const { total } = (await (await fetch(`${url}/api/requests?limit=1`, { headers })).json()) as { total: number };
      if (total < 1000) throw new BenchFailure(`recording ${MODES[m]!.mode}: only ${total} requests recorded`);
    }
    const cost = await measureRecordingCost();
    const costTable = [
      "",
      "What recording costs the router's event loop per request (in-process, best of several rounds):",
      "",
      "| part | µs per request |",
      "|---|---:|",
      `| response tap, streamed response (17 SSE chunks with usage) | ${fmt(cost.tapUs)} |`,
      `| response tap with 4 KiB body capture | ${fmt(cost.tapCaptureUs)} |`,
      `| record + batch write, event loop | ${fmt(cost.mainUsPerRecord)} |`,
      `| batch write on the SQLite worker thread (not on the event loop) | ${fmt(cost.workerUsPerRecord)} |`,
      "",
    ];
    return { rows, markdown: recordingMarkdown(rows, cellS, REPS) + costTable.join("\n"), cost };
  } finally {
    await Promise.all(fleets.map((f) => f.stop()));
  }
}

/**
 * What recording costs the router's event loop, measured in-process: the response tap per
 * streamed response, and record + batch write per request (the SQLite statements themselves run
 * on the store's worker thread; their time is the "worker" column).
 */
export async function measureRecordingCost(): Promise<{ tapUs: number; tapCaptureUs: number; mainUsPerRecord: number; workerUsPerRecord: number }> {
  const sseChunk = (c: string) =>
    `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: BENCH_MODEL, choices: [{ index: 0, delta: { content: c }, finish_reason: null }], usage: null })}\n\n`;
  const parts = [
    ...Array.from({ length: 16 }, (_, i) => Buffer.from(sseChunk(`tok${i}`))),
    Buffer.from(
      `data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: 5, completion_tokens: 16, total_tokens: 21 } })}\n\ndata: [DONE]\n\n`,
    ),
  ];
  const tapCost = (capture: number) => {
    let best = Infinity;
    for (let round = 0; round < 5; round++) {
      const t0 = performance.now();
      for (let i = 0; i < 20_000; i++) {
        const tap = new ResponseTap("text/event-stream", capture);
        for (const p of parts) tap.chunk(p);
        tap.finish();
      }
      best = Math.min(best, ((performance.now() - t0) / 20_000) * 1000);
    }
    return best;
  };
  const tapUs = tapCost(0);
  const tapCaptureUs = tapCost(4096);

  const store = await openStore({ dataDir: mkdtempSync(join(tmpdir(), "drover-bench-rec-")) });
  const recorder = new HistoryRecorder(store.requests, pino({ level: "silent" }), { retentionMs: 1e12 });
  const finished = (i: number): RequestRecord => ({
    requestId: `r${i}`,
    startedAt: Date.now(),
    api: "openai",
    endpoint: "/v1/chat/completions",
    modelId: BENCH_MODEL,
    stream: true,
    clientIp: "127.0.0.1",
    keyName: "bootstrap",
    nodeId: "n",
    nodeName: "bench-node",
    status: 200,
    error: null,
    attempts: 1,
    queueWaitMs: 0,
    firstByteMs: 2,
    durationMs: 3,
    promptTokens: 5,
    completionTokens: 16,
    traceId: "0af7651916cd43dd8448eb211c80319c",
  });
  let main = Infinity;
  let worker = Infinity;
  try {
    for (let round = 0; round < 4; round++) {
      const before = perf.eventLoopUtilization();
      const t0 = performance.now();
      for (let i = 0; i < 10_000; i++) recorder.record(finished(i));
      await recorder.flush();
      const wall = performance.now() - t0;
      const busy = perf.eventLoopUtilization(before).active;
      main = Math.min(main, (busy / 10_000) * 1000);
      worker = Math.min(worker, ((wall - busy) / 10_000) * 1000);
    }
  } finally {
    await store.close();
  }
  return { tapUs, tapCaptureUs, mainUsPerRecord: main, workerUsPerRecord: worker };
}

function recordingMarkdown(rows: RecordingRow[], cellS: number, reps: number): string {
  const out = [
    `The fast upstream behind router → node (SQLite); three routers (recording off / on / on with 4 KiB body capture) measured back to back, ${reps} × ${cellS} s per mode and cell, median run by p50. "added" is against recording off.`,
    "",
    "| stream | concurrency | recording | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms |",
    "|---|---:|---|---:|---:|---:|---:|---:|",
  ];
  for (const stream of [false, true]) {
    for (const concurrency of [1, 16, 64]) {
      const off = rows.find((r) => r.mode === "off" && r.stream === stream && r.concurrency === concurrency)!.result;
      for (const { mode } of MODES) {
        const r = rows.find((x) => x.mode === mode && x.stream === stream && x.concurrency === concurrency)!.result;
        out.push(
          `| ${stream} | ${concurrency} | ${mode} | ${fmt(r.rps, 0)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${mode === "off" ? "" : fmt(r.p50! - off.p50!)} | ${mode === "off" ? "" : fmt(r.p99! - off.p99!)} |`,
        );
      }
    }
  }
  return out.join("\n") + "\n";
}
