// Failed logins per client IP and username: after `maxFailures` within `windowMs`, further
// attempts for that pair are refused until the oldest failure leaves the window. In memory, per
// router: a guessing client meets each router's limit separately.

export interface LoginRateLimitOptions {
  maxFailures?: number;
  windowMs?: number;
  /** Bound on tracked pairs, so a flood of usernames cannot grow memory without end. */
  maxEntries?: number;
}

export class LoginRateLimiter {
  private failures = new Map<string, number[]>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxEntries: number;

  constructor(opts: LoginRateLimitOptions = {}) {
    this.maxFailures = opts.maxFailures ?? 5;
    this.windowMs = opts.windowMs ?? 15 * 60 * 1000;
    this.maxEntries = opts.maxEntries ?? 50_000;
  }

  private key(ip: string, username: string): string {
    return `${ip}\u0000${username.toLowerCase()}`;
  }

  private recent(key: string, now: number): number[] {
    const list = (this.failures.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (list.length === 0) this.failures.delete(key);
    else this.failures.set(key, list);
    return list;
  }

  /** Seconds to wait before trying again, or 0 when an attempt is allowed now. */
  retryAfterS(ip: string, username: string, now = Date.now()): number {
    const list = this.recent(this.key(ip, username), now);
    if (list.length < this.maxFailures) return 0;
    return Math.max(1, Math.ceil((list[list.length - this.maxFailures]! + this.windowMs - now) / 1000));
  }

  fail(ip: string, username: string, now = Date.now()): void {
    const key = this.key(ip, username);
    const list = this.recent(key, now);
    list.push(now);
    this.failures.delete(key);
    this.failures.set(key, list);
    while (this.failures.size > this.maxEntries) this.failures.delete(this.failures.keys().next().value!);
  }

  succeed(ip: string, username: string): void {
    this.failures.delete(this.key(ip, username));
  }
}
