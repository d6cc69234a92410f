// Runs an external engine (`ollama serve`, a `command` engine) as its only child and ties the
// child's life to the node's: when the node dies, however it dies, the pipe on our stdin closes
// and we stop the child (SIGTERM, then SIGKILL). Signals we get are passed on, and we exit with
// the child. drover's own engine needs no watchdog (it watches its stdin itself).
//
// Usage (by the engine supervisor): node engine-watchdog.js <command> [args...]
import { spawn } from "node:child_process";
import { constants } from "node:os";

const GRACE_MS = 4000;

const [command, ...args] = process.argv.slice(2);
if (!command) {
  process.stderr.write("engine-watchdog: no command given\n");
  process.exit(2);
}

const child = spawn(command, args, { stdio: ["ignore", "inherit", "inherit"] });
let escalation: NodeJS.Timeout | undefined;

function stop(signal: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  // An engine that ignores SIGTERM is killed before the supervisor's own grace ends.
  escalation ??= setTimeout(() => child.kill("SIGKILL"), GRACE_MS);
}

child.once("error", (err) => {
  process.stderr.write(`cannot start ${command}: ${err.message}\n`);
  process.exit(127);
});
child.once("exit", (code, signal) => {
  clearTimeout(escalation);
  process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0));
});
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
process.stdin.on("end", () => stop("SIGTERM"));
process.stdin.on("error", () => stop("SIGTERM"));
process.stdin.resume();
