// The node's OpenAI inference routes: find the model's ready engine and forward the original bytes
// to it on the loopback, piping the answer back chunk by chunk (SSE is never buffered). A router
// names the model in x-drover-model (it validated the body at its edge), so its requests are
// routed by that header and their bodies are not parsed here; a request without the header (a
// test, an operator's curl with the router credential) is parsed and validated as before. A
// client that goes away aborts the upstream request, so the engine stops generating.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { Dispatcher } from "undici";
import { HEADER_MODEL, HEADER_REQUEST_ID, HEADER_TRACEPARENT } from "../protocol/http.js";
import { describeZodError, INFERENCE_ROUTES, type InferencePath } from "../protocol/openai.js";
import { openAiError } from "../protocol/openai-errors.js";
import type { ModelStatusBoard } from "./model-status-board.js";
import type { ForwardedRequest } from "./node-metrics.js";

export interface EngineProxyOptions {
  board: ModelStatusBoard;
  /** The loopback port of the model's engine while it is ready. */
  enginePort: (modelId: string) => number | undefined;
  /** False until the catalog arrived from the router. */
  catalogLoaded: () => boolean;
  dispatcher: Dispatcher;
  logger: Logger;
  bodyLimitBytes: number;
  /** Called once per request when its response ends (metrics). */
  onFinished?: (r: ForwardedRequest) => void;
  /** True once the node is shutting down: new requests get 503 node_closing (the router retries elsewhere). */
  closing?: () => boolean;
}

/** What the body parser keeps: the bytes to forward and the parsed JSON to validate (none when the router named the model). */
interface RawJsonBody {
  raw: Buffer;
  json?: unknown;
  /** From x-drover-model: the body is forwarded unparsed. */
  model?: string;
  /** Set once the request is forwarded: released and aborted when the response closes. */
  forwarding?: { model: string; abort: AbortController };
}

const FORWARDED_REQUEST_HEADERS = ["accept", HEADER_TRACEPARENT, "tracestate"] as const;

export async function engineProxyRoutes(app: FastifyInstance, opts: EngineProxyOptions): Promise<void> {
  // Clients send JSON under many content types (curl -d says form-urlencoded): read every body
  // as bytes and parse it as JSON here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: opts.bodyLimitBytes }, (req, body, done) => {
    const raw = body as Buffer;
    const model = req.headers[HEADER_MODEL];
    if (typeof model === "string" && model !== "") return done(null, { raw, model } satisfies RawJsonBody);
    try {
      done(null, { raw, json: JSON.parse(raw.toString("utf8")) } satisfies RawJsonBody);
    } catch (err) {
      const error = new Error(`request body is not valid JSON: ${(err as Error).message}`) as Error & { statusCode: number; code: string };
      error.statusCode = 400;
      error.code = "invalid_json";
      done(error, undefined);
    }
  });

  // When the response ends, finished or cut off (499: the client went away first): the request
  // leaves the in-flight count, the engine request is aborted if still running, and one log line
  // (req.log carries reqId and traceId; built only when info is logged) and one metric sample.
  // One listener per request does all of it.
  app.addHook("onRequest", async (req, reply) => {
    reply.raw.once("close", () => {
      const body = req.body as RawJsonBody | undefined;
      const forwarding = body?.forwarding;
      if (forwarding) {
        opts.board.addInFlight(forwarding.model, -1);
        if (!reply.raw.writableFinished) forwarding.abort.abort(new Error("client disconnected"));
      }
      const named = body?.model ?? (body?.json as { model?: unknown } | undefined)?.model;
      const model = typeof named === "string" && opts.board.has(named) ? named : "unknown";
      const status = reply.raw.writableFinished ? reply.statusCode : 499;
      const durationMs = Math.round(reply.elapsedTime);
      const endpoint = req.routeOptions.url ?? req.url;
      if (opts.logger.isLevelEnabled("info")) req.log.info({ path: req.routeOptions.url, model, status, durationMs }, "request");
      opts.onFinished?.({ endpoint, model, status, durationMs });
    });
  });

  for (const path of Object.keys(INFERENCE_ROUTES) as InferencePath[]) {
    app.post(path, (req, reply) => forward(path, req, reply, opts));
  }
}

