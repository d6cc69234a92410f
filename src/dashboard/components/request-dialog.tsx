// One request in full: outcome, where it ran, its timings and (when the router stores bodies)
// what was asked and answered.
import { useEffect, useState } from "preact/hooks";
import { requestDetail } from "../api/endpoints";
import type { RequestRecord } from "../api/types";
import { dateTime, ms } from "../lib/format";
import { HttpStatus } from "./badges";
import { Dialog } from "./dialog";

function pretty(body: unknown): string {
  if (body === null || body === undefined) return "";
  if (typeof body !== "string") return JSON.stringify(body, null, 2);
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

/** Queue wait, time to first byte and the rest of the response, to scale. */
function Timeline({ r }: { r: RequestRecord }) {
  const total = Math.max(1, r.durationMs);
  const queue = Math.min(r.queueWaitMs, total);
  const first = r.firstByteMs === null ? null : Math.min(r.firstByteMs, total);
  const toFirst = first === null ? 0 : Math.max(0, first - queue);
  const rest = Math.max(0, total - queue - toFirst);
  const pct = (v: number) => `${(v / total) * 100}%`;
  return (
    <div class="timeline">
      <div class="timeline-bar">
        <span class="seg seg-queue" style={{ width: pct(queue) }} title={`queue ${ms(queue)}`} />
        <span class="seg seg-first" style={{ width: pct(toFirst) }} title={`to first byte ${ms(toFirst)}`} />
        <span class="seg seg-rest" style={{ width: pct(rest) }} title={`rest ${ms(rest)}`} />
      </div>
      <div class="timeline-legend">
        <span>
          <i class="seg-queue" /> queue {ms(r.queueWaitMs)}
        </span>
        <span>
          <i class="seg-first" /> first byte {ms(r.firstByteMs)}
        </span>
        <span>
          <i class="seg-rest" /> total {ms(r.durationMs)}
        </span>
      </div>
    </div>
  );
}

export function RequestDialog({ record, onClose }: { record: RequestRecord; onClose: () => void }) {
  const [full, setFull] = useState<RequestRecord>(record);
  const [note, setNote] = useState<string | null>(null);

  useEffect(() => {
    let stopped = false;
    requestDetail(record.id ?? record.requestId)
      .then((r) => !stopped && setFull({ ...record, ...r }))
      .catch(
        (err: Error & { status?: number }) =>
          !stopped && setNote(err.status === 404 ? "The router has not stored this request yet; bodies appear once it has." : err.message),
      );
    return () => {
      stopped = true;
    };
  }, [record.id, record.requestId]);

  const r = full;
  const cached = r.cachedTokens != null ? ` (${r.cachedTokens} cached)` : "";
  const tokens =
    r.promptTokens !== null || r.completionTokens !== null ? `${r.promptTokens ?? "?"} prompt${cached} · ${r.completionTokens ?? "?"} completion` : "—";
  const rows: [string, preact.ComponentChildren][] = [
    ["Status", <HttpStatus status={r.status} />],
    ["Model", r.modelId],
    ["Node", r.nodeName ?? "— (not routed)"],
    ["Endpoint", <span class="mono">{r.endpoint}</span>],
    ["Started", dateTime(r.startedAt)],
    ["Stream", r.stream ? "yes" : "no"],
    ["API key", r.keyName ?? "—"],
    ["Client", <span class="mono">{r.clientIp}</span>],
    ["Attempts", r.attempts],
    ["Routing", <span data-testid="request-routing">{routingText(r.routing, r.affinity)}</span>],
    ["Tokens", tokens],
    ["Tool calls", r.toolCalls ?? "—"],
    ["Request id", <span class="mono small">{r.requestId}</span>],
    ["Trace id", <span class="mono small">{r.traceId ?? "—"}</span>],
  ];
  const requestText = pretty(r.requestBody);
  const responseText = pretty(r.responseBody);

  return (
    <Dialog title="Request" subtitle={<span class="mono">{r.requestId}</span>} onClose={onClose} size="large" testId="request-dialog">
      <div class="stack">
        <dl class="facts">
          {rows.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
        {r.error && <div class="alert alert-error">{r.error}</div>}
        <h3 class="section-title">Timings</h3>
        <Timeline r={r} />
        {note && <div class="alert">{note}</div>}
        <div class="bodies">
          <div>
            <h3 class="section-title">Request</h3>
            {requestText ? (
              <pre class="code">{requestText}</pre>
            ) : (
              <div class="empty">
                {r.bodiesHidden
                  ? "Only admins see bodies."
                  : "Not stored: the router keeps bodies when started with --history-body-bytes N (DROVER_HISTORY_BODY_BYTES)."}
              </div>
            )}
          </div>
          <div>
            <h3 class="section-title">Response</h3>
            {responseText ? (
              <pre class="code" data-testid="response-body">
                {responseText}
              </pre>
            ) : (
              <div class="empty">{r.bodiesHidden ? "Only admins see bodies." : "Not stored."}</div>
            )}
          </div>
        </div>
      </div>
    </Dialog>
  );
}

/** "prefix · hit": the policy, and whether the request ran on the node its prefix maps to. */
function routingText(routing: RequestRecord["routing"], affinity: RequestRecord["affinity"]): string {
  if (!routing) return "—";
  if (!affinity) return `${routing} (no affinity key)`;
  return affinity === "hit" ? `${routing} · hit (on its prefix's node)` : `${routing} · miss (not on its prefix's node)`;
}
