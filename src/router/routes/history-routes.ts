// Request history for the dashboard and operators (any logged-in user): a filtered, paged
// list (newest first), one record, and CSV/JSON exports with the same filters. Captured
// request/response bodies are shown to admins only.
import type { FastifyInstance } from "fastify";
import { authOf } from "../auth/route-auth.js";
import { exportCsv, exportJson } from "../history/history-export.js";
import { historyView, parseHistoryQuery } from "../history/history-query.js";
import type { HistoryRecorder } from "../history/history-recorder.js";
import { HttpError } from "../http/http-errors.js";
import type { RequestHistoryRepository } from "../store/request-history.js";

export interface HistoryRouteDeps {
  requests: RequestHistoryRepository;
  /** null when recording is off (retention 0). */
  recorder: HistoryRecorder | null;
}

const MAX_EXPORT = 1_000_000;

export function registerHistoryRoutes(app: FastifyInstance, deps: HistoryRouteDeps): void {
  app.get("/api/requests", { config: { auth: "viewer" } }, async (req) => {
    const q = parseHistoryQuery(req.query, { defaultLimit: 50, maxLimit: 1000 });
    const [rows, total] = await Promise.all([deps.requests.list(q.filter, { limit: q.limit, offset: q.offset }), deps.requests.count(q.filter)]);
    return { requests: rows.map(historyView), total, limit: q.limit, offset: q.offset, pendingWrites: deps.recorder?.pendingCount ?? 0 };
  });

  app.get("/api/requests/export", { config: { auth: "viewer" } }, async (req, reply) => {
    const format = (req.query as { format?: unknown }).format ?? "csv";
    if (format !== "csv" && format !== "json") throw new HttpError(400, "format must be csv or json", "invalid_request_error", "invalid_query", "format");
    const q = parseHistoryQuery(req.query, { defaultLimit: 100_000, maxLimit: MAX_EXPORT });
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    reply.header("content-disposition", `attachment; filename="drover-requests-${stamp}.${format}"`);
    if (format === "csv") return reply.type("text/csv; charset=utf-8").send(exportCsv(deps.requests, q.filter, q.limit));
    return reply.type("application/json; charset=utf-8").send(exportJson(deps.requests, q.filter, q.limit));
  });

  app.get("/api/requests/:id", { config: { auth: "viewer" } }, async (req) => {
    const id = (req.params as { id: string }).id;
    const rec = await deps.requests.get(id);
    if (!rec) throw new HttpError(404, `no request record '${id}'`, "not_found_error", "request_not_found");
    const auth = authOf(req);
    const admin = auth.kind === "user" && auth.user.role === "admin";
    return {
      ...historyView(rec),
      requestBody: admin ? (rec.requestBody ?? null) : null,
      responseBody: admin ? (rec.responseBody ?? null) : null,
      bodiesHidden: !admin && (rec.requestBody != null || rec.responseBody != null),
    };
  });
}
