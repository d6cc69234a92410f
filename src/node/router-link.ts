// The node's link to the router: register (retrying with backoff + jitter while the router is
// unreachable or answers 503 "initializing"), then heartbeat every interval; a heartbeat answered
// 404 means the router forgot the node, so it registers again. Model state changes are pushed
// promptly (debounced): an immediate heartbeat, or an immediate registration retry.
import type { Logger } from "pino";
import { request, type Dispatcher } from "undici";
import { FLEET_PATHS, HEADER_NODE_SECRET } from "../protocol/http.js";
import { RegistrationAccepted, RegistrationPending, type Heartbeat, type NodeRegistration } from "../protocol/node-api.js";
import { Backoff, sleep } from "../shared/backoff.js";
import type { RouterEndpoint } from "./router-endpoint.js";

export interface RouterLinkOptions {
  router: RouterEndpoint;
  /** The node's own secret, sent with registrations and heartbeats (binds its id). */
  nodeSecret?: string;
  dispatcher: Dispatcher;
  logger: Logger;
  registration: () => NodeRegistration;
  heartbeat: () => Heartbeat;
  /** Overrides the interval the router asks for. */
  heartbeatMs?: number;
  /** Delay between registration attempts (default 500 ms doubling to 10 s, with jitter). */
  registerBackoff?: () => Backoff;
  /** Coalesces bursts of state changes (default 200 ms). */
  debounceMs?: number;
  /** Timeout of each call to the router (default 10 s). */
  requestTimeoutMs?: number;
}

type RegisterOutcome = { accepted: true; intervalMs: number } | { accepted: false; problem: string; level: "info" | "warn" | "error" };

export class RouterLink {
  private stopped = false;
  private readonly stopController = new AbortController();
  private wake: AbortController | undefined;
  private wakePending = false;
  private debounce: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private registeredFlag = false;

  constructor(private readonly opts: RouterLinkOptions) {}

  get registered(): boolean {
    return this.registeredFlag;
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => this.opts.logger.error({ err }, "router link stopped unexpectedly"));
  }

  /** A model changed state: tell the router soon (debounced). */
  notifyChange(): void {
    if (this.stopped || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.wakeUp();
    }, this.opts.debounceMs ?? 200);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.debounce);
    this.stopController.abort();
    this.wake?.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const intervalMs = await this.registerUntilAccepted();
      if (intervalMs === undefined) return;
      await this.heartbeatUntilForgotten(this.opts.heartbeatMs ?? intervalMs);
    }
  }

  private async registerUntilAccepted(): Promise<number | undefined> {
    const backoff = this.opts.registerBackoff?.() ?? new Backoff({ initialMs: 500, maxMs: 10_000, jitter: 0.3 });
    let lastProblem = "";
    while (!this.stopped) {
      const outcome = await this.register();
      if (this.stopped) return undefined;
      if (outcome.accepted) {
        this.registeredFlag = true;
        this.opts.logger.info({ router: this.opts.router.url, heartbeatMs: this.opts.heartbeatMs ?? outcome.intervalMs }, "registered with the router");
        return outcome.intervalMs;
      }
      const wait = backoff.next();
      // Repeated identical answers (a long initialization) are logged once.
      const level = outcome.problem === lastProblem ? "debug" : outcome.level;
      lastProblem = outcome.problem;
      this.opts.logger[level]({ router: this.opts.router.url, retryInMs: wait }, `registration not accepted: ${outcome.problem}`);
      await this.pause(wait);
    }
    return undefined;
  }

  private async register(): Promise<RegisterOutcome> {
    try {
      const res = await this.post(FLEET_PATHS.register, this.opts.registration());
      const text = await res.body.text();
      if (res.statusCode === 200 || res.statusCode === 201) {
        const accepted = RegistrationAccepted.safeParse(parseJson(text));
        if (accepted.success) return { accepted: true, intervalMs: accepted.data.heartbeatIntervalMs };
        return { accepted: false, problem: `unexpected registration answer from the router: ${text.slice(0, 200)}`, level: "error" };
      }
      if (res.statusCode === 503) {
        const pending = RegistrationPending.safeParse(parseJson(text));
        return { accepted: false, problem: pending.success ? `router says initializing: ${pending.data.message}` : "router answered 503", level: "info" };
      }
      if (res.statusCode === 401) {
        return { accepted: false, problem: `router rejected the node token (HTTP ${res.statusCode}); check DROVER_NODE_TOKEN`, level: "error" };
      }
      if (res.statusCode === 403) {
        return { accepted: false, problem: `router refused this node's identity: ${errorMessageOf(text)}`, level: "error" };
      }
      return { accepted: false, problem: `router answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`, level: "warn" };
    } catch (err) {
      return { accepted: false, problem: `router unreachable: ${(err as Error).message}`, level: "warn" };
    }
  }

  private async heartbeatUntilForgotten(intervalMs: number): Promise<void> {
    while (!this.stopped) {
      await this.pause(intervalMs);
      if (this.stopped) return;
      try {
        const res = await this.post(FLEET_PATHS.heartbeat, this.opts.heartbeat());
        const text = await res.body.text();
        if (res.statusCode === 404) {
          this.registeredFlag = false;
          this.opts.logger.info({ router: this.opts.router.url }, "router does not know this node (restarted or node deleted); registering again");
          return;
        }
        if (res.statusCode === 403) this.opts.logger.error({ router: this.opts.router.url }, `heartbeat refused: ${errorMessageOf(text)}`);
        else if (res.statusCode >= 300) this.opts.logger.warn({ status: res.statusCode, body: text.slice(0, 200) }, "heartbeat not accepted");
      } catch (err) {
        if (this.stopped) return;
        this.opts.logger.warn({ router: this.opts.router.url, err: (err as Error).message }, "heartbeat failed");
      }
    }
  }

  private post(path: string, body: unknown): Promise<Dispatcher.ResponseData> {
    const timeout = this.opts.requestTimeoutMs ?? 10_000;
    return request(this.opts.router.resolve(path), {
      method: "POST",
      dispatcher: this.opts.dispatcher,
      headers: this.opts.router.headers({
        "content-type": "application/json",
        ...(this.opts.nodeSecret ? { [HEADER_NODE_SECRET]: this.opts.nodeSecret } : {}),
      }),
      body: JSON.stringify(body),
      signal: this.stopController.signal,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
  }

  /** Waits `ms`, or less when a state change arrives (or arrived while we were busy). */
  private async pause(ms: number): Promise<void> {
    if (this.stopped) return;
    if (this.wakePending) {
      this.wakePending = false;
      return;
    }
    this.wake = new AbortController();
    await sleep(ms, this.wake.signal);
    this.wake = undefined;
    this.wakePending = false;
  }

  private wakeUp(): void {
    if (this.wake) this.wake.abort();
    else this.wakePending = true;
  }
}

function errorMessageOf(text: string): string {
  const body = parseJson(text) as { error?: { message?: unknown } } | undefined;
  return typeof body?.error?.message === "string" ? body.error.message : text.slice(0, 200);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
