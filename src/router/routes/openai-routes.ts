// OpenAI-compatible routes: the model list from the catalog, and the inference routes that go
// through admission, routing and the proxy.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ServerResponse } from "node:http";
import type { Capability, Catalog, CatalogEntry } from "../../protocol/catalog.js";
import { HEADER_REQUEST_ID, HEADER_TRACEPARENT } from "../../protocol/http.js";
import { describeZodError, INFERENCE_ROUTES, type InferencePath } from "../../protocol/openai.js";
import { openAiError } from "../../protocol/openai-errors.js";
import { QueueAbortedError, QueueFullError, QueueTimeoutError } from "../admission-queue.js";
import { apiKeyNameOf } from "../auth/route-auth.js";
import { HttpError, rawBodyOf } from "../http-errors.js";
import type { InferenceOutcome, InferenceProxy } from "../inference-proxy.js";
import type { RequestEvents } from "../request-events.js";
import { childTraceparent, requestIdFrom } from "../request-identity.js";

export interface OpenAiRouteDeps {
  catalog: Catalog;
  proxy: InferenceProxy;
  createdAt: number;
  events: RequestEvents;
}

const CAPABILITY: Record<InferencePath, Capability> = {
  "/v1/chat/completions": "chat",
  "/v1/completions": "completion",
  "/v1/embeddings": "embedding",
};

function modelObject(entry: CatalogEntry, created: number) {
  return { id: entry.id, object: "model" as const, created, owned_by: "drover" };
}

/** Writes a JSON error on a hijacked reply (the raw response is ours). */
function writeRaw(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

export function registerOpenAiRoutes(app: FastifyInstance, deps: OpenAiRouteDeps): void {
  const byId = new Map(deps.catalog.models.map((m) => [m.id, m]));
  const created = Math.floor(deps.createdAt / 1000);

  app.get("/v1/models", { config: { auth: "inference" } }, async () => ({ object: "list", data: deps.catalog.models.map((m) => modelObject(m, created)) }));

  // Ids may hold "/" (e.g. "org/model"), so the rest of the path is the id.
  app.get("/v1/models/*", { config: { auth: "inference" } }, async (req) => {
    const id = decodeURIComponent((req.params as { "*": string })["*"]);
    const entry = byId.get(id);
    if (!entry) throw new HttpError(404, `The model '${id}' does not exist`, "invalid_request_error", "model_not_found", "model");
    return modelObject(entry, created);
  });

  for (const path of Object.keys(INFERENCE_ROUTES) as InferencePath[]) {
    app.post(path, { config: { auth: "inference" } }, async (req, reply) => handleInference(req, reply, path));
  }

  async function handleInference(req: FastifyRequest, reply: FastifyReply, path: InferencePath): Promise<void> {
    const parsed = INFERENCE_ROUTES[path].safeParse(req.body);
    if (!parsed.success) {
      const { message, param } = describeZodError(parsed.error);
      throw new HttpError(400, message, "invalid_request_error", "invalid_request", param);
    }
    const modelId = parsed.data.model;
    const entry = byId.get(modelId);
    if (!entry) throw new HttpError(404, `The model '${modelId}' does not exist`, "invalid_request_error", "model_not_found", "model");
    if (!entry.capabilities.includes(CAPABILITY[path])) {
      throw new HttpError(400, `The model '${modelId}' does not support ${CAPABILITY[path]} (it supports: ${entry.capabilities.join(", ")})`, "invalid_request_error", "unsupported_capability", "model");
    }

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
      outcome = await deps.proxy.run({
        path,
        modelId,
        body: rawBodyOf(req),
        requestId,
        traceparent,
        signal: controller.signal,
        res,
        streamErrorFormat: "sse",
      });
    } catch (err) {
      const headers = { [HEADER_REQUEST_ID]: requestId };
      if (err instanceof QueueFullError) {
        outcome.status = 503;
        outcome.error = "queue_full";
        writeRaw(res, 503, openAiError(err.message, "server_error", "queue_full"), { ...headers, "retry-after": "1" });
      } else if (err instanceof QueueTimeoutError) {
        outcome.status = 503;
        outcome.error = "queue_timeout";
        writeRaw(res, 503, openAiError(err.message, "server_error", "queue_timeout"), { ...headers, "retry-after": "5" });
      } else if (err instanceof QueueAbortedError || controller.signal.aborted) {
        outcome.status = 499;
        outcome.error = "client disconnected";
      } else {
        outcome.status = 502;
        outcome.error = (err as Error).message;
        writeRaw(res, 502, openAiError(`upstream error: ${(err as Error).message}`, "server_error", "upstream_error"), headers);
      }
    }
    deps.events.emitFinished({
      requestId,
      startedAt: started,
      api: "openai",
      endpoint: path,
      modelId,
      stream: parsed.data.stream === true,
      clientIp: req.ip,
      keyName: apiKeyNameOf(req),
      nodeId: outcome.nodeId,
      nodeName: outcome.nodeName,
      status: outcome.status,
      error: outcome.error,
      attempts: outcome.attempts,
      queueWaitMs: outcome.queueWaitMs,
      firstByteMs: outcome.firstByteMs,
      durationMs: Date.now() - started,
      promptTokens: outcome.promptTokens ?? null,
      completionTokens: outcome.completionTokens ?? null,
      requestBody: outcome.requestBody,
      responseBody: outcome.responseBody,
      traceId: traceparent.split("-")[1] ?? null,
    });
  }
}
