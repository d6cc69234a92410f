// Ollama-compatible routes. Model listings come from the catalog and the node registry; chat,
// generate and embeddings are translated into OpenAI requests and go through the same admission
// queue, routing, failover and request records as the /v1 routes. Every error is Ollama's
// `{"error": "..."}` with its status.
import type { FastifyError, FastifyReply, FastifyRequest, FastifyInstance } from "fastify";
import type { z } from "zod";
import type { Capability, CatalogEntry } from "../../../protocol/catalog.js";
import {
  describeOllamaZodError,
  ollamaError,
  OllamaChatRequest,
  OllamaEmbeddingsRequest,
  OllamaEmbedRequest,
  OllamaGenerateRequest,
  OllamaShowRequest,
} from "../../../protocol/ollama.js";
import { affinityKeyOf } from "../../request-path/affinity-key.js";
import { drainRefusedBody, type HttpError } from "../../http/http-errors.js";
import { OllamaGenerationAdapter } from "./generation-adapter.js";
import { OllamaJsonAdapter } from "./json-adapter.js";
import { resolveOllamaModel } from "./model-names.js";
import { psView, showView, tagsView } from "./model-views.js";
import { JSON_CONTENT_TYPE } from "./ndjson.js";
import { OLLAMA_ERRORS, OllamaHttpError } from "./ollama-http-error.js";
import { chatToOpenAi, embeddingsToOpenAi, embedToOpenAi, generateToOpenAi, type OpenAiCall } from "./request-translation.js";
import { msToNs, ollamaEmbed, ollamaEmbeddings, ollamaLoaded, type GenerationKind } from "./response-translation.js";
import type { ResponseAdapter } from "../../request-path/response-adapter.js";
import type { Dialect, DialectDeps } from "../dialect.js";

/** What a job on a node yields for the request record. */
interface InferenceJob {
  endpoint: string;
  modelId: string;
  stream: boolean;
  call: OpenAiCall;
  adapter: ResponseAdapter;
}

const FASTIFY_STATUS: Record<string, { status: number; message?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, message: "request body is larger than the router accepts" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, message: "the request body is empty; send a JSON object" },
};

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null) throw new OllamaHttpError(400, "the request body must be a JSON object");
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new OllamaHttpError(400, describeOllamaZodError(parsed.error));
  return parsed.data;
}

export const ollamaDialect: Dialect = { api: "ollama", register: registerOllamaRoutes };

