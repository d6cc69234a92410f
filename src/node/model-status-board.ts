// The node's per-model state (what /v1/models, registration and heartbeats report), with a
// listener for state changes so the router link can tell the router promptly.
import type { CatalogEntry } from "../protocol/catalog.js";
import type { ModelState, ModelStatus } from "../protocol/node-api.js";

export interface DownloadProgress {
  progress: number;
  bytesDone: number;
  bytesTotal: number;
  speed: number;
}

/** Fields that describe the current state only; replaced on every state change. */
export interface StateDetails extends Partial<DownloadProgress> {
  reason?: string;
}

export type StateChangeListener = (id: string, state: ModelState, previous: ModelState) => void;

export class ModelStatusBoard {
  private readonly models = new Map<string, ModelStatus>();
  private readonly listeners = new Set<StateChangeListener>();
  private readonly peaks = new Map<string, number>();

  /** Starts every catalog model as `queued` with the node's slot count. */
  setCatalog(entries: readonly CatalogEntry[], slots: number): void {
    this.models.clear();
    for (const entry of entries) {
      this.models.set(entry.id, { id: entry.id, state: "queued", slots, inFlight: 0, restarts: 0 });
    }
  }

  has(id: string): boolean {
    return this.models.has(id);
  }

  get(id: string): ModelStatus | undefined {
    const status = this.models.get(id);
    return status && { ...status };
  }

  /** Snapshot in catalog order. */
  list(): ModelStatus[] {
    return [...this.models.values()].map((s) => ({ ...s }));
  }

  totalInFlight(): number {
    let total = 0;
    for (const s of this.models.values()) total += s.inFlight;
    return total;
  }

  setState(id: string, state: ModelState, details: StateDetails = {}): void {
    const current = this.models.get(id);
    if (!current) return;
    const previous = current.state;
    const next: ModelStatus = { id, state, slots: current.slots, inFlight: current.inFlight, restarts: current.restarts };
    for (const key of ["progress", "bytesDone", "bytesTotal", "speed", "reason"] as const) {
      if (details[key] !== undefined) (next as Record<string, unknown>)[key] = details[key];
    }
    this.models.set(id, next);
    if (previous !== state) for (const listener of this.listeners) listener(id, state, previous);
  }

  /** Progress of a running download; ignored unless the model is `downloading`. */
  setProgress(id: string, progress: DownloadProgress): void {
    const current = this.models.get(id);
    if (current?.state !== "downloading") return;
    Object.assign(current, progress, { progress: Math.min(1, Math.max(0, progress.progress)) });
  }

  incrementRestarts(id: string): void {
    const current = this.models.get(id);
    if (current) current.restarts++;
  }

  addInFlight(id: string, delta: 1 | -1): void {
    const current = this.models.get(id);
    if (!current) return;
    current.inFlight = Math.max(0, current.inFlight + delta);
    if (current.inFlight > (this.peaks.get(id) ?? 0)) this.peaks.set(id, current.inFlight);
  }

  /** The most requests the model's engine answered at once since the node started. */
  peakInFlight(id: string): number {
    return this.peaks.get(id) ?? 0;
  }

  onStateChange(listener: StateChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
