// Preloaded with NODE_OPTIONS="--import <this file>" by the memory bench: on SIGUSR2 the process
// runs two full garbage collections, so that what it retains can be told from what it has not yet
// collected. (node refuses --expose-gc in NODE_OPTIONS; V8 takes it here, before gc is looked up.)
// With BENCH_HEAP_SNAPSHOT_DIR it then also writes a heap snapshot there (router-1, -2, ...: idle,
// 1,000 streams, 10,000 and 100,000 requests), which `tsx bench/heap-top.ts` summarizes.
import { join } from "node:path";
import { setFlagsFromString, writeHeapSnapshot } from "node:v8";
import { runInNewContext } from "node:vm";

delete process.env.NODE_OPTIONS;
const snapshotDir = process.env.BENCH_HEAP_SNAPSHOT_DIR;
delete process.env.BENCH_HEAP_SNAPSHOT_DIR;
let snapshots = 0;
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc");
// `on`, not `once`: signal-exit (a dependency of the node) re-raises a signal it sees no other
// listener for, which would kill the process.
process.on("SIGUSR2", () => {
  gc();
  gc();
  if (snapshotDir) writeHeapSnapshot(join(snapshotDir, `router-${++snapshots}.heapsnapshot`));
});
