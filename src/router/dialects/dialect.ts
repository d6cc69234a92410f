// One API dialect of the router (OpenAI chat/completions, Ollama, OpenAI Responses, Anthropic
// Messages), each a folder beside this file: its routes validate and translate the client's
// request into the OpenAI request a node serves, and hand the request path a ClientEdge (its
// response adapter and error shape). The request path knows no dialect; main.ts registers them
// all the same way.
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Catalog } from "../../protocol/catalog.js";
import type { RequestApi } from "../../protocol/request-record.js";
import type { NodeRegistry } from "../fleet/node-registry.js";
import type { InferenceDispatcher } from "../request-path/inference-dispatch.js";
import type { ResponsesRepository } from "../store/responses.js";

/** What the router lends every dialect. */
export interface DialectDeps {
  catalog: Catalog;
  dispatcher: InferenceDispatcher;
  /** Live fleet state (Ollama's /api/ps lists the loaded models). */
  registry: NodeRegistry;
  /** Stored responses (the Responses API's store and previous_response_id). */
  responses: ResponsesRepository;
  /** drover's version (Ollama's /api/version). */
  version: string;
  /** Epoch ms when the router started. */
  startedAt: number;
  /** Epoch ms when a model's file was last written, when the router knows it. */
  modifiedAt(id: string): number | undefined;
  log: Logger;
}

export interface Dialect {
  api: RequestApi;
  register(app: FastifyInstance, deps: DialectDeps): void;
}
