// The `command` engine kind: templates split like a shell would, placeholders filled, the server
// probed on the port the node chose, supervised like every engine.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CommandEngineLauncher } from "../../src/node/command-engine.js";
import { CommandTemplateError, splitCommandLine } from "../../src/node/command-template.js";
import { createEngineLauncher } from "../../src/node/engine-launcher.js";
import { EngineSupervisor } from "../../src/node/engine-supervisor.js";
import { ModelStatusBoard } from "../../src/node/model-status-board.js";
import { ggufEntry } from "../support/catalog-entry.js";
import { captureLogger } from "../fixtures/capture-logger.js";
import { waitFor } from "../fixtures/fake-router.js";

const SERVER = fileURLToPath(new URL("../fixtures/openai-server.mjs", import.meta.url));
const entry = ggufEntry("org/m:7b");

let work: string;
let modelPath: string;
const supervisors: EngineSupervisor[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "drover cmd-")); // a space in the path, on purpose
  modelPath = join(work, "m.gguf");
  await writeFile(modelPath, "weights");
});
afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("command templates", () => {
  it("splits words like a shell, without running one", () => {
    expect(splitCommandLine("llama-server -m {model} --port {port}")).toEqual(["llama-server", "-m", "{model}", "--port", "{port}"]);
    expect(splitCommandLine(`  a  'b c' "d \\"e\\" $HOME" f\\ g ''  `)).toEqual(["a", "b c", 'd "e" $HOME', "f g", ""]);
    expect(() => splitCommandLine("a 'b")).toThrow(CommandTemplateError);
    expect(() => splitCommandLine("   ")).toThrow(/empty/);
  });

  it("requires {port}, rejects unknown placeholders, and downloads weights only for {model}", () => {
    expect(() => new CommandEngineLauncher("llama-server -m {model}")).toThrow(/needs \{port\}/);
    expect(() => new CommandEngineLauncher("llama-server -m {modle} --port {port}")).toThrow(/unknown placeholder \{modle\}/);
    const withFile = new CommandEngineLauncher("llama-server -m {model} --port {port}");
    expect(withFile.needsModelFile).toBe(true);
    expect(withFile.unsupportedReason(entry)).toBeUndefined();
    expect(withFile.unsupportedReason({ ...entry, source: { ollama: "m" } })).toMatch(/no GGUF source/);
    const vllm = new CommandEngineLauncher("vllm serve openai/gpt-oss-20b --port {port} --served-model-name {id}");
    expect(vllm.needsModelFile).toBe(false);
    expect(vllm.unsupportedReason({ ...entry, source: { ollama: "m" } })).toBeUndefined();
    expect(() => createEngineLauncher("command")).toThrow(/needs --engine-command/);
  });

  it("fills every placeholder for one start", async () => {
    const launcher = createEngineLauncher("command", { engineCommand: "srv -m {model} --port {port} --alias {id} -t {threads} -np {slots} -c {context}" });
    const plan = await launcher.plan({ modelId: entry.id, modelPath: "/models/a b.gguf", threads: 3, slots: 4, contextSize: 8192 });
    const port = (plan.readiness as { port: number }).port;
    expect(plan).toMatchObject({ command: "srv", watchdog: true, readiness: { kind: "http-probe", path: "/v1/models" } });
    expect(plan.args).toEqual(["-m", "/models/a b.gguf", "--port", String(port), "--alias", entry.id, "-t", "3", "-np", "4", "-c", "8192"]);
    expect(port).toBeGreaterThan(0);
  });
});

describe("command engine", () => {
  it("starts the server on the port it chose, is ready once /v1/models answers, and restarts it after a crash", async () => {
    const board = new ModelStatusBoard();
    board.setCatalog([entry], 2);
    const log = captureLogger();
    const launcher = new CommandEngineLauncher(`"${process.execPath}" ${SERVER} --model {model} --port {port} --id {id}`, { probeIntervalMs: 50 });
    const sup = new EngineSupervisor({
      spec: { modelId: entry.id, modelPath, threads: 1, slots: 2, contextSize: 4096 },
      launcher,
      board,
      logger: log.logger,
      restartInitialMs: 100,
    });
    supervisors.push(sup);
    sup.start();
    await waitFor(() => board.get(entry.id)?.state === "ready", 10_000, "ready");
    const ask = async () => {
      const res = await request(`http://127.0.0.1:${sup.port}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: entry.id, messages: [] }),
      });
      return ((await res.body.json()) as { fake: { pid: number; port: number; model: string; id: string } }).fake;
    };
    const first = await ask();
    expect(first).toMatchObject({ port: sup.port, model: modelPath, id: entry.id });
    expect(log.lines.some((l) => l.stream === "stderr" && String(l.msg).includes(`openai-server listening on ${sup.port}`))).toBe(true);

    process.kill(first.pid, "SIGKILL");
    await waitFor(() => board.get(entry.id)?.state !== "ready", 5000, "not ready after the crash");
    await waitFor(() => board.get(entry.id)?.state === "ready", 10_000, "ready again");
    const second = await ask();
    expect(second.pid).not.toBe(first.pid);
    expect(board.get(entry.id)!.restarts).toBe(1);
  });

  it("reports a server that exits at start with its last error line", async () => {
    const board = new ModelStatusBoard();
    board.setCatalog([entry], 2);
    const launcher = new CommandEngineLauncher(`"${process.execPath}" ${SERVER} --model /nonexistent.gguf --port {port}`);
    const sup = new EngineSupervisor({
      spec: { modelId: entry.id, modelPath, threads: 1, slots: 2, contextSize: 4096 },
      launcher,
      board,
      logger: captureLogger().logger,
      restartInitialMs: 5000,
    });
    supervisors.push(sup);
    sup.start();
    const failed = await waitFor(
      () => {
        const m = board.get(entry.id);
        return m?.state === "failed" ? m : undefined;
      },
      5000,
      "failed",
    );
    expect(failed.reason).toMatch(/exited with code 2: openai-server: model file not found: \/nonexistent\.gguf; restarting in/);
  });
});