async function forward(path: InferencePath, req: FastifyRequest, reply: FastifyReply, opts: EngineProxyOptions): Promise<FastifyReply> {
  const body = req.body as RawJsonBody | undefined;
  if (!body) return reply.code(400).send(openAiError("request body must be a JSON object", "invalid_request_error", "invalid_json"));
  let model = body.model;
  if (model === undefined) {
    const parsed = INFERENCE_ROUTES[path].safeParse(body.json);
    if (!parsed.success) {
      const { message, param } = describeZodError(parsed.error);
      return reply.code(400).send(openAiError(message, "invalid_request_error", null, param));
    }
    model = parsed.data.model;
  }

  if (opts.closing?.()) {
    return reply.code(503).send(openAiError("this node is shutting down; the router retries the request on another node", "server_error", "node_closing"));
  }
  if (!opts.catalogLoaded()) {
    return reply.code(503).send(openAiError("this node has not received the catalog from the router yet", "server_error", "model_not_ready"));
  }
  const status = opts.board.get(model);
  if (!status) {
    return reply.code(404).send(openAiError(`The model '${model}' does not exist`, "invalid_request_error", "model_not_found", "model"));
  }
  const port = opts.enginePort(model);
  if (port === undefined || status.state !== "ready") {
    const detail = status.state === "downloading" && status.progress !== undefined ? `downloading ${Math.floor(status.progress * 100)}%` : status.state;
    return reply
      .code(503)
      .send(
        openAiError(`model '${model}' is not ready on this node (${detail}${status.reason ? `: ${status.reason}` : ""})`, "server_error", "model_not_ready"),
      );
  }

  // Several routers may send to this node, each counting only its own requests: the node admits
  // at most its slots per model and refuses the excess at once (the router tries another node or
  // keeps the request queued). Nothing awaits between this check and addInFlight below.
  if (status.slots > 0 && status.inFlight >= status.slots) {
    return reply
      .code(503)
      .header("retry-after", "1")
      .send(
        openAiError(
          `model '${model}' is answering ${status.inFlight} requests on this node, all of its ${status.slots} slots; the router sends this one to another node or keeps it queued`,
          "server_error",
          "node_busy",
        ),
      );
  }

  // x-request-id from the router, else generated (see requestLogOptions).
  const requestId = req.id;
  reply.header(HEADER_REQUEST_ID, requestId);
  const headers: Record<string, string> = { "content-type": "application/json", [HEADER_REQUEST_ID]: requestId };
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = headerValue(req.headers[name]);
    if (value !== undefined) headers[name] = value;
  }

  // In flight from here until the response to the client is finished or the client is gone
  // (released by the close listener of the onRequest hook).
  const upstreamAbort = new AbortController();
  opts.board.addInFlight(model, 1);
  body.forwarding = { model, abort: upstreamAbort };
  if (reply.raw.closed) {
    // Gone before we got here: the close listener has run already.
    opts.board.addInFlight(model, -1);
    return reply;
  }

  let upstream: Dispatcher.ResponseData;
  try {
    upstream = await opts.dispatcher.request({
      origin: engineOrigin(port),
      path,
      method: "POST",
      headers,
      body: body.raw,
      signal: upstreamAbort.signal,
    });
  } catch (err) {
    if (upstreamAbort.signal.aborted) {
      req.log.debug({ model }, "client disconnected before the engine answered");
    } else {
      req.log.warn({ model, err: (err as Error).message }, "engine unavailable");
    }
    return reply.code(503).send(openAiError(`the engine for '${model}' is unavailable: ${(err as Error).message}`, "server_error", "engine_unavailable"));
  }

  reply.code(upstream.statusCode);
  const contentType = headerValue(upstream.headers["content-type"]);
  if (contentType) reply.header("content-type", contentType);
  if (contentType?.startsWith("text/event-stream")) {
    reply.header("cache-control", headerValue(upstream.headers["cache-control"]) ?? "no-cache");
    reply.header("x-accel-buffering", "no");
  }
  if (!contentType?.startsWith("text/event-stream")) {
    // A plain body is one JSON document: sent whole with its length, in one write rather than
    // a chunked response (every write is a system call on the request path).
    try {
      return reply.send(Buffer.from(await upstream.body.arrayBuffer()));
    } catch (err) {
      if (upstreamAbort.signal.aborted) return reply;
      req.log.warn({ model, err: (err as Error).message }, "engine response failed mid-body");
      return reply
        .code(503)
        .send(openAiError(`the engine for '${model}' failed while answering: ${(err as Error).message}`, "server_error", "engine_unavailable"));
    }
  }
  // The engine's events and the end of its body, when they come in one turn of the event loop,
  // go to the router in one write (see the router's relay in inference-proxy.ts).
  const raw = reply.raw;
  let corked = false;
  const uncork = () => {
    corked = false;
    raw.uncork();
  };
  // Listening from the pipe's start (fastify pipes the body into the response) leaves the flow of
  // data to the pipe: a 'data' listener of our own attached earlier would start it by itself.
  raw.once("pipe", (body: NodeJS.ReadableStream) =>
    body.on("data", () => {
      if (corked) return;
      corked = true;
      raw.cork();
      setImmediate(uncork);
    }),
  );
  upstream.body.once("error", (err) => {
    if (!upstreamAbort.signal.aborted) req.log.warn({ model, err: err.message }, "engine response failed mid-stream");
  });
  return reply.send(upstream.body);
}

/** Engine origins by port, built once: a URL string per request would be parsed per request. */
const origins = new Map<number, string>();
function engineOrigin(port: number): string {
  let origin = origins.get(port);
  if (origin === undefined) origins.set(port, (origin = `http://127.0.0.1:${port}`));
  return origin;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === "" ? undefined : v;
}
