// NVIDIA GPUs as `nvidia-smi` reports them: index, name, memory, utilization, temperature.
// Used for the node's memory budget (models must fit in GPU memory) and for GPU metrics.
import { execFile } from "node:child_process";

/** One GPU; fields match NodeMetrics.gpus in src/protocol/node-api.ts. */
export interface GpuSample {
  index: number;
  name: string;
  memoryTotalBytes: number;
  memoryUsedBytes?: number;
  utilizationPercent?: number;
  temperatureC?: number;
}

export const NVIDIA_SMI_QUERY = ["--query-gpu=index,name,memory.total,memory.used,utilization.gpu,temperature.gpu", "--format=csv,noheader,nounits"] as const;

const MIB = 1024 * 1024;

/** A number, or undefined for "[N/A]", "[Not Supported]" and the like. */
function numberField(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text.trim());
  return text.trim() !== "" && Number.isFinite(n) ? n : undefined;
}

/**
 * Parses the output of `nvidia-smi` with NVIDIA_SMI_QUERY: one line per GPU, memory in MiB.
 * Lines that are not GPU rows (warnings, blank lines) are skipped. GPU names may contain commas,
 * so the name is everything between the first field and the last four.
 */
export function parseNvidiaSmiCsv(output: string): GpuSample[] {
  const gpus: GpuSample[] = [];
  for (const line of output.split(/\r?\n/)) {
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length < 6) continue;
    const index = numberField(fields[0]);
    const tail = fields.slice(-4);
    const memoryTotalMiB = numberField(tail[0]);
    if (index === undefined || !Number.isInteger(index) || memoryTotalMiB === undefined) continue;
    const gpu: GpuSample = { index, name: fields.slice(1, -4).join(", "), memoryTotalBytes: Math.round(memoryTotalMiB * MIB) };
    const used = numberField(tail[1]);
    const utilization = numberField(tail[2]);
    const temperature = numberField(tail[3]);
    if (used !== undefined) gpu.memoryUsedBytes = Math.round(used * MIB);
    if (utilization !== undefined) gpu.utilizationPercent = utilization;
    if (temperature !== undefined) gpu.temperatureC = temperature;
    gpus.push(gpu);
  }
  return gpus;
}

export interface GpuProbeOptions {
  /** Executable (default `nvidia-smi`, looked up on PATH). */
  command?: string;
  timeoutMs?: number;
}

/**
 * The GPUs of this machine; an empty list when `nvidia-smi` is missing, fails (no driver) or
 * times out: such a machine is treated as having no GPU.
 */
export function probeGpus(opts: GpuProbeOptions = {}): Promise<GpuSample[]> {
  return new Promise((resolve) => {
    execFile(opts.command ?? "nvidia-smi", [...NVIDIA_SMI_QUERY], { timeout: opts.timeoutMs ?? 5000, windowsHide: true }, (err, stdout) => {
      resolve(err ? [] : parseNvidiaSmiCsv(String(stdout)));
    });
  });
}
