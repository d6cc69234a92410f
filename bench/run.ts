// `npm run bench`: runs the benchmark sections, prints markdown tables and writes JSON under
// bench/results/. Any unexpected error response or incomplete stream fails the run.
// Usage: npm run bench [-- overhead queue memory inference history recording affinity profile]
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runAffinity } from "./affinity.js";
import { runHistoryQueries, runRecordingOverhead } from "./history.js";
import { runInference } from "./inference.js";
import { runMemory } from "./memory.js";
import { runOverhead } from "./overhead.js";
import { runProfile } from "./profile.js";
import { runQueue } from "./queue.js";

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), "results");
const sections: Record<string, () => Promise<{ markdown: string } & Record<string, unknown>>> = {
  overhead: () => runOverhead(Number(process.env.BENCH_DURATION_S ?? 4)),
  queue: () => runQueue(),
  history: () => runHistoryQueries(),
  recording: () => runRecordingOverhead(Number(process.env.BENCH_DURATION_S ?? 4)),
  memory: () => runMemory(Number(process.env.BENCH_MEMORY_REQUESTS ?? 100_000)),
  inference: () => runInference(Number(process.env.BENCH_INFERENCE_RUNS ?? 10), 200),
  affinity: () => runAffinity(),
  profile: () => runProfile(Number(process.env.BENCH_PROFILE_S ?? 10)),
};
/** Run only when named: they take long or measure something other than the tables. */
const ON_REQUEST = new Set(["profile"]);

const wanted = process.argv.slice(2).filter((a) => a !== "--");
const names = wanted.length ? wanted : Object.keys(sections).filter((n) => !ON_REQUEST.has(n));
mkdirSync(resultsDir, { recursive: true });
console.log(`# drover benchmarks\n\n${new Date().toISOString()} · ${cpus().length} cores (${cpus()[0]?.model ?? "?"}) · node ${process.version}\n`);
let failed = false;
for (const name of names) {
  const run = sections[name];
  if (!run) {
    console.error(`unknown section "${name}"; choose from ${Object.keys(sections).join(", ")}`);
    process.exit(2);
  }
  process.stderr.write(`running ${name}…\n`);
  try {
    const out = await run();
    console.log(`### ${name}\n\n${out.markdown}`);
    const { markdown: _markdown, ...json } = out;
    writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify({ at: new Date().toISOString(), cores: cpus().length, ...json }, null, 2) + "\n");
  } catch (err) {
    failed = true;
    console.error(`\n${name} FAILED: ${(err as Error).message}\n`);
  }
}
process.exit(failed ? 1 : 0);
