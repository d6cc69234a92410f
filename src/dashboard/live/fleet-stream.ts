// The router's live stream (GET /api/events, server-sent events): a fleet snapshot every second
// and each finished request as it happens. One connection for the whole app.
import { useEffect, useState } from "preact/hooks";
import type { FleetSnapshot, RequestRecord } from "../api/types";

export type StreamState = "connecting" | "live" | "reconnecting";

type RequestListener = (r: RequestRecord) => void;

class FleetStream {
  snapshot: FleetSnapshot | null = null;
  state: StreamState = "connecting";
  private source: EventSource | null = null;
  private retryTimer: number | undefined;
  private changeListeners = new Set<() => void>();
  private requestListeners = new Set<RequestListener>();
  /** Asked when the stream is refused, to tell a lost session from a router restart. */
  onClosed: () => void = () => {};

  start(): void {
    if (this.source) return;
    const source = new EventSource("/api/events");
    this.source = source;
    source.addEventListener("open", () => this.setState("live"));
    source.addEventListener("snapshot", (e) => {
      this.snapshot = JSON.parse((e as MessageEvent<string>).data) as FleetSnapshot;
      this.state = "live";
      this.emitChange();
    });
    source.addEventListener("request", (e) => {
      const record = JSON.parse((e as MessageEvent<string>).data) as RequestRecord;
      for (const l of this.requestListeners) l(record);
    });
    source.addEventListener("error", () => {
      this.setState("reconnecting");
      // EventSource retries by itself after network errors, but gives up on an HTTP error
      // (e.g. 401 when the session expired): then we retry ourselves, after asking why.
      if (source.readyState === EventSource.CLOSED) {
        this.source = null;
        this.onClosed();
        this.retryTimer = window.setTimeout(() => this.start(), 3000);
      }
    });
  }

  stop(): void {
    window.clearTimeout(this.retryTimer);
    this.source?.close();
    this.source = null;
    this.snapshot = null;
    this.state = "connecting";
  }

  subscribe(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  onRequest(listener: RequestListener): () => void {
    this.requestListeners.add(listener);
    return () => this.requestListeners.delete(listener);
  }

  private setState(s: StreamState): void {
    if (this.state === s) return;
    this.state = s;
    this.emitChange();
  }

  private emitChange(): void {
    for (const l of this.changeListeners) l();
  }
}

export const fleetStream = new FleetStream();

/** The latest snapshot and connection state; re-renders on every update. */
export function useFleet(): { snapshot: FleetSnapshot | null; state: StreamState } {
  const [, setTick] = useState(0);
  useEffect(() => fleetStream.subscribe(() => setTick((t) => t + 1)), []);
  return { snapshot: fleetStream.snapshot, state: fleetStream.state };
}

/** Calls `listener` for every request that finishes while the component is mounted. */
export function useFinishedRequests(listener: RequestListener): void {
  useEffect(() => fleetStream.onRequest(listener), [listener]);
}
