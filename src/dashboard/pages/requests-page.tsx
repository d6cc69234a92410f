// Request history: filters (model, node, status, key, time range), paging, CSV/JSON export and
// a detail dialog. New requests show up live: the stream announces each one as it finishes and
// the first page is fetched again once the router has stored it.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { exportUrl, requestHistory, type RequestFilters } from "../api/endpoints";
import type { FleetSnapshot, RequestRecord } from "../api/types";
import { HttpStatus } from "../components/badges";
import { RequestDialog } from "../components/request-dialog";
import { dateTime, ms } from "../lib/format";
import { useFinishedRequests } from "../live/fleet-stream";

const PAGE_SIZE = 50;
/** History is written in batches off the request path: fetch again a little after an event. */
const REFETCH_AFTER_MS = 1200;

/** A finished request from the live stream, shown before the stored history has it. */
type LiveRecord = RequestRecord & { live?: true };

const RANGES: [string, number | null][] = [
  ["Any time", null],
  ["Last 15 minutes", 15 * 60_000],
  ["Last hour", 3600_000],
  ["Last 24 hours", 86400_000],
  ["Last 7 days", 7 * 86400_000],
];

interface FilterForm {
  model: string;
  node: string;
  status: string;
  key: string;
  range: string;
  from: string;
  to: string;
}

const EMPTY: FilterForm = { model: "", node: "", status: "", key: "", range: "Any time", from: "", to: "" };

function toFilters(f: FilterForm, now: number): RequestFilters {
  const span = RANGES.find(([label]) => label === f.range)?.[1] ?? null;
  const from = f.range === "Custom" ? (f.from ? Date.parse(f.from) : undefined) : span === null ? undefined : now - span;
  const to = f.range === "Custom" && f.to ? Date.parse(f.to) : undefined;
  return { model: f.model || undefined, node: f.node || undefined, status: f.status || undefined, key: f.key.trim() || undefined, from, to };
}

function matches(r: RequestRecord, f: RequestFilters): boolean {
  if (f.model && r.modelId !== f.model) return false;
  if (f.node && r.nodeName !== f.node && r.nodeId !== f.node) return false;
  if (f.key && r.keyName !== f.key) return false;
  if (f.status) {
    const m = /^([1-5])xx$/.exec(f.status);
    if (m ? Math.floor(r.status / 100) !== Number(m[1]) : String(r.status) !== f.status) return false;
  }
  if (f.to !== undefined) return false;
  return true;
}

