// Failed logins per client IP and username: after `maxFailures` within `windowMs`, further
// attempts for that pair are refused until the oldest failure leaves the window. Per client IP
// across usernames too (`maxFailuresPerIp`): every attempt costs an scrypt hash, so one address
// cannot spray many usernames. In memory, per router: a guessing client meets each router's
// limit separately. Behind a load balancer the client IP needs --trust-proxy.

export interface LoginRateLimitOptions {
  maxFailures?: number;
  /** Failed logins from one IP, whatever the usernames, within the window (default 20). */
  maxFailuresPerIp?: number;
  windowMs?: number;
  /** Bound on tracked pairs, so a flood of usernames cannot grow memory without end. */
  maxEntries?: number;
}

export class LoginRateLimiter {
  private failures = new Map<string, number[]>();
  private readonly maxFailures: number;
  private readonly maxFailuresPerIp: number;
  private readonly windowMs: number;
  private readonly maxEntries: number;

  constructor(opts: LoginRateLimitOptions = {}) {
    this.maxFailures = opts.maxFailures ?? 5;
    this.maxFailuresPerIp = opts.maxFailuresPerIp ?? 20;
    this.windowMs = opts.windowMs ?? 15 * 60 * 1000;
    this.maxEntries = opts.maxEntries ?? 50_000;
  }

  private key(ip: string, username: string): string {
    return `${ip}\u0000${username.toLowerCase()}`;
  }

  /** The per-IP entry (usernames never hold a NUL, so it cannot collide with a pair). */
  private ipKey(ip: string): string {
    return `${ip}\u0000\u0000`;
  }

  private recent(key: string, now: number): number[] {
    const list = (this.failures.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (list.length === 0) this.failures.delete(key);
    else this.failures.set(key, list);
    return list;
  }

  /** Seconds to wait before trying again, or 0 when an attempt is allowed now. */
  retryAfterS(ip: string, username: string, now = Date.now()): number {
    const wait = (list: number[], max: number) => (list.length < max ? 0 : Math.max(1, Math.ceil((list[list.length - max]! + this.windowMs - now) / 1000)));
    return Math.max(wait(this.recent(this.key(ip, username), now), this.maxFailures), wait(this.recent(this.ipKey(ip), now), this.maxFailuresPerIp));
  }

  fail(ip: string, username: string, now = Date.now()): void {
    for (const key of [this.key(ip, username), this.ipKey(ip)]) {
      const list = this.recent(key, now);
      list.push(now);
      this.failures.delete(key);
      this.failures.set(key, list);
    }
    while (this.failures.size > this.maxEntries) this.failures.delete(this.failures.keys().next().value!);
  }

  succeed(ip: string, username: string): void {
    this.failures.delete(this.key(ip, username));
  }
}
