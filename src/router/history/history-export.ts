// Exports of the request history as CSV or JSON, streamed page by page (keyset paging), so a
// large export never sits in memory whole.
import { Readable } from "node:stream";
import type { HistoryCursor, HistoryFilter, RequestHistoryRepository } from "../store/request-history.js";
import type { HistoryRow } from "../../protocol/request-record.js";
import { historyView } from "./history-query.js";

export const CSV_COLUMNS: (keyof HistoryRow)[] = [
  "id",
  "requestId",
  "startedAt",
  "api",
  "endpoint",
  "model",
  "stream",
  "clientIp",
  "keyName",
  "nodeId",
  "nodeName",
  "status",
  "error",
  "attempts",
  "queueWaitMs",
  "firstByteMs",
  "durationMs",
  "promptTokens",
  "completionTokens",
  "toolCalls",
  "traceId",
  "routing",
  "affinity",
  "cachedTokens",
];

/**
 * One CSV cell (RFC 4180 quoting). Text that a spreadsheet would run as a formula (= + - @ tab
 * CR at the start) gets a leading apostrophe: values such as error messages come from clients.
 */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return "";
  let s = String(v);
  if (typeof v === "string" && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const PAGE = 1000;

async function* pages(repo: RequestHistoryRepository, filter: HistoryFilter, max: number): AsyncGenerator<HistoryRow[]> {
  let after: HistoryCursor | undefined;
  let left = max;
  while (left > 0) {
    const rows = await repo.list(filter, { limit: Math.min(PAGE, left), after });
    if (rows.length === 0) return;
    left -= rows.length;
    const last = rows[rows.length - 1]!;
    after = { startedAt: last.startedAt, id: last.id };
    yield rows.map(historyView);
    if (rows.length < Math.min(PAGE, left + rows.length)) return;
  }
}

export function exportCsv(repo: RequestHistoryRepository, filter: HistoryFilter, max: number): Readable {
  return Readable.from(
    (async function* () {
      yield CSV_COLUMNS.join(",") + "\r\n";
      for await (const rows of pages(repo, filter, max)) {
        yield rows.map((r) => CSV_COLUMNS.map((c) => csvCell(r[c])).join(",") + "\r\n").join("");
      }
    })(),
  );
}

/** A JSON array of the same records GET /api/requests lists. */
export function exportJson(repo: RequestHistoryRepository, filter: HistoryFilter, max: number): Readable {
  return Readable.from(
    (async function* () {
      yield "[";
      let first = true;
      for await (const rows of pages(repo, filter, max)) {
        const text = rows.map((r) => JSON.stringify(r)).join(",\n");
        yield (first ? "\n" : ",\n") + text;
        first = false;
      }
      yield first ? "]\n" : "\n]\n";
    })(),
  );
}
