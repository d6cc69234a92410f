// One inference request as the router records it, defined once for the three places it goes:
// the request path emits it when the request ends (answered, refused or abandoned), the history
// stores it and serves it over /api/requests, and the dashboard's live stream (/api/events)
// carries it to the browser. Types only: the dashboard imports this file too.

/** The API dialect the client spoke. */
export type RequestApi = "openai" | "ollama" | "responses" | "anthropic";
/** The routing policy that placed a request (src/router/request-path/node-selector.ts). */
export type RoutingPolicyName = "least-load" | "prefix";

export interface RequestRecord {
  requestId: string;
  /** Epoch ms when the router received the request. */
  startedAt: number;
  api: RequestApi;
  /** The client's path, e.g. /v1/chat/completions or /api/chat. */
  endpoint: string;
  modelId: string;
  stream: boolean;
  clientIp: string;
  /** Name of the API key used, when auth is on. */
  keyName: string | null;
  nodeId: string | null;
  nodeName: string | null;
  /** The routing policy that placed the request (null: never placed, e.g. refused by the queue). */
  routing?: RoutingPolicyName | null;
  /** Whether it ran on its affinity key's first node; null without a key or placement. */
  affinity?: "hit" | "miss" | null;
  /** HTTP status sent to the client (499: client went away first). */
  status: number;
  error: string | null;
  attempts: number;
  queueWaitMs: number;
  /** Time to first byte of the response body (first token for streams). */
  firstByteMs: number | null;
  durationMs: number;
  promptTokens: number | null;
  completionTokens: number | null;
  /** Tool calls in the answer (null: unknown, e.g. a failed request or an unreadable body). */
  toolCalls?: number | null;
  /** Prompt tokens the engine reused from a cached prefix (usage.prompt_tokens_details.cached_tokens). */
  cachedTokens?: number | null;
  traceId: string | null;
  /** Size-capped copies for the history, only when body capture is on (--history-body-bytes). */
  requestBody?: string | null;
  /** The response body, or a stream's assembled text. */
  responseBody?: string | null;
}

/** A stored record: its row id, and the model under `model` as the history's column and API name it. */
export interface HistoryRecord extends Omit<RequestRecord, "modelId"> {
  id: string;
  model: string;
}

/** A row of the history API (`GET /api/requests`, `/api/requests/:id`): the start time as ISO text. */
export interface HistoryRow extends Omit<HistoryRecord, "startedAt" | "requestBody" | "responseBody"> {
  startedAt: string;
  routing: RoutingPolicyName | null;
  affinity: "hit" | "miss" | null;
  toolCalls: number | null;
  cachedTokens: number | null;
  /** Single-record reads only; null for a viewer. */
  requestBody?: string | null;
  responseBody?: string | null;
  /** The record has bodies that this caller (not an admin) may not see. */
  bodiesHidden?: boolean;
}

/** A finished request on the live stream (`GET /api/events`, event `request`). */
export interface LiveRequestEvent extends RequestRecord {
  /** Bodies were removed because the subscriber is not an admin. */
  bodiesHidden?: boolean;
}
