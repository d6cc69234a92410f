// The drover command line: `up`, `router`, `node` and the internal `engine`.
import { join } from "node:path";
import { loadCatalog } from "../catalog/load.js";
import { closeLogFiles, logFileGeneration, logFilePath, type LogComponent } from "../logs/log-file.js";
import type { ModelStatus } from "../protocol/node-api.js";
import { ROUTING_POLICIES, type RoutingPolicy } from "../router/request-path/node-selector.js";
import { stderrBars } from "./download-bars.js";
import { createLogger, type LogFileTarget } from "./logger.js";
import { resolveNodeToken } from "./node-token.js";
import { COMMANDS, helpText, parseBytes, parseOptions, UsageError, type CommandName, type ParsedOptions } from "./options.js";

const str = (o: ParsedOptions, k: string) => (o[k] === undefined ? undefined : String(o[k]));
const num = (o: ParsedOptions, k: string) => Number(o[k]);
/** --trust-proxy: false/true, a hop count, or addresses and CIDRs. */
function parseTrustProxy(value: string): boolean | string | ((address: string, hop: number) => boolean) {
  const v = value.trim();
  if (v === "" || /^(false|no|0)$/i.test(v)) return false;
  if (/^(true|yes)$/i.test(v)) return true;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    return (_address, hop) => hop < hops;
  }
  return v;
}

/** A boolean flag, or its environment variable as 1/true/yes. */
const bool = (o: ParsedOptions, k: string) => o[k] === true || (typeof o[k] === "string" && /^(1|true|yes)$/i.test(o[k] as string));

function routingPolicy(value: string): RoutingPolicy {
  const policy = ROUTING_POLICIES.find((p) => p === value.trim().toLowerCase());
  if (!policy) throw new UsageError(`--routing / DROVER_ROUTING must be ${ROUTING_POLICIES.join(" or ")}, not "${value}"`);
  return policy;
}

function routingLoadFactor(value: number): number {
  if (!(value >= 1))
    throw new UsageError(`--routing-load-factor / DROVER_ROUTING_LOAD_FACTOR must be at least 1 (a node may always take its fair share), not ${value}`);
  return value;
}

/** <dataDir>/logs/<component>.log, rotated as --log-file-size / --log-files say. */
function logFile(o: ParsedOptions, dataDir: string, component: LogComponent): LogFileTarget & { generation: string[] } {
  const path = logFilePath(dataDir, component);
  const keep = Math.max(1, Math.floor(num(o, "log-files")));
  return { path, settings: { maxBytes: parseBytes(str(o, "log-file-size")!), keep }, generation: logFileGeneration(path, keep) };
}

/** Progress bars for the node's downloads where a person watches the terminal. */
/**
 * --reasoning-field for the llama engines this process starts: they inherit the environment, and
 * the engine reads DROVER_REASONING_FIELD (src/engine/llama/openai-format.ts).
 */
function applyReasoningField(o: ParsedOptions): void {
  const value = str(o, "reasoning-field");
  if (value === undefined) return;
  if (!["reasoning_content", "reasoning", "both"].includes(value))
    throw new UsageError(`--reasoning-field must be reasoning_content, reasoning or both, not "${value}"`);
  process.env.DROVER_REASONING_FIELD = value;
}

function showDownloadBars(models: () => ModelStatus[]): void {
  if (process.stderr.isTTY && !process.env.DROVER_LOG_JSON) stderrBars.start(models);
}

