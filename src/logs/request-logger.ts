// Per-request loggers for the node's and the engine's Fastify servers: every line logged through
// `req.log` carries `reqId` (the x-request-id the router sent, else a new one) and `traceId` (from
// the W3C traceparent), so one request can be followed through router, node and engine logs.
import { randomUUID } from "node:crypto";
import { LogController, type FastifyBaseLogger, type FastifyServerOptions } from "fastify";
import { HEADER_REQUEST_ID, HEADER_TRACEPARENT } from "../protocol/http.js";

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The trace id of a traceparent header; undefined when absent or malformed. */
export function traceIdOf(header: string | string[] | undefined): string | undefined {
  const m = typeof header === "string" ? TRACEPARENT.exec(header.trim()) : null;
  return m && !/^0+$/.test(m[1]!) ? m[1] : undefined;
}

type Bindings = Record<string, unknown>;
type LogMethod = "fatal" | "error" | "warn" | "info" | "debug" | "trace";

/**
 * `req.log` as Fastify wants one per request, but the pino child (which serializes its bindings
 * when made) is made only when a line at an enabled level is logged: most requests log nothing at
 * the default level, and a child per request was a measurable share of the node's CPU.
 */
class LazyChildLogger {
  private made: FastifyBaseLogger | null = null;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly opts: object,
  ) {}

  private get real(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.opts));
  }

  get level(): string {
    return this.made?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.real.level = level;
  }

  private write(method: LogMethod, args: unknown[]): void {
    if (this.made === null && !(this.parent as unknown as { isLevelEnabled(l: string): boolean }).isLevelEnabled(method)) return;
    const real = this.real;
    (real[method] as (...a: unknown[]) => void).apply(real, args);
  }

  fatal(...args: unknown[]): void {
    this.write("fatal", args);
  }
  error(...args: unknown[]): void {
    this.write("error", args);
  }
  warn(...args: unknown[]): void {
    this.write("warn", args);
  }
  info(...args: unknown[]): void {
    this.write("info", args);
  }
  debug(...args: unknown[]): void {
    this.write("debug", args);
  }
  trace(...args: unknown[]): void {
    this.write("trace", args);
  }
  silent(): void {}

  child(bindings: Bindings, opts?: object): FastifyBaseLogger {
    return this.real.child(bindings, opts);
  }

  isLevelEnabled(level: string): boolean {
    return (this.real as unknown as { isLevelEnabled(l: string): boolean }).isLevelEnabled(level);
  }
}

/** Fastify server options for request ids, trace ids in `req.log`, and no per-request access lines. */
export function requestLogOptions() {
  return {
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "reqId" }),
    requestIdHeader: HEADER_REQUEST_ID,
    genReqId: () => randomUUID(),
    childLoggerFactory(logger, bindings, opts, rawReq) {
      const traceId = traceIdOf(rawReq.headers[HEADER_TRACEPARENT]);
      return new LazyChildLogger(logger, traceId ? { ...bindings, traceId } : bindings, opts) as unknown as FastifyBaseLogger;
    },
  } satisfies Partial<FastifyServerOptions>;
}
