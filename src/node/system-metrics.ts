// Host metrics for registration, heartbeats and /metrics: CPU use since the previous sample,
// memory, and the GPUs nvidia-smi reports (omitted, not zero, where there are none).
import { cpus, freemem, totalmem } from "node:os";
import type { NodeMetrics } from "../protocol/node-api.js";
import type { GpuSample } from "./gpu-probe.js";

interface CpuTimes {
  idle: number;
  total: number;
}

function cpuTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

export class SystemMetricsSampler {
  private previous = cpuTimes();

  /** `gpus`: the latest GPU reading (e.g. GpuMonitor's), empty where there is no GPU. */
  constructor(private readonly gpus: () => readonly GpuSample[] = () => []) {}

  /** CPU percent (all cores, 0..100) since the previous call; memory now. */
  sample(): NodeMetrics {
    const now = cpuTimes();
    const total = now.total - this.previous.total;
    const idle = now.idle - this.previous.idle;
    this.previous = now;
    const metrics: NodeMetrics = { memoryUsedBytes: totalmem() - freemem(), memoryTotalBytes: totalmem() };
    if (total > 0) metrics.cpuPercent = Math.round(Math.min(100, Math.max(0, (1 - idle / total) * 100)) * 10) / 10;
    const gpus = this.gpus();
    if (gpus.length) metrics.gpus = gpus.map((g) => ({ ...g }));
    return metrics;
  }
}
