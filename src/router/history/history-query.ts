// Query parameters of GET /api/requests and its export: filters, paging, and the JSON view of
// a record. Anything malformed is a 400 naming the parameter; filter values are passed on as
// data (the repository binds them as parameters).
import { HttpError } from "../http/http-errors.js";
import type { HistoryRecord, HistoryRow } from "../../protocol/request-record.js";
import type { HistoryFilter } from "../store/request-history.js";

export interface HistoryQuery {
  filter: HistoryFilter;
  limit: number;
  offset: number;
}

const MAX_TEXT = 256;

function bad(param: string, message: string): HttpError {
  return new HttpError(400, message, "invalid_request_error", "invalid_query", param);
}

function text(q: Record<string, unknown>, param: string): string | undefined {
  const v = q[param];
  if (v === undefined || v === "") return undefined;
  if (typeof v !== "string") throw bad(param, `give ${param} once`);
  if (v.length > MAX_TEXT) throw bad(param, `${param} is longer than ${MAX_TEXT} characters`);
  return v;
}

function int(q: Record<string, unknown>, param: string, dflt: number, min: number, max: number): number {
  const v = text(q, param);
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw bad(param, `${param} must be a whole number from ${min} to ${max}`);
  return Number(v);
}

/** ISO-8601 time or epoch milliseconds. */
function time(q: Record<string, unknown>, param: string): number | undefined {
  const v = text(q, param);
  if (v === undefined) return undefined;
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t)) throw bad(param, `${param} must be an ISO-8601 time (2025-01-31T12:00:00Z) or epoch milliseconds`);
  return t;
}

/** `200`, `4xx`, `error` (400 and above), `ok` (below 400). */
function status(q: Record<string, unknown>): Pick<HistoryFilter, "statusMin" | "statusMax"> {
  const v = text(q, "status");
  if (v === undefined) return {};
  if (/^\d{3}$/.test(v)) return { statusMin: Number(v), statusMax: Number(v) };
  const cls = /^([1-5])xx$/i.exec(v);
  if (cls) return { statusMin: Number(cls[1]) * 100, statusMax: Number(cls[1]) * 100 + 99 };
  if (v === "error") return { statusMin: 400 };
  if (v === "ok") return { statusMax: 399 };
  throw bad("status", "status must be a code (200), a class (4xx) or one of: ok, error");
}

export function parseHistoryQuery(query: unknown, limits: { defaultLimit: number; maxLimit: number }): HistoryQuery {
  const q = (query ?? {}) as Record<string, unknown>;
  const filter: HistoryFilter = {
    model: text(q, "model"),
    node: text(q, "node"),
    keyName: text(q, "key"),
    ...status(q),
    from: time(q, "from"),
    to: time(q, "to"),
  };
  for (const k of Object.keys(filter) as (keyof HistoryFilter)[]) if (filter[k] === undefined) delete filter[k];
  return { filter, limit: int(q, "limit", limits.defaultLimit, 1, limits.maxLimit), offset: int(q, "offset", 0, 0, 10_000_000) };
}

export function historyView(r: HistoryRecord): HistoryRow {
  const view: HistoryRow = {
    id: r.id,
    requestId: r.requestId,
    startedAt: new Date(r.startedAt).toISOString(),
    api: r.api,
    endpoint: r.endpoint,
    model: r.model,
    stream: r.stream,
    clientIp: r.clientIp,
    keyName: r.keyName,
    nodeId: r.nodeId,
    nodeName: r.nodeName,
    routing: r.routing ?? null,
    affinity: r.affinity ?? null,
    status: r.status,
    error: r.error,
    attempts: r.attempts,
    queueWaitMs: r.queueWaitMs,
    firstByteMs: r.firstByteMs,
    durationMs: r.durationMs,
    promptTokens: r.promptTokens,
    completionTokens: r.completionTokens,
    toolCalls: r.toolCalls ?? null,
    cachedTokens: r.cachedTokens ?? null,
    traceId: r.traceId,
  };
  return view;
}
