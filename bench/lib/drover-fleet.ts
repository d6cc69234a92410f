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

/** Extra environment for the router and node processes (e.g. NODE_OPTIONS for profiling). */
export interface BenchFleetEnv {
  router?: Record<string, string>;
  node?: Record<string, string>;
}

export async function startBenchFleet(upstreamArgs: string[] = [], routerArgs: string[] = [], env: BenchFleetEnv = {}): Promise<BenchFleet> {
  const router = await startRouter(["--catalog", benchCatalog(), "--log-level", "warn", ...routerArgs], env.router);
  // 4,096 slots so the router never queues (1,000 open streams in the memory bench); the node
  // would size a llama.cpp context for them from the GGUF header and refuse the model, but the
  // command engine holds no model, so the memory limit only has to let the placement through.
  const template = `${process.execPath} ${UPSTREAM_SCRIPT} --port {port} --model {model} --model-id ${BENCH_MODEL} ${upstreamArgs.join(" ")}`;
  const node = await startNode(
    router.url,
    "bench-node",
    ["--engine", "command", "--engine-command", template, "--slots", "4096", "--memory-limit", "200GB", "--log-level", "warn"],
    env.node,
  );
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
