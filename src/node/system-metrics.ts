// Host metrics for registration and heartbeats: CPU use since the previous sample, and memory.
import { cpus, freemem, totalmem } from "node:os";
import type { NodeMetrics } from "../protocol/node-api.js";

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

  /** CPU percent (all cores, 0..100) since the previous call; memory now. */
  sample(): NodeMetrics {
    const now = cpuTimes();
    const total = now.total - this.previous.total;
    const idle = now.idle - this.previous.idle;
    this.previous = now;
    const metrics: NodeMetrics = { memoryUsedBytes: totalmem() - freemem(), memoryTotalBytes: totalmem() };
    if (total > 0) metrics.cpuPercent = Math.round(Math.min(100, Math.max(0, (1 - idle / total) * 100)) * 10) / 10;
    return metrics;
  }
}
