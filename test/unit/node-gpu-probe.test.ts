import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NVIDIA_SMI_QUERY, parseNvidiaSmiCsv, probeGpus } from "../../src/node/gpu-probe.js";
import { chooseMemoryBudget } from "../../src/node/memory-budget.js";

// Captured from `nvidia-smi --query-gpu=index,name,memory.total,memory.used,utilization.gpu,temperature.gpu
// --format=csv,noheader,nounits` on a two-GPU machine, plus a GPU that reports [N/A] fields.
const SAMPLE = `0, NVIDIA H100 80GB HBM3, 81559, 1234, 17, 41
1, NVIDIA H100 80GB HBM3, 81559, 0, 0, 33
`;
const NA_SAMPLE = "0, NVIDIA GeForce RTX 4090, 24564, [N/A], [N/A], [N/A]\n";
const MIB = 1024 * 1024;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "drover-gpu-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("gpu probe", () => {
  it("parses nvidia-smi CSV rows into GPUs with bytes", () => {
    expect(parseNvidiaSmiCsv(SAMPLE)).toEqual([
      { index: 0, name: "NVIDIA H100 80GB HBM3", memoryTotalBytes: 81559 * MIB, memoryUsedBytes: 1234 * MIB, utilizationPercent: 17, temperatureC: 41 },
      { index: 1, name: "NVIDIA H100 80GB HBM3", memoryTotalBytes: 81559 * MIB, memoryUsedBytes: 0, utilizationPercent: 0, temperatureC: 33 },
    ]);
    expect(parseNvidiaSmiCsv(NA_SAMPLE)).toEqual([{ index: 0, name: "NVIDIA GeForce RTX 4090", memoryTotalBytes: 24564 * MIB }]);
    // Commas in names, warnings and blank lines.
    expect(parseNvidiaSmiCsv("WARNING: something\n\n0, Tesla T4, rev, a, 15360, 5, 1, 50\n")).toEqual([
      { index: 0, name: "Tesla T4, rev, a", memoryTotalBytes: 15360 * MIB, memoryUsedBytes: 5 * MIB, utilizationPercent: 1, temperatureC: 50 },
    ]);
    expect(parseNvidiaSmiCsv("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")).toEqual([]);
  });

  it("runs nvidia-smi with the query flags, and finds no GPU where it is missing or fails", async () => {
    const fake = join(dir, "nvidia-smi");
    await writeFile(fake, `#!/bin/sh\necho "$@" > ${join(dir, "args")}\nprintf '${SAMPLE.replace(/\n/g, "\\n")}'\n`);
    await chmod(fake, 0o755);
    const gpus = await probeGpus({ command: fake });
    expect(gpus).toHaveLength(2);
    expect((await import("node:fs")).readFileSync(join(dir, "args"), "utf8").trim()).toBe(NVIDIA_SMI_QUERY.join(" "));
    expect(await probeGpus({ command: join(dir, "missing-nvidia-smi") })).toEqual([]);
    const failing = join(dir, "failing-smi");
    await writeFile(failing, "#!/bin/sh\necho 'no driver' >&2\nexit 9\n");
    await chmod(failing, 0o755);
    expect(await probeGpus({ command: failing })).toEqual([]);
  });

  it("budgets GPU memory when GPUs exist, else RAM minus a reserve; --memory-limit wins", () => {
    const gpus = parseNvidiaSmiCsv(SAMPLE);
    expect(chooseMemoryBudget(undefined, gpus, 512e9)).toMatchObject({
      bytes: 2 * 81559 * MIB,
      source: "gpu",
      detail: expect.stringContaining("2 × NVIDIA H100 80GB HBM3"),
    });
    expect(chooseMemoryBudget(undefined, [], 64 * 1024 ** 3)).toMatchObject({ bytes: 64 * 1024 ** 3 - Math.round(64 * 1024 ** 3 * 0.1), source: "ram" });
    expect(chooseMemoryBudget(5e9, gpus)).toMatchObject({ bytes: 5e9, source: "limit" });
  });
});
