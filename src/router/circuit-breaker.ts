// Per-node circuit breaker. A transport failure opens it at once (a refused or reset connection
// means the node process is gone or sick); it half-opens after a cooldown that doubles with each
// consecutive failure, lets one trial request through, and closes on the first success.

const BASE_COOLDOWN_MS = 1_000;
const MAX_COOLDOWN_MS = 30_000;

export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private trialInFlight = false;

  get state(): "closed" | "open" | "half-open" {
    if (this.failures === 0) return "closed";
    return Date.now() < this.openUntil ? "open" : "half-open";
  }

  /** Whether a request may be sent now; in half-open state only one trial at a time. */
  allows(): boolean {
    const s = this.state;
    if (s === "closed") return true;
    if (s === "open") return false;
    return !this.trialInFlight;
  }

  /** Called when a request is actually dispatched. */
  onDispatch(): void {
    if (this.state === "half-open") this.trialInFlight = true;
  }

  onSuccess(): void {
    this.failures = 0;
    this.openUntil = 0;
    this.trialInFlight = false;
  }

  onFailure(): void {
    this.failures++;
    this.trialInFlight = false;
    this.openUntil = Date.now() + Math.min(MAX_COOLDOWN_MS, BASE_COOLDOWN_MS * 2 ** (this.failures - 1));
  }

  /** A fresh heartbeat proves the node process is alive: allow a trial right away. */
  onHeartbeat(): void {
    if (this.failures > 0) this.openUntil = Math.min(this.openUntil, Date.now());
  }

  /** Milliseconds until the breaker half-opens (0 when it allows requests). */
  msUntilTrial(): number {
    return Math.max(0, this.openUntil - Date.now());
  }
}
