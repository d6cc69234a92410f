// What every dialect of the router (OpenAI chat/completions, Ollama, OpenAI Responses, Anthropic
// Messages) hands the shared request path: the request record's api name, how the node's answer
// is shaped for the client, and how the router's own refusals look. Dispatch and the proxy take
// these and know no dialect.
import type { FinishedRequest } from "../request-path/request-events.js";
import type { ResponseAdapter } from "../request-path/response-adapter.js";

export type DialectApi = FinishedRequest["api"];

/** A refusal or failure the router answers itself (queue full, no node could serve, ...). */
export interface DialectErrors {
  /** The dialect's status for the router's status (e.g. Anthropic's 529 for an overloaded 503). */
  status(status: number): number;
  /** The dialect's error body. `code` is the router's reason, e.g. queue_full. */
  body(status: number, message: string, code: string): unknown;
}

/** One request's edge: how its answer and its errors are shaped. */
export interface DialectEdge {
  api: DialectApi;
  errors: DialectErrors;
  adapter: ResponseAdapter;
}
