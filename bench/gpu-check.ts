// `npm run gpu-check`: is this NVIDIA machine ready to serve with the built-in `llama` engine?
// Writes a generated ~1B-parameter Q8_0 model (~1 GB, random weights), starts a router and a node
// on loopback, and prints what the node detected (GPUs, VRAM), which node-llama-cpp build was
// picked (the CUDA prebuilt binary), the placement (memory budget, the GGUF header's estimate,
// context per slot) and tokens/s through the router on the GPU, then on the CPU with the same
// model. Self-contained (no internet), bounded (gives up after 4.5 minutes), and it exits at once
// with a clear message where there is no NVIDIA GPU.
//
// Exit codes: 0 the engine ran on the GPU; 1 something failed (the reason is printed);
// 2 no NVIDIA GPU here (nothing was run).
//
// `--dry-run-cpu` checks the plumbing on a machine without a GPU: a small generated model, the CPU
// both times, no GPU requirement (what CI and developers without a GPU can run).
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { GPU_CHECK_MODEL, writeQ8Model, type Q8ModelSpec } from "../src/gguf/q8-model.js";
import { formatBytes } from "../src/shared/byte-format.js";
import { probeGpus } from "../src/node/gpu-probe.js";
import { modelFileName } from "../src/router/model-cache/model-cache.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "bin/drover.js");
const MODEL = "gpu-check-1b";
const API_KEY = "drv-gpu-check-key";
const ADMIN_PASSWORD = "gpu-check-admin";
const NODE_TOKEN = "gpu-check-node-token";
const DEADLINE_MS = 270_000;
const startedAt = Date.now();
const DRY_RUN = process.argv.includes("--dry-run-cpu");
/** For --dry-run-cpu: ~25M parameters, seconds on any CPU. */
const DRY_RUN_MODEL: Q8ModelSpec = {
  ...GPU_CHECK_MODEL,
  name: "gpu-check-dry-run",
  embeddingLength: 512,
  blockCount: 4,
  headCount: 8,
  headCountKv: 4,
  feedForwardLength: 2048,
  contextLength: 4096,
};
const SPEC = DRY_RUN ? DRY_RUN_MODEL : GPU_CHECK_MODEL;
const GPU_SETTING = DRY_RUN ? "off" : "cuda";

const children = new Set<ChildProcess>();
let work: string | undefined;

function say(line = ""): void {
  process.stdout.write(line + "\n");
}
function section(title: string): void {
  say(`\n== ${title} (${((Date.now() - startedAt) / 1000).toFixed(1)} s)`);
}

async function cleanup(): Promise<void> {
  for (const c of children) c.kill("SIGKILL");
  if (work) await rm(work, { recursive: true, force: true }).catch(() => undefined);
}

async function fail(message: string, code = 1): Promise<never> {
  say(`\ngpu-check: ${message}`);
  await cleanup();
  process.exit(code);
}

const deadline = setTimeout(() => void fail(`gave up after ${DEADLINE_MS / 1000} s (the check is meant to take about a minute)`), DEADLINE_MS);

interface Proc {
  child: ChildProcess;
  url: string;
  output(): string;
  stop(): Promise<void>;
}

function startDrover(args: string[], env: Record<string, string>, banner: RegExp, timeoutMs = 60_000): Promise<Proc> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, DROVER_LOG_LEVEL: "info", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
    children.delete(child);
  };
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`drover ${args[0]} did not start within ${timeoutMs / 1000} s:\n${out.slice(-3000)}`)), timeoutMs);
    child.stdout!.on("data", () => {
      const m = banner.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePromise({ child, url: m[1]!, output: () => out, stop });
      }
    });
    child.once("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`drover ${args[0]} exited (${code ?? sig}):\n${out.slice(-3000)}`));
    });
  });
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < end) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (${last})` : ""}`);
}

