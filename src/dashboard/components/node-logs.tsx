// A node's log lines through the router (GET /api/nodes/:id/logs?tail=N), with a tail
// selector, a level filter and live follow (polls while on).
import { useEffect, useRef, useState } from "preact/hooks";
import { nodeLogs } from "../api/endpoints";
import type { ApiError } from "../api/client";
import { time } from "../lib/format";

const TAILS = [50, 200, 1000, 5000];
const FOLLOW_EVERY_MS = 2000;

interface LogLine {
  key: number;
  time: number | null;
  level: string;
  msg: string;
  extra: string;
  raw: string;
}

// pino's numeric levels.
const LEVELS: Record<number, string> = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };
const RANK: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const SKIP = new Set(["time", "level", "msg", "pid", "hostname", "v"]);

export function parseLogLines(text: string): LogLine[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((raw, key) => {
      try {
        const o = JSON.parse(raw) as Record<string, unknown>;
        const level = typeof o.level === "number" ? (LEVELS[o.level] ?? String(o.level)) : String(o.level ?? "info");
        const t = typeof o.time === "number" ? o.time : typeof o.time === "string" ? Date.parse(o.time) : NaN;
        const extra = Object.entries(o)
          .filter(([k]) => !SKIP.has(k))
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
          .join(" ");
        return { key, time: Number.isFinite(t) ? t : null, level, msg: String(o.msg ?? ""), extra, raw };
      } catch {
        return { key, time: null, level: "info", msg: raw, extra: "", raw };
      }
    });
}

export function NodeLogs({ nodeId }: { nodeId: string }) {
  const [tail, setTail] = useState(200);
  const [follow, setFollow] = useState(true);
  const [minLevel, setMinLevel] = useState("trace");
  const [lines, setLines] = useState<LogLine[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [fetchedAt, setFetchedAt] = useState<number | null>(null);
  const box = useRef<HTMLDivElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const controller = new AbortController();
    const load = async () => {
      try {
        const text = await nodeLogs(nodeId, tail, controller.signal);
        if (stopped) return;
        setLines(parseLogLines(text));
        setError(null);
        setFetchedAt(Date.now());
      } catch (err) {
        if (stopped) return;
        const e = err as ApiError;
        setError(e.status === 403 ? "Only admins can read node logs." : e.message);
      }
      if (follow && !stopped) timer = window.setTimeout(load, FOLLOW_EVERY_MS);
    };
    void load();
    return () => {
      stopped = true;
      controller.abort();
      window.clearTimeout(timer);
    };
  }, [nodeId, tail, follow]);

  // While following, keep the newest line in view unless the reader scrolled up.
  useEffect(() => {
    const el = box.current;
    if (el && follow && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines, follow]);

  const shown = (lines ?? []).filter((l) => (RANK[l.level] ?? 30) >= (RANK[minLevel] ?? 0));

  return (
    <div class="logs" data-testid="node-logs">
      <div class="toolbar logs-toolbar">
        <label class="field-inline">
          Tail
          <select class="input" value={tail} onChange={(e) => setTail(Number(e.currentTarget.value))} aria-label="Lines to show" data-testid="log-tail">
            {TAILS.map((t) => (
              <option key={t} value={t}>
                {t} lines
              </option>
            ))}
          </select>
        </label>
        <label class="field-inline">
          Level
          <select class="input" value={minLevel} onChange={(e) => setMinLevel(e.currentTarget.value)} aria-label="Lowest level">
            <option value="trace">all</option>
            <option value="info">info and above</option>
            <option value="warn">warn and above</option>
            <option value="error">errors</option>
          </select>
        </label>
        <label class="field-inline checkbox">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} data-testid="log-follow" />
          Follow
        </label>
        <span class="muted small">
          {follow && <span class="live-dot" />}
          {fetchedAt ? `updated ${time(fetchedAt)}` : "loading…"} · {shown.length} lines
        </span>
      </div>
      {error && <div class="alert alert-error">{error}</div>}
      <div
        class="log-lines"
        ref={box}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
      >
        {lines !== null && shown.length === 0 && !error && <div class="empty">No log lines.</div>}
        {shown.map((l) => (
          <div key={l.key} class={`log-line level-${l.level}`} title={l.raw} data-testid="log-line">
            <span class="log-time">{l.time === null ? "" : time(l.time)}</span>
            <span class="log-level">{l.level}</span>
            <span>
              <span class="log-msg">{l.msg}</span>
              {l.extra && <span class="log-extra">{l.extra}</span>}
            </span>
          </div>
        ))}
      </div>
    </div>
  );
}