function onShutdown(close: () => Promise<void>): void {
  let closing = false;
  const stop = (signal: string) => {
    if (closing) process.exit(1);
    closing = true;
    close()
      .then(
        () => 0,
        (err) => {
          console.error(`drover: error while stopping on ${signal}: ${(err as Error).message}`);
          return 1;
        },
      )
      // Buffered log lines reach the files before the process goes.
      .then(async (code) => {
        await closeLogFiles();
        process.exit(code);
      });
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

async function runRouterCommand(o: ParsedOptions, withLocalNode: boolean): Promise<void> {
  if (withLocalNode) applyReasoningField(o);
  // Checked before anything is written to the data dir.
  const routing = routingPolicy(str(o, "routing")!);
  const loadFactor = routingLoadFactor(num(o, "routing-load-factor"));
  const dataDir = str(o, "data-dir")!;
  const routerDir = withLocalNode ? join(dataDir, "router") : dataDir;
  const routerLog = logFile(o, routerDir, "router");
  const logger = createLogger("router", str(o, "log-level")!, routerLog);
  const catalog = await loadCatalog(str(o, "catalog")!);
  const { token, generated } = await resolveNodeToken(str(o, "node-token"), routerDir);
  const { startRouter } = await import("../router/main.js");
  const router = await startRouter({
    host: str(o, "host")!,
    port: num(o, "port"),
    catalog,
    dataDir: routerDir,
    queueLimit: num(o, "queue-limit"),
    queueLimitPerModel: num(o, "queue-limit-per-model") || undefined,
    modelUnavailableAfterMs: num(o, "model-unavailable-after"),
    queueTimeoutMs: num(o, "queue-timeout"),
    heartbeatMs: num(o, "heartbeat-ms"),
    routing,
    routingLoadFactor: loadFactor,
    upstreamHeadersTimeoutMs: num(o, "upstream-timeout"),
    clientHeadersTimeoutMs: num(o, "header-timeout"),
    clientRequestTimeoutMs: num(o, "request-timeout"),
    nodeToken: token,
    logger,
    databaseUrl: str(o, "database-url"),
    adminPassword: str(o, "admin-password"),
    apiKey: str(o, "api-key"),
    historyRetentionDays: num(o, "history-retention-days"),
    historyBodyBytes: num(o, "history-body-bytes"),
    nodePruneMs: num(o, "node-prune-after"),
    trustProxy: parseTrustProxy(str(o, "trust-proxy")!),
  });
  const lines = [
    "",
    `  drover router   ${router.url}`,
    `  OpenAI API      ${router.url}/v1   (models: ${catalog.models.map((m) => m.id).join(", ")})`,
    `  Ollama API      ${router.url}/api/chat, /api/generate, /api/tags …`,
    `  dashboard       ${router.url}/dashboard`,
    `  catalog         ${catalog.name}`,
    `  data dir        ${routerDir}`,
    `  log file        ${routerLog.path}`,
  ];
  lines.push(`  database        ${router.database}`);
  if (generated) lines.push(`  node token      ${token}   (generated; saved in ${join(routerDir, "node-token")}, shown once)`);
  if (router.bootstrap.generatedAdminPassword)
    lines.push(`  admin login     admin / ${router.bootstrap.generatedAdminPassword}   (generated, shown once; change it with \`drover users passwd admin\`)`);
  if (router.bootstrap.generatedApiKey)
    lines.push(`  API key         ${router.bootstrap.generatedApiKey}   (generated, shown once; stored only as a hash; more with \`drover keys create NAME\`)`);
  let closeNode: (() => Promise<void>) | null = null;
  if (withLocalNode) {
    const { startNode } = await import("../node/main.js");
    const nodeDir = join(dataDir, "node");
    const nodeLog = logFile(o, nodeDir, "node");
    const node = await startNode({
      routerUrl: router.url,
      host: "127.0.0.1",
      port: 0,
      name: "local",
      dataDir: nodeDir,
      modelsDir: join(nodeDir, "models"),
      engine: "llama",
      threads: num(o, "threads"),
      slots: num(o, "slots"),
      memoryLimitBytes: o["memory-limit"] ? parseBytes(String(o["memory-limit"])) : undefined,
      heartbeatMs: num(o, "heartbeat-ms"),
      nodeToken: token,
      logger: createLogger("node", str(o, "log-level")!, nodeLog),
      logFiles: nodeLog.generation,
    });
    showDownloadBars(node.models);
    closeNode = async () => {
      stderrBars.stop();
      await node.close();
    };
    lines.push(`  local node      ${node.url}   (models download and load in the background; GET ${router.url}/api/nodes shows progress)`);
    lines.push(`  node log file   ${nodeLog.path}`);
  }
  console.log(lines.join("\n") + "\n");
  onShutdown(async () => {
    await closeNode?.();
    await router.close();
  });
}

async function runNodeCommand(o: ParsedOptions): Promise<void> {
  applyReasoningField(o);
  const routerUrl = str(o, "router");
  if (!routerUrl) throw new UsageError("drover node needs --router URL (or DROVER_ROUTER_URL), e.g. --router http://10.0.0.1:8080");
  if (!o["node-token"])
    throw new UsageError(
      "drover node needs --node-token (or DROVER_NODE_TOKEN): the router printed it on first start and keeps it in <router data dir>/node-token",
    );
  const engine = str(o, "engine")!;
  if (!["llama", "ollama", "command"].includes(engine)) throw new UsageError(`--engine must be llama, ollama or command, not "${engine}"`);
  if (engine === "command" && !o["engine-command"]) throw new UsageError("--engine command needs --engine-command TEMPLATE with {model} and {port}");
  if (engine === "command") {
    const { CommandEngineLauncher } = await import("../node/command-engine.js");
    try {
      new CommandEngineLauncher(str(o, "engine-command")!);
    } catch (err) {
      throw new UsageError(`--engine-command: ${(err as Error).message}`);
    }
  }
  const dataDir = str(o, "data-dir")!;
  const nodeLog = logFile(o, dataDir, "node");
  const { startNode } = await import("../node/main.js");
  const node = await startNode({
    routerUrl,
    host: str(o, "host")!,
    port: num(o, "port"),
    advertiseUrl: str(o, "advertise-url"),
    name: str(o, "name")!,
    dataDir,
    modelsDir: str(o, "models-dir") ?? join(dataDir, "models"),
    engine: engine as "llama" | "ollama" | "command",
    engineCommand: str(o, "engine-command"),
    threads: num(o, "threads"),
    slots: num(o, "slots"),
    memoryLimitBytes: o["memory-limit"] ? parseBytes(String(o["memory-limit"])) : undefined,
    parallelDownloads: Math.max(1, Math.floor(num(o, "max-downloads"))),
    downloadRateLimit: o["download-limit"] ? parseBytes(String(o["download-limit"])) : undefined,
    nodeToken: str(o, "node-token"),
    publicMetrics: bool(o, "public-metrics"),
    logger: createLogger("node", str(o, "log-level")!, nodeLog),
    logFiles: nodeLog.generation,
  });
  console.log(`\n  drover node     ${node.url}   (id ${node.nodeId})\n  router          ${routerUrl}\n  log file        ${nodeLog.path}\n`);
  showDownloadBars(node.models);
  onShutdown(async () => {
    stderrBars.stop();
    await node.close();
  });
}

async function runEngineCommand(o: ParsedOptions): Promise<void> {
  applyReasoningField(o);
  const modelPath = str(o, "model-path");
  const modelId = str(o, "model-id");
  if (!modelPath || !modelId) throw new UsageError("drover engine needs --model-path and --model-id");
  const { runLlamaEngine } = await import("../engine/llama/main.js");
  const engine = await runLlamaEngine({
    modelPath,
    modelId,
    host: str(o, "host")!,
    port: num(o, "port"),
    threads: Math.max(1, num(o, "threads")),
    slots: Math.max(1, num(o, "slots")),
    contextSize: num(o, "context-size"),
    handleSignals: false,
  });
  onShutdown(engine.close);
  if (o["exit-with-stdin"]) {
    process.stdin.on("end", () => process.kill(process.pid, "SIGTERM"));
    process.stdin.resume();
  }
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    console.log(helpText(rest[0] && rest[0] in COMMANDS ? (rest[0] as CommandName) : undefined));
    return;
  }
  if (!(command in COMMANDS)) {
    console.error(`drover: unknown command "${command}"\n\n${helpText()}`);
    process.exit(2);
  }
  const name = command as CommandName;
  if (name === "keys" || name === "users") {
    try {
      const { runAdminCommand } = await import("./admin-commands.js");
      await runAdminCommand(name, rest);
    } catch (err) {
      console.error(`drover ${name}: ${(err as Error).message}`);
      process.exit(err instanceof UsageError ? 2 : 1);
    }
    return;
  }
  let opts: ParsedOptions;
  try {
    opts = parseOptions(name, rest);
  } catch (err) {
    console.error(`drover ${name}: ${(err as Error).message}\n\nRun \`drover ${name} --help\` for the flags.`);
    process.exit(2);
  }
  if (opts.help) {
    console.log(helpText(name));
    return;
  }
  try {
    if (name === "up") await runRouterCommand(opts, true);
    else if (name === "router") await runRouterCommand(opts, false);
    else if (name === "node") await runNodeCommand(opts);
    else await runEngineCommand(opts);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`drover ${name}: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}
