// Sends an admitted inference request to a node and streams the answer back chunk by chunk.
// A transport failure before the response starts is retried on another ready node (the request
// re-queues at the front of its line); a failure mid-stream ends the stream with an error event.
import type { ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import { traceIdOf } from "../logs/request-logger.js";
import { HEADER_NODE, HEADER_REQUEST_ID, HEADER_TRACEPARENT } from "../protocol/http.js";
import { openAiError } from "../protocol/openai-errors.js";
import type { AdmissionQueue, Lease } from "./admission-queue.js";
import type { DialectErrors } from "./dialects/dialect.js";
import type { NodeRegistry } from "./node-registry.js";
import { PassthroughAdapter, type ResponseAdapter } from "./response-adapter.js";
import { ResponseTap, truncateUtf8 } from "./response-tap.js";

export interface ProxyOptions {
  maxAttempts: number;
  /** Longest wait for a node's response headers (a non-streamed generation sends them at the end). */
  headersTimeoutMs: number;
  /** Longest silence between two chunks of a response body. */
  bodyTimeoutMs: number;
  /** Bytes of request and response body kept for the history (0 = none). */
  historyBodyBytes?: number;
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
  /** How an error must look inside a stream already started. */
  streamErrorFormat: "sse" | "ndjson";
  /** Shapes the node's response for the client; default: relayed unchanged. */
  adapter?: ResponseAdapter;
  /** The client's dialect's shape for an error the router answers itself; default OpenAI's (Ollama's for ndjson). */
  errors?: DialectErrors;
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

/** Errors before any byte of the response: safe to send elsewhere. */
function isRetryableTransportError(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? "";
  return [
    "ECONNREFUSED",
    "ECONNRESET",
    "EPIPE",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "ETIMEDOUT",
    "UND_ERR_CONNECT_TIMEOUT",
    "UND_ERR_HEADERS_TIMEOUT",
    "UND_ERR_SOCKET",
    "UND_ERR_CLOSED",
    "UND_ERR_DESTROYED",
  ].includes(code);
}

/** Codes a node answers with when the model's engine cannot take the request right now. */
const NODE_UNAVAILABLE_CODES = new Set(["engine_unavailable", "model_not_ready"]);

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
    while (outcome.attempts < this.opts.maxAttempts) {
      const lease = await this.queue.acquire(call.modelId, call.signal, outcome.attempts > 0, call.affinityKey ?? null);
      outcome.attempts++;
      outcome.routing = lease.routing;
      outcome.affinity = lease.affinity;
      outcome.queueWaitMs += lease.waitedMs;
      outcome.nodeId = lease.node.id;
      outcome.nodeName = lease.node.name;
      const attemptStart = Date.now();
      let upstream: Dispatcher.ResponseData;
      try {
        upstream = await this.send(lease, call);
      } catch (err) {
        this.queue.release(lease);
        if (call.signal.aborted) throw err;
        lastError = `${lease.node.name}: ${(err as Error).message}`;
        lease.node.failedRequests++;
        if (!isRetryableTransportError(err)) throw err;
        lease.node.breaker.onFailure();
        this.logger.warn({ reqId: call.requestId, traceId: traceIdOf(call.traceparent), node: lease.node.name, err: (err as Error).message }, "node failed before responding; retrying elsewhere");
        continue;
      }
      if (upstream.statusCode === 503 && (await this.isNodeUnavailable(upstream))) {
        this.registry.suspendModel(lease.node, call.modelId);
        this.queue.release(lease);
        lastError = `${lease.node.name}: model ${call.modelId} unavailable on the node`;
        this.logger.warn({ reqId: call.requestId, traceId: traceIdOf(call.traceparent), node: lease.node.name, model: call.modelId }, "node's engine unavailable; retrying elsewhere");
        continue;
      }
      lease.node.breaker.onSuccess();
      try {
        await this.relay(upstream, lease, call, outcome, started);
      } finally {
        this.registry.recordLatency(lease.node, Date.now() - attemptStart);
        lease.node.totalRequests++;
        this.queue.release(lease);
      }
      return outcome;
    }
    outcome.error = `no node could serve the request after ${outcome.attempts} attempts (last: ${lastError})`;
    outcome.status = this.writeError(call, 502, outcome.error, outcome.nodeName);
    return outcome;
  }

  private send(lease: Lease, call: InferenceCall): Promise<Dispatcher.ResponseData> {
    const pool = lease.node.pool;
    if (!pool) throw Object.assign(new Error("node has no connection pool"), { code: "UND_ERR_CLOSED" });
    return pool.request({
      path: call.path,
      method: "POST",
      headers: {
        "content-type": "application/json",
        [HEADER_REQUEST_ID]: call.requestId,
        [HEADER_TRACEPARENT]: call.traceparent,
      },
      body: call.body,
      signal: call.signal,
      headersTimeout: this.opts.headersTimeoutMs,
      bodyTimeout: this.opts.bodyTimeoutMs,
    });
  }

  private async isNodeUnavailable(upstream: Dispatcher.ResponseData): Promise<boolean> {
    try {
      const body = (await upstream.body.json()) as { error?: { code?: string } };
      return NODE_UNAVAILABLE_CODES.has(body.error?.code ?? "");
    } catch {
      return true;
    }
  }

  private async relay(upstream: Dispatcher.ResponseData, lease: Lease, call: InferenceCall, outcome: InferenceOutcome, started: number): Promise<void> {
    const res = call.res;
    const adapter = call.adapter ?? new PassthroughAdapter(call.streamErrorFormat);
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
        [HEADER_NODE]: lease.node.name,
      });
    };
    const write = async (out: string | Buffer) => {
      if (out.length === 0) return;
      writeHead();
      if (outcome.firstByteMs === null) outcome.firstByteMs = Date.now() - started;
      if (!res.write(out)) await drainOrClose(res);
    };
    // A plain (non-streamed) body is one JSON document: relayed whole, with its length, so the
    // client gets headers and body in one write instead of a chunked response in three or more.
    // Every write is a system call, and on a busy node each one costs latency.
    if (!call.adapter && !/event-stream|ndjson/.test(contentType)) {
      return this.relayWhole(upstream, lease, call, outcome, started, tap, writeHead);
    }
    if (adapter.eagerHead) {
      writeHead();
      res.flushHeaders();
    }
    try {
      for await (const chunk of upstream.body) {
        const written = write(adapter.chunk(chunk as Buffer));
        tap.chunk(chunk as Buffer);
        await written;
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
      this.logger.warn({ reqId: call.requestId, traceId: traceIdOf(call.traceparent), node: lease.node.name, err: (err as Error).message }, "upstream failed mid-stream");
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
      this.logger.warn({ reqId: call.requestId, traceId: traceIdOf(call.traceparent), node: lease.node.name, err: (err as Error).message }, "upstream failed mid-response");
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

  /** Answers an error the router makes itself; returns the status the client got. */
  private writeError(call: InferenceCall, status: number, message: string, nodeName: string | null): number {
    const res = call.res;
    if (res.headersSent) return status;
    const code = "upstream_unavailable";
    const body = call.errors ? call.errors.body(status, message, code) : call.streamErrorFormat === "ndjson" ? { error: message } : openAiError(message, "server_error", code);
    if (call.errors) status = call.errors.status(status);
    res.writeHead(status, {
      "content-type": "application/json",
      [HEADER_REQUEST_ID]: call.requestId,
      ...(nodeName ? { [HEADER_NODE]: nodeName } : {}),
    });
    res.end(JSON.stringify(body));
    return status;
  }
}
