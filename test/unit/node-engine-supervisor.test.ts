import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEngineLauncher, droverBinPath, engineContextSize, LlamaEngineLauncher } from "../../src/node/engine-launcher.js";
import { EngineSupervisor, type EngineSupervisorOptions } from "../../src/node/engine-supervisor.js";
import { ModelStatusBoard } from "../../src/node/model-status-board.js";
import { ggufEntry } from "../support/catalog-entry.js";
import { parseEngineReadyLine } from "../../src/protocol/node-api.js";
import { captureLogger } from "../fixtures/capture-logger.js";
import { waitFor } from "../fixtures/fake-router.js";

const FAKE_ENGINE = fileURLToPath(new URL("../fixtures/fake-engine.mjs", import.meta.url));
const entry = ggufEntry("m", 131072);

let work: string;
let modelPath: string;
const supervisors: EngineSupervisor[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "drover-sup-"));
  modelPath = join(work, "m.gguf");
  await writeFile(modelPath, "fake");
});
afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function supervise(extra: Partial<EngineSupervisorOptions> & { env?: Record<string, string>; path?: string } = {}) {
  const board = new ModelStatusBoard();
  board.setCatalog([entry], 2);
  const log = captureLogger();
  const supervisor = new EngineSupervisor({
    spec: { modelId: "m", modelPath: extra.path ?? modelPath, threads: 1, slots: 2, contextSize: 4096 },
    launcher: new LlamaEngineLauncher({ prefixArgs: [FAKE_ENGINE], env: extra.env }),
    board,
    logger: log.logger,
    restartInitialMs: 100,
    ...extra,
  });
  supervisors.push(supervisor);
  supervisor.start();
  return { supervisor, board, log };
}

describe("engine launcher", () => {
  it("starts `drover engine` from bin/drover.js with the documented flags", async () => {
    expect(droverBinPath()).toBe(fileURLToPath(new URL("../../bin/drover.js", import.meta.url)));
    expect(existsSync(droverBinPath())).toBe(true);
    const plan = await createEngineLauncher("llama").plan({ modelId: "m", modelPath: "/x.gguf", threads: 4, slots: 2, contextSize: engineContextSize(entry) });
    expect(plan.command).toBe(process.execPath);
    expect(plan.args).toEqual([
      droverBinPath(),
      "engine",
      "--model-path",
      "/x.gguf",
      "--model-id",
      "m",
      "--port",
      "0",
      "--threads",
      "4",
      "--slots",
      "2",
      "--context-size",
      "8192",
      "--exit-with-stdin",
    ]);
    expect(plan.readiness.kind).toBe("stdout-line");
  });

  it("parses only a valid readiness line", () => {
    expect(parseEngineReadyLine('DROVER_ENGINE_READY {"port":1234}')).toEqual({ port: 1234 });
    expect(parseEngineReadyLine('DROVER_ENGINE_READY {"port":0}')).toBeUndefined();
    expect(parseEngineReadyLine("DROVER_ENGINE_READY nope")).toBeUndefined();
    expect(parseEngineReadyLine('loading DROVER_ENGINE_READY {"port":1}')).toBeUndefined();
  });

  it("creates a launcher for every engine kind", () => {
    expect(createEngineLauncher("ollama")).toMatchObject({ kind: "ollama", needsModelFile: false });
    expect(createEngineLauncher("command", { engineCommand: "x {model} {port}" })).toMatchObject({ kind: "command", needsModelFile: true });
    expect(() => createEngineLauncher("command", { engineCommand: "x {model}" })).toThrow(/needs \{port\}/);
  });
});

describe("engine supervisor", () => {
  it("reports a crashing engine as failed with its last stderr line, and keeps restarting with backoff", async () => {
    const { board, log } = supervise({ path: join(work, "missing.gguf"), restartMaxMs: 400 });
    // Keeps restarting: 4 restarts, i.e. 5 attempts, each after a delay that doubles up to the cap.
    await waitFor(() => board.get("m")!.restarts >= 4, 10_000, "four restarts");
    const status = await waitFor(() => (board.get("m")!.state === "failed" ? board.get("m") : undefined), 5000, "failed state");
    expect(status.reason).toMatch(/exited with code 2: fake engine: model file not found: .*restarting in/);
    const delays = log.find("restarting in").map((l) => l.retryInMs);
    expect(delays.slice(0, 5)).toEqual([100, 200, 400, 400, 400]);
  });

  it("reports an engine that cannot be spawned", async () => {
    const board = new ModelStatusBoard();
    board.setCatalog([entry], 1);
    const supervisor = new EngineSupervisor({
      spec: { modelId: "m", modelPath, threads: 1, slots: 1, contextSize: 4096 },
      launcher: new LlamaEngineLauncher({ command: join(work, "no-such-binary") }),
      board,
      logger: captureLogger().logger,
      restartInitialMs: 5000,
    });
    supervisors.push(supervisor);
    supervisor.start();
    const status = await waitFor(() => (board.get("m")!.state === "failed" ? board.get("m") : undefined), 5000, "failed state");
    expect(status.reason).toMatch(/could not be started: .*ENOENT/);
  });

  it("kills an engine that ignores SIGTERM after the grace period", async () => {
    const { supervisor, board, log } = supervise({ env: { FAKE_ENGINE_IGNORE_SIGTERM: "1" }, stopGraceMs: 300 });
    await waitFor(() => board.get("m")!.state === "ready", 5000, "ready");
    const pid = supervisor.pid!;
    const started = Date.now();
    await supervisor.stop();
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(() => process.kill(pid, 0)).toThrow();
    expect(log.find("sending SIGKILL")).toHaveLength(1);
    expect(board.get("m")!.restarts).toBe(0);
  });

  it("kills and restarts an engine that does not become ready in time", async () => {
    const { board, log } = supervise({ env: { FAKE_ENGINE_START_DELAY_MS: "5000" }, readyTimeoutMs: 200 });
    await waitFor(() => board.get("m")!.restarts >= 1, 5000, "restart after ready timeout");
    expect(log.find("did not become ready in time").length).toBeGreaterThanOrEqual(1);
  });
});