/** The CUDA prebuilt package node-llama-cpp would load, and what its library still lacks (ldd). */
function cudaPackageReport(): string[] {
  const lines: string[] = [];
  for (const pkg of ["linux-x64-cuda", "linux-x64-cuda-ext"]) {
    const dir = join(ROOT, "node_modules/@node-llama-cpp", pkg);
    if (!existsSync(dir)) {
      lines.push(`@node-llama-cpp/${pkg}: not installed`);
      continue;
    }
    const version = (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version;
    lines.push(`@node-llama-cpp/${pkg} ${version}`);
  }
  const lib = join(ROOT, "node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda/libggml-cuda.so");
  if (existsSync(lib)) {
    try {
      const missing = execFileSync("ldd", [lib], { encoding: "utf8" })
        .split("\n")
        .filter((l) => l.includes("not found"))
        .map((l) => l.trim());
      lines.push(
        missing.length
          ? `libggml-cuda.so lacks: ${missing.join(", ")} (node-llama-cpp then tries the -ext fallback build)`
          : "libggml-cuda.so: all shared libraries found",
      );
    } catch {
      // ldd missing: not worth failing over
    }
  }
  return lines;
}

interface Rate {
  tokens: number;
  seconds: number;
  perSecond: number;
}

async function measure(routerUrl: string, maxTokens: number, runs: number): Promise<Rate[]> {
  const ask = async (tokens: number): Promise<Rate> => {
    const t0 = performance.now();
    const res = await fetch(`${routerUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Tell me a long story." }], max_tokens: tokens, temperature: 0 }),
      signal: AbortSignal.timeout(120_000),
    });
    const body = (await res.json()) as { usage?: { completion_tokens: number }; error?: { message: string } };
    if (!res.ok) throw new Error(`chat completion answered ${res.status}: ${body.error?.message ?? JSON.stringify(body)}`);
    const seconds = (performance.now() - t0) / 1000;
    const n = body.usage?.completion_tokens ?? 0;
    return { tokens: n, seconds, perSecond: n / seconds };
  };
  await ask(8); // warm-up: first-use allocations
  const rates: Rate[] = [];
  for (let i = 0; i < runs; i++) rates.push(await ask(maxTokens));
  return rates;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  say("drover gpu-check: the built-in llama engine on this machine's NVIDIA GPU");

  section("GPUs (nvidia-smi)");
  const gpus = await probeGpus({ timeoutMs: 10_000 });
  if (gpus.length === 0 && DRY_RUN) say("none (--dry-run-cpu: going on with the CPU)");
  else if (gpus.length === 0) {
    clearTimeout(deadline);
    say("no NVIDIA GPU found: `nvidia-smi` is missing, failed or listed none.");
    say("gpu-check needs a machine with an NVIDIA GPU and its driver; nothing was run.");
    process.exit(2);
  }
  for (const g of gpus)
    say(`GPU ${g.index}: ${g.name}, ${formatBytes(g.memoryTotalBytes)}${g.memoryUsedBytes !== undefined ? ` (${formatBytes(g.memoryUsedBytes)} in use)` : ""}`);

  section("node-llama-cpp build");
  for (const line of cudaPackageReport()) say(line);
  if (!existsSync(join(ROOT, "dist/cli/main.js"))) await fail("dist/ is missing: run `npm run build` (or `npx tsc -p tsconfig.json`) first");
  const { getLlama } = await import("node-llama-cpp");
  try {
    // The same settings as the engine (src/engine/llama/runtime.ts): prebuilt binaries only.
    const llama = await getLlama({ gpu: DRY_RUN ? false : "cuda", build: "never", skipDownload: true, progressLogs: false });
    const vram = await llama.getVramState();
    say(`picked: gpu=${String(llama.gpu)}, ${llama.buildType} binary, llama.cpp ${llama.llamaCppRelease.release}`);
    say(`devices: ${(await llama.getGpuDeviceNames()).join(", ")}; VRAM ${formatBytes(vram.total)} total, ${formatBytes(vram.free)} free`);
    await llama.dispose();
  } catch (err) {
    await fail(`node-llama-cpp could not load its ${DRY_RUN ? "CPU" : "CUDA"} build: ${(err as Error).message}`);
  }

  section("model");
  work = await mkdtemp(join(tmpdir(), "drover-gpu-check-"));
  const routerDir = join(work, "router");
  const cachePath = join(routerDir, "models", modelFileName(MODEL));
  const t0 = Date.now();
  const written = await writeQ8Model(SPEC, cachePath);
  // The sidecar lets the router trust the file without hashing it again (it was hashed while written).
  await writeFile(`${cachePath}.sha256`, `${written.sha256}  ${modelFileName(MODEL)}\n`);
  say(
    `${SPEC.name}: ${(written.parameters / 1e9).toFixed(2)}B parameters, Q8_0, ${formatBytes(written.size)}, written in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  const catalogPath = join(work, "catalog.json");
  await writeFile(
    catalogPath,
    JSON.stringify({
      name: "gpu-check",
      models: [
        {
          id: MODEL,
          description: "generated ~1B Q8_0 llama model (random weights) for gpu-check",
          sizeBytes: written.size,
          memoryBytes: 2_000_000_000,
          capabilities: ["chat", "completion"],
          contextLength: SPEC.contextLength,
          // Never fetched: the file is already in the router's cache with this checksum.
          source: { gguf: { url: `http://127.0.0.1:9/${MODEL}.gguf`, sha256: written.sha256 } },
        },
      ],
    }),
  );

  section(`router + node (llama engine, ${DRY_RUN ? "CPU: dry run" : "GPU"})`);
  const env = { DROVER_API_KEY: API_KEY, DROVER_ADMIN_PASSWORD: ADMIN_PASSWORD };
  const router = await startDrover(
    ["router", "--host", "127.0.0.1", "--port", "0", "--catalog", catalogPath, "--data-dir", routerDir, "--node-token", NODE_TOKEN],
    env,
    /drover router\s+(http:\/\/\S+)/,
  );
  say(`router ${router.url}`);
  const login = (await (
    await fetch(`${router.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "admin", password: ADMIN_PASSWORD }),
    })
  ).json()) as { token: string };
  const admin = { authorization: `Bearer ${login.token}` };
  const modelsDir = join(work, "node-models");
  const threads = Math.max(1, availableParallelism() - 1);
  const nodeArgs = (name: string) => [
    "node",
    "--router",
    router.url,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--name",
    name,
    "--engine",
    "llama",
    "--slots",
    "1",
    "--threads",
    String(threads),
    "--data-dir",
    join(work!, name),
    "--models-dir",
    modelsDir,
    "--node-token",
    NODE_TOKEN,
  ];
  const ready = (name: string) =>
    waitFor(
      `${name} ready`,
      async () => {
        const { nodes } = (await (await fetch(`${router.url}/api/nodes`, { headers: admin })).json()) as {
          nodes: { id: string; name: string; models: { id: string; state: string; reason?: string }[]; metrics?: { gpus?: unknown[] } }[];
        };
        const node = nodes.find((n) => n.name === name);
        const m = node?.models.find((x) => x.id === MODEL);
        if (m?.state === "failed" || m?.state === "unsupported") throw new Error(`${MODEL} is ${m.state}: ${m.reason}`);
        return m?.state === "ready" ? node : undefined;
      },
      180_000,
    );

  const gpuNode = await startDrover(nodeArgs("gpu"), { DROVER_ENGINE_GPU: GPU_SETTING }, /drover node\s+(http:\/\/\S+)/);
  const gpuView = await ready("gpu").catch((err: Error) => fail(`${err.message}\n--- node output ---\n${gpuNode.output().slice(-4000)}`));
  const lines = jsonLines(gpuNode.output());
  const budget = lines.find((l) => typeof l.msg === "string" && l.msg.startsWith("memory for models"));
  const placement = lines.find((l) => typeof l.msg === "string" && l.msg.startsWith(`${MODEL}:`));
  const loaded = lines.find((l) => l.msg === "model loaded");
  const seen = (gpuView.metrics?.gpus ?? []) as { index: number; name: string; memoryTotalBytes?: number; memoryUsedBytes?: number }[];
  say(
    `node detected: ${seen.length ? seen.map((g) => `GPU ${g.index} ${g.name} ${formatBytes(g.memoryTotalBytes ?? 0)}${g.memoryUsedBytes !== undefined ? ` (${formatBytes(g.memoryUsedBytes)} used)` : ""}`).join("; ") : "no GPU"}`,
  );
  say(`memory budget: ${String(budget?.msg ?? "(no log line)")}`);
  say(`placement: ${String(placement?.msg ?? "(no log line)")}`);
  say(
    `engine: ${loaded ? JSON.stringify({ gpu: loaded.gpu, gpuLayers: loaded.gpuLayers, threads: loaded.threads, slots: loaded.slots, contextSize: loaded.contextSize }) : "(no 'model loaded' line)"}`,
  );
  for (const g of await probeGpus({ timeoutMs: 10_000 })) say(`after loading: GPU ${g.index} ${formatBytes(g.memoryUsedBytes ?? 0)} in use`);
  if (!DRY_RUN && loaded?.gpu !== "cuda")
    await fail(`the engine loaded the model with gpu=${String(loaded?.gpu ?? "(unknown: no 'model loaded' line)")}, not CUDA`);

  section(`tokens/s on the ${DRY_RUN ? "CPU (dry run)" : "GPU"} (through the router, 256 tokens, 3 runs)`);
  const gpuRates = await measure(router.url, 256, 3).catch((err: Error) => fail(`${err.message}\n--- node output ---\n${gpuNode.output().slice(-6000)}`));
  for (const r of gpuRates) say(`${r.tokens} tokens in ${r.seconds.toFixed(2)} s: ${r.perSecond.toFixed(1)} tokens/s`);
  await gpuNode.stop();
  // Forget the stopped node at once, so the router does not wait for missed heartbeats to skip it.
  await fetch(`${router.url}/api/nodes/${encodeURIComponent(gpuView.id)}`, { method: "DELETE", headers: admin });

  section(`tokens/s on the CPU (same model, DROVER_ENGINE_GPU=off, ${threads} threads, 64 tokens, 2 runs)`);
  const cpuNode = await startDrover(nodeArgs("cpu"), { DROVER_ENGINE_GPU: "off" }, /drover node\s+(http:\/\/\S+)/);
  await ready("cpu").catch((err: Error) => fail(`${err.message}\n--- node output ---\n${cpuNode.output().slice(-4000)}`));
  const cpuRates = await measure(router.url, 64, 2).catch((err: Error) => fail(`${err.message}\n--- node output ---\n${cpuNode.output().slice(-6000)}`));
  for (const r of cpuRates) say(`${r.tokens} tokens in ${r.seconds.toFixed(2)} s: ${r.perSecond.toFixed(1)} tokens/s`);
  await cpuNode.stop();
  await router.stop();

  const gpu = median(gpuRates.map((r) => r.perSecond));
  const cpu = median(cpuRates.map((r) => r.perSecond));
  section("result");
  say(
    `${DRY_RUN ? "first run (CPU)" : "GPU"} ${gpu.toFixed(1)} tokens/s, CPU ${cpu.toFixed(1)} tokens/s: ${(gpu / cpu).toFixed(1)}× (median, generation through the router, prompt included)`,
  );
  clearTimeout(deadline);
  await cleanup();
  say(`gpu-check: OK in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
}

main().catch((err: unknown) => fail((err as Error).stack ?? String(err)));
