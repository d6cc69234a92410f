// The engine's HTTP API: OpenAI's chat completions, completions and embeddings for the one model
// this engine serves, plus /healthz. Any client input ends in a 4xx in OpenAI's error shape,
// never a 500 or a crash.
import { randomInt } from "node:crypto";
import type { ServerResponse } from "node:http";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Token } from "node-llama-cpp";
import type { Logger } from "pino";
import type { z } from "zod";
import { requestLogOptions } from "../../logs/request-logger.js";
import { HEADER_REQUEST_ID } from "../../protocol/http.js";
import { openAiError, type OpenAiErrorBody } from "../../protocol/openai-errors.js";
import { ChatCompletionRequest, CompletionRequest, EmbeddingRequest, describeZodError } from "../../protocol/openai.js";
import { ChatTurns, type ChatTurnEvent, type ChatTurnResult } from "./chat-turn.js";
import { InvalidRequestError, type GenerateResult, type LlamaInference } from "./inference.js";
import {
  reasoningFieldFromEnv,
  reasoningFields,
  type ReasoningField,
  chatChunk,
  chatCompletion,
  chatUsageChunk,
  completion,
  completionChoice,
  embeddingList,
  newId,
  nowSeconds,
  usage,
  type ResponseMeta,
} from "./openai-format.js";
import { completionPromptTokens } from "./prompt.js";
import { checkContentParts, checkFields } from "./request-fields.js";
import { ResponseFormatGrammars } from "./response-format.js";
import { toolPlan } from "./tool-plan.js";
import { SseStream } from "./sse.js";

export const BODY_LIMIT_BYTES = 8 * 1024 * 1024;

/**
 * max_tokens when the request has none: OpenAI's (and Ollama's) default, "until the model ends
 * or the context is full" (the engine caps every limit at the context left after the prompt).
 * Operators whose clients forget max_tokens on models that ramble can set a cap with
 * DROVER_DEFAULT_MAX_TOKENS. The generated demo models never end by themselves, so tests and the
 * README always pass max_tokens.
 */
export const DEFAULT_MAX_TOKENS = Number(process.env.DROVER_DEFAULT_MAX_TOKENS) > 0 ? Number(process.env.DROVER_DEFAULT_MAX_TOKENS) : Number.MAX_SAFE_INTEGER;

/** An error with a ready OpenAI-shaped body. */
class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: OpenAiErrorBody,
  ) {
    super(body.error.message);
  }
}

function invalid(message: string, code: string | null = null, param: string | null = null): ApiError {
  return new ApiError(400, openAiError(message, "invalid_request_error", code, param));
}

export interface EngineServerOptions {
  inference: LlamaInference;
  modelId: string;
  log: Logger;
  /** Where reasoning goes in chat answers (default: DROVER_REASONING_FIELD, else reasoning_content). */
  reasoningField?: ReasoningField;
}

export interface EngineServer {
  app: FastifyInstance;
  /**
   * Aborts every generation in flight (shutdown; their clients get a 503 or an error event) and
   * resolves once their handlers are done, so their keep-alive connections are idle.
   */
  abortAll(): Promise<void>;
}

interface Sampling {
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: string[];
  topK?: number;
  minP?: number;
  repeatPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  logitBias?: Record<number, number>;
}

