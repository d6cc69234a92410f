// A drover router plus one node whose engine is the benchmark's fast upstream, started as a
// `command` engine: the path measured is router → node → engine, as in production.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { AUTH_HEADERS, startNode, startRouter, tempDir, waitForReady, type DroverProcess } from "../../test/support/fleet.js";
import { UPSTREAM_SCRIPT } from "./processes.js";

export const BENCH_MODEL = "bench";

export function benchCatalog(): string {
  const path = join(tempDir("bench-catalog"), "catalog.yaml");
  writeFileSync(
    path,
    [
      "name: bench",
      "models:",
      `  - id: ${BENCH_MODEL}`,
      "    sizeBytes: 500000",
      "    memoryBytes: 50000000",
      "    capabilities: [chat, completion]",
      "    source:",
      "      generate: { name: bench, seed: 3, embeddingLength: 64, blockCount: 1, headCount: 4, headCountKv: 4, feedForwardLength: 64, contextLength: 2048 }",
    ].join("\n"),
  );
  return path;
}

export interface BenchFleet {
  router: DroverProcess;
  node: DroverProcess;
  headers: Record<string, string>;
  stop(): Promise<void>;
}

export async function startBenchFleet(upstreamArgs: string[] = [], routerArgs: string[] = []): Promise<BenchFleet> {
  const router = await startRouter(["--catalog", benchCatalog(), "--log-level", "warn", ...routerArgs]);
  const template = `${process.execPath} ${UPSTREAM_SCRIPT} --port {port} --model {model} --model-id ${BENCH_MODEL} ${upstreamArgs.join(" ")}`;
  const node = await startNode(router.url, "bench-node", ["--engine", "command", "--engine-command", template, "--slots", "4096", "--log-level", "warn"]);
  await waitForReady(router.url, [BENCH_MODEL], 1);
  return {
    router,
    node,
    headers: AUTH_HEADERS,
    async stop() {
      await node.stop();
      await router.stop();
    },
  };
}
