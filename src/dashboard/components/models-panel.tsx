// Loaded models, aggregated across the whole fleet: one row per supported model. Where a model
// runs is the fleet's business (every node loads what fits), so there is no per-node breakdown.
import type { ModelRow } from "../api/types";
import { bytes, count } from "../lib/format";
import { Meter } from "./badges";

export function ModelsPanel({ models }: { models: ModelRow[] }) {
  return (
    <section class="panel" aria-labelledby="models-title">
      <header class="panel-header">
        <h2 id="models-title">Loaded models</h2>
        <span class="panel-note">aggregated across all nodes</span>
      </header>
      <div class="table-scroll">
        <table class="table" data-testid="models-table">
          <thead>
            <tr>
              <th>Model</th>
              <th class="num">Ready nodes</th>
              <th class="num">Loading</th>
              <th class="num">Slots</th>
              <th class="num">In flight</th>
              <th>Utilization</th>
              <th class="num">Queue</th>
            </tr>
          </thead>
          <tbody>
            {models.map((m) => (
              <tr key={m.id} data-model={m.id}>
                <td>
                  <div class="cell-title">{m.id}</div>
                  <div class="cell-sub">
                    {(m.capabilities ?? []).join(", ")}
                    {m.memoryBytes ? ` · needs ${bytes(m.memoryBytes)}` : ""}
                  </div>
                </td>
                <td class={`num ${m.readyNodes === 0 ? "warn-text" : ""}`} data-testid="ready-nodes">
                  {m.readyNodes}
                </td>
                <td class="num" data-testid="loading-nodes">
                  {m.loadingNodes}
                </td>
                <td class="num">{count(m.slots)}</td>
                <td class="num">{count(m.inFlight)}</td>
                <td>
                  <Meter fraction={m.slots > 0 ? m.inFlight / m.slots : null} text={m.slots > 0 ? `${Math.round((m.inFlight / m.slots) * 100)}%` : ""} />
                </td>
                <td class={`num ${m.queueDepth > 0 ? "warn-text" : ""}`}>{count(m.queueDepth)}</td>
              </tr>
            ))}
            {models.length === 0 && (
              <tr>
                <td colSpan={7} class="empty">
                  The catalog is empty.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
