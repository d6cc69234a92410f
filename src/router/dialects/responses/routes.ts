// OpenAI's Responses API: POST /v1/responses (translated into a chat completion that goes through
// the shared queue, routing, proxy, history and metrics), and GET/DELETE /v1/responses/:id over
// the stored responses. Errors are OpenAI's shape, as on the other /v1 routes.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { CreateResponseRequest, describeResponsesZodError, type InputItem } from "../../../protocol/openai-responses.js";
import { authOf } from "../../auth/route-auth.js";
import { HttpError } from "../../http/http-errors.js";
import { affinityKeyOf } from "../../request-path/affinity-key.js";
import type { Dialect, DialectDeps } from "../dialect.js";
import { OPENAI_ERRORS } from "../openai/edge.js";
import { responsesToChat } from "./request-translation.js";
import { newId, ResponsesAdapter } from "./response-adapter.js";

function keyIdOf(req: FastifyRequest): string | null {
  const auth = authOf(req);
  return auth.kind === "key" ? auth.key.id : null;
}

function notFound(id: string, param: string | null = null): HttpError {
  return new HttpError(
    404,
    `No response with id '${id}' found (responses are kept for the history's retention, and only the API key that made one can read it).`,
    "invalid_request_error",
    "response_not_found",
    param,
  );
}

/** GET/DELETE take no query parameters (OpenAI's `include`, `stream`, ... are not implemented). */
function refuseQuery(req: FastifyRequest): void {
  const name = Object.keys((req.query ?? {}) as Record<string, unknown>)[0];
  if (name !== undefined)
    throw new HttpError(400, `${name}: query parameters are not supported on this route`, "invalid_request_error", "invalid_request", name);
}

export const responsesDialect: Dialect = { api: "responses", register: registerResponsesRoutes };

function registerResponsesRoutes(app: FastifyInstance, deps: DialectDeps): void {
  const byId = new Map(deps.catalog.models.map((m) => [m.id, m]));

  app.post("/v1/responses", { config: { auth: "inference" } }, async (req, reply) => {
    const parsed = CreateResponseRequest.safeParse(req.body);
    if (!parsed.success) {
      const { message, param } = describeResponsesZodError(parsed.error);
      throw new HttpError(400, message, "invalid_request_error", "invalid_request", param);
    }
    const request = parsed.data;
    const entry = byId.get(request.model);
    if (!entry) throw new HttpError(404, `The model '${request.model}' does not exist`, "invalid_request_error", "model_not_found", "model");
    if (!entry.capabilities.includes("chat")) {
      throw new HttpError(
        400,
        `The model '${request.model}' does not support chat (it supports: ${entry.capabilities.join(", ")})`,
        "invalid_request_error",
        "unsupported_capability",
        "model",
      );
    }
    const keyId = keyIdOf(req);
    let earlier: InputItem[] = [];
    if (request.previous_response_id) {
      const previous = await deps.responses.get(request.previous_response_id, keyId);
      if (!previous) throw notFound(request.previous_response_id, "previous_response_id");
      earlier = [...(previous.context as InputItem[]), ...((previous.response.output as InputItem[] | undefined) ?? [])];
    }
    const { body, context } = responsesToChat(request, earlier, entry.contextLength);
    const id = newId("resp");
    const createdAt = Date.now();
    const stream = request.stream === true;
    const save =
      request.store === false
        ? null
        : async (response: Record<string, unknown>) => {
            try {
              await deps.responses.save({ id, createdAt, keyId, model: request.model, context, response });
            } catch (err) {
              // The answer is not lost for a store that failed; only continuing it is.
              deps.log.warn({ err: (err as Error).message, responseId: id }, "could not store the response; previous_response_id will not find it");
            }
          };
    const adapter = new ResponsesAdapter(stream, OPENAI_ERRORS, { id, createdAt, request, tools: request.tools ?? [], context, save });
    await deps.dispatcher.dispatch(req, reply, {
      endpoint: "/v1/responses",
      path: "/v1/chat/completions",
      modelId: entry.id,
      stream,
      body: Buffer.from(JSON.stringify(body)),
      edge: { api: "responses", errors: OPENAI_ERRORS, adapter },
      // Keyed on the chat request it became, so a conversation lands on one node in every dialect.
      affinityKey: affinityKeyOf("/v1/chat/completions", entry.id, body, req.headers),
    });
  });

  app.get("/v1/responses/:id", { config: { auth: "inference" } }, async (req) => {
    refuseQuery(req);
    const { id } = req.params as { id: string };
    const stored = await deps.responses.get(id, keyIdOf(req));
    if (!stored) throw notFound(id);
    return stored.response;
  });

  app.delete("/v1/responses/:id", { config: { auth: "inference" } }, async (req) => {
    refuseQuery(req);
    const { id } = req.params as { id: string };
    if (!(await deps.responses.delete(id, keyIdOf(req)))) throw notFound(id);
    return { id, object: "response", deleted: true };
  });
}
