// What a dialect hands the request path for one request. The dispatcher and the proxy use these
// and branch on no dialect: the adapter shapes the node's answer for the client, the error shape
// writes the router's own refusals and failures (queue full, no node could serve, ...).
import type { RequestApi } from "../../protocol/request-record.js";
import type { ResponseAdapter } from "./response-adapter.js";

export interface ErrorShape {
  /** The dialect's status for the router's status (e.g. Anthropic's 529 for an overloaded 503). */
  status(status: number): number;
  /** The dialect's error body. `code` is the router's reason, e.g. queue_full. */
  body(status: number, message: string, code: string): unknown;
}

export interface ClientEdge {
  /** The request record's api name. */
  api: RequestApi;
  errors: ErrorShape;
  adapter: ResponseAdapter;
}
