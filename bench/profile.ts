// Where the time goes: router and node run under V8's CPU profiler (as with --cpu-prof) while the overhead bench's load
// (concurrency 64, non-streaming, then streaming, each on a fresh fleet) goes through them; each
// process's self time is summed by function and by module. `npm run bench -- profile`.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BENCH_MODEL, startBenchFleet } from "./lib/drover-fleet.js";
import { summarizeProfile, type ProfileSummary } from "./lib/cpu-profile.js";
import { assertClean, fmt, runLoad } from "./lib/processes.js";
import { tempDir } from "../test/support/fleet.js";

const CONCURRENCY = 64;
const PRELOAD = fileURLToPath(new URL("./lib/cpu-prof-preload.mjs", import.meta.url));
const profiled = (dir: string) => ({ NODE_OPTIONS: `--import ${PRELOAD}`, DROVER_BENCH_PROFILE_DIR: dir });

function profileOf(dir: string, pid: number): string {
  const file = readdirSync(dir).find((f) => f === `CPU.${pid}.cpuprofile`);
  if (!file) throw new Error(`no CPU profile for process ${pid} in ${dir}`);
  return join(dir, file);
}

export async function runProfile(durationS: number): Promise<{ result: Record<string, unknown>; markdown: string }> {
  const result: Record<string, unknown> = {};
  const out: string[] = [];
  for (const stream of [false, true]) {
    const routerDir = tempDir("prof-router");
    const nodeDir = tempDir("prof-node");
    const fleet = await startBenchFleet(["--chunks", "16"], [], {
      router: profiled(routerDir),
      node: profiled(nodeDir),
    });
    const pids = { router: fleet.router.child.pid!, node: fleet.node.child.pid! };
    const body = { model: BENCH_MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 16, stream };
    process.kill(pids.router, "SIGUSR2");
    process.kill(pids.node, "SIGUSR2");
    const load = await runLoad({ url: `${fleet.router.url}/v1/chat/completions`, body, concurrency: CONCURRENCY, durationS, stream, headers: fleet.headers });
    await fleet.stop();
    assertClean(`profile stream=${stream}`, load);
    const mode = stream ? "streaming" : "non-streaming";
    out.push(`#### ${mode}, concurrency ${CONCURRENCY}: ${fmt(load.rps, 0)} req/s, p50 ${fmt(load.p50)} ms`, "");
    for (const proc of ["router", "node"] as const) {
      const summary: ProfileSummary = summarizeProfile(profileOf(proc === "router" ? routerDir : nodeDir, pids[proc]));
      result[`${proc}-${mode}`] = summary;
      out.push(`${proc}: ${fmt(summary.busyMs / 1000, 1)} s busy, ${fmt(summary.idleMs / 1000, 1)} s idle (from the start of the load, 1 s warm-up included, to exit)`, "");
      out.push("| self % | self ms | function |", "|---:|---:|---|");
      for (const f of summary.functions) out.push(`| ${fmt(f.share * 100, 1)} | ${fmt(f.selfMs, 0)} | \`${f.name}\` |`);
      out.push("", "| self % | self ms | module |", "|---:|---:|---|");
      for (const m of summary.modules.slice(0, 10)) out.push(`| ${fmt(m.share * 100, 1)} | ${fmt(m.selfMs, 0)} | \`${m.name}\` |`);
      out.push("");
    }
  }
  return { result, markdown: out.join("\n") };
}
