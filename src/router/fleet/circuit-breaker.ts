// Per-node circuit breaker. A failure opens it at once (a refused or reset connection, a 5xx from
// the engine, a node that stops answering); it half-opens after a cooldown that doubles with each
// consecutive failure up to a cap, lets one trial request through, and closes on the first success.
// Every dispatched request settles exactly once (the admission queue's release does it): success,
// failure, or neutral (the client left, the model was not ready there) — a neutral trial frees the
// trial slot, so a half-open node can never be left waiting for an outcome that will not come.

export const BASE_COOLDOWN_MS = 1_000;
export const MAX_COOLDOWN_MS = 30_000;

export type BreakerOutcome = "success" | "failure" | "neutral";

export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private trialInFlight = false;

  constructor(private readonly now: () => number = Date.now) {}

  get state(): "closed" | "open" | "half-open" {
    if (this.failures === 0) return "closed";
    return this.now() < this.openUntil ? "open" : "half-open";
  }

  /** Whether a request may be sent now; in half-open state only one trial at a time. */
  allows(): boolean {
    const s = this.state;
    if (s === "closed") return true;
    if (s === "open") return false;
    return !this.trialInFlight;
  }

  /** Called when a request is dispatched; true when it is the half-open state's trial. */
  onDispatch(): boolean {
    if (this.state !== "half-open" || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  /** How a dispatched request ended (`trial`: what onDispatch answered for it). */
  settle(outcome: BreakerOutcome, trial: boolean): void {
    if (outcome === "success") this.onSuccess();
    else if (outcome === "failure") this.onFailure();
    else if (trial) this.trialInFlight = false;
  }

  onSuccess(): void {
    this.failures = 0;
    this.openUntil = 0;
    this.trialInFlight = false;
  }

  onFailure(): void {
    this.failures++;
    this.trialInFlight = false;
    this.openUntil = this.now() + Math.min(MAX_COOLDOWN_MS, BASE_COOLDOWN_MS * 2 ** Math.min(30, this.failures - 1));
  }

  /** A fresh heartbeat proves the node process is alive: allow a trial right away. */
  onHeartbeat(): void {
    if (this.failures > 0) this.openUntil = Math.min(this.openUntil, this.now());
  }

  /** Milliseconds until the breaker half-opens (0 when it allows requests). */
  msUntilTrial(): number {
    return Math.max(0, this.openUntil - this.now());
  }
}
