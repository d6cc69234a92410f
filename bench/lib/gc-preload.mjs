// Preloaded with NODE_OPTIONS="--import <this file>" by the memory bench: on SIGUSR2 the process
// runs two full garbage collections, so that what it retains can be told from what it has not yet
// collected. (node refuses --expose-gc in NODE_OPTIONS; V8 takes it here, before gc is looked up.)
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

delete process.env.NODE_OPTIONS;
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc");
// `on`, not `once`: signal-exit (a dependency of the node) re-raises a signal it sees no other
// listener for, which would kill the process.
process.on("SIGUSR2", () => {
  gc();
  gc();
});
