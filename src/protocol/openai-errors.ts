// OpenAI's error body: {"error": {"message", "type", "param", "code"}}.

export type OpenAiErrorType = "invalid_request_error" | "authentication_error" | "permission_error" | "not_found_error" | "server_error" | "rate_limit_error";

export interface OpenAiErrorBody {
  error: { message: string; type: OpenAiErrorType; param: string | null; code: string | null };
}

export function openAiError(message: string, type: OpenAiErrorType, code: string | null = null, param: string | null = null): OpenAiErrorBody {
  return { error: { message, type, param, code } };
}
