// Sends an admitted inference request to a node and streams the answer back chunk by chunk.
// A failure before the response starts, after which the request cannot be running on that node,
// is retried on another ready node (the request re-queues at the front of its line); a failure
// mid-stream ends the stream with an error event. Every attempt settles the node's breaker once.
import type { ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import { traceIdOf } from "../../logs/request-logger.js";
import { HEADER_MODEL, HEADER_NODE, HEADER_REQUEST_ID, HEADER_TRACEPARENT, headerSafe } from "../../protocol/http.js";
import { routerAuthHeaders } from "../../protocol/node-auth.js";
import type { AdmissionQueue, Lease } from "./admission-queue.js";
import type { NodeRegistry } from "../fleet/node-registry.js";
import type { ClientEdge } from "./client-edge.js";
import { ResponseTap, truncateUtf8 } from "./response-tap.js";

export interface ProxyOptions {
  maxAttempts: number;
  /** Longest wait for a node's response headers (a non-streamed generation sends them at the end). */
  headersTimeoutMs: number;
  /** Longest silence between two chunks of a response body. */
  bodyTimeoutMs: number;
  /** Bytes of request and response body kept for the history (0 = none). */
  historyBodyBytes?: number;
  /** The fleet's node token: requests carry the router credential derived from it. */
  nodeToken?: string | null;
}

const HEALTH_CHECK_MS = 2_000;

/** The whole body, or null when it is longer than `limit` (the rest is discarded). */
async function readUpTo(upstream: Dispatcher.ResponseData, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of upstream.body) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        upstream.body.destroy();
        return null;
      }
      chunks.push(chunk as Buffer);
    }
  } catch {
    return chunks.length ? Buffer.concat(chunks) : Buffer.alloc(0);
  }
  return Buffer.concat(chunks);
}

export interface InferenceCall {
  path: string;
  modelId: string;
  body: Buffer;
  requestId: string;
  traceparent: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  res: ServerResponse;
  /** The client's dialect: how the node's answer and the router's own errors look to the client. */
  edge: ClientEdge;
  /** Places the request by prefix (affinity-key.ts); null: least-load. */
  affinityKey?: string | null;
}

export interface InferenceOutcome {
  status: number;
  nodeId: string | null;
  nodeName: string | null;
  queueWaitMs: number;
  firstByteMs: number | null;
  error: string | null;
  attempts: number;
  /** How the serving node was chosen (the last attempt's placement). */
  routing?: Lease["routing"] | null;
  affinity?: Lease["affinity"];
  /** From the node's `usage`, seen by the response tap; null when the response carried none. */
  promptTokens?: number | null;
  completionTokens?: number | null;
  toolCalls?: number | null;
  cachedTokens?: number | null;
  /** Size-capped copies for the history when body capture is on (the request as sent to the node). */
  requestBody?: string | null;
  responseBody?: string | null;
}

/**
 * Transport errors after which the request cannot be running on the node, so sending it elsewhere
 * runs it once: it was never sent (no connection), or the connection to the node broke before any
 * answer (the node aborts the engine's work when its client connection closes, and a node that
 * died took the work with it). See docs/RELIABILITY.md, "which failures are retried".
 */
function isRetryableTransportError(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? "";
  return [
    // never sent
    "ECONNREFUSED",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "ENOTFOUND",
    "EAI_AGAIN",
    "ETIMEDOUT",
    "UND_ERR_CONNECT_TIMEOUT",
    // sent, connection lost before any answer: the node stops the work when the connection drops
    "ECONNRESET",
    "EPIPE",
    "UND_ERR_SOCKET",
    "UND_ERR_CLOSED",
    "UND_ERR_DESTROYED",
  ].includes(code);
}

/**
 * Codes a node (or its engine) answers 503 with when the model cannot take the request right now
 * and nothing of it ran: not ready, engine gone, engine or node shutting down. Retried elsewhere.
 */
