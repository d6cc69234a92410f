// OpenAI response pieces → Ollama response objects: streamed pieces, the final `done` object with
// token counts and durations (nanoseconds), embeddings, and error messages.

export type GenerationKind = "chat" | "generate";

/** Durations in nanoseconds, as Ollama reports them. */
export interface OllamaTimings {
  total_duration: number;
  load_duration: number;
  prompt_eval_duration: number;
  eval_duration: number;
}

export interface TokenCounts {
  prompt_eval_count: number;
  eval_count: number;
}

export function msToNs(ms: number): number {
  return Math.max(0, Math.round(ms * 1e6));
}

/** The text an OpenAI stream chunk (chat delta or completion text) or whole answer carries, or "". */
export function chunkText(chunk: unknown): string {
  const choice = (chunk as { choices?: { delta?: { content?: unknown }; message?: { content?: unknown }; text?: unknown }[] }).choices?.[0];
  const text = choice?.delta?.content ?? choice?.message?.content ?? choice?.text;
  return typeof text === "string" ? text : "";
}

/** The reasoning a chunk or answer carries (engines write reasoning_content or reasoning), or "". */
export function chunkReasoning(chunk: unknown): string {
  type R = { reasoning_content?: unknown; reasoning?: unknown };
  const choice = (chunk as { choices?: { delta?: R; message?: R }[] }).choices?.[0];
  const part = choice?.delta ?? choice?.message;
  const text = part?.reasoning_content ?? part?.reasoning;
  return typeof text === "string" ? text : "";
}

