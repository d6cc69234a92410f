// Node logs over HTTP: the node's GET /api/logs and the router's proxy of it share these rules.

/** The node's log endpoint (the router proxies GET /api/nodes/:id/logs to it). */
export const NODE_LOGS_PATH = "/api/logs";
/** One JSON object per line, as written to the log file. */
export const LOGS_CONTENT_TYPE = "application/x-ndjson";
export const LOG_TAIL_DEFAULT = 200;
export const LOG_TAIL_MAX = 5000;

export type TailParam = { ok: true; tail: number } | { ok: false; message: string };

/** `?tail=N`: absent → the default; otherwise a whole number from 1 to LOG_TAIL_MAX. */
export function parseTailParam(value: unknown): TailParam {
  if (value === undefined) return { ok: true, tail: LOG_TAIL_DEFAULT };
  const text = Array.isArray(value) ? undefined : String(value);
  if (text === undefined || !/^\d{1,9}$/.test(text) || Number(text) < 1 || Number(text) > LOG_TAIL_MAX) {
    return { ok: false, message: `tail must be a whole number from 1 to ${LOG_TAIL_MAX} (got ${JSON.stringify(value)})` };
  }
  return { ok: true, tail: Number(text) };
}