export function buildServer({ inference, modelId, log, reasoningField = reasoningFieldFromEnv() }: EngineServerOptions): EngineServer {
  // Each request in generation: its abort controller, and a promise settled when its handler ends.
  const inflight = new Map<AbortController, Promise<void>>();
  const settle = new Map<AbortController, () => void>();
  let closing = false;
  const grammars = new ResponseFormatGrammars(inference.model.llama);
  const turns = new ChatTurns(inference, grammars);
  const vocabularySize = (inference.model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: readonly unknown[] } } } | undefined)?.tokenizer?.ggml?.tokens
    ?.length;
  /** logit_bias naming a token the model does not have is the client's mistake, not something to ignore. */
  const checkLogitBias = (bias: Record<string, number> | null | undefined): void => {
    if (!bias || vocabularySize === undefined) return;
    const bad = Object.keys(bias).find((k) => Number(k) >= vocabularySize);
    if (bad !== undefined) throw invalid(`logit_bias: token ${bad} does not exist (this model has ${vocabularySize} tokens).`, null, "logit_bias");
  };

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // One line per inference request (below) says more than Fastify's two per request.
    // The node and router pass their request id and traceparent on; they become `reqId` and
    // `traceId` in every log line of the request.
    ...requestLogOptions(),
    bodyLimit: BODY_LIMIT_BYTES,
    return503OnClosing: true,
  });

  // Bodies are JSON whatever the content type says (`curl -d` sends form encoding); OpenAI's
  // wording for a body that is not JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string", bodyLimit: BODY_LIMIT_BYTES }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string, dropProtoKeys));
    } catch {
      done(invalid("We could not parse the JSON body of your request. The body must be valid JSON."), undefined);
    }
  });

  app.addHook("onRequest", (req, reply, done) => {
    reply.header(HEADER_REQUEST_ID, req.id);
    done();
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(openAiError(`Invalid URL (${req.method} ${req.url})`, "invalid_request_error", "unknown_url"));
  });

  app.setErrorHandler((err: unknown, req, reply) => {
    const { status, body } = errorResponse(err);
    if (status >= 500) req.log.error({ err }, "request failed");
    else req.log.info({ status, message: body.error.message }, "request rejected");
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    void reply.code(status).send(body);
  });

  app.get("/healthz", async () => ({ status: "ok", model: modelId }));

  // Slot occupancy, like llama.cpp's /slots (for operators and tests).
  app.get("/slots", async () => inference.slots);

  app.get("/v1/models", async () => ({
    object: "list",
    data: [{ id: modelId, object: "model", created: 0, owned_by: "drover" }],
  }));

  app.post("/v1/chat/completions", async (req, reply) => {
    const body = parseBody(ChatCompletionRequest, req.body);
    checkModel(body.model);
    checkFields("/v1/chat/completions", body);
    checkLogitBias(body.logit_bias);
    checkContentParts(body.messages);
    const plan = toolPlan(body);
    let prompt: Token[];
    try {
      prompt = inference.chat.tokens(body.messages, { tools: plan.shown, reasoningEffort: plan.reasoningEffort });
    } catch (err) {
      if (err instanceof InvalidRequestError) throw err;
      throw invalid(`messages could not be formatted with the model's chat template: ${errorMessage(err)}`, null, "messages");
    }
    inference.checkPrompt(prompt, "messages");
    // A forced call has its own grammar; response_format then cannot apply as well (tool-plan.ts refuses both).
    const grammar = plan.forced ? undefined : await grammars.grammarFor(body.response_format);
    const sampling = { ...samplingOf(body, body.max_completion_tokens ?? body.max_tokens), grammar };
    const meta: ResponseMeta = { id: newId("chatcmpl"), created: nowSeconds(), model: modelId };
    const started = Date.now();
    const ac = track(reply.raw);
    const turn = (onEvent?: (e: ChatTurnEvent) => void) =>
      turns.run({
        prompt,
        sampling,
        format: inference.chat.toolFormat,
        tools: plan.parsed,
        forced: plan.forced,
        parallel: plan.parallel,
        signal: ac.signal,
        onEvent,
      });
    const reasoningOf = (text: string) => (plan.showReasoning ? reasoningFields(reasoningField, text) : {});

    try {
      if (!body.stream) {
        const result = await turn();
        logTurn(req, result, started);
        if (result.finishReason === "abort") return abandoned(reply);
        return chatCompletion(
          meta,
          { content: result.content, reasoning: reasoningOf(result.reasoning), toolCalls: result.toolCalls },
          result.finishReason,
          usage(result.promptTokens, result.completionTokens, result.cachedTokens),
        );
      }

      const includeUsage = body.stream_options?.include_usage === true;
      reply.hijack();
      const sse = new SseStream(reply.raw, responseHeaders(reply));
      sse.send(chatChunk(meta, { role: "assistant", content: "", refusal: null }, null, includeUsage));
      const delta = (d: Parameters<typeof chatChunk>[1]) => sse.send(chatChunk(meta, d, null, includeUsage));
      let result: ChatTurnResult;
      try {
        result = await turn((e) => {
          switch (e.type) {
            case "content":
              return delta({ content: e.text });
            case "reasoning":
              if (plan.showReasoning) delta(reasoningFields(reasoningField, e.text));
              return;
            case "tool_call":
              return delta({ tool_calls: [{ index: e.index, id: e.id, type: "function", function: { name: e.name, arguments: e.arguments } }] });
            case "tool_call_arguments":
              return delta({ tool_calls: [{ index: e.index, function: { arguments: e.arguments } }] });
          }
        });
      } catch (err) {
        return streamFailed(req, sse, err);
      }
      logTurn(req, result, started);
      if (result.finishReason === "abort") return streamAborted(sse);
      sse.send(chatChunk(meta, {}, result.finishReason, includeUsage));
      if (includeUsage) sse.send(chatUsageChunk(meta, usage(result.promptTokens, result.completionTokens, result.cachedTokens)));
      sse.done();
    } finally {
      untrack(ac);
    }
  });

  app.post("/v1/completions", async (req, reply) => {
    const body = parseBody(CompletionRequest, req.body);
    checkModel(body.model);
    checkFields("/v1/completions", body);
    checkLogitBias(body.logit_bias);
    const prompts = typeof body.prompt === "string" ? [body.prompt] : body.prompt;
    const tokenized = prompts.map((p, i) => {
      const tokens = completionPromptTokens(inference.model, p);
      inference.checkPrompt(tokens, prompts.length > 1 ? `prompt.${i}` : "prompt");
      return tokens;
    });
    const sampling = { ...samplingOf(body, body.max_tokens), grammar: await grammars.grammarFor(body.response_format) };
    const meta: ResponseMeta = { id: newId("cmpl"), created: nowSeconds(), model: modelId };
    const started = Date.now();
    const ac = track(reply.raw);

    try {
      // Several prompts give one choice each, generated one after another on one request.
      if (!body.stream) {
        const choices = [];
        let promptTokens = 0;
        let completionTokens = 0;
        let cachedTokens = 0;
        for (const [index, prompt] of tokenized.entries()) {
          const result = await inference.generate({ prompt, ...sampling, signal: ac.signal });
          logDone(req, "completion", result, started);
          if (result.finishReason === "abort") return abandoned(reply);
          choices.push(completionChoice(index, result.text, result.finishReason));
          promptTokens += result.promptTokens;
          completionTokens += result.completionTokens;
          cachedTokens += result.cachedTokens;
        }
        return completion(meta, choices, usage(promptTokens, completionTokens, cachedTokens));
      }

      const includeUsage = body.stream_options?.include_usage === true;
      // OpenAI's completion chunks carry `usage: null` until the last when usage is asked for.
      const chunkUsage = includeUsage ? null : undefined;
      reply.hijack();
      const sse = new SseStream(reply.raw, responseHeaders(reply));
      sse.start();
      let promptTokens = 0;
      let completionTokens = 0;
      let cachedTokens = 0;
      for (const [index, prompt] of tokenized.entries()) {
        let result: GenerateResult;
        try {
          result = await inference.generate({
            prompt,
            ...sampling,
            signal: ac.signal,
            onText: (text) => sse.send(completion(meta, [completionChoice(index, text, null)], chunkUsage)),
          });
        } catch (err) {
          return streamFailed(req, sse, err);
        }
        logDone(req, "completion", result, started);
        if (result.finishReason === "abort") return streamAborted(sse);
        sse.send(completion(meta, [completionChoice(index, "", result.finishReason)], chunkUsage));
        promptTokens += result.promptTokens;
        completionTokens += result.completionTokens;
        cachedTokens += result.cachedTokens;
      }
      if (includeUsage) sse.send(completion(meta, [], usage(promptTokens, completionTokens, cachedTokens)));
      sse.done();
    } finally {
      untrack(ac);
    }
  });

  app.post("/v1/embeddings", async (req) => {
    const body = parseBody(EmbeddingRequest, req.body);
    checkModel(body.model);
    checkFields("/v1/embeddings", body);
    const inputs = typeof body.input === "string" ? [body.input] : body.input;
    const started = Date.now();
    const { vectors, promptTokens } = await inference.embed(inputs);
    req.log.info({ route: "embeddings", inputs: inputs.length, promptTokens, ms: Date.now() - started }, "embeddings done");
    return embeddingList(modelId, vectors, body.encoding_format === "base64", promptTokens);
  });

  // --- helpers --------------------------------------------------------------------------------

  function checkModel(model: string): void {
    if (model !== modelId) {
      throw new ApiError(
        404,
        openAiError(
          `The model '${model}' does not exist or is not served by this engine (it serves '${modelId}').`,
          "invalid_request_error",
          "model_not_found",
          "model",
        ),
      );
    }
  }

  /** An AbortController for one request: aborted when its client goes away or the engine closes. */
  function track(res: ServerResponse): AbortController {
    const ac = new AbortController();
    if (closing) ac.abort(new Error("engine is closing"));
    res.once("close", () => {
      if (!res.writableFinished) ac.abort(new Error("client disconnected"));
    });
    inflight.set(ac, new Promise<void>((resolve) => settle.set(ac, resolve)));
    return ac;
  }

  function untrack(ac: AbortController): void {
    inflight.delete(ac);
    settle.get(ac)?.();
    settle.delete(ac);
  }

  /** A non-streaming generation ended by abort: say so if anyone is still listening. */
  function abandoned(reply: FastifyReply): void {
    if (reply.raw.destroyed || reply.raw.writableEnded) {
      reply.hijack();
      return;
    }
    throw new ApiError(503, openAiError("The engine is shutting down; retry the request.", "server_error", "engine_closing"));
  }

  function streamAborted(sse: SseStream): void {
    if (sse.open) sse.send(openAiError("The engine is shutting down; retry the request.", "server_error", "engine_closing"));
    sse.end();
  }

  function streamFailed(req: FastifyRequest, sse: SseStream, err: unknown): void {
    const { status, body } = errorResponse(err);
    if (status >= 500) req.log.error({ err }, "generation failed");
    else req.log.info({ status, message: body.error.message }, "request rejected");
    sse.send(body);
    sse.end();
  }

  return {
    app,
    async abortAll() {
      closing = true;
      for (const ac of inflight.keys()) ac.abort(new Error("engine is closing"));
      await Promise.all(inflight.values());
      // Let the ended responses finish so their sockets count as idle.
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

/**
 * JSON.parse reviver dropping "__proto__" keys (Fastify's default JSON parser, replaced above,
 * guards against them too). zod 4 already ignores them; this keeps any later code that copies
 * the body by assignment from having a prototype swapped under it.
 */
function dropProtoKeys(key: string, value: unknown): unknown {
  return key === "__proto__" ? undefined : value;
}

function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null) throw invalid("The request body must be a JSON object.");
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const { message, param } = describeZodError(parsed.error);
    throw invalid(message, null, param);
  }
  return parsed.data;
}

