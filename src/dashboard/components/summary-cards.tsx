// The fleet summary: node counts by state, request rate, error rate, queue and in-flight.
import type { FleetSummary } from "../api/types";
import { count, percent } from "../lib/format";

export function SummaryCards({ summary }: { summary: FleetSummary }) {
  const total = summary.nodesOnline + summary.nodesInitializing + summary.nodesOffline;
  return (
    <section class="cards" aria-label="Fleet summary" data-testid="fleet-summary">
      <div class="card card-nodes">
        <div class="card-label">Nodes</div>
        <div class="card-value">{count(total)}</div>
        <div class="node-states">
          <span class="state-count state-online" data-testid="nodes-online">
            <span class="dot" />
            {summary.nodesOnline} online
          </span>
          <span class="state-count state-initializing" data-testid="nodes-initializing">
            <span class="dot" />
            {summary.nodesInitializing} initializing
          </span>
          <span class="state-count state-offline" data-testid="nodes-offline">
            <span class="dot" />
            {summary.nodesOffline} offline
          </span>
        </div>
      </div>
      <div class="card">
        <div class="card-label">Requests / min</div>
        <div class="card-value" data-testid="requests-per-minute">
          {count(summary.requestsPerMinute)}
        </div>
        <div class="card-note">finished in the last 60 s</div>
      </div>
      <div class={`card ${summary.errorRate > 0.05 ? "card-alert" : ""}`}>
        <div class="card-label">Error rate</div>
        <div class="card-value" data-testid="error-rate">
          {percent(summary.errorRate, summary.errorRate > 0 && summary.errorRate < 0.1 ? 1 : 0)}
        </div>
        <div class="card-note">{summary.errorsPerMinute} with 5xx in the last 60 s</div>
      </div>
      <div class="card">
        <div class="card-label">Queue depth</div>
        <div class="card-value" data-testid="queue-depth">
          {count(summary.queueDepth)}
        </div>
        <div class="card-note">limit {count(summary.queueLimit)}</div>
      </div>
      <div class="card">
        <div class="card-label">In flight</div>
        <div class="card-value" data-testid="in-flight">
          {count(summary.inFlight)}
        </div>
        <div class="card-note">being answered by nodes</div>
      </div>
    </section>
  );
}
