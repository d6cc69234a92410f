// GPU metrics for heartbeats: nvidia-smi output parsed (captured samples, a fake nvidia-smi, and
// the real one where present), polled by GpuMonitor, and omitted — not zero — without a GPU.
import { execFileSync } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { GpuMonitor } from "../../src/node/gpu-monitor.js";
import { NVIDIA_SMI_QUERY, parseNvidiaSmiCsv, probeGpus, type GpuSample } from "../../src/node/gpu-probe.js";
import { SystemMetricsSampler } from "../../src/node/system-metrics.js";
import { Heartbeat } from "../../src/protocol/node-api.js";
import { waitFor } from "../fixtures/fake-router.js";

const MIB = 1024 * 1024;
// Output as `nvidia-smi` prints it for NVIDIA_SMI_QUERY (written after its documented CSV format;
// no GPU machine was at hand): two GPUs, one reporting [N/A] utilisation as MIG-partitioned GPUs
// do, and a board without a temperature sensor.
const TWO_GPUS = "0, NVIDIA A100-SXM4-80GB, 81920, 1043, 0, 31\n1, NVIDIA A100-SXM4-80GB, 81920, 17803, [N/A], 44\n";
const NO_SENSOR = "0, Tesla T4, 15360, 0, [Not Supported], [N/A]\r\n";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "drover-gpu-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("nvidia-smi parsing", () => {
  test("several GPUs; [N/A] and [Not Supported] fields are left out", () => {
    expect(parseNvidiaSmiCsv(TWO_GPUS)).toEqual([
      { index: 0, name: "NVIDIA A100-SXM4-80GB", memoryTotalBytes: 81920 * MIB, memoryUsedBytes: 1043 * MIB, utilizationPercent: 0, temperatureC: 31 },
      { index: 1, name: "NVIDIA A100-SXM4-80GB", memoryTotalBytes: 81920 * MIB, memoryUsedBytes: 17803 * MIB, temperatureC: 44 },
    ]);
    expect(parseNvidiaSmiCsv(NO_SENSOR)).toEqual([{ index: 0, name: "Tesla T4", memoryTotalBytes: 15360 * MIB, memoryUsedBytes: 0 }]);
  });

  test("no output, or an error text, is no GPU", () => {
    expect(parseNvidiaSmiCsv("")).toEqual([]);
    expect(parseNvidiaSmiCsv("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n")).toEqual([]);
  });

  test("probeGpus runs the query (fake nvidia-smi); a missing command is no GPU", async () => {
    const fake = join(dir, "nvidia-smi");
    await writeFile(fake, `#!/bin/sh\n[ "$1 $2" = "${NVIDIA_SMI_QUERY.join(" ")}" ] || exit 9\nprintf '${TWO_GPUS.replace(/\n/g, "\\n")}'\n`);
    await chmod(fake, 0o755);
    expect(await probeGpus({ command: fake })).toEqual(parseNvidiaSmiCsv(TWO_GPUS));
    expect(await probeGpus({ command: join(dir, "no-such-nvidia-smi") })).toEqual([]);
  });

  let realGpus = false;
  try {
    execFileSync("nvidia-smi", ["-L"], { stdio: "ignore", timeout: 5000 });
    realGpus = true;
  } catch {
    // no NVIDIA driver on this machine
  }
  test.runIf(realGpus)("the real nvidia-smi: one reading per GPU that `nvidia-smi -L` lists", async () => {
    const listed = execFileSync("nvidia-smi", ["-L"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.startsWith("GPU ")).length;
    const gpus = await probeGpus();
    expect(gpus).toHaveLength(listed);
    for (const g of gpus) expect(g.memoryTotalBytes).toBeGreaterThan(0);
  });
});

describe("GPU metrics in heartbeats", () => {
  test("without a GPU the heartbeat has no gpus field at all", () => {
    const metrics = new SystemMetricsSampler(() => []).sample();
    expect(metrics).not.toHaveProperty("gpus");
    expect(metrics.memoryTotalBytes).toBeGreaterThan(0);
  });

  test("with GPUs the heartbeat carries them, valid for the protocol", () => {
    const gpus = parseNvidiaSmiCsv(TWO_GPUS);
    const metrics = new SystemMetricsSampler(() => gpus).sample();
    expect(metrics.gpus).toEqual(gpus);
    expect(Heartbeat.safeParse({ nodeId: "n", models: [], metrics }).success).toBe(true);
  });

  test("GpuMonitor keeps polling while GPUs are found and stops probing a machine without one", async () => {
    let calls = 0;
    const readings: GpuSample[][] = [parseNvidiaSmiCsv(TWO_GPUS), parseNvidiaSmiCsv(NO_SENSOR)];
    const monitor = new GpuMonitor({ intervalMs: 20, probe: async () => readings[Math.min(calls++, 1)]! });
    await monitor.start();
    expect(monitor.gpus).toHaveLength(2);
    // Polling goes on: the second reading replaces the first.
    await waitFor(() => calls >= 2 && monitor.gpus.length === 1, 10_000, "the second reading");
    expect(monitor.gpus).toEqual(parseNvidiaSmiCsv(NO_SENSOR));
    monitor.stop();
    const after = calls;
    // Negative checks: several intervals pass with no further probe (a slow machine can only make
    // these pass more easily, never fail them).
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toBe(after);

    let none = 0;
    const noGpu = new GpuMonitor({
      intervalMs: 10,
      probe: async () => {
        none++;
        return [];
      },
    });
    await noGpu.start();
    await new Promise((r) => setTimeout(r, 60));
    expect(none).toBe(1);
    expect(noGpu.gpus).toEqual([]);
  });
});
