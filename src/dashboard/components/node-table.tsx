// The node table: one row per node with state, load and health; sortable, filterable by state,
// searchable by name, address or tag. No per-node model column: models are the fleet's.
import { useMemo, useState } from "preact/hooks";
import type { FleetNode, NodeModel } from "../api/types";
import { ago, bytesOf, count, duration, epoch, ms } from "../lib/format";
import { Meter, ProgressBar, StateBadge } from "./badges";

type SortKey = "name" | "address" | "state" | "uptime" | "cpu" | "memory" | "gpu" | "inFlight" | "total" | "latency" | "lastSeen";

export function nodeLabel(n: FleetNode): string {
  return n.displayName || n.name;
}

function uptimeMs(n: FleetNode, now: number): number | null {
  const since = epoch(n.registeredAt);
  return n.state === "online" && since !== null ? now - since : null;
}

function memFraction(n: FleetNode): number | null {
  const { memoryUsedBytes: used, memoryTotalBytes: total } = n.metrics;
  return used !== undefined && total ? used / total : null;
}

function gpuFraction(n: FleetNode): number | null {
  const util = (n.metrics.gpus ?? []).map((g) => g.utilizationPercent).filter((v): v is number => typeof v === "number");
  return util.length ? util.reduce((a, b) => a + b, 0) / util.length / 100 : null;
}

const STATE_ORDER = { online: 0, initializing: 1, offline: 2 } as Record<string, number>;

function sortValue(n: FleetNode, key: SortKey, now: number): string | number {
  switch (key) {
    case "name":
      return nodeLabel(n).toLowerCase();
    case "address":
      return n.apiUrl;
    case "state":
      return STATE_ORDER[n.state] ?? 9;
    case "uptime":
      return uptimeMs(n, now) ?? -1;
    case "cpu":
      return n.metrics.cpuPercent ?? -1;
    case "memory":
      return memFraction(n) ?? -1;
    case "gpu":
      return gpuFraction(n) ?? -1;
    case "inFlight":
      return n.inFlight;
    case "total":
      return n.totalRequests;
    case "latency":
      return n.latencyEwmaMs ?? Number.MAX_VALUE;
    case "lastSeen":
      return -(epoch(n.lastSeen) ?? 0);
  }
}

/** Models still on their way (downloading, loading, ...), shown while a node initializes. */
function ModelProgress({ models }: { models: NodeModel[] }) {
  const pending = models.filter((m) => m.state !== "ready");
  if (pending.length === 0) return null;
  return (
    <ul class="model-progress" data-testid="model-progress">
      {pending.map((m) => (
        <li key={m.id} title={m.reason ?? m.state}>
          <span class="model-progress-name">{m.id}</span>
          {m.state === "downloading" ? (
            <>
              <ProgressBar fraction={m.progress ?? 0} label={`downloading ${Math.round((m.progress ?? 0) * 100)}%`} />
              <span class="muted">{Math.round((m.progress ?? 0) * 100)}%</span>
            </>
          ) : (
            <span class={`model-progress-state state-text-${m.state}`}>{m.state}</span>
          )}
        </li>
      ))}
    </ul>
  );
}

export interface NodeTableProps {
  nodes: FleetNode[];
  now: number;
  onOpen: (id: string) => void;
}

