// Small status marks: node and model state badges, a progress bar, a usage meter.
import type { ModelState, NodeState } from "../api/types";

export function StateBadge({ state }: { state: NodeState | ModelState | string }) {
  return (
    <span class={`badge state-${state}`} data-state={state}>
      <span class="dot" />
      {state}
    </span>
  );
}

export function RoleBadge({ role }: { role: string }) {
  return <span class={`badge role-${role}`}>{role}</span>;
}

export function ProgressBar({ fraction, label }: { fraction: number; label?: string }) {
  const pct = Math.max(0, Math.min(1, fraction)) * 100;
  return (
    <span class="progress" role="progressbar" aria-valuenow={Math.round(pct)} aria-valuemin={0} aria-valuemax={100} title={label}>
      <span class="progress-fill" style={{ width: `${pct}%` }} />
    </span>
  );
}

/** A thin bar with the figure beside it; amber above 75 %, red above 90 %. */
export function Meter({ fraction, text }: { fraction: number | null; text: string }) {
  if (fraction === null || !Number.isFinite(fraction)) return <span class="muted">—</span>;
  const pct = Math.max(0, Math.min(1, fraction)) * 100;
  const level = pct > 90 ? "high" : pct > 75 ? "mid" : "low";
  return (
    <span class="meter">
      <span class="meter-track">
        <span class={`meter-fill meter-${level}`} style={{ width: `${pct}%` }} />
      </span>
      <span class="meter-text">{text}</span>
    </span>
  );
}

export function statusClass(status: number): string {
  if (status >= 500) return "status-5xx";
  if (status === 499) return "status-499";
  if (status >= 400) return "status-4xx";
  return "status-2xx";
}

export function HttpStatus({ status }: { status: number }) {
  return <span class={`http-status ${statusClass(status)}`}>{status}</span>;
}
