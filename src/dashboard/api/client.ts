// Calls to the router's API from the browser: same origin, the session cookie rides along, and
// errors come back in OpenAI's shape ({"error":{"message",...}}).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

type Unauthorized = () => void;
let onUnauthorized: Unauthorized = () => {};

/** What to do when the session is gone (the app shows the login page). */
export function setUnauthorizedHandler(handler: Unauthorized): void {
  onUnauthorized = handler;
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { message?: string; code?: string } | string; message?: string };
    if (typeof body.error === "object" && body.error?.message) return new ApiError(res.status, body.error.message, body.error.code ?? null);
    if (typeof body.error === "string") return new ApiError(res.status, body.error);
    if (body.message) return new ApiError(res.status, body.message);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(res.status, text.trim().slice(0, 300) || `HTTP ${res.status}`);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  query?: Record<string, string | number | undefined | null>;
  signal?: AbortSignal;
  /** Do not treat 401 as "logged out" (the login call itself, the who-am-I probe). */
  quiet401?: boolean;
}

export function apiUrl(path: string, query?: RequestOptions["query"]): string {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  return url.pathname + url.search;
}

export async function call(path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(apiUrl(path, opts.query), {
    method: opts.method ?? "GET",
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    credentials: "same-origin",
    signal: opts.signal,
  });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && !opts.quiet401) onUnauthorized();
    throw err;
  }
  return res;
}

export async function json<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await call(path, opts);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export async function text(path: string, opts: RequestOptions = {}): Promise<string> {
  return (await call(path, opts)).text();
}
