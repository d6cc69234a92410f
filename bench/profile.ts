// Where the time goes: router and node run under V8's CPU profiler (as with --cpu-prof) while the overhead bench's load
// (concurrency 64, non-streaming, then streaming, each on a fresh fleet) goes through them; each
// process's self time is summed by function and by module. `npm run bench -- profile`.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BENCH_MODEL, startBenchFleet } from "./lib/drover-fleet.js";
import { summarizeProfile, type ProfileSummary } from "./lib/cpu-profile.js";
import { assertClean, fmt, runLoad } from "./lib/processes.js";
import { tempDir } from "../test/support/fleet.js";

const CONCURRENCY = 64;
const PRELOAD = fileURLToPath(new URL("./lib/cpu-prof-preload.mjs", import.meta.url));
const profiled = (dir: string) => ({ NODE_OPTIONS: `--import ${PRELOAD}`, BENCH_PROFILE_DIR: dir });

function profileOf(dir: string, pid: number): string {
  const file = readdirSync(dir).find((f) => f === `CPU.${pid}.cpuprofile`);
  if (!file) throw new Error(`no CPU profile for process ${pid} in ${dir}`);
  return join(dir, file);
}

/** CPU seconds (user + system) a process has used, from /proc: unlike wall-clock samples, not inflated when a loaded machine preempts it. */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
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
    const cpu0 = { router: cpuSecondsOf(pids.router), node: cpuSecondsOf(pids.node) };
    const load = await runLoad({ url: `${fleet.router.url}/v1/chat/completions`, body, concurrency: CONCURRENCY, durationS, stream, headers: fleet.headers });
    const cpu = { router: cpuSecondsOf(pids.router) - cpu0.router, node: cpuSecondsOf(pids.node) - cpu0.node };
    await fleet.stop();
    assertClean(`profile stream=${stream}`, load);
    const mode = stream ? "streaming" : "non-streaming";
    // The load generator's 1 s warm-up ran at about the measured rate.
    const served = load.rps * (durationS + 1);
    const perRequestUs = { router: (cpu.router / served) * 1e6, node: (cpu.node / served) * 1e6 };
    result[`cpu-${mode}`] = { served, ...perRequestUs };
    out.push(`#### ${mode}, concurrency ${CONCURRENCY}: ${fmt(load.rps, 0)} req/s, p50 ${fmt(load.p50)} ms`, "");
    out.push(
      `CPU per request (user + system, from /proc, profiler running): router ${fmt(perRequestUs.router, 0)} µs, node ${fmt(perRequestUs.node, 0)} µs`,
      "",
    );
    for (const proc of ["router", "node"] as const) {
      const summary: ProfileSummary = summarizeProfile(profileOf(proc === "router" ? routerDir : nodeDir, pids[proc]));
      result[`${proc}-${mode}`] = summary;
      out.push(
        `${proc}: ${fmt(summary.busyMs / 1000, 1)} s busy, ${fmt(summary.idleMs / 1000, 1)} s idle (from the start of the load, 1 s warm-up included, to exit)`,
        "",
      );
      out.push("| self % | self ms | function |", "|---:|---:|---|");
      for (const f of summary.functions) out.push(`| ${fmt(f.share * 100, 1)} | ${fmt(f.selfMs, 0)} | \`${f.name}\` |`);
      out.push("", "| self % | self ms | module |", "|---:|---:|---|");
      for (const m of summary.modules.slice(0, 10)) out.push(`| ${fmt(m.share * 100, 1)} | ${fmt(m.selfMs, 0)} | \`${m.name}\` |`);
      out.push("");
    }
  }
  return { result, markdown: out.join("\n") };
}