export interface ToolCallDeltaLike {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

/** The tool calls (or call deltas) a chunk or answer carries. */
export function chunkToolCalls(chunk: unknown): ToolCallDeltaLike[] {
  type T = { tool_calls?: unknown };
  const choice = (chunk as { choices?: { delta?: T; message?: T }[] }).choices?.[0];
  const calls = (choice?.delta ?? choice?.message)?.tool_calls;
  return Array.isArray(calls) ? (calls as ToolCallDeltaLike[]) : [];
}

/** OpenAI tool calls → Ollama's, with the arguments as an object. */
export function ollamaToolCalls(calls: readonly { name: string; arguments: string }[]) {
  return calls.map((c) => {
    let args: unknown;
    try {
      args = JSON.parse(c.arguments || "{}");
    } catch {
      args = undefined;
    }
    // Arguments that are not a JSON object (an engine's broken call) are kept as text under "raw".
    const object = args !== null && typeof args === "object" && !Array.isArray(args) ? args : { raw: c.arguments };
    return { function: { name: c.name, arguments: object as Record<string, unknown> } };
  });
}

/** finish_reason of a chunk, when it has one. */
export function chunkFinishReason(chunk: unknown): string | null {
  const reason = (chunk as { choices?: { finish_reason?: unknown }[] }).choices?.[0]?.finish_reason;
  return typeof reason === "string" ? reason : null;
}

/** The usage of a chunk (the last one of a stream with include_usage), when it has one. */
export function chunkUsage(chunk: unknown): TokenCounts | null {
  const u = (chunk as { usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null }).usage;
  if (!u || typeof u.prompt_tokens !== "number" || typeof u.completion_tokens !== "number") return null;
  return { prompt_eval_count: u.prompt_tokens, eval_count: u.completion_tokens };
}

/** OpenAI's finish reasons that Ollama knows; anything else ends as "stop". */
export function doneReason(finishReason: string | null): "stop" | "length" {
  return finishReason === "length" ? "length" : "stop";
}

/** What an answer (or one streamed piece) holds besides its text. */
export interface AnswerExtras {
  thinking?: string;
  toolCalls?: ReturnType<typeof ollamaToolCalls>;
}

function chatMessage(text: string, extras: AnswerExtras) {
  return {
    role: "assistant" as const,
    content: text,
    ...(extras.thinking ? { thinking: extras.thinking } : {}),
    ...(extras.toolCalls?.length ? { tool_calls: extras.toolCalls } : {}),
  };
}

/** One streamed piece of text (or thinking, or the tool calls). */
export function ollamaPiece(kind: GenerationKind, model: string, text: string, createdAt: Date = new Date(), extras: AnswerExtras = {}) {
  const head = { model, created_at: createdAt.toISOString() };
  return kind === "chat"
    ? { ...head, message: chatMessage(text, extras), done: false }
    : { ...head, response: text, ...(extras.thinking ? { thinking: extras.thinking } : {}), done: false };
}

/** The last object: the whole text when not streamed ("" at the end of a stream), counts and timings. */
export function ollamaFinal(
  kind: GenerationKind,
  model: string,
  text: string,
  finishReason: string | null,
  counts: TokenCounts | null,
  timings: OllamaTimings,
  createdAt: Date = new Date(),
  extras: AnswerExtras = {},
) {
  const head = { model, created_at: createdAt.toISOString() };
  const body = kind === "chat" ? { message: chatMessage(text, extras) } : { response: text, ...(extras.thinking ? { thinking: extras.thinking } : {}) };
  return {
    ...head,
    ...body,
    done: true,
    done_reason: doneReason(finishReason),
    total_duration: timings.total_duration,
    load_duration: timings.load_duration,
    prompt_eval_count: counts?.prompt_eval_count ?? 0,
    prompt_eval_duration: timings.prompt_eval_duration,
    eval_count: counts?.eval_count ?? 0,
    eval_duration: timings.eval_duration,
  };
}

/** What Ollama answers for a chat or generate call with nothing to generate: the model is "loaded". */
export function ollamaLoaded(kind: GenerationKind, model: string, reason: "load" | "unload", createdAt: Date = new Date()) {
  const head = { model, created_at: createdAt.toISOString() };
  const body = kind === "chat" ? { message: { role: "assistant" as const, content: "" } } : { response: "" };
  return { ...head, ...body, done: true, done_reason: reason };
}

interface OpenAiEmbeddingList {
  data: { index: number; embedding: number[] }[];
  usage?: { prompt_tokens?: number };
}

function vectorsOf(body: unknown): { vectors: number[][]; promptTokens: number } {
  const list = body as OpenAiEmbeddingList;
  if (!Array.isArray(list?.data)) throw new Error("the node's embeddings response has no data");
  const vectors = [...list.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
  if (!vectors.every((v) => Array.isArray(v))) throw new Error("the node's embeddings response is not a list of float vectors");
  return { vectors, promptTokens: list.usage?.prompt_tokens ?? 0 };
}

/** `dimensions`: the first n components, normalised again to unit length (as Ollama does). */
export function truncateEmbedding(vector: readonly number[], dimensions: number | null | undefined): number[] {
  if (!dimensions || dimensions >= vector.length) return [...vector];
  const cut = vector.slice(0, dimensions);
  const norm = Math.sqrt(cut.reduce((s, v) => s + v * v, 0));
  return norm > 0 ? cut.map((v) => v / norm) : cut;
}

/** POST /api/embed's answer. */
export function ollamaEmbed(
  model: string,
  body: unknown,
  dimensions: number | null | undefined,
  timings: Pick<OllamaTimings, "total_duration" | "load_duration">,
) {
  const { vectors, promptTokens } = vectorsOf(body);
  return {
    model,
    embeddings: vectors.map((v) => truncateEmbedding(v, dimensions)),
    total_duration: timings.total_duration,
    load_duration: timings.load_duration,
    prompt_eval_count: promptTokens,
  };
}

/** POST /api/embeddings' (legacy) answer: one vector. */
export function ollamaEmbeddings(body: unknown) {
  const { vectors } = vectorsOf(body);
  if (vectors.length !== 1) throw new Error(`the node returned ${vectors.length} vectors for one prompt`);
  return { embedding: vectors[0]! };
}

/** The message of a node's error body (OpenAI's shape, or anything else as text). */
export function upstreamErrorMessage(raw: string, status: number): string {
  try {
    const body = JSON.parse(raw) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof body.error === "string") return body.error;
    if (typeof body.error?.message === "string") return body.error.message;
    if (typeof body.message === "string") return body.message;
  } catch {
    // not JSON: fall through to the raw text
  }
  const text = raw.trim().slice(0, 500);
  return text || `the node answered ${status}`;
}
