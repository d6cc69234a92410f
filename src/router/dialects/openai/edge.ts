// The OpenAI dialect's edge: its error shape for the router's own answers on /v1 (the Responses
// API's included), and the relay of the node's answer as it is, ending a broken stream with an
// error event.
import { openAiError } from "../../../protocol/openai-errors.js";
import type { ClientEdge, ErrorShape } from "../../request-path/client-edge.js";
import { PassthroughAdapter } from "../../request-path/passthrough-adapter.js";

/** OpenAI's error shape, with the router's status unchanged. */
export const OPENAI_ERRORS: ErrorShape = {
  status: (status) => status,
  body: (status, message, code) => openAiError(message, status >= 500 ? "server_error" : status === 404 ? "not_found_error" : "invalid_request_error", code),
};

/** The last event of a chat/completions stream the node broke off: an error the SDKs parse and raise. */
export function openAiStreamError(message: string): string {
  return `data: ${JSON.stringify(openAiError(message, "server_error", "upstream_failed"))}\n\n`;
}

/** One chat/completions/embeddings request's edge: the node's answer relayed unchanged. */
export function openAiEdge(): ClientEdge {
  return { api: "openai", errors: OPENAI_ERRORS, adapter: new PassthroughAdapter(openAiStreamError) };
}
