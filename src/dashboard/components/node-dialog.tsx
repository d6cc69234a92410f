// Node detail: facts and per-model state, metric charts over time, its live log, and for admins
// the operator settings (name, tags, notes) and the disconnect / delete actions.
import { useEffect, useState } from "preact/hooks";
import { deleteNode, disconnectNode, nodeMetrics, updateNode } from "../api/endpoints";
import type { FleetNode, MetricSample } from "../api/types";
import { ago, bytes, count, dateTime, duration, epoch, ms } from "../lib/format";
import { ProgressBar, StateBadge } from "./badges";
import { Dialog } from "./dialog";
import { MetricChart } from "./metric-chart";
import { NodeLogs } from "./node-logs";
import { nodeLabel } from "./node-table";

type Tab = "overview" | "logs" | "settings";

const METRICS_EVERY_MS = 5000;
const pct = (v: number) => `${Math.round(v)}%`;
const plain = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
const latency = (v: number) => (v < 10 ? `${v.toFixed(1)} ms` : ms(v));

function useMetricHistory(nodeId: string): MetricSample[] {
  const [samples, setSamples] = useState<MetricSample[]>([]);
  useEffect(() => {
    let stopped = false;
    let last = 0;
    let timer: number | undefined;
    const load = async () => {
      try {
        const fresh = await nodeMetrics(nodeId, last ? last + 1 : undefined);
        if (stopped) return;
        if (fresh.length) {
          last = fresh[fresh.length - 1]!.t;
          setSamples((old) => [...old, ...fresh].slice(-720));
        }
      } catch {
        // the next poll tries again; the charts keep what they have
      }
      if (!stopped) timer = window.setTimeout(load, METRICS_EVERY_MS);
    };
    void load();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [nodeId]);
  return samples;
}

function Charts({ nodeId }: { nodeId: string }) {
  const samples = useMetricHistory(nodeId);
  const times = samples.map((s) => s.t);
  const hasGpu = samples.some((s) => s.gpuPercent !== null);
  if (samples.length === 0) return <div class="empty">Collecting metrics: the first sample arrives with the node's next heartbeat.</div>;
  return (
    <div class="charts" data-testid="node-charts">
      <MetricChart
        title="CPU"
        times={times}
        yMax={100}
        format={pct}
        series={[{ label: "CPU %", color: "#2563eb", values: samples.map((s) => s.cpuPercent) }]}
      />
      <MetricChart
        title="Memory"
        times={times}
        format={(v) => bytes(v)}
        yMax={samples.reduce((m, s) => Math.max(m, s.memoryTotalBytes ?? 0), 0) || undefined}
        series={[{ label: "used", color: "#7c3aed", values: samples.map((s) => s.memoryUsedBytes) }]}
      />
      {hasGpu && (
        <MetricChart
          title="GPU"
          times={times}
          yMax={100}
          format={pct}
          series={[{ label: "GPU %", color: "#059669", values: samples.map((s) => s.gpuPercent) }]}
        />
      )}
      <MetricChart
        title="In flight"
        times={times}
        format={plain}
        integer
        series={[{ label: "requests", color: "#d97706", values: samples.map((s) => s.inFlight) }]}
      />
      <MetricChart
        title="Latency (EWMA)"
        times={times}
        format={latency}
        series={[{ label: "latency", color: "#db2777", values: samples.map((s) => s.latencyEwmaMs) }]}
      />
    </div>
  );
}

function Overview({ node, now }: { node: FleetNode; now: number }) {
  const registered = epoch(node.registeredAt);
  return (
    <div class="stack">
      <dl class="facts">
        <div>
          <dt>Address</dt>
          <dd class="mono">{node.apiUrl}</dd>
        </div>
        <div>
          <dt>Node id</dt>
          <dd class="mono small">{node.id}</dd>
        </div>
        <div>
          <dt>Engine · version</dt>
          <dd>
            {node.engine} · {node.version}
          </dd>
        </div>
        <div>
          <dt>Uptime</dt>
          <dd>{node.state === "online" && registered ? duration(now - registered) : "—"}</dd>
        </div>
        <div>
          <dt>Last seen</dt>
          <dd title={dateTime(epoch(node.lastSeen) ?? now)}>{ago(epoch(node.lastSeen) ?? now, now)}</dd>
        </div>
        <div>
          <dt>Requests</dt>
          <dd>
            {count(node.totalRequests)} total · {count(node.failedRequests)} failed · {ms(node.latencyEwmaMs)} avg
          </dd>
        </div>
        <div>
          <dt>Memory</dt>
          <dd>
            {bytes(node.metrics.memoryUsedBytes)} / {bytes(node.metrics.memoryTotalBytes)}
          </dd>
        </div>
        <div>
          <dt>GPUs</dt>
          <dd>
            {(node.metrics.gpus ?? []).length === 0
              ? "none reported"
              : node.metrics
                  .gpus!.map((g) => `${g.name} (${g.utilizationPercent ?? "?"}%, ${bytes(g.memoryUsedBytes)} / ${bytes(g.memoryTotalBytes)})`)
                  .join("; ")}
          </dd>
        </div>
        {node.notes && (
          <div class="facts-wide">
            <dt>Notes</dt>
            <dd class="notes">{node.notes}</dd>
          </div>
        )}
      </dl>
      <h3 class="section-title">Engines on this node</h3>
      <table class="table compact">
        <thead>
          <tr>
            <th>Model</th>
            <th>State</th>
            <th class="num">Slots</th>
            <th class="num">In flight</th>
            <th class="num">Restarts</th>
          </tr>
        </thead>
        <tbody>
          {node.models.map((m) => (
            <tr key={m.id}>
              <td>{m.id}</td>
              <td>
                <StateBadge state={m.state} />
                {m.state === "downloading" && <ProgressBar fraction={m.progress ?? 0} />}
                {m.reason && <div class="cell-sub">{m.reason}</div>}
              </td>
              <td class="num">{m.slots}</td>
              <td class="num">{m.inFlight}</td>
              <td class="num">{m.restarts}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3 class="section-title">Metrics</h3>
      <Charts nodeId={node.id} />
    </div>
  );
}

function Settings({ node, onGone }: { node: FleetNode; onGone: () => void }) {
  const [displayName, setDisplayName] = useState(node.displayName ?? "");
  const [tags, setTags] = useState((node.tags ?? []).join(", "));
  const [notes, setNotes] = useState(node.notes ?? "");
  const [message, setMessage] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  const [confirming, setConfirming] = useState<"disconnect" | "delete" | null>(null);
  const [busy, setBusy] = useState(false);

  const run = async (what: () => Promise<unknown>, ok: string, after?: () => void) => {
    setBusy(true);
    setMessage(null);
    try {
      await what();
      setMessage({ kind: "ok", text: ok });
      after?.();
    } catch (err) {
      setMessage({ kind: "error", text: (err as Error).message });
    } finally {
      setBusy(false);
      setConfirming(null);
    }
  };

  return (
    <div class="stack">
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          const tagList = tags
            .split(",")
            .map((t) => t.trim())
            .filter(Boolean);
          void run(() => updateNode(node.id, { displayName: displayName.trim() || null, tags: tagList, notes: notes.trim() || null }), "Saved.");
        }}
      >
        <label class="field">
          <span>Display name</span>
          <input
            class="input"
            value={displayName}
            placeholder={node.name}
            onInput={(e) => setDisplayName(e.currentTarget.value)}
            maxLength={128}
            name="displayName"
          />
        </label>
        <label class="field">
          <span>Tags (comma-separated)</span>
          <input class="input" value={tags} placeholder="rack-3, a100" onInput={(e) => setTags(e.currentTarget.value)} name="tags" />
        </label>
        <label class="field">
          <span>Notes</span>
          <textarea class="input" rows={3} value={notes} onInput={(e) => setNotes(e.currentTarget.value)} name="notes" />
        </label>
        <div class="form-actions">
          <button type="submit" class="button primary" disabled={busy}>
            Save settings
          </button>
        </div>
      </form>
      {message && <div class={`alert alert-${message.kind === "ok" ? "ok" : "error"}`}>{message.text}</div>}
      <div class="danger-zone">
        <div>
          <h3>Disconnect</h3>
          <p class="muted">
            Drops the node's connection: the router stops routing to it until it registers again (a running node does so on its next heartbeat).
          </p>
          {confirming === "disconnect" ? (
            <span class="confirm">
              <button type="button" class="button danger" disabled={busy} onClick={() => void run(() => disconnectNode(node.id), "Disconnected.")}>
                Confirm disconnect
              </button>
              <button type="button" class="button" onClick={() => setConfirming(null)}>
                Cancel
              </button>
            </span>
          ) : (
            <button type="button" class="button danger-outline" onClick={() => setConfirming("disconnect")}>
              Disconnect…
            </button>
          )}
        </div>
        <div>
          <h3>Delete</h3>
          <p class="muted">Forgets the node and its settings. A node that is still running comes back as a new entry when it registers again.</p>
          {confirming === "delete" ? (
            <span class="confirm">
              <button type="button" class="button danger" disabled={busy} onClick={() => void run(() => deleteNode(node.id), "Deleted.", onGone)}>
                Confirm delete
              </button>
              <button type="button" class="button" onClick={() => setConfirming(null)}>
                Cancel
              </button>
            </span>
          ) : (
            <button type="button" class="button danger-outline" onClick={() => setConfirming("delete")}>
              Delete…
            </button>
          )}
        </div>
      </div>
    </div>
  );
}

export interface NodeDialogProps {
  node: FleetNode;
  now: number;
  isAdmin: boolean;
  onClose: () => void;
}

export function NodeDialog({ node, now, isAdmin, onClose }: NodeDialogProps) {
  const [tab, setTab] = useState<Tab>("overview");
  const tabs: [Tab, string][] = [["overview", "Overview"], ["logs", "Logs"], ...(isAdmin ? ([["settings", "Settings"]] as [Tab, string][]) : [])];
  return (
    <Dialog
      size="large"
      testId="node-dialog"
      onClose={onClose}
      title={
        <span class="title-with-badge">
          {nodeLabel(node)} <StateBadge state={node.state} />
        </span>
      }
      subtitle={<span class="mono">{node.apiUrl}</span>}
    >
      <div class="tabs" role="tablist">
        {tabs.map(([id, label]) => (
          <button key={id} type="button" role="tab" aria-selected={tab === id} class={`tab ${tab === id ? "active" : ""}`} onClick={() => setTab(id)}>
            {label}
          </button>
        ))}
      </div>
      {tab === "overview" && <Overview node={node} now={now} />}
      {tab === "logs" && <NodeLogs nodeId={node.id} />}
      {tab === "settings" && isAdmin && <Settings node={node} onGone={onClose} />}
    </Dialog>
  );
}
