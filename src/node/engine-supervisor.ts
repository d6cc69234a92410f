// Runs and supervises the engine process of one model: start, readiness, log capture, restart
// with exponential backoff after a crash, and graceful stop (SIGTERM, then SIGKILL).
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Logger } from "pino";
import { request, type Dispatcher } from "undici";
import { Backoff, sleep } from "../shared/backoff.js";
import { engineWatchdogPath, type EngineLaunchSpec, type EngineLauncher, type EngineProcessPlan } from "./engine-launcher.js";
import type { ModelStatusBoard } from "./model-status-board.js";

export interface EngineSupervisorOptions {
  spec: EngineLaunchSpec;
  launcher: EngineLauncher;
  board: ModelStatusBoard;
  /** Receives the engine's output lines; already tagged with the model. */
  logger: Logger;
  /** Used by HTTP readiness probes. */
  dispatcher?: Dispatcher;
  /** First restart delay (default 1 s), doubling up to `restartMaxMs` (default 30 s). */
  restartInitialMs?: number;
  restartMaxMs?: number;
  /** Ready time after which a crash restarts the backoff from its first delay (default 60 s). */
  healthyResetMs?: number;
  /** An engine not ready by then is killed and restarted (default 10 min: big models load slowly). */
  readyTimeoutMs?: number;
  /** Wait after SIGTERM before SIGKILL (default 5 s). */
  stopGraceMs?: number;
}

interface RunOutcome {
  description: string;
  readyAt?: number;
}

const PINO_LEVELS: Record<number, "trace" | "debug" | "info" | "warn" | "error" | "fatal"> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

