// OpenAI-compatible routes: the model list from the catalog, and the inference routes that go
// through admission, routing and the proxy.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Capability, Catalog, CatalogEntry } from "../../../protocol/catalog.js";
import { describeZodError, INFERENCE_ROUTES, type InferencePath } from "../../../protocol/openai.js";
import { openAiError } from "../../../protocol/openai-errors.js";
import { affinityKeyOf } from "../../request-path/affinity-key.js";
import { HttpError, rawBodyOf } from "../../http/http-errors.js";
import { dispatchInference } from "../../request-path/inference-dispatch.js";
import type { InferenceProxy } from "../../request-path/inference-proxy.js";
import type { RequestEvents } from "../../request-path/request-events.js";

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

    await dispatchInference(deps.proxy, deps.events, req, reply, {
      api: "openai",
      endpoint: path,
      path,
      modelId,
      stream: parsed.data.stream === true,
      body: rawBodyOf(req),
      streamErrorFormat: "sse",
      affinityKey: affinityKeyOf(path, modelId, parsed.data, req.headers),
      errorBody: (message, code) => openAiError(message, "server_error", code),
    });
  }
}
