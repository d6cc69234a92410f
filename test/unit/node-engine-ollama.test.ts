// The `ollama` engine kind against a stand-in `ollama` executable (test/fixtures/ollama): one
// `ollama serve` per model on its own port, the pull's NDJSON progress as the model's download
// progress, the catalog id as the model's name, and no process left behind.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEngineLauncher, engineWatchdogPath } from "../../src/node/engine-launcher.js";
import { EngineSupervisor } from "../../src/node/engine-supervisor.js";
import { ModelStatusBoard } from "../../src/node/model-status-board.js";
import { OllamaEngineLauncher } from "../../src/node/ollama-engine.js";
import type { CatalogEntry } from "../../src/protocol/catalog.js";
import type { ModelStatus } from "../../src/protocol/node-api.js";
import { captureLogger, type CapturedLog } from "../fixtures/capture-logger.js";
import { waitFor } from "../fixtures/fake-router.js";

const FAKE_OLLAMA = fileURLToPath(new URL("../fixtures/ollama/ollama", import.meta.url));

const model = (id: string, tag: string): CatalogEntry => ({
  id,
  description: "",
  sizeBytes: 1,
  memoryBytes: 1,
  tags: [],
  capabilities: ["chat"],
  contextLength: 4096,
  source: { ollama: tag },
});
// Same tag and id; and a catalog id that differs from its Ollama tag.
const A = model("tiny-a:1b", "tiny-a:1b");
const B = model("team/b", "tiny-b");

let store: string;
const supervisors: EngineSupervisor[] = [];

beforeAll(async () => {
  store = await mkdtemp(join(tmpdir(), "drover-ollama-"));
  process.env.OLLAMA_MODELS = store;
  process.env.FAKE_OLLAMA_PULL_STEP_MS = "30";
});
afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await rm(store, { recursive: true, force: true });
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Supervises `entries` with one launcher and records every state and progress the board shows. */
function run(entries: CatalogEntry[], launcher = new OllamaEngineLauncher({ command: FAKE_OLLAMA, probeIntervalMs: 50 })) {
  const board = new ModelStatusBoard();
  board.setCatalog(entries, 3);
  const log = captureLogger();
  const seen: ModelStatus[] = [];
  const sampler = setInterval(() => seen.push(...board.list()), 10);
  const sups = entries.map((entry) => {
    const s = new EngineSupervisor({
      spec: { modelId: entry.id, modelPath: "", threads: 1, slots: 3, contextSize: 4096, source: entry.source },
      launcher,
      board,
      logger: log.logger.child({ model: entry.id }),
      restartInitialMs: 100,
      stopGraceMs: 2000,
    });
    supervisors.push(s);
    s.start();
    return s;
  });
  return { board, log, seen, sups, stopSampling: () => clearInterval(sampler) };
}

async function chat(port: number, modelId: string, stream = false) {
  const res = await request(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: modelId, stream, messages: [{ role: "user", content: "hi" }] }),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

const pulledLines = (log: CapturedLog, tag: string) => log.lines.filter((l) => String(l.msg).startsWith(`FAKE_OLLAMA_PULLED ${tag}`));

