// Preloaded with NODE_OPTIONS="--import <this file>" (node refuses --cpu-prof there): profiles the
// process like --cpu-prof, from its first SIGUSR2 (so start-up is left out) to its exit, and writes
// CPU.<pid>.cpuprofile into $BENCH_PROFILE_DIR. The inspector session runs on this thread,
// so stop answers synchronously.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";

const dir = process.env.BENCH_PROFILE_DIR;
// Only the process it was set for: its children (engines) get no profiler.
delete process.env.BENCH_PROFILE_DIR;
delete process.env.NODE_OPTIONS;
if (dir) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 1000 });
  // `on`, not `once`: signal-exit (a dependency of the node) re-raises a signal it sees no other
  // listener for, which would kill the process.
  let started = false;
  process.on("SIGUSR2", () => {
    if (!started) session.post("Profiler.start");
    started = true;
  });
  process.on("exit", () => {
    session.post("Profiler.stop", (err, res) => {
      if (!err) writeFileSync(join(dir, `CPU.${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
