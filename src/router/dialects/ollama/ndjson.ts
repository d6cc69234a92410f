// Ollama's streaming format: one JSON object per line.

export const NDJSON_CONTENT_TYPE = "application/x-ndjson";
export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

export function ndjsonLine(value: unknown): string {
  return JSON.stringify(value) + "\n";
}
