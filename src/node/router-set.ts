// The routers a node registers and heartbeats with. It starts with the URL it was given (one
// router, or a load balancer in front of several); routers sharing PostgreSQL list the fleet's
// live routers in their answers, and the node then keeps one link per router, following routers
// that join. A router is dropped when it says it is leaving, or after answers missed in a row
// (killed); a dropped router is not taken back from lists until a list no longer names it (so a
// stale list does not resurrect it). With no router left, the given URL is used again.
import type { Logger } from "pino";
import { normalizeRouterUrl } from "../protocol/http.js";

/** What the set needs of a link (RouterLink). */
export interface RouterSetLink {
  start(): void;
  stop(): Promise<void>;
  notifyChange(): void;
  readonly registered: boolean;
}

export interface RouterLinkHooks {
  onRouters: (urls: string[]) => void;
  onMissed: (inARow: number) => void;
}

export interface RouterSetOptions {
  /** The URL the node was given: a router, or a load balancer in front of routers. */
  seed: string;
  createLink: (url: string, hooks: RouterLinkHooks) => RouterSetLink;
  logger: Logger;
  /** Answers missed in a row after which a listed router is dropped (default 3). */
  forgetAfterMisses?: number;
  /** Longest time a dropped router is ignored in lists that still name it (default 5 min). */
  ignoreDroppedMs?: number;
}

interface Entry {
  link: RouterSetLink;
  /** Only the given URL, not (yet) known as one of the listed routers: never dropped. */
  seedOnly: boolean;
}

export class RouterSet {
  private readonly seed: string;
  private readonly links = new Map<string, Entry>();
  private readonly dropped = new Map<string, number>();
  private started = false;
  private stopped = false;

  constructor(private readonly opts: RouterSetOptions) {
    this.seed = normalizeRouterUrl(opts.seed);
  }

  /** The routers linked now (the given URL until a list arrives). */
  urls(): string[] {
    return [...this.links.keys()];
  }

  get registered(): boolean {
    return [...this.links.values()].some((e) => e.link.registered);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.add(this.seed, true);
  }

  notifyChange(): void {
    for (const e of this.links.values()) e.link.notifyChange();
  }

  /** A router said it is shutting down; false when it is not one of ours. */
  leaving(url: string): boolean {
    let key: string;
    try {
      key = normalizeRouterUrl(url);
    } catch {
      return false;
    }
    if (!this.links.has(key)) return false;
    this.drop(key, "the router is leaving the fleet");
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const entries = [...this.links.values()];
    this.links.clear();
    await Promise.all(entries.map((e) => e.link.stop()));
  }

  private add(url: string, seedOnly: boolean): void {
    const entry: Entry = {
      seedOnly,
      link: this.opts.createLink(url, {
        onRouters: (urls) => this.onRouters(url, urls),
        onMissed: (n) => {
          if (this.links.get(url) === entry && !entry.seedOnly && n >= (this.opts.forgetAfterMisses ?? 3)) this.drop(url, `${n} calls in a row got no answer`);
        },
      }),
    };
    this.links.set(url, entry);
    entry.link.start();
  }

  private onRouters(from: string, listed: string[]): void {
    if (this.stopped || !this.links.has(from)) return;
    const urls = new Set<string>();
    for (const u of listed) {
      try {
        urls.add(normalizeRouterUrl(u));
      } catch {
        // A malformed entry is skipped; the schema already checked they are URLs.
      }
    }
    if (urls.size === 0) return;
    const now = Date.now();
    for (const [u, until] of this.dropped) if (!urls.has(u) || until < now) this.dropped.delete(u);
    for (const u of urls) {
      const entry = this.links.get(u);
      if (entry) entry.seedOnly = false;
      else if (!this.dropped.has(u)) {
        this.opts.logger.info({ router: u, learnedFrom: from }, "connecting to a router of the fleet");
        this.add(u, false);
      }
    }
    const seed = this.links.get(this.seed);
    if (seed?.seedOnly) {
      // The given URL is not one of the routers' own addresses (a load balancer): the node now
      // talks to each router directly, and keeps the given URL for when none is left.
      this.opts.logger.info({ given: this.seed, routers: [...urls] }, "the given router URL leads to a fleet of routers; linking to each directly");
      this.links.delete(this.seed);
      void seed.link.stop();
    }
  }

  private drop(url: string, reason: string): void {
    const entry = this.links.get(url);
    if (!entry) return;
    this.links.delete(url);
    this.dropped.set(url, Date.now() + (this.opts.ignoreDroppedMs ?? 300_000));
    this.opts.logger.warn({ router: url, reason }, "dropped a router");
    void entry.link.stop();
    if (this.links.size === 0 && !this.stopped) {
      this.opts.logger.info({ router: this.seed }, "no router of the fleet left; registering through the given URL again");
      this.add(this.seed, true);
    }
  }
}