describe("ollama engine", () => {
  it("is chosen by --engine ollama and serves only models with an Ollama tag", () => {
    const launcher = createEngineLauncher("ollama");
    expect(launcher).toMatchObject({ kind: "ollama", needsModelFile: false });
    expect(launcher.unsupportedReason(A)).toBeUndefined();
    expect(launcher.unsupportedReason({ ...A, source: { gguf: { url: "https://example.com/a.gguf" } } })).toMatch(/no Ollama tag/);
  });

  it("runs one `ollama serve` per model on its own port, forwards pull progress, and names models by catalog id", async () => {
    const { board, log, seen, sups, stopSampling } = run([A, B]);
    await waitFor(() => board.list().every((m) => m.state === "ready"), 15_000, "both models ready");
    stopSampling();

    // Pull progress became download progress, over both layers' bytes.
    for (const id of [A.id, B.id]) {
      const downloads = seen.filter((m) => m.id === id && m.state === "downloading");
      expect(downloads.length).toBeGreaterThan(2);
      expect(downloads.some((m) => m.progress! > 0 && m.progress! < 1)).toBe(true);
      expect(downloads.at(-1)).toMatchObject({ bytesTotal: 4_001_000 });
      // Layers are announced as they start, so the total may grow; the bytes done never shrink.
      const done = downloads.map((m) => m.bytesDone!);
      expect(done).toEqual([...done].sort((x, y) => x - y));
      expect(downloads.every((m) => m.progress! >= 0 && m.progress! <= 1)).toBe(true);
    }
    expect(pulledLines(log, "tiny-a:1b")).toHaveLength(1);
    expect(pulledLines(log, "tiny-b:latest")).toHaveLength(1);

    // Separate processes on separate ports, each with its own OLLAMA_HOST.
    const [a, b] = sups as [EngineSupervisor, EngineSupervisor];
    expect(a.port).toBeDefined();
    expect(a.port).not.toBe(b.port);
    const answers = await Promise.all([chat(a.port!, A.id), chat(b.port!, B.id)]);
    const fakes = answers.map((r) => {
      expect(r.status).toBe(200);
      return (JSON.parse(r.text) as { fake: { pid: number; host: string; model: string } }).fake;
    });
    expect(fakes[0]).toMatchObject({ host: `127.0.0.1:${a.port}`, model: A.id });
    // The catalog id works as the model name although the Ollama tag differs (/api/copy).
    expect(fakes[1]).toMatchObject({ host: `127.0.0.1:${b.port}`, model: B.id });
    expect(fakes[0]!.pid).not.toBe(fakes[1]!.pid);
    // The watchdog is between the node and ollama.
    expect(a.pid).not.toBe(fakes[0]!.pid);

    const streamed = await chat(b.port!, B.id, true);
    expect(streamed.text).toContain("data: [DONE]");

    await Promise.all(sups.map((s) => s.stop()));
    await waitFor(() => !isRunning(fakes[0]!.pid) && !isRunning(fakes[1]!.pid), 5000, "ollama processes gone");
  });

  it("restarts a crashed ollama and does not pull a model it already has", async () => {
    const { board, log, sups } = run([A]);
    await waitFor(() => board.get(A.id)?.state === "ready", 15_000, "ready");
    const pullsBefore = pulledLines(log, "tiny-a:1b").length;
    const first = JSON.parse((await chat(sups[0]!.port!, A.id)).text) as { fake: { pid: number } };
    process.kill(first.fake.pid, "SIGKILL");
    await waitFor(() => board.get(A.id)?.state === "failed", 5000, "failed after the crash");
    await waitFor(() => board.get(A.id)?.state === "ready", 10_000, "ready again");
    expect(board.get(A.id)!.restarts).toBe(1);
    const second = JSON.parse((await chat(sups[0]!.port!, A.id)).text) as { fake: { pid: number } };
    expect(second.fake.pid).not.toBe(first.fake.pid);
    expect(pulledLines(log, "tiny-a:1b")).toHaveLength(pullsBefore);
    expect(log.find("ollama already has the model; not pulling").length).toBeGreaterThanOrEqual(1);
  });

  it("reports a failed pull as the model's failure reason", async () => {
    const { board } = run([model("ghost", "missing-model:7b")]);
    const failed = await waitFor(
      () => {
        const m = board.get("ghost");
        return m?.state === "failed" ? m : undefined;
      },
      10_000,
      "failed",
    );
    expect(failed.reason).toMatch(/could not be prepared: ollama pull of missing-model:7b failed: pull model manifest: file does not exist/);
  });

  it("reports a missing ollama executable clearly", async () => {
    const { board } = run([A], new OllamaEngineLauncher({ command: join(store, "no-such-ollama") }));
    const failed = await waitFor(
      () => {
        const m = board.get(A.id);
        return m?.state === "failed" ? m : undefined;
      },
      10_000,
      "failed",
    );
    expect(failed.reason).toMatch(/exited with code 127: cannot start .*no-such-ollama: spawn .* ENOENT/);
  });
});

describe("engine watchdog", () => {
  it("stops its command when the node's end of stdin closes (the node died)", async () => {
    const watchdog = spawn(process.execPath, [engineWatchdogPath(), "sh", "-c", "echo $$; exec sleep 30"], { stdio: ["pipe", "pipe", "inherit"] });
    const pid = Number(await new Promise<string>((resolve) => watchdog.stdout!.once("data", (d: Buffer) => resolve(d.toString()))));
    expect(isRunning(pid)).toBe(true);
    const exited = new Promise<number | null>((resolve) => watchdog.once("exit", (code) => resolve(code)));
    watchdog.stdin!.end();
    expect(await exited).toBe(128 + 15); // the child's SIGTERM, passed on as the exit status
    expect(isRunning(pid)).toBe(false);
  });
});
