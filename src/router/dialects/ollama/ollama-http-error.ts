// An error the Ollama routes answer in Ollama's shape, `{"error": "..."}`, with its status.
import { ollamaError } from "../../../protocol/ollama.js";
import type { ErrorShape } from "../../request-path/client-edge.js";

export class OllamaHttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    /** Extra response headers (Retry-After on 503). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "OllamaHttpError";
  }
}

/** Ollama's shape for the router's own refusals and failures on the Ollama routes. */
export const OLLAMA_ERRORS: ErrorShape = {
  status: (status) => status,
  body: (_status, message) => ollamaError(message),
};
