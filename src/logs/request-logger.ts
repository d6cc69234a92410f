// Per-request loggers for the node's and the engine's Fastify servers: every line logged through
// `req.log` carries `reqId` (the x-request-id the router sent, else a new one) and `traceId` (from
// the W3C traceparent), so one request can be followed through router, node and engine logs.
import { randomUUID } from "node:crypto";
import { LogController, type FastifyServerOptions } from "fastify";
import { HEADER_REQUEST_ID, HEADER_TRACEPARENT } from "../protocol/http.js";

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The trace id of a traceparent header; undefined when absent or malformed. */
export function traceIdOf(header: string | string[] | undefined): string | undefined {
  const m = typeof header === "string" ? TRACEPARENT.exec(header.trim()) : null;
  return m && !/^0+$/.test(m[1]!) ? m[1] : undefined;
}

/** Fastify server options for request ids, trace ids in `req.log`, and no per-request access lines. */
export function requestLogOptions() {
  return {
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "reqId" }),
    requestIdHeader: HEADER_REQUEST_ID,
    genReqId: () => randomUUID(),
    childLoggerFactory(logger, bindings, opts, rawReq) {
      const traceId = traceIdOf(rawReq.headers[HEADER_TRACEPARENT]);
      return logger.child(traceId ? { ...bindings, traceId } : bindings, opts);
    },
  } satisfies Partial<FastifyServerOptions>;
}