const NODE_UNAVAILABLE_CODES = new Set(["engine_unavailable", "model_not_ready", "engine_closing", "node_closing"]);
/** A 503 body larger than this is relayed as a stream error rather than kept whole. */
const MAX_ERROR_BODY_BYTES = 256 * 1024;

/**
 * The code a node answers 503 with when all of the model's slots are taken there (by requests of
 * other routers sharing it): nothing ran, and the node is healthy. Neither a failure for the
 * breaker nor an attempt: the request goes to another node or waits at the front of the queue.
 */
const NODE_BUSY_CODE = "node_busy";

/** Whether a node's 503 body says "all slots taken here" (see NODE_BUSY_CODE). */
export function isBusy503(body: Buffer): boolean {
  try {
    const { error } = JSON.parse(body.toString("utf8")) as { error?: { code?: unknown } };
    return typeof error === "object" && error !== null && error.code === NODE_BUSY_CODE;
  } catch {
    return false;
  }
}

/** Whether a node's 503 body says "not started here, try elsewhere". */
export function isNotStarted503(body: Buffer): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return false;
  }
  if (typeof parsed !== "object" || parsed === null) return false;
  const { error, statusCode } = parsed as { error?: unknown; statusCode?: unknown };
  // Fastify's answer while the node's server is closing (a graceful restart).
  if (error === "Service Unavailable" && statusCode === 503) return true;
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" && NODE_UNAVAILABLE_CODES.has(code);
}