export class EngineSupervisor {
  private child: ChildProcess | undefined;
  /** The child leads its own process group (watchdog plans): hard kills reach the whole group. */
  private childIsGroup = false;
  private childExit: Promise<void> | undefined;
  private readyPort: number | undefined;
  private stopping = false;
  private readonly stopController = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly opts: EngineSupervisorOptions) {}

  get modelId(): string {
    return this.opts.spec.modelId;
  }

  /** The engine's loopback port while it is ready. */
  get port(): number | undefined {
    return this.readyPort;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => {
      this.opts.logger.error({ err }, "engine supervisor stopped unexpectedly");
      this.opts.board.setState(this.modelId, "failed", { reason: `engine supervisor error: ${(err as Error).message}` });
    });
  }

  /** SIGTERM, up to `stopGraceMs` for a clean exit, then SIGKILL. No restart afterwards. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopController.abort();
    const child = this.child;
    const exited = this.childExit;
    if (child && exited && isAlive(child)) {
      child.kill("SIGTERM");
      const clean = await Promise.race([exited.then(() => true), sleep(this.opts.stopGraceMs ?? 5000).then(() => false)]);
      if (!clean && isAlive(child)) {
        this.opts.logger.warn({ enginePid: child.pid }, "engine did not exit after SIGTERM; sending SIGKILL");
        this.killHard(child);
        await Promise.race([exited, sleep(2000)]);
      }
    }
    if (this.loop) await Promise.race([this.loop, sleep(2000)]);
  }

  private async run(): Promise<void> {
    const backoff = new Backoff({ initialMs: this.opts.restartInitialMs ?? 1000, maxMs: this.opts.restartMaxMs ?? 30_000 });
    const { board, logger } = this.opts;
    while (!this.stopping) {
      const outcome = await this.runOnce();
      if (this.stopping) break;
      if (outcome.readyAt !== undefined && Date.now() - outcome.readyAt >= (this.opts.healthyResetMs ?? 60_000)) backoff.reset();
      const wait = backoff.next();
      const reason = `engine ${outcome.description}; restarting in ${Math.round(wait / 100) / 10}s`;
      logger.warn({ retryInMs: wait }, reason);
      board.setState(this.modelId, "failed", { reason });
      await sleep(wait, this.stopController.signal);
      if (this.stopping) break;
      board.incrementRestarts(this.modelId);
    }
  }

  /** One engine process, from spawn to exit. */
  private async runOnce(): Promise<RunOutcome> {
    const { spec, board, logger } = this.opts;
    let plan: EngineProcessPlan;
    try {
      plan = await this.opts.launcher.plan(spec);
    } catch (err) {
      return { description: `could not be prepared: ${(err as Error).message}` };
    }
    if (this.stopping) return { description: "not started (stopping)" };

    board.setState(spec.modelId, "loading");
    const startedAt = Date.now();
    // stdin is a pipe the node never writes: it closes when the node dies, however it dies,
    // and drover's engine exits then (--exit-with-stdin) instead of living on as an orphan;
    // other engines run under the watchdog, which does the same for them.
    const [command, args] = plan.watchdog ? [process.execPath, [engineWatchdogPath(), plan.command, ...plan.args]] : [plan.command, plan.args];
    const child = spawn(command, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...plan.env },
      windowsHide: true,
      detached: plan.watchdog === true,
    });
    this.child = child;
    this.childIsGroup = plan.watchdog === true;
    logger.info({ enginePid: child.pid, command: plan.command, args: plan.args }, "engine starting");

    return new Promise<RunOutcome>((resolve) => {
      let readyAt: number | undefined;
      let settled = false;
      let lastErrorLine = "";
      let killReason: string | undefined;

      const markReady = (port: number) => {
        if (readyAt !== undefined || settled || this.stopping) return;
        readyAt = Date.now();
        clearTimeout(readyTimer);
        this.readyPort = port;
        logger.info({ enginePid: child.pid, port, loadMs: readyAt - startedAt }, "engine ready");
        board.setState(spec.modelId, "ready");
      };

      const readiness = plan.readiness;
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (readyAt === undefined && readiness.kind === "stdout-line") {
          const port = readiness.parse(line);
          if (port !== undefined) return markReady(port);
        }
        relayLine(logger, "stdout", line);
      });
      createInterface({ input: child.stderr! }).on("line", (line) => {
        if (line.trim()) lastErrorLine = line.trim();
        relayLine(logger, "stderr", line);
      });

      // No sign of progress for this long (no readiness, no pull progress) kills the engine.
      const readyTimeoutMs = this.opts.readyTimeoutMs ?? 600_000;
      let readyTimer: NodeJS.Timeout | undefined;
      const armReadyTimer = () => {
        clearTimeout(readyTimer);
        readyTimer = setTimeout(() => {
          logger.error({ enginePid: child.pid, readyTimeoutMs }, "engine did not become ready in time; killing it");
          killReason = `was not ready after ${Math.round(readyTimeoutMs / 1000)}s and was killed`;
          this.killHard(child);
        }, readyTimeoutMs);
      };
      armReadyTimer();
      const prepareAbort = new AbortController();

      const finish = (description: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(readyTimer);
        prepareAbort.abort();
        this.child = undefined;
        this.readyPort = undefined;
        resolve({ description, readyAt });
      };

      this.childExit = new Promise<void>((exited) => {
        child.once("exit", (code, signal) => {
          exited();
          const how = code !== null ? `exited with code ${code}` : `was killed by ${signal}`;
          if (!this.stopping) logger.warn({ enginePid: child.pid, code, signal }, `engine ${how}`);
          else logger.info({ enginePid: child.pid, code, signal }, "engine stopped");
          // The last stderr line usually says why a failing engine gave up.
          const failedWithCode = code !== null && code !== 0;
          finish(killReason ?? (failedWithCode && lastErrorLine ? `${how}: ${lastErrorLine.slice(0, 300)}` : how));
        });
        child.once("error", (err) => {
          // Only a failed spawn ends the run here; after a spawn, "exit" follows.
          if (child.pid === undefined) {
            exited();
            logger.error({ err }, "engine could not be started");
            finish(`could not be started: ${err.message}`);
          }
        });
      });

      if (readiness.kind === "http-probe") {
        void this.probe(readiness.port, readiness.path, readiness.intervalMs ?? 500, () => settled || readyAt !== undefined).then(async (ok) => {
          if (!ok) return;
          if (readiness.prepare) {
            let downloading = false;
            try {
              await readiness.prepare({
                signal: AbortSignal.any([prepareAbort.signal, this.stopController.signal]),
                logger,
                dispatcher: this.opts.dispatcher,
                onProgress: (p) => {
                  if (settled) return;
                  armReadyTimer();
                  if (!downloading) board.setState(spec.modelId, "downloading", p);
                  else board.setProgress(spec.modelId, p);
                  downloading = true;
                },
                onLoading: () => {
                  if (settled) return;
                  armReadyTimer();
                  downloading = false;
                  board.setState(spec.modelId, "loading");
                },
              });
            } catch (err) {
              if (settled || this.stopping) return;
              killReason = `could not be prepared: ${(err as Error).message}`;
              logger.error({ enginePid: child.pid, err: (err as Error).message }, "engine preparation failed; stopping it");
              this.killHard(child);
              return;
            }
          }
          markReady(readiness.port);
        });
      }
    });
  }

  /** SIGKILL to the engine, and to its whole process group when it leads one (watchdog plans). */
  private killHard(child: ChildProcess): void {
    if (this.childIsGroup && child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGKILL");
        return;
      } catch {
        // group already gone
      }
    }
    child.kill("SIGKILL");
  }

  /** Polls the engine until an HTTP 2xx, or until `give_up()`. */
  private async probe(port: number, path: string, intervalMs: number, giveUp: () => boolean): Promise<boolean> {
    while (!giveUp() && !this.stopping) {
      try {
        const res = await request(`http://127.0.0.1:${port}${path}`, { dispatcher: this.opts.dispatcher, headersTimeout: 5000, bodyTimeout: 5000 });
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) return true;
      } catch {
        // not listening yet
      }
      await sleep(intervalMs, this.stopController.signal);
    }
    return false;
  }
}

function isAlive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Engine output into the node's log; pino JSON lines keep their level and message. */
function relayLine(logger: Logger, stream: "stdout" | "stderr", line: string): void {
  if (!line.trim()) return;
  if (line.startsWith("{")) {
    try {
      const parsed = JSON.parse(line) as Record<string, unknown> | null;
      if (parsed && typeof parsed.msg === "string") {
        // The node's own fields (time, pid, hostname, model) win over the engine's.
        const { level, msg, time: _time, pid: enginePid, hostname: _hostname, model: _model, ...fields } = parsed;
        const name = typeof level === "number" ? (PINO_LEVELS[level] ?? "info") : "info";
        logger[name]({ stream, enginePid, ...fields }, msg as string);
        return;
      }
    } catch {
      // not JSON after all
    }
  }
  logger.info({ stream }, line);
}
