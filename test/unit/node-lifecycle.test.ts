// Node restarts: the same id, the already verified model reused, and a prompt close() even
// while the router has never answered.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngineLauncher } from "../../src/node/engine-launcher.js";
import { startNode, type NodeOptions } from "../../src/node/main.js";
import { loadOrCreateNodeId } from "../../src/node/node-identity.js";
import { captureLogger } from "../fixtures/capture-logger.js";
import { FakeRouter, makeTinyModel, waitFor } from "../fixtures/fake-router.js";

const FAKE_ENGINE = fileURLToPath(new URL("../fixtures/fake-engine.mjs", import.meta.url));
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "drover-life-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function options(dir: string, routerUrl: string): NodeOptions {
  return {
    routerUrl,
    host: "127.0.0.1",
    port: 0,
    name: "n",
    dataDir: join(dir, "data"),
    modelsDir: join(dir, "models"),
    engine: "llama",
    threads: 1,
    slots: 1,
    memoryLimitBytes: 1e9,
    heartbeatMs: 100,
    logger: captureLogger().logger,
    launcher: new LlamaEngineLauncher({ prefixArgs: [FAKE_ENGINE] }),
  };
}

describe("node identity", () => {
  it("creates a UUID once and keeps it", async () => {
    const dir = join(work, "id");
    const id = await loadOrCreateNodeId(dir);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await loadOrCreateNodeId(dir)).toBe(id);
    await writeFile(join(dir, "node-id"), "\n");
    expect(await loadOrCreateNodeId(dir)).not.toBe(id);
  });
});

describe("node lifecycle", () => {
  it("closes promptly while the router is unreachable, without waiting out its retry delay", async () => {
    const log = captureLogger();
    const node = await startNode({ ...options(join(work, "down"), "http://127.0.0.1:9"), logger: log.logger });
    expect(node.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // Wait (causally) until the node sleeps in a retry delay of at least 2.8 s (the backoff grows
    // 0.5, 1, 2, 4 s, less up to 30 % jitter), then close: it must not wait that delay out.
    const retry = await waitFor(
      () => log.lines.find((l) => String(l.msg).startsWith("cannot fetch catalog") && (l.retryInMs as number) >= 2_800),
      20_000,
      "a long retry delay",
    );
    const started = Date.now();
    await node.close();
    expect(Date.now() - started).toBeLessThan((retry.retryInMs as number) / 2);
  });

  it("rejects a command engine template it cannot use", async () => {
    const opts = {
      ...options(join(work, "kind"), "http://127.0.0.1:9"),
      engine: "command" as const,
      engineCommand: "llama-server -m {model}",
      launcher: undefined,
    };
    await expect(startNode(opts)).rejects.toThrow(/needs \{port\}/);
  });

  it("keeps its id and its verified model across restarts", async () => {
    const model = await makeTinyModel(work, "tiny", 11);
    const router = await new FakeRouter([model]).start();
    try {
      const dir = join(work, "restart");
      const ready = () => router.heartbeats.some((h) => h.models[0]?.state === "ready");
      const first = await startNode(options(dir, router.url));
      await waitFor(ready, 10_000, "first run ready");
      await first.close();
      router.heartbeats.length = 0;

      const second = await startNode(options(dir, router.url));
      await waitFor(ready, 10_000, "second run ready");
      await second.close();
      expect(second.nodeId).toBe(first.nodeId);
      expect(router.fileRequests).toHaveLength(1);
      expect(new Set(router.registrations.map((r) => r.nodeId))).toEqual(new Set([first.nodeId]));
    } finally {
      await router.close();
    }
  }, 30_000);
});
