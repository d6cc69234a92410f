// How the router answers errors: OpenAI's shape on /v1 and the fleet API, never a 500 for
// something the client sent.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { openAiError, type OpenAiErrorType } from "../../protocol/openai-errors.js";

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly type: OpenAiErrorType = "invalid_request_error",
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

function typeFor(status: number): OpenAiErrorType {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

const FASTIFY_CODES: Record<string, { status: number; code: string; message?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: "request_too_large", message: "request body is larger than the router accepts" },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: "unsupported_media_type", message: "send the body as application/json" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: "invalid_json", message: "the request body is empty; send a JSON object" },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: "invalid_content_length" },
};

export function sendError(reply: FastifyReply, err: HttpError): void {
  void reply
    .code(err.statusCode)
    .type("application/json")
    .send(openAiError(err.message, err.type, err.code, err.param));
}

/** A refused body is read and discarded up to this much (more, or longer, and the socket is closed). */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_MAX_MS = 30_000;

/**
 * After a 413 the client is usually still sending its body, and most clients read the answer
 * only once they have sent it all. Closing at once resets the connection under them and they
 * never see the 413. So, as nginx's lingering close does, the rest of the body is read and
 * discarded (bounded in bytes and time) and the connection stays usable.
 */
export function drainRefusedBody(req: FastifyRequest, reply: FastifyReply): void {
  const raw = req.raw;
  if (raw.complete || raw.destroyed) return;
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > DRAIN_MAX_BYTES) return; // Fastify's close it is
  reply.removeHeader("connection");
  let seen = 0;
  const stop = () => clearTimeout(timer);
  const timer = setTimeout(() => raw.socket?.destroy(), DRAIN_MAX_MS);
  timer.unref();
  raw.on("data", (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > DRAIN_MAX_BYTES) raw.socket?.destroy();
  });
  raw.once("end", stop);
  raw.once("close", stop);
  raw.resume();
}

export function installErrorHandlers(app: FastifyInstance, log: (err: unknown, req: FastifyRequest) => void): void {
  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
    if (err instanceof HttpError) return sendError(reply, err);
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") drainRefusedBody(req, reply);
    const known = err.code ? FASTIFY_CODES[err.code] : undefined;
    if (known) return sendError(reply, new HttpError(known.status, known.message ?? err.message, typeFor(known.status), known.code));
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return sendError(reply, new HttpError(status, err.message, typeFor(status), err.code ?? null));
    log(err, req);
    return sendError(reply, new HttpError(500, "internal error; see the router log", "server_error", "internal_error"));
  });
  app.setNotFoundHandler((req, reply) => {
    sendError(reply, new HttpError(404, `no route ${req.method} ${req.url.split("?")[0]}`, "not_found_error", "not_found"));
  });
}

/** Parses JSON bodies ourselves so the exact bytes can be forwarded to nodes unchanged. */
export function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (req, body, done) => {
    const buf = body as Buffer;
    try {
      const parsed = JSON.parse(buf.toString("utf8")) as unknown;
      (req as FastifyRequest & { rawBody?: Buffer }).rawBody = buf;
      done(null, parsed);
    } catch (err) {
      done(new HttpError(400, `request body is not valid JSON: ${(err as Error).message}`, "invalid_request_error", "invalid_json"), undefined);
    }
  });
}

export function rawBodyOf(req: FastifyRequest): Buffer {
  return (req as FastifyRequest & { rawBody?: Buffer }).rawBody ?? Buffer.from(JSON.stringify(req.body ?? null));
}
