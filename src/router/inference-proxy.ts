// Sends an admitted inference request to a node and streams the answer back chunk by chunk.
// A transport failure before the response starts is retried on another ready node (the request
// re-queues at the front of its line); a failure mid-stream ends the stream with an error event.
import { once } from "node:events";
import type { ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import { HEADER_NODE, HEADER_REQUEST_ID, HEADER_TRACEPARENT } from "../protocol/http.js";
import { openAiError } from "../protocol/openai-errors.js";
import type { AdmissionQueue, Lease } from "./admission-queue.js";
import type { NodeRegistry } from "./node-registry.js";

export interface ProxyOptions {
  maxAttempts: number;
  /** Longest wait for a node's response headers (a non-streamed generation sends them at the end). */
  headersTimeoutMs: number;
  /** Longest silence between two chunks of a response body. */
  bodyTimeoutMs: number;
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
}

export interface InferenceOutcome {
  status: number;
  nodeId: string | null;
  nodeName: string | null;
  queueWaitMs: number;
  firstByteMs: number | null;
  error: string | null;
  attempts: number;
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
    let lastError = "no attempt made";
    while (outcome.attempts < this.opts.maxAttempts) {
      const lease = await this.queue.acquire(call.modelId, call.signal, outcome.attempts > 0);
      outcome.attempts++;
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
        this.logger.warn({ reqId: call.requestId, node: lease.node.name, err: (err as Error).message }, "node failed before responding; retrying elsewhere");
        continue;
      }
      if (upstream.statusCode === 503 && (await this.isNodeUnavailable(upstream))) {
        this.registry.suspendModel(lease.node, call.modelId);
        this.queue.release(lease);
        lastError = `${lease.node.name}: model ${call.modelId} unavailable on the node`;
        this.logger.warn({ reqId: call.requestId, node: lease.node.name, model: call.modelId }, "node's engine unavailable; retrying elsewhere");
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
    outcome.status = 502;
    outcome.error = `no node could serve the request after ${outcome.attempts} attempts (last: ${lastError})`;
    this.writeError(call, 502, outcome.error, outcome.nodeName);
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
    const contentType = String(upstream.headers["content-type"] ?? "application/json");
    outcome.status = upstream.statusCode;
    res.writeHead(upstream.statusCode, {
      "content-type": contentType,
      "cache-control": "no-cache",
      [HEADER_REQUEST_ID]: call.requestId,
      [HEADER_NODE]: lease.node.name,
    });
    res.flushHeaders();
    try {
      for await (const chunk of upstream.body) {
        if (outcome.firstByteMs === null) outcome.firstByteMs = Date.now() - started;
        if (!res.write(chunk)) await once(res, "drain");
      }
      res.end();
    } catch (err) {
      if (call.signal.aborted) {
        outcome.error = "client disconnected";
        return;
      }
      outcome.error = `stream from ${lease.node.name} broke: ${(err as Error).message}`;
      lease.node.failedRequests++;
      this.logger.warn({ reqId: call.requestId, node: lease.node.name, err: (err as Error).message }, "upstream failed mid-stream");
      // A stream gets a final error event its client can parse; a plain body cannot be
      // patched, so the connection is cut and the client sees a truncated response.
      if (/event-stream|ndjson/.test(contentType)) res.end(this.streamError(call, outcome.error));
      else res.destroy();
    }
  }

  private streamError(call: InferenceCall, message: string): string {
    if (call.streamErrorFormat === "ndjson") return JSON.stringify({ error: message }) + "\n";
    return `data: ${JSON.stringify(openAiError(message, "server_error", "upstream_failed"))}\n\n`;
  }

  private writeError(call: InferenceCall, status: number, message: string, nodeName: string | null): void {
    const res = call.res;
    if (res.headersSent) return;
    const body = call.streamErrorFormat === "ndjson" ? { error: message } : openAiError(message, "server_error", "upstream_unavailable");
    res.writeHead(status, {
      "content-type": "application/json",
      [HEADER_REQUEST_ID]: call.requestId,
      ...(nodeName ? { [HEADER_NODE]: nodeName } : {}),
    });
    res.end(JSON.stringify(body));
  }
}