/** Waits for room in the client's socket, or for the client to be gone (no 'drain' comes then). */
function drainOrClose(res: ServerResponse): Promise<void> {
  if (res.destroyed || res.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

export class InferenceProxy {
  /** The router credential per node id: an HMAC, computed once per node rather than per request. */
  private readonly authByNode = new Map<string, string | undefined>();
  /** `x-drover-node` values per node name (percent-encoded when not printable ASCII). */
  private readonly nodeHeader = new Map<string, string>();

  constructor(
    private readonly registry: NodeRegistry,
    private readonly queue: AdmissionQueue,
    private readonly opts: ProxyOptions,
    private readonly logger: Logger,
  ) {}

  /**
   * Runs the call to completion, writing the response to `call.res` itself. Queue errors
   * (full, timeout, client gone) are thrown before anything is written.
   */
  async run(call: InferenceCall): Promise<InferenceOutcome> {
    const started = Date.now();
    const outcome: InferenceOutcome = { status: 0, nodeId: null, nodeName: null, queueWaitMs: 0, firstByteMs: null, error: null, attempts: 0 };
    const captureBytes = this.opts.historyBodyBytes ?? 0;
    if (captureBytes > 0) outcome.requestBody = truncateUtf8(call.body.toString("utf8"), captureBytes);
    let lastError = "no attempt made";
    let busyAnswers = 0;
    while (outcome.attempts < this.opts.maxAttempts) {
      const lease = await this.queue.acquire(call.modelId, call.signal, outcome.attempts > 0 || busyAnswers > 0, call.affinityKey ?? null);
      outcome.attempts++;
      outcome.routing = lease.routing;
      outcome.affinity = lease.affinity;
      outcome.queueWaitMs += lease.waitedMs;
      outcome.nodeId = lease.node.id;
      outcome.nodeName = lease.node.name;
      const log = { reqId: call.requestId, traceId: traceIdOf(call.traceparent), node: lease.node.name };
      const attemptStart = Date.now();
      let upstream: Dispatcher.ResponseData;
      try {
        upstream = await this.send(lease, call);
      } catch (err) {
        if (call.signal.aborted) {
          this.queue.release(lease, "neutral");
          throw err;
        }
        lastError = `${lease.node.name}: ${(err as Error).message}`;
        lease.node.failedRequests++;
        const code = (err as { code?: string }).code;
        // The node took the request and said nothing for the whole timeout. If it still answers
        // its health check the request may be running there: it is not re-run elsewhere behind
        // the client's back (504); a node that answers nothing is hung, and the request is
        // retried like one that was never sent. (Settled after the check, so the breaker's
        // cooldown starts once the node is known to be sick.)
        const alive = code === "UND_ERR_HEADERS_TIMEOUT" && (await this.answersHealthCheck(lease));
        this.queue.release(lease, "failure");
        if (code === "UND_ERR_HEADERS_TIMEOUT") {
          if (alive) {
            outcome.error = `node ${lease.node.name} did not answer within ${this.opts.headersTimeoutMs} ms; the request may still have run there, so it was not retried`;
            this.logger.warn({ ...log, err: (err as Error).message }, "node timed out answering but is alive; not retrying");
            outcome.status = this.writeError(call, 504, outcome.error, lease.node.name, "upstream_timeout");
            return outcome;
          }
        } else if (!isRetryableTransportError(err)) {
          throw err;
        }
        this.logger.warn({ ...log, err: (err as Error).message }, "node failed before responding; retrying elsewhere");
        continue;
      }
      if (upstream.statusCode === 503) {
        const body = await readUpTo(upstream, MAX_ERROR_BODY_BYTES);
        if (body !== null && isBusy503(body)) {
          // Marked before the release, so the freed lease does not go straight back to that node.
          this.registry.markBusy(lease.node, call.modelId);
          this.queue.release(lease, "neutral");
          outcome.attempts--;
          busyAnswers++;
          this.logger.debug({ ...log, model: call.modelId }, "node busy (its slots are taken by other routers' requests); trying another node or waiting");
          continue;
        }
        if (body !== null && isNotStarted503(body)) {
          // Not ready there, or the node/engine is shutting down: nothing ran, try another node.
          this.registry.suspendModel(lease.node, call.modelId);
          this.queue.release(lease, "neutral");
          lastError = `${lease.node.name}: model ${call.modelId} unavailable on the node`;
          this.logger.warn({ ...log, model: call.modelId }, "node's engine unavailable; retrying elsewhere");
          continue;
        }
        // Any other 503 is the node's answer: the client gets its code and body (through the
        // route's adapter, so an Ollama client sees Ollama's error shape).
        outcome.status = 503;
        try {
          if (body === null) {
            outcome.error = `${lease.node.name} answered 503 with a body over ${MAX_ERROR_BODY_BYTES} bytes`;
            outcome.status = this.writeError(call, 503, outcome.error, lease.node.name);
          } else {
            const replay = { statusCode: 503, headers: upstream.headers, body: Readable.from([body]) } as unknown as Dispatcher.ResponseData;
            await this.relay(replay, lease, call, outcome, started);
            outcome.error ??= `${lease.node.name} answered 503`;
          }
        } finally {
          this.queue.release(lease, "neutral");
        }
        return outcome;
      }
      let settled: "success" | "failure" | "neutral" = "neutral";
      try {
        await this.relay(upstream, lease, call, outcome, started);
        const broke = outcome.error !== null && outcome.error !== "client disconnected";
        // A 5xx is the engine failing: it counts against the node, and its (fast) answer must not
        // make the node look quick to the selector.
        settled = broke || upstream.statusCode >= 500 ? "failure" : "success";
        if (upstream.statusCode >= 500) lease.node.failedRequests++;
        else this.registry.recordLatency(lease.node, Date.now() - attemptStart);
      } finally {
        lease.node.totalRequests++;
        this.queue.release(lease, settled);
      }
      return outcome;
    }
    outcome.error = `no node could serve the request after ${outcome.attempts} attempts (last: ${lastError})`;
    outcome.status = this.writeError(call, 502, outcome.error, outcome.nodeName);
    return outcome;
  }

  private authorizationFor(nodeId: string): string | undefined {
    if (!this.authByNode.has(nodeId)) {
      if (this.authByNode.size > 4096) this.authByNode.clear();
      this.authByNode.set(nodeId, routerAuthHeaders(this.opts.nodeToken, nodeId).authorization);
    }
    return this.authByNode.get(nodeId);
  }

  private nodeHeaderOf(name: string): string {
    let value = this.nodeHeader.get(name);
    if (value === undefined) {
      if (this.nodeHeader.size > 4096) this.nodeHeader.clear();
      value = headerSafe(name);
      this.nodeHeader.set(name, value);
    }
    return value;
  }

  private send(lease: Lease, call: InferenceCall): Promise<Dispatcher.ResponseData> {
    const pool = lease.node.pool;
    if (!pool) throw Object.assign(new Error("node has no connection pool"), { code: "UND_ERR_CLOSED" });
    // The node routes by x-drover-model and forwards the body without parsing it. Catalog ids are
    // printable ASCII (src/protocol/catalog.ts), so the id goes into the header as it is.
    const headers: Record<string, string> = {
      "content-type": "application/json",
      [HEADER_MODEL]: call.modelId,
      [HEADER_REQUEST_ID]: call.requestId,
      [HEADER_TRACEPARENT]: call.traceparent,
    };
    const authorization = this.authorizationFor(lease.node.id);
    if (authorization) headers.authorization = authorization;
    return pool.request({
      path: call.path,
      method: "POST",
      headers,
      body: call.body,
      signal: call.signal,
      headersTimeout: this.opts.headersTimeoutMs,
      bodyTimeout: this.opts.bodyTimeoutMs,
    });
  }

  /** Whether the node's process still answers GET /healthz (within 2 s). */
  private async answersHealthCheck(lease: Lease): Promise<boolean> {
    const pool = lease.node.pool;
    if (!pool) return false;
    try {
      const res = await pool.request({
        path: "/healthz",
        method: "GET",
        headersTimeout: HEALTH_CHECK_MS,
        bodyTimeout: HEALTH_CHECK_MS,
        signal: AbortSignal.timeout(HEALTH_CHECK_MS),
      });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  private async relay(upstream: Dispatcher.ResponseData, lease: Lease, call: InferenceCall, outcome: InferenceOutcome, started: number): Promise<void> {
    const res = call.res;
    const adapter = call.edge.adapter;
    const contentType = String(upstream.headers["content-type"] ?? "application/json");
    // Reads the node's bytes after they are handed to the client, for usage and body capture.
    const tap = new ResponseTap(contentType, this.opts.historyBodyBytes ?? 0);
    outcome.status = upstream.statusCode;
    adapter.start({ status: upstream.statusCode, contentType, nodeName: lease.node.name, queueWaitMs: outcome.queueWaitMs });
    const writeHead = () => {
      if (res.headersSent) return;
      const head = adapter.head();
      outcome.status = head.status;
      res.writeHead(head.status, {
        "content-type": head.contentType,
        "cache-control": "no-cache",
        [HEADER_REQUEST_ID]: call.requestId,
        [HEADER_NODE]: this.nodeHeaderOf(lease.node.name),
      });
    };
    // Everything written in one turn of the event loop goes out in one system call: the socket is
    // corked at the first write and uncorked when the turn's I/O is done. Node's own cork lasts
    // only until the next tick, which comes between the node's last event and the end of its
    // body, so the chunked terminator used to cost a write of its own on every stream.
    let corked = false;
    const uncork = () => {
      corked = false;
      res.uncork();
    };
    const write = async (out: string | Buffer) => {
      if (out.length === 0) return;
      writeHead();
      if (outcome.firstByteMs === null) outcome.firstByteMs = Date.now() - started;
      if (!corked) {
        corked = true;
        res.cork();
        setImmediate(uncork);
      }
      if (!res.write(out)) await drainOrClose(res);
    };
    // A plain (non-streamed) body is one JSON document: relayed whole, with its length, so the
    // client gets headers and body in one write instead of a chunked response in three or more.
    // Every write is a system call, and on a busy node each one costs latency.
    if (adapter.unchanged && !/event-stream|ndjson/.test(contentType)) {
      return this.relayWhole(upstream, lease, call, outcome, started, tap, writeHead);
    }
    // The head goes out at once, so a client waiting for a slow first token sees the response
    // start; but when the first chunk came in with the node's head (the usual case), it goes in
    // the same write: a head of its own is one more system call per stream on both ends. (If that
    // chunk held no complete event, the head goes alone after it.)
    let flushAfterFirst = false;
    if (adapter.eagerHead) {
      writeHead();
      if (upstream.body.readableLength === 0) res.flushHeaders();
      else flushAfterFirst = true;
    }
    try {
      for await (const chunk of upstream.body) {
        const written = write(adapter.chunk(chunk as Buffer));
        tap.chunk(chunk as Buffer);
        await written;
        if (flushAfterFirst) {
          flushAfterFirst = false;
          if (outcome.firstByteMs === null) res.flushHeaders();
        }
      }
      Object.assign(outcome, tap.finish());
      const tail = await adapter.end();
      writeHead();
      res.end(tail);
    } catch (err) {
      Object.assign(outcome, tap.finish());
      if (call.signal.aborted) {
        outcome.error = "client disconnected";
        return;
      }
      outcome.error = `stream from ${lease.node.name} broke: ${(err as Error).message}`;
      lease.node.failedRequests++;
      this.logger.warn(
        { reqId: call.requestId, traceId: traceIdOf(call.traceparent), node: lease.node.name, err: (err as Error).message },
        "upstream failed mid-stream",
      );
      const tail = adapter.fail(outcome.error);
      if (tail === null) {
        res.destroy();
      } else {
        writeHead();
        res.end(tail);
      }
    }
  }

  private async relayWhole(
    upstream: Dispatcher.ResponseData,
    lease: Lease,
    call: InferenceCall,
    outcome: InferenceOutcome,
    started: number,
    tap: ResponseTap,
    writeHead: () => void,
  ): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of upstream.body) {
        if (outcome.firstByteMs === null) outcome.firstByteMs = Date.now() - started;
        chunks.push(chunk as Buffer);
        tap.chunk(chunk as Buffer);
      }
    } catch (err) {
      Object.assign(outcome, tap.finish());
      if (call.signal.aborted) {
        outcome.error = "client disconnected";
        return;
      }
      // Nothing was sent yet, so the client gets a clean error instead of a truncated body.
      outcome.error = `response from ${lease.node.name} broke: ${(err as Error).message}`;
      outcome.status = 502;
      lease.node.failedRequests++;
      this.logger.warn(
        { reqId: call.requestId, traceId: traceIdOf(call.traceparent), node: lease.node.name, err: (err as Error).message },
        "upstream failed mid-response",
      );
      this.writeError(call, 502, outcome.error, lease.node.name);
      return;
    }
    Object.assign(outcome, tap.finish());
    const body = Buffer.concat(chunks);
    if (call.res.headersSent || call.res.destroyed) return;
    call.res.setHeader("content-length", body.length);
    writeHead();
    call.res.end(body);
  }

  /** Answers an error the router makes itself, in the client's dialect; returns the status the client got. */
  private writeError(call: InferenceCall, status: number, message: string, nodeName: string | null, code = "upstream_unavailable"): number {
    const body = call.edge.errors.body(status, message, code);
    status = call.edge.errors.status(status);
    this.writeBuffered(call, status, "application/json", Buffer.from(JSON.stringify(body)), nodeName);
    return status;
  }

  /** A whole answer in one write (errors, and a node's own 503 relayed as it came). */
  private writeBuffered(call: InferenceCall, status: number, contentType: string, body: Buffer, nodeName: string | null): void {
    const res = call.res;
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, {
      "content-type": contentType,
      "content-length": body.length,
      [HEADER_REQUEST_ID]: call.requestId,
      ...(nodeName ? { [HEADER_NODE]: this.nodeHeaderOf(nodeName) } : {}),
    });
    res.end(body);
  }
}
