// The part of every inference route after its dialect has validated and translated the request:
// request id and trace context, client-disconnect abort, admission + proxy, queue refusals in the
// dialect's error shape, and the one request record.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ServerResponse } from "node:http";
import { HEADER_REQUEST_ID, HEADER_TRACEPARENT } from "../../protocol/http.js";
import { apiKeyNameOf } from "../auth/route-auth.js";
import { ModelUnavailableError, QueueAbortedError, QueueFullError, QueueTimeoutError } from "./admission-queue.js";
import type { ClientEdge } from "./client-edge.js";
import type { InferenceOutcome, InferenceProxy } from "./inference-proxy.js";
import type { RequestEvents } from "./request-events.js";
import { childTraceparent, requestIdFrom } from "./request-identity.js";

export interface InferenceJob {
  /** The client's path, for the record. */
  endpoint: string;
  /** The node's path the request goes to (an OpenAI route). */
  path: string;
  modelId: string;
  stream: boolean;
  /** The body for the node, as it will be sent. */
  body: Buffer;
  /** From the already-parsed body (affinity-key.ts); null: placed by least-load. */
  affinityKey: string | null;
  edge: ClientEdge;
}

/** Writes a JSON error on a hijacked reply (the raw response is ours). */
function writeRaw(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

export class InferenceDispatcher {
  constructor(
    private readonly proxy: InferenceProxy,
    private readonly events: RequestEvents,
  ) {}

  async dispatch(req: FastifyRequest, reply: FastifyReply, job: InferenceJob): Promise<void> {
    const requestId = requestIdFrom(req.headers[HEADER_REQUEST_ID]);
    const traceparent = childTraceparent(req.headers[HEADER_TRACEPARENT]);
    const started = Date.now();
    const controller = new AbortController();
    const res = reply.raw;
    res.on("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    reply.hijack();

    let outcome: InferenceOutcome = { status: 0, nodeId: null, nodeName: null, queueWaitMs: 0, firstByteMs: null, error: null, attempts: 0 };
    try {
      outcome = await this.proxy.run({
        path: job.path,
        modelId: job.modelId,
        body: job.body,
        requestId,
        traceparent,
        signal: controller.signal,
        res,
        edge: job.edge,
        affinityKey: job.affinityKey,
      });
    } catch (err) {
      const errors = job.edge.errors;
      const refuse = (status: number, message: string, code: string, extra: Record<string, string>) => {
        const shown = errors.status(status);
        writeRaw(res, shown, errors.body(status, message, code), { [HEADER_REQUEST_ID]: requestId, ...extra });
        return shown;
      };
      if (err instanceof QueueFullError) {
        outcome.error = "queue_full";
        outcome.status = refuse(503, err.message, "queue_full", { "retry-after": "1" });
      } else if (err instanceof ModelUnavailableError) {
        outcome.error = "model_unavailable";
        outcome.status = refuse(503, err.message, "model_unavailable", { "retry-after": "30" });
      } else if (err instanceof QueueTimeoutError) {
        outcome.error = "queue_timeout";
        outcome.status = refuse(503, err.message, "queue_timeout", { "retry-after": "5" });
      } else if (err instanceof QueueAbortedError || controller.signal.aborted) {
        outcome.status = 499;
        outcome.error = "client disconnected";
      } else {
        outcome.error = (err as Error).message;
        outcome.status = refuse(502, `upstream error: ${(err as Error).message}`, "upstream_error", {});
      }
    }
    this.events.emitFinished({
      requestId,
      startedAt: started,
      api: job.edge.api,
      endpoint: job.endpoint,
      modelId: job.modelId,
      stream: job.stream,
      clientIp: req.ip,
      keyName: apiKeyNameOf(req),
      nodeId: outcome.nodeId,
      nodeName: outcome.nodeName,
      routing: outcome.routing ?? null,
      affinity: outcome.affinity ?? null,
      status: outcome.status,
      error: outcome.error,
      attempts: outcome.attempts,
      queueWaitMs: outcome.queueWaitMs,
      firstByteMs: outcome.firstByteMs,
      durationMs: Date.now() - started,
      // Read from the node's usage by the proxy's response tap.
      promptTokens: outcome.promptTokens ?? null,
      completionTokens: outcome.completionTokens ?? null,
      toolCalls: outcome.toolCalls ?? null,
      cachedTokens: outcome.cachedTokens ?? null,
      requestBody: outcome.requestBody,
      responseBody: outcome.responseBody,
      traceId: traceparent.split("-")[1] ?? null,
    });
  }
}
