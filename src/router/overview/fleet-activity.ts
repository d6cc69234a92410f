// Request rate and error rate over the last minute, fed by finished-request events, for the
// dashboard's fleet summary.
import type { RequestRecord } from "../../protocol/request-record.js";
import type { RequestEvents } from "../request-path/request-events.js";

const WINDOW_MS = 60_000;

export interface ActivitySummary {
  /** Requests that finished in the last 60 s. */
  requestsPerMinute: number;
  /** Of those, the ones answered with a 5xx (fleet or node errors, not client mistakes). */
  errorsPerMinute: number;
  /** errorsPerMinute / requestsPerMinute, 0 when idle. */
  errorRate: number;
}

export class FleetActivity {
  // Finish times and outcomes in arrival order; pruned from the front, so memory is bounded by
  // one minute of traffic.
  private times: number[] = [];
  private failed: boolean[] = [];
  private head = 0;

  constructor(events?: RequestEvents) {
    events?.onFinished((r) => this.record(r));
  }

  record(r: Pick<RequestRecord, "status">, now = Date.now()): void {
    this.times.push(now);
    this.failed.push(r.status >= 500);
    this.prune(now);
  }

  summary(now = Date.now()): ActivitySummary {
    this.prune(now);
    let errors = 0;
    for (let i = this.head; i < this.failed.length; i++) if (this.failed[i]) errors++;
    const total = this.times.length - this.head;
    return { requestsPerMinute: total, errorsPerMinute: errors, errorRate: total === 0 ? 0 : errors / total };
  }

  private prune(now: number): void {
    while (this.head < this.times.length && now - this.times[this.head]! > WINDOW_MS) this.head++;
    // Compact once the dead prefix dominates, keeping pushes amortised O(1).
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.failed = this.failed.slice(this.head);
      this.head = 0;
    }
  }
}
