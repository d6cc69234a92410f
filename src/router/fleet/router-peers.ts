// The routers of one fleet find each other through the shared PostgreSQL: each records its
// advertised URL in the routers table on start and refreshes it every interval, and deletes it
// when it stops. Registration and heartbeat answers carry the live routers' URLs, so a node given
// one router (or the load balancer) connects to every router. With SQLite a router is alone and
// this is not used.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { normalizeRouterUrl } from "../../protocol/http.js";
import type { RoutersRepository } from "../store/routers.js";

export interface RouterPeersOptions {
  /** The URL nodes reach this router at directly. */
  url: string;
  repository: RoutersRepository;
  /** How often this router refreshes its row (and re-reads the others'). */
  refreshMs: number;
  logger: Logger;
}

/** A router whose row was not refreshed for this many intervals is not listed. */
const LIVE_INTERVALS = 3;
/** Rows of routers killed without deleting theirs are removed after this long. */
const STALE_ROW_MS = 3_600_000;

export class RouterPeers {
  readonly id = randomUUID();
  readonly url: string;
  private readonly startedAt = Date.now();
  private live: string[];
  private timer: NodeJS.Timeout | undefined;
  private left = false;
  private failing = false;

  constructor(private readonly opts: RouterPeersOptions) {
    this.url = normalizeRouterUrl(opts.url);
    this.live = [this.url];
  }

  /** Records this router and reads the others' (before the first node can ask). */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.refreshMs);
    this.timer.unref();
  }

  /** The live routers' URLs, this one included (none while it is leaving). */
  urls(): string[] {
    return this.left ? this.live.filter((u) => u !== this.url) : [...this.live];
  }

  /** Stops refreshing and deletes this router's row: other routers stop listing it. */
  async leave(): Promise<void> {
    this.left = true;
    clearInterval(this.timer);
    await this.opts.repository
      .delete(this.id)
      .catch((err: Error) =>
        this.opts.logger.warn({ err: err.message }, "could not remove this router from the routers table; others stop listing it once it is stale"),
      );
  }

  private async refresh(): Promise<void> {
    if (this.left) return;
    const now = Date.now();
    try {
      await this.opts.repository.upsert({ id: this.id, url: this.url, startedAt: this.startedAt }, now);
      const rows = await this.opts.repository.listLive(now - LIVE_INTERVALS * this.opts.refreshMs);
      const urls = [...new Set([this.url, ...rows.map((r) => normalizeRouterUrl(r.url))])].sort();
      for (const u of urls) if (!this.live.includes(u)) this.opts.logger.info({ router: u }, "a router joined the fleet");
      for (const u of this.live) if (!urls.includes(u)) this.opts.logger.info({ router: u }, "a router left the fleet (stopped or silent)");
      this.live = urls;
      if (this.failing) this.opts.logger.info("routers table readable again");
      this.failing = false;
      await this.opts.repository.deleteStale(now - STALE_ROW_MS);
    } catch (err) {
      // The list kept is the last one read: nodes keep their routers while the database is down.
      if (!this.failing) this.opts.logger.warn({ err: (err as Error).message }, "could not refresh the routers table");
      this.failing = true;
    }
  }
}