function registerOllamaRoutes(app: FastifyInstance, deps: DialectDeps): void {
  const byId = new Map(deps.catalog.models.map((m) => [m.id, m]));
  // A model whose file time is unknown was modified when the router started.
  const modifiedAt = (id: string) => deps.modifiedAt(id) ?? deps.startedAt;

  /** Ollama's shape for everything that goes wrong on these routes, the body parser's errors included. */
  function errorHandler(err: FastifyError | HttpError | OllamaHttpError, req: FastifyRequest, reply: FastifyReply): void {
    if (err instanceof OllamaHttpError) {
      void reply.code(err.statusCode).headers(err.headers).type(JSON_CONTENT_TYPE).send(ollamaError(err.message));
      return;
    }
    if ("code" in err && err.code === "FST_ERR_CTP_BODY_TOO_LARGE") drainRefusedBody(req, reply);
    const known = "code" in err && err.code ? FASTIFY_STATUS[err.code] : undefined;
    const status = known?.status ?? err.statusCode ?? 500;
    if (status >= 500) deps.log.error({ err, url: req.url }, "unhandled error");
    const message = status >= 500 ? "internal error; see the router log" : (known?.message ?? err.message);
    void reply.code(status).type(JSON_CONTENT_TYPE).send(ollamaError(message));
  }

  /**
   * Ollama reads every body as JSON whatever its content type (its own docs use `curl -d`, which
   * sends form encoding), so these routes do too.
   */
  function bodyIsJson(req: FastifyRequest, _reply: FastifyReply, done: () => void): void {
    const type = req.headers["content-type"];
    if (type === undefined || !/^application\/json\b/i.test(type)) req.headers["content-type"] = "application/json";
    done();
  }

  function post(url: string, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>): void {
    app.route({ method: "POST", url, config: { auth: "inference" }, onRequest: bodyIsJson, errorHandler, handler });
  }

  function model(name: string, capability: Capability): CatalogEntry {
    const entry = resolveOllamaModel(byId, name);
    if (!entry) throw new OllamaHttpError(404, `model "${name}" not found`);
    if (!entry.capabilities.includes(capability)) {
      throw new OllamaHttpError(400, `model "${name}" does not support ${capability} (it supports: ${entry.capabilities.join(", ")})`);
    }
    return entry;
  }

  // --- probes and listings -------------------------------------------------------------------

  // Clients and load balancers probe Ollama with GET or HEAD / (Fastify answers HEAD from GET).
  app.get("/", { config: { auth: "public" }, errorHandler }, async (_req, reply) => reply.type("text/plain; charset=utf-8").send("Ollama is running"));

  app.get("/api/version", { config: { auth: "public" }, errorHandler }, async () => ({ version: deps.version }));

  app.get("/api/tags", { config: { auth: "inference" }, errorHandler }, async () => tagsView(deps.catalog.models, modifiedAt));

  app.get("/api/ps", { config: { auth: "inference" }, errorHandler }, async () => psView(deps.catalog.models, deps.registry.all(), modifiedAt));

  post("/api/show", async (req) => {
    const body = parse(OllamaShowRequest, req.body);
    const name = (body.model ?? body.name)!;
    const entry = resolveOllamaModel(byId, name);
    if (!entry) throw new OllamaHttpError(404, `model "${name}" not found`);
    return showView(entry, modifiedAt(entry.id));
  });

  // --- inference -----------------------------------------------------------------------------

  post("/api/chat", async (req, reply) => {
    const body = parse(OllamaChatRequest, req.body);
    const entry = model(body.model, "chat");
    if (!body.messages?.length) return loaded(reply, "chat", body.model, body.keep_alive);
    const call = chatToOpenAi(body, { modelId: entry.id, contextLength: entry.contextLength });
    await generation(req, reply, "/api/chat", "chat", entry, body.model, body.stream !== false, call, body.think !== false);
  });

  post("/api/generate", async (req, reply) => {
    const body = parse(OllamaGenerateRequest, req.body);
    const entry = model(body.model, body.raw ? "completion" : "chat");
    if (!body.prompt) return loaded(reply, "generate", body.model, body.keep_alive);
    const call = generateToOpenAi(body, { modelId: entry.id, contextLength: entry.contextLength });
    await generation(req, reply, "/api/generate", "generate", entry, body.model, body.stream !== false, call, body.think !== false);
  });

  post("/api/embed", async (req, reply) => {
    const body = parse(OllamaEmbedRequest, req.body);
    const entry = model(body.model, "embedding");
    if (Array.isArray(body.input) && body.input.length === 0) return { model: body.model, embeddings: [] };
    const receivedAt = performance.now();
    const adapter = new OllamaJsonAdapter((upstream, head) =>
      ollamaEmbed(body.model, upstream, body.dimensions, { total_duration: msToNs(performance.now() - receivedAt), load_duration: msToNs(head.queueWaitMs) }),
    );
    const call = embedToOpenAi(body, { modelId: entry.id, contextLength: entry.contextLength });
    await run(req, reply, { endpoint: "/api/embed", modelId: entry.id, stream: false, call, adapter });
  });

  // The legacy route: one prompt, one vector; an empty prompt gets an empty vector, as in Ollama.
  post("/api/embeddings", async (req, reply) => {
    const body = parse(OllamaEmbeddingsRequest, req.body);
    const entry = model(body.model, "embedding");
    if (body.prompt === "") return { embedding: [] };
    const adapter = new OllamaJsonAdapter((upstream) => ollamaEmbeddings(upstream));
    const call = embeddingsToOpenAi(body, { modelId: entry.id, contextLength: entry.contextLength });
    await run(req, reply, { endpoint: "/api/embeddings", modelId: entry.id, stream: false, call, adapter });
  });

  /** Nothing to generate: Ollama only loads (or, with keep_alive 0, unloads) the model. drover's are always loaded. */
  function loaded(reply: FastifyReply, kind: GenerationKind, name: string, keepAlive: string | number | null | undefined) {
    const unload = keepAlive === 0 || keepAlive === "0" || keepAlive === "0s";
    return reply.type(JSON_CONTENT_TYPE).send(ollamaLoaded(kind, name, unload ? "unload" : "load"));
  }

  async function generation(
    req: FastifyRequest,
    reply: FastifyReply,
    endpoint: string,
    kind: GenerationKind,
    entry: CatalogEntry,
    name: string,
    stream: boolean,
    call: OpenAiCall,
    think: boolean,
  ): Promise<void> {
    const adapter = new OllamaGenerationAdapter({ kind, stream, model: name, receivedAt: performance.now(), think });
    await run(req, reply, { endpoint, modelId: entry.id, stream, call, adapter });
  }

  /** Admission, routing and the proxy, as on /v1; queue refusals in Ollama's shape; one request record. */
  async function run(req: FastifyRequest, reply: FastifyReply, job: InferenceJob): Promise<void> {
    await deps.dispatcher.dispatch(req, reply, {
      endpoint: job.endpoint,
      path: job.call.path,
      modelId: job.modelId,
      stream: job.stream,
      body: Buffer.from(JSON.stringify(job.call.body)),
      // The translated request is the prompt as the engine sees it: the same key as on /v1.
      affinityKey: affinityKeyOf(job.call.path, job.modelId, job.call.body, req.headers),
      edge: { api: "ollama", errors: OLLAMA_ERRORS, adapter: job.adapter },
    });
  }
}
