// Anthropic's Messages API: POST /v1/messages and POST /v1/messages/count_tokens, translated into
// chat completions that go through the shared queue, routing, proxy, history and metrics. The key
// comes as `x-api-key` or a Bearer token; `anthropic-version` and `anthropic-beta` are accepted
// (drover serves one version of the API). Every error, the auth hook's included, is Anthropic's
// shape with Anthropic's status codes.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { CatalogEntry } from "../../../protocol/catalog.js";
import { anthropicError, CountTokensRequest, describeAnthropicZodError, MessagesRequest } from "../../../protocol/anthropic.js";
import { HttpError } from "../../http/http-errors.js";
import { affinityKeyOf } from "../../request-path/affinity-key.js";
import type { ResponseAdapter } from "../../request-path/response-adapter.js";
import type { Dialect, DialectDeps } from "../dialect.js";
import { ANTHROPIC_ERRORS, AnthropicHttpError, anthropicErrorType, anthropicStatus } from "./anthropic-http-error.js";
import { messagesToChat, promptToChat } from "./request-translation.js";
import { CountTokensAdapter, MessagesAdapter } from "./response-adapter.js";

const FASTIFY_STATUS: Record<string, { status: number; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, message: "request body is larger than the router accepts" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, message: "the request body is empty; send a JSON object" },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 400, message: "send the body as application/json" },
};

export const anthropicDialect: Dialect = { api: "anthropic", register: registerAnthropicRoutes };

function registerAnthropicRoutes(app: FastifyInstance, deps: DialectDeps): void {
  const byId = new Map(deps.catalog.models.map((m) => [m.id, m]));

  function errorHandler(err: FastifyError | HttpError | AnthropicHttpError, req: FastifyRequest, reply: FastifyReply): void {
    let status: number;
    let message: string;
    if (err instanceof AnthropicHttpError) [status, message] = [err.statusCode, err.message];
    else if (err instanceof HttpError) {
      status = err.statusCode;
      message = err.code === "missing_api_key" ? "You didn't provide an API key. Send it as 'x-api-key: <key>' or 'Authorization: Bearer <key>'." : err.message;
    } else {
      const known = err.code ? FASTIFY_STATUS[err.code] : undefined;
      status = known?.status ?? err.statusCode ?? 500;
      message = known?.message ?? err.message;
      if (status >= 500) {
        deps.log.error({ err, url: req.url }, "unhandled error");
        message = "internal error; see the router log";
      }
    }
    const shown = anthropicStatus(status);
    void reply
      .code(shown)
      .type("application/json")
      .send(anthropicError(anthropicErrorType(shown), message));
  }

  function model(name: string): CatalogEntry {
    const entry = byId.get(name);
    if (!entry) throw new AnthropicHttpError(404, `model: ${name} (not in drover's catalog; GET /v1/models lists the models)`);
    if (!entry.capabilities.includes("chat"))
      throw new AnthropicHttpError(400, `model: ${name} does not support chat (it supports: ${entry.capabilities.join(", ")})`);
    return entry;
  }

  function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: import("zod").ZodError } }, body: unknown): T {
    if (!body || typeof body !== "object" || Array.isArray(body)) throw new AnthropicHttpError(400, "the request body must be a JSON object");
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new AnthropicHttpError(400, describeAnthropicZodError(parsed.error));
    return parsed.data;
  }

  async function run(
    req: FastifyRequest,
    reply: FastifyReply,
    endpoint: string,
    entry: CatalogEntry,
    stream: boolean,
    body: Record<string, unknown>,
    adapter: ResponseAdapter,
  ): Promise<void> {
    await deps.dispatcher.dispatch(req, reply, {
      endpoint,
      path: "/v1/chat/completions",
      modelId: entry.id,
      stream,
      body: Buffer.from(JSON.stringify(body)),
      edge: { api: "anthropic", errors: ANTHROPIC_ERRORS, adapter },
      // Keyed on the chat request it became, so a conversation lands on one node in every dialect.
      affinityKey: affinityKeyOf("/v1/chat/completions", entry.id, body, req.headers),
    });
  }

  app.post("/v1/messages", { config: { auth: "inference" }, errorHandler }, async (req, reply) => {
    const request = parse(MessagesRequest, req.body);
    const entry = model(request.model);
    const stream = request.stream === true;
    await run(req, reply, "/v1/messages", entry, stream, messagesToChat(request), new MessagesAdapter(stream, request.model));
  });

  // Counted by the engine itself, exactly (chat template and tools included): the request runs
  // with max_tokens 1 and the answer is the prompt_tokens the engine reports. It costs one prompt
  // evaluation, which the engine's prompt cache then reuses for the real request.
  app.post("/v1/messages/count_tokens", { config: { auth: "inference" }, errorHandler }, async (req, reply) => {
    const request = parse(CountTokensRequest, req.body);
    const entry = model(request.model);
    const body = { ...promptToChat(request), max_tokens: 1, stream: true, stream_options: { include_usage: true } };
    await run(req, reply, "/v1/messages/count_tokens", entry, false, body, new CountTokensAdapter());
  });
}