function samplingOf(
  body: {
    temperature?: number | null;
    top_p?: number | null;
    seed?: number | null;
    stop?: string | string[] | null;
    top_k?: number | null;
    min_p?: number | null;
    repeat_penalty?: number | null;
    presence_penalty?: number | null;
    frequency_penalty?: number | null;
    logit_bias?: Record<string, number> | null;
  },
  maxTokens: number | null | undefined,
): Sampling {
  return {
    ...(body.top_k != null ? { topK: body.top_k } : {}),
    ...(body.min_p != null ? { minP: body.min_p } : {}),
    ...(body.repeat_penalty != null ? { repeatPenalty: body.repeat_penalty } : {}),
    ...(body.presence_penalty != null ? { presencePenalty: body.presence_penalty } : {}),
    ...(body.frequency_penalty != null ? { frequencyPenalty: body.frequency_penalty } : {}),
    ...(body.logit_bias != null ? { logitBias: Object.fromEntries(Object.entries(body.logit_bias).map(([k, v]) => [Number(k), v])) } : {}),
    maxTokens: maxTokens ?? DEFAULT_MAX_TOKENS,
    // OpenAI's defaults: temperature 1, top_p 1.
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    // llama.cpp seeds are 32-bit; without one each request gets a fresh random seed (node-llama-cpp
    // would otherwise use the current second, the same for concurrent requests).
    seed: body.seed == null ? randomInt(0x1_0000_0000) : ((body.seed % 0x1_0000_0000) + 0x1_0000_0000) % 0x1_0000_0000,
    stop: body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop,
  };
}

