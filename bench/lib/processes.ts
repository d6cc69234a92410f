// Small process helpers for the benchmarks: the load generator and the fast upstream run as
// processes of their own, so their CPU is not the router's.
import { spawn, execFile } from "node:child_process";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
export const UPSTREAM_SCRIPT = join(here, "upstream.mjs");
const LOADGEN_SCRIPT = join(here, "loadgen.mjs");

export interface LoadResult {
  requests: number;
  errors: number;
  errorSamples: string[];
  rps: number;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  firstChunkP50: number | null;
  firstChunkP99: number | null;
}

export async function runLoad(opts: {
  url: string;
  body: object;
  concurrency: number;
  durationS: number;
  stream: boolean;
  headers?: Record<string, string>;
  total?: number;
}): Promise<LoadResult> {
  const args = [
    LOADGEN_SCRIPT,
    "--url",
    opts.url,
    "--concurrency",
    String(opts.concurrency),
    "--duration",
    String(opts.durationS),
    "--body",
    JSON.stringify(opts.body),
  ];
  if (opts.total) args.push("--total", String(opts.total));
  if (opts.stream) args.push("--stream");
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push("--header", `${k}: ${v}`);
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split("\n").pop()!) as LoadResult;
}

export function startUpstream(extra: string[] = []): Promise<{ port: number; stop(): void }> {
  const child = spawn(process.execPath, [UPSTREAM_SCRIPT, "--port", "0", ...extra], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      const m = /DROVER_ENGINE_READY (\{.*\})/.exec(d.toString());
      if (m) resolve({ port: (JSON.parse(m[1]!) as { port: number }).port, stop: () => child.kill("SIGTERM") });
    });
    child.once("exit", (code) => reject(new Error(`upstream exited with ${code}`)));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Resident set size of a process in bytes (Linux /proc). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return kb * 1024;
}

export class BenchFailure extends Error {}

export function assertClean(what: string, r: LoadResult): void {
  if (r.errors > 0 || r.requests === 0) {
    throw new BenchFailure(`${what}: ${r.errors} failed responses out of ${r.requests + r.errors} (${r.errorSamples.join(" | ")})`);
  }
}

export const fmt = (n: number | null, digits = 2) => (n === null || Number.isNaN(n) ? "—" : n.toFixed(digits));
