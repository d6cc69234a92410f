// Keeps a recent nvidia-smi reading for heartbeats and /metrics, which must not wait for a
// process spawn. A machine whose first probe finds no GPU is not probed again.
import { probeGpus, type GpuSample } from "./gpu-probe.js";

export interface GpuMonitorOptions {
  /** Poll interval (default 5 s, the heartbeat interval). */
  intervalMs?: number;
  /** Replaces probeGpus (tests). */
  probe?: () => Promise<GpuSample[]>;
}

export class GpuMonitor {
  private latest: GpuSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private first: Promise<void> | undefined;

  constructor(private readonly opts: GpuMonitorOptions = {}) {}

  /** The last reading; empty when there is no GPU (or the last probe failed). */
  get gpus(): GpuSample[] {
    return this.latest;
  }

  /** Probes once now (awaitable), then every interval while GPUs are found. */
  start(): Promise<void> {
    this.first ??= this.poll(true);
    return this.first;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async poll(first: boolean): Promise<void> {
    const probe = this.opts.probe ?? (() => probeGpus());
    this.latest = await probe().catch(() => []);
    if (this.stopped || (first && this.latest.length === 0)) return;
    this.timer = setTimeout(() => void this.poll(false), this.opts.intervalMs ?? 5000);
    this.timer.unref();
  }
}
