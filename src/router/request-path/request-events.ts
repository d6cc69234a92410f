// One record per inference request, published when it ends (answered, refused or abandoned).
// History, metrics and the request log subscribe; the request path only emits.

export interface FinishedRequest {
  requestId: string;
  /** Epoch ms when the router received the request. */
  startedAt: number;
  api: "openai" | "ollama" | "responses" | "anthropic";
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
  routing?: "least-load" | "prefix" | null;
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

export type FinishedRequestListener = (record: FinishedRequest) => void;

export class RequestEvents {
  private listeners: FinishedRequestListener[] = [];

  onFinished(listener: FinishedRequestListener): void {
    this.listeners.push(listener);
  }

  /** Listeners run synchronously and must not throw into the request path. */
  emitFinished(record: FinishedRequest): void {
    for (const l of this.listeners) {
      try {
        l(record);
      } catch {
        // a broken listener must never fail a request
      }
    }
  }
}
