// OpenAI's chat/completions dialect: the model list from the catalog, and the inference routes
// (chat completions, completions, embeddings), whose bodies the node serves as they are: the
// client's bytes go to the node unchanged and its answer comes back unchanged.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Capability, CatalogEntry } from "../../../protocol/catalog.js";
import { describeZodError, INFERENCE_ROUTES, type InferencePath } from "../../../protocol/openai.js";
import { HttpError, rawBodyOf } from "../../http/http-errors.js";
import { affinityKeyOf } from "../../request-path/affinity-key.js";
import type { Dialect, DialectDeps } from "../dialect.js";
import { openAiEdge } from "./edge.js";

const CAPABILITY: Record<InferencePath, Capability> = {
  "/v1/chat/completions": "chat",
  "/v1/completions": "completion",
  "/v1/embeddings": "embedding",
};

function modelObject(entry: CatalogEntry, created: number) {
  return { id: entry.id, object: "model" as const, created, owned_by: "drover" };
}

export const openAiDialect: Dialect = { api: "openai", register: registerOpenAiRoutes };

function registerOpenAiRoutes(app: FastifyInstance, deps: DialectDeps): void {
  const byId = new Map(deps.catalog.models.map((m) => [m.id, m]));
  const created = Math.floor(deps.startedAt / 1000);

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
      throw new HttpError(
        400,
        `The model '${modelId}' does not support ${CAPABILITY[path]} (it supports: ${entry.capabilities.join(", ")})`,
        "invalid_request_error",
        "unsupported_capability",
        "model",
      );
    }

    await deps.dispatcher.dispatch(req, reply, {
      endpoint: path,
      path,
      modelId,
      stream: parsed.data.stream === true,
      body: rawBodyOf(req),
      affinityKey: affinityKeyOf(path, modelId, parsed.data, req.headers),
      edge: openAiEdge(),
    });
  }
}