export function RequestsPage({ snapshot }: { snapshot: FleetSnapshot | null }) {
  const [form, setForm] = useState<FilterForm>(EMPTY);
  const [offset, setOffset] = useState(0);
  const [rows, setRows] = useState<RequestRecord[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [open, setOpen] = useState<RequestRecord | null>(null);
  const [reloadTick, setReloadTick] = useState(0);
  const filtersRef = useRef<RequestFilters>(toFilters(EMPTY, Date.now()));
  /** Reads made since the last live event while live rows were still unstored. */
  const pendingReads = useRef(0);

  useEffect(() => {
    const filters = toFilters(form, Date.now());
    filtersRef.current = filters;
    const controller = new AbortController();
    setLoading(true);
    requestHistory(filters, PAGE_SIZE, offset, controller.signal)
      .then((page) => {
        // Live rows the router has not stored yet stay on top until a later read has them.
        setRows((old) => {
          if (offset !== 0) return page.requests;
          const stored = new Set(page.requests.map((r) => r.requestId));
          const unstored = old.filter((r) => (r as LiveRecord).live && !stored.has(r.requestId));
          return [...unstored, ...page.requests].slice(0, PAGE_SIZE);
        });
        setTotal(page.total);
        setError(null);
      })
      .catch((err: Error) => {
        if (!controller.signal.aborted) setError(err.message);
      })
      .finally(() => !controller.signal.aborted && setLoading(false));
    return () => controller.abort();
  }, [form, offset, reloadTick]);

  // While live rows wait to be stored, read the page again shortly (debounced by each change);
  // a few times only, as a router that records no history never stores them.
  useEffect(() => {
    if (offset !== 0 || !rows.some((r) => (r as LiveRecord).live) || pendingReads.current >= 5) return;
    const timer = window.setTimeout(() => {
      pendingReads.current++;
      setReloadTick((t) => t + 1);
    }, REFETCH_AFTER_MS);
    return () => window.clearTimeout(timer);
  }, [rows, offset]);

  const onFinished = useCallback(
    (record: RequestRecord) => {
      if (offset !== 0 || !matches(record, filtersRef.current)) return;
      pendingReads.current = 0;
      // Shown at once; replaced by the stored row when the page is read again.
      setRows((old) => (old.some((r) => r.requestId === record.requestId) ? old : [{ ...record, live: true } as LiveRecord, ...old].slice(0, PAGE_SIZE)));
      setTotal((t) => (t === null ? t : t + 1));
    },
    [offset],
  );
  useFinishedRequests(onFinished);

  const set = (patch: Partial<FilterForm>) => {
    setForm((f) => ({ ...f, ...patch }));
    setOffset(0);
  };
  const filters = toFilters(form, Date.now());
  const models = snapshot?.models.map((m) => m.id) ?? [];
  const nodeNames = [...new Set(snapshot?.nodes.map((n) => n.name) ?? [])].sort();
  const last = offset + rows.length;

  return (
    <div class="page-requests">
      <section class="panel">
        <header class="panel-header">
          <h2>Request history</h2>
          <div class="toolbar">
            <a class="button" href={exportUrl(filters, "csv")} download="drover-requests.csv">
              Export CSV
            </a>
            <a class="button" href={exportUrl(filters, "json")} download="drover-requests.json">
              Export JSON
            </a>
          </div>
        </header>
        <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
          <label class="field">
            <span>Model</span>
            <select class="input" value={form.model} onChange={(e) => set({ model: e.currentTarget.value })} name="model">
              <option value="">All models</option>
              {models.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </label>
          <label class="field">
            <span>Node</span>
            <select class="input" value={form.node} onChange={(e) => set({ node: e.currentTarget.value })} name="node">
              <option value="">All nodes</option>
              {nodeNames.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
          <label class="field">
            <span>Status</span>
            <select class="input" value={form.status} onChange={(e) => set({ status: e.currentTarget.value })} name="status">
              <option value="">Any status</option>
              <option value="2xx">2xx success</option>
              <option value="4xx">4xx client error</option>
              <option value="5xx">5xx server error</option>
              <option value="499">499 client gone</option>
            </select>
          </label>
          <label class="field">
            <span>API key</span>
            <input class="input" value={form.key} placeholder="key name" onChange={(e) => set({ key: e.currentTarget.value })} name="key" />
          </label>
          <label class="field">
            <span>Time</span>
            <select class="input" value={form.range} onChange={(e) => set({ range: e.currentTarget.value })} name="range">
              {RANGES.map(([label]) => (
                <option key={label} value={label}>
                  {label}
                </option>
              ))}
              <option value="Custom">Custom…</option>
            </select>
          </label>
          {form.range === "Custom" && (
            <>
              <label class="field">
                <span>From</span>
                <input class="input" type="datetime-local" value={form.from} onChange={(e) => set({ from: e.currentTarget.value })} name="from" />
              </label>
              <label class="field">
                <span>To</span>
                <input class="input" type="datetime-local" value={form.to} onChange={(e) => set({ to: e.currentTarget.value })} name="to" />
              </label>
            </>
          )}
          <div class="field field-button">
            <button type="button" class="button" onClick={() => set(EMPTY)}>
              Reset
            </button>
          </div>
        </form>
        {error && <div class="alert alert-error">{error}</div>}
        <div class="table-scroll">
          <table class="table table-hover" data-testid="requests-table">
            <thead>
              <tr>
                <th>Time</th>
                <th>Status</th>
                <th>Model</th>
                <th>Node</th>
                <th>Endpoint</th>
                <th>Key</th>
                <th class="num">Queue</th>
                <th class="num">First byte</th>
                <th class="num">Duration</th>
                <th class="num">Tokens</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr
                  key={r.id ?? r.requestId}
                  class="clickable"
                  tabIndex={0}
                  data-request-id={r.requestId}
                  onClick={() => setOpen(r)}
                  onKeyDown={(e) => e.key === "Enter" && setOpen(r)}
                >
                  <td class="small nowrap">{dateTime(r.startedAt)}</td>
                  <td>
                    <HttpStatus status={r.status} />
                  </td>
                  <td>{r.modelId}</td>
                  <td>{r.nodeName ?? <span class="muted">—</span>}</td>
                  <td class="mono small">
                    {r.endpoint}
                    {r.stream && <span class="tag tag-small">stream</span>}
                  </td>
                  <td>{r.keyName ?? <span class="muted">—</span>}</td>
                  <td class="num">{ms(r.queueWaitMs)}</td>
                  <td class="num">{ms(r.firstByteMs)}</td>
                  <td class="num">{ms(r.durationMs)}</td>
                  <td class="num">{r.completionTokens ?? "—"}</td>
                </tr>
              ))}
              {rows.length === 0 && !loading && (
                <tr>
                  <td colSpan={10} class="empty">
                    No requests match.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
        <footer class="pager">
          <span class="muted">
            {rows.length === 0 ? "0" : `${offset + 1}–${last}`}
            {total !== null ? ` of ${total.toLocaleString("en-US")}` : ""}
          </span>
          <button type="button" class="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
            ← Newer
          </button>
          <button
            type="button"
            class="button"
            disabled={total !== null ? last >= total : rows.length < PAGE_SIZE}
            onClick={() => setOffset(offset + PAGE_SIZE)}
          >
            Older →
          </button>
        </footer>
      </section>
      {open && <RequestDialog record={open} onClose={() => setOpen(null)} />}
    </div>
  );
}
