// An error the Ollama routes answer in Ollama's shape, `{"error": "..."}`, with its status.

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
