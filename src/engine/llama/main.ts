// Entry point of the `llama` engine: one model, served over OpenAI's API by node-llama-cpp.
//
// Contract with the node that spawns it:
//  - stdout carries exactly one line, `DROVER_ENGINE_READY {"port":<port>}`, printed once the model
//    is loaded and the server listens. Nothing else is ever written to stdout.
//  - stderr carries pino JSON log lines (`reqId` = the request's x-request-id header when given).
//  - SIGTERM / SIGINT: stop accepting, abort generations in flight, free the model, exit 0.
//  - env DROVER_ENGINE_GPU: auto (default) | off | cuda | vulkan | metal (see runtime.ts);
//    env DROVER_LOG_LEVEL: pino level for the engine's logs (default info).
import pino, { type Logger } from "pino";
import { LlamaInference } from "./inference.js";
import { clampThreads } from "./runtime.js";
import { buildServer } from "./server.js";

export interface LlamaEngineOptions {
  modelPath: string;
  modelId: string;
  /** Usually 127.0.0.1: the node proxies to the engine. */
  host: string;
  /** 0 picks a free port (reported in the READY line and the return value). */
  port: number;
  /** Evaluation threads; capped at cores - 1. */
  threads: number;
  /** Requests generated concurrently (context sequences); more wait for a free one. */
  slots: number;
  /** Tokens per slot (prompt + completion). */
  contextSize: number;
  /** Install SIGTERM/SIGINT handlers that close the engine and exit (default true; tests pass false). */
  handleSignals?: boolean;
  /** Logger to use instead of the default pino-to-stderr one. */
  logger?: Logger;
}

export const READY_PREFIX = "DROVER_ENGINE_READY";

/** How long close() lets clients read the end of aborted responses before cutting connections. */
const CLOSE_GRACE_MS = 1_000;

export async function runLlamaEngine(opts: LlamaEngineOptions): Promise<{ port: number; close(): Promise<void> }> {
  const log =
    opts.logger ??
    pino(
      { level: process.env.DROVER_LOG_LEVEL ?? "info", base: { engine: "llama", model: opts.modelId, pid: process.pid } },
      pino.destination({ fd: 2, sync: true }),
    );
  if (!Number.isInteger(opts.slots) || opts.slots < 1) throw new Error(`slots must be a positive integer (got ${opts.slots})`);
  if (!Number.isInteger(opts.contextSize) || opts.contextSize < 16) throw new Error(`contextSize must be an integer >= 16 (got ${opts.contextSize})`);
  const threads = clampThreads(opts.threads);
  if (threads !== opts.threads) log.warn({ requested: opts.threads, threads }, "threads capped at cores - 1");

  const inference = await LlamaInference.load({ modelPath: opts.modelPath, threads, slots: opts.slots, contextSize: opts.contextSize, log });
  const { app, abortAll } = buildServer({ inference, modelId: opts.modelId, log });
  let port: number;
  try {
    await app.listen({ host: opts.host, port: opts.port });
    const address = app.server.address();
    if (address === null || typeof address === "string") throw new Error(`unexpected server address ${String(address)}`);
    port = address.port;
  } catch (err) {
    await app.close().catch(() => undefined);
    await inference.dispose().catch(() => undefined);
    throw err;
  }

  let closed: Promise<void> | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, "shutting down");
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  const close = (): Promise<void> => {
    closed ??= (async () => {
      if (opts.handleSignals !== false) {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
      // Abort first: streams in flight end now instead of holding app.close() open. Clients
      // that do not read what is left get their connection cut after a short grace.
      const force = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
      try {
        await abortAll();
        await app.close();
      } finally {
        clearTimeout(force);
      }
      await inference.dispose();
      log.info("engine closed");
    })();
    return closed;
  };
  if (opts.handleSignals !== false) {
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  }

  log.info({ host: opts.host, port }, "engine ready");
  process.stdout.write(`${READY_PREFIX} ${JSON.stringify({ port })}\n`);
  return { port, close };
}