export function NodeTable({ nodes, now, onOpen }: NodeTableProps) {
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: "name", desc: false });
  const [stateFilter, setStateFilter] = useState<string>("all");
  const [search, setSearch] = useState("");

  const rows = useMemo(() => {
    const q = search.trim().toLowerCase();
    const filtered = nodes.filter((n) => {
      if (stateFilter !== "all" && n.state !== stateFilter) return false;
      if (!q) return true;
      return [n.name, n.displayName ?? "", n.apiUrl, n.id, ...(n.tags ?? [])].some((s) => s.toLowerCase().includes(q));
    });
    const dir = sort.desc ? -1 : 1;
    return filtered.sort((a, b) => {
      const va = sortValue(a, sort.key, now);
      const vb = sortValue(b, sort.key, now);
      return (va < vb ? -1 : va > vb ? 1 : 0) * dir || nodeLabel(a).localeCompare(nodeLabel(b));
    });
  }, [nodes, sort, stateFilter, search, now]);

  const header = (key: SortKey, label: string, numeric = false, title?: string) => (
    <th class={numeric ? "num" : ""} title={title} aria-sort={sort.key === key ? (sort.desc ? "descending" : "ascending") : "none"}>
      <button type="button" class="sort-button" onClick={() => setSort((s) => ({ key, desc: s.key === key ? !s.desc : false }))}>
        {label}
        <span class="sort-mark" aria-hidden="true">
          {sort.key === key ? (sort.desc ? "▼" : "▲") : ""}
        </span>
      </button>
    </th>
  );

  return (
    <section class="panel" aria-labelledby="nodes-title">
      <header class="panel-header">
        <h2 id="nodes-title">Nodes</h2>
        <div class="toolbar">
          <input
            type="search"
            class="input"
            placeholder="Search name, address, tag"
            value={search}
            onInput={(e) => setSearch(e.currentTarget.value)}
            aria-label="Search nodes"
          />
          <select class="input" value={stateFilter} onChange={(e) => setStateFilter(e.currentTarget.value)} aria-label="Filter by state">
            <option value="all">All states</option>
            <option value="online">Online</option>
            <option value="initializing">Initializing</option>
            <option value="offline">Offline</option>
          </select>
        </div>
      </header>
      <div class="table-scroll">
        <table class="table table-hover node-table" data-testid="nodes-table">
          <thead>
            <tr>
              {header("name", "Name")}
              {header("address", "Address")}
              {header("state", "State")}
              {header("uptime", "Uptime", true)}
              {header("cpu", "CPU")}
              {header("memory", "Memory")}
              {header("gpu", "GPU")}
              {header("inFlight", "In flight", true)}
              {header("total", "Requests", true)}
              {header("latency", "Latency", true, "Average latency: moving average (EWMA) over recent requests")}
              {header("lastSeen", "Last seen", true)}
            </tr>
          </thead>
          <tbody>
            {rows.map((n) => {
              const up = uptimeMs(n, now);
              const mem = memFraction(n);
              const gpu = gpuFraction(n);
              return (
                <tr
                  key={n.id}
                  data-node={n.name}
                  class="clickable"
                  tabIndex={0}
                  onClick={() => onOpen(n.id)}
                  onKeyDown={(e) => e.key === "Enter" && onOpen(n.id)}
                >
                  <td class="cell-name">
                    <div class="cell-title">{nodeLabel(n)}</div>
                    <div class="cell-sub">
                      {n.displayName && n.displayName !== n.name ? `${n.name} · ` : ""}
                      {n.engine} · v{n.version}
                    </div>
                    {(n.tags ?? []).length > 0 && (
                      <div class="tags">
                        {n.tags!.map((t) => (
                          <span key={t} class="tag">
                            {t}
                          </span>
                        ))}
                      </div>
                    )}
                  </td>
                  <td class="mono small">{n.apiUrl.replace(/^https?:\/\//, "")}</td>
                  <td>
                    <StateBadge state={n.state} />
                    {n.state !== "online" && <ModelProgress models={n.models} />}
                  </td>
                  <td class="num">{up === null ? "—" : duration(up)}</td>
                  <td>
                    <Meter
                      fraction={n.metrics.cpuPercent === undefined ? null : n.metrics.cpuPercent / 100}
                      text={n.metrics.cpuPercent === undefined ? "" : `${Math.round(n.metrics.cpuPercent)}%`}
                    />
                  </td>
                  <td>
                    <Meter fraction={mem} text={mem === null ? "" : bytesOf(n.metrics.memoryUsedBytes, n.metrics.memoryTotalBytes)} />
                  </td>
                  <td>
                    {gpu === null ? (
                      <span class="muted">{(n.metrics.gpus ?? []).length ? "—" : "none"}</span>
                    ) : (
                      <Meter fraction={gpu} text={`${Math.round(gpu * 100)}%`} />
                    )}
                  </td>
                  <td class="num">{count(n.inFlight)}</td>
                  <td class="num">
                    {count(n.totalRequests)}
                    {n.failedRequests > 0 && <div class="cell-sub error-text">{count(n.failedRequests)} failed</div>}
                  </td>
                  <td class="num">{ms(n.latencyEwmaMs)}</td>
                  <td class="num small">{ago(epoch(n.lastSeen) ?? now, now)}</td>
                </tr>
              );
            })}
            {rows.length === 0 && (
              <tr>
                <td colSpan={11} class="empty">
                  {nodes.length === 0 ? "No node has registered yet. Start one with `drover node --router <this router's URL>`." : "No node matches."}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