function responseHeaders(reply: FastifyReply): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) out[k] = String(v);
  return out;
}

function logTurn(req: FastifyRequest, r: ChatTurnResult, started: number): void {
  req.log.info(
    {
      route: "chat",
      promptTokens: r.promptTokens,
      completionTokens: r.completionTokens,
      finishReason: r.finishReason,
      toolCalls: r.toolCalls.length,
      ms: Date.now() - started,
    },
    "generation done",
  );
}

function logDone(req: FastifyRequest, route: string, r: GenerateResult, started: number): void {
  req.log.info(
    { route, promptTokens: r.promptTokens, completionTokens: r.completionTokens, finishReason: r.finishReason, ms: Date.now() - started },
    "generation done",
  );
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Status and OpenAI body for anything thrown in a handler or by Fastify itself. */
function errorResponse(err: unknown): { status: number; body: OpenAiErrorBody } {
  if (err instanceof ApiError) return { status: err.statusCode, body: err.body };
  if (err instanceof InvalidRequestError) return { status: 400, body: openAiError(err.message, "invalid_request_error", err.code, err.param) };
  const e = err as { statusCode?: unknown; code?: unknown; message?: unknown };
  const status = typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500;
  if (status >= 500) return { status, body: openAiError("The engine failed to process the request.", "server_error") };
  if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    return { status, body: openAiError(`The request body is larger than ${BODY_LIMIT_BYTES} bytes.`, "invalid_request_error", "request_too_large") };
  }
  return { status, body: openAiError(typeof e.message === "string" ? e.message : "Invalid request.", "invalid_request_error") };
}
