// Anthropic's error: `{"type":"error","error":{"type","message"}}` with Anthropic's status codes.
// The router's own statuses map onto them: an overloaded fleet (queue full or timed out, 503) is
// Anthropic's 529 overloaded_error, a node that could not serve (502) its 500 api_error.
import { anthropicError, type AnthropicErrorType } from "../../../protocol/anthropic.js";
import type { ErrorShape } from "../../request-path/client-edge.js";

export class AnthropicHttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function anthropicStatus(status: number): number {
  if (status === 503) return 529;
  if (status === 502) return 500;
  return status;
}

export function anthropicErrorType(status: number): AnthropicErrorType {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    case 504:
      return "timeout_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

export const ANTHROPIC_ERRORS: ErrorShape = {
  status: anthropicStatus,
  body: (status, message) => anthropicError(anthropicErrorType(anthropicStatus(status)), message),
};
