// Every flag of every command, with its environment variable and default. `--help` is printed
// from this table, so a flag cannot exist undocumented.
import { cpus, homedir, hostname } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

export interface OptionSpec {
  flag: string;
  env?: string;
  type: "string" | "number" | "boolean";
  default?: string | number | boolean | (() => string | number);
  defaultLabel?: string;
  description: string;
}

export const defaultThreads = (): number => Math.max(1, cpus().length - 1);
const defaultDataDir = () => process.env.DROVER_DATA_DIR ?? join(homedir(), ".drover");

function logFileOptions(component: "router" | "node"): OptionSpec[] {
  return [
    {
      flag: "log-file-size",
      env: "DROVER_LOG_FILE_SIZE",
      type: "string",
      default: "10MiB",
      description: `size at which the log file (logs/${component}.log in the data dir) is rotated`,
    },
    { flag: "log-files", env: "DROVER_LOG_FILES", type: "number", default: 5, description: `rotated log files kept (${component}.log.1 … .N, at least 1)` },
  ];
}

const ROUTER_OPTIONS: OptionSpec[] = [
  { flag: "host", env: "DROVER_HOST", type: "string", default: "0.0.0.0", description: "address the router listens on" },
  { flag: "port", env: "DROVER_PORT", type: "number", default: 8080, description: "router port (0 = pick a free port)" },
  { flag: "catalog", env: "DROVER_CATALOG", type: "string", default: "default", description: "supported models: default, demo, or a JSON/YAML catalog file" },
  {
    flag: "data-dir",
    env: "DROVER_DATA_DIR",
    type: "string",
    default: defaultDataDir,
    defaultLabel: "~/.drover",
    description: "where the router keeps its model cache and state",
  },
  {
    flag: "database-url",
    env: "DROVER_DATABASE_URL",
    type: "string",
    description: "postgres://… to share state between routers (default: SQLite in the data dir)",
  },
  {
    flag: "advertise-url",
    env: "DROVER_ROUTER_ADVERTISE_URL",
    type: "string",
    description:
      "with --database-url: the URL nodes reach this router at directly (not the load balancer's); routers sharing the database list each other, and every node connects to every router (default: http://<listen address, or this host's first external IPv4>:<port>)",
  },
  {
    flag: "queue-limit",
    env: "DROVER_QUEUE_LIMIT",
    type: "number",
    default: 1024,
    description: "requests that may wait for capacity; the next one gets 503 queue_full",
  },
  {
    flag: "queue-limit-per-model",
    env: "DROVER_QUEUE_LIMIT_PER_MODEL",
    type: "number",
    default: 0,
    defaultLabel: "0 (= --queue-limit)",
    description:
      "requests that may wait for one model; the next one for it gets 503 queue_full (set it below --queue-limit so one model cannot fill the queue for all)",
  },
  {
    flag: "model-unavailable-after",
    env: "DROVER_MODEL_UNAVAILABLE_AFTER",
    type: "number",
    default: 60000,
    description:
      "milliseconds a model may have no node able to serve it (failed everywhere, or no node connected) before its requests get 503 model_unavailable at once; unsupported everywhere is refused at once",
  },
  {
    flag: "queue-timeout",
    env: "DROVER_QUEUE_TIMEOUT",
    type: "number",
    default: 0,
    description: "milliseconds a request may wait in the queue (0 = no limit)",
  },
  { flag: "heartbeat-ms", env: "DROVER_HEARTBEAT_MS", type: "number", default: 5000, description: "node heartbeat interval; 3 missed mark a node offline" },
  {
    flag: "routing",
    env: "DROVER_ROUTING",
    type: "string",
    default: "prefix",
    description:
      "prefix: a conversation returns to the node that holds its prefix (rendezvous hashing of the system prompt and first message, or of an x-session-id / x-conversation-id header), bounded by load; least-load: the node with the fewest requests in flight per slot",
  },
  {
    flag: "routing-load-factor",
    env: "DROVER_ROUTING_LOAD_FACTOR",
    type: "number",
    default: 2,
    description:
      "prefix routing: a node above this multiple of the fleet's mean load passes the request to the next node in the conversation's order (at least 1)",
  },
  {
    flag: "upstream-timeout",
    env: "DROVER_UPSTREAM_TIMEOUT",
    type: "number",
    default: 600000,
    description: "milliseconds to wait for a node's response headers before retrying elsewhere (a hung node)",
  },
  {
    flag: "header-timeout",
    env: "DROVER_HEADER_TIMEOUT",
    type: "number",
    default: 30000,
    description: "milliseconds a client may take to send its request headers (slow-loris guard)",
  },
  {
    flag: "request-timeout",
    env: "DROVER_REQUEST_TIMEOUT",
    type: "number",
    default: 60000,
    description: "milliseconds a client may take to send its whole request (headers and body)",
  },
  { flag: "node-token", env: "DROVER_NODE_TOKEN", type: "string", description: "shared secret nodes must present (generated and printed when unset)" },
  {
    flag: "trust-proxy",
    env: "DROVER_TRUST_PROXY",
    type: "string",
    default: "false",
    description:
      "believe X-Forwarded-For from these proxies for client IPs (history, login limits): false, true, a hop count, or comma-separated addresses/CIDRs such as 10.0.0.0/8,127.0.0.1",
  },
  {
    flag: "node-prune-after",
    env: "DROVER_NODE_PRUNE_AFTER",
    type: "number",
    default: 604800000,
    defaultLabel: "604800000 (7 days)",
    description:
      "milliseconds after which a silent node is forgotten, in memory and database (0 = never; a registration that never passed the gate: at most 10 minutes)",
  },
  {
    flag: "admin-password",
    env: "DROVER_ADMIN_PASSWORD",
    type: "string",
    description: 'password of the first admin user "admin", created when no user exists (generated and printed when unset)',
  },
  {
    flag: "api-key",
    env: "DROVER_API_KEY",
    type: "string",
    description: "an inference API key with exactly this value, added if missing (else one is generated and printed on first start)",
  },
  {
    flag: "history-retention-days",
    env: "DROVER_HISTORY_RETENTION_DAYS",
    type: "number",
    default: 7,
    description: "days of request history kept (0 = record none)",
  },
  {
    flag: "history-body-bytes",
    env: "DROVER_HISTORY_BODY_BYTES",
    type: "number",
    default: 0,
    description: "bytes of each request and response body kept in the history (0 = none)",
  },
  { flag: "log-level", env: "DROVER_LOG_LEVEL", type: "string", default: "info", description: "trace, debug, info, warn or error" },
  ...logFileOptions("router"),
];

/** Where the admin commands find the router's state. */
const STATE_OPTIONS: OptionSpec[] = [
  {
    flag: "data-dir",
    env: "DROVER_DATA_DIR",
    type: "string",
    default: defaultDataDir,
    defaultLabel: "~/.drover",
    description: "the router's data dir (its drover.db, or <dir>/router/drover.db of drover up)",
  },
  { flag: "database-url", env: "DROVER_DATABASE_URL", type: "string", description: "postgres://… when the routers share PostgreSQL" },
];

const KEYS_OPTIONS: OptionSpec[] = [
  ...STATE_OPTIONS,
  { flag: "models", type: "string", description: "create: comma-separated model ids the key may use, as in the catalog (default: every model)" },
  { flag: "expires-in-days", type: "number", description: "create: the key stops working after this many days (default: never)" },
  { flag: "json", type: "boolean", description: "print JSON instead of a table" },
];

const USERS_OPTIONS: OptionSpec[] = [
  ...STATE_OPTIONS,
  { flag: "role", type: "string", default: "viewer", description: "create: admin or viewer" },
  {
    flag: "password",
    env: "DROVER_USER_PASSWORD",
    type: "string",
    description: "create/passwd: the password (default: generated and printed; see also --password-stdin)",
  },
  { flag: "password-stdin", type: "boolean", description: "create/passwd: read the password from standard input" },
  { flag: "json", type: "boolean", description: "print JSON instead of a table" },
];

/** Shared by node, up and engine: one engine setting, read the same wherever it is given. */
const REASONING_FIELD_OPTION: OptionSpec = {
  flag: "reasoning-field",
  env: "DROVER_REASONING_FIELD",
  type: "string",
  default: "reasoning_content",
  description:
    "where llama engines put a model's reasoning in chat answers: reasoning_content (llama.cpp, vLLM, DeepSeek), reasoning (OpenRouter, Ollama, OpenAI's gpt-oss guide) or both",
};

const NODE_OPTIONS: OptionSpec[] = [
  { flag: "router", env: "DROVER_ROUTER_URL", type: "string", description: "URL of the router, e.g. http://10.0.0.1:8080 (required)" },
  { flag: "host", env: "DROVER_NODE_HOST", type: "string", default: "0.0.0.0", description: "address the node listens on" },
  { flag: "port", env: "DROVER_NODE_PORT", type: "number", default: 8081, description: "node port (0 = pick a free port)" },
  {
    flag: "advertise-url",
    env: "DROVER_ADVERTISE_URL",
    type: "string",
    description: "URL the router uses to reach this node (default: http://<hostname>:<port>)",
  },
  {
    flag: "name",
    env: "DROVER_NODE_NAME",
    type: "string",
    default: () => hostname(),
    defaultLabel: "the host name",
    description: "name shown in the dashboard",
  },
  { flag: "engine", env: "DROVER_ENGINE", type: "string", default: "llama", description: "engine kind: llama (built in), ollama or command" },
  {
    flag: "engine-command",
    env: "DROVER_ENGINE_COMMAND",
    type: "string",
    description:
      'command engine template with {port} and usually {model} (the GGUF file; also {id}, {threads}, {slots}, {context}), e.g. "llama-server -m {model} --port {port}"',
  },
  { flag: "models-dir", env: "DROVER_MODELS_DIR", type: "string", description: "where downloaded models are kept (default: <data-dir>/models)" },
  {
    flag: "data-dir",
    env: "DROVER_DATA_DIR",
    type: "string",
    default: () => join(defaultDataDir(), "node"),
    defaultLabel: "~/.drover/node",
    description: "where the node keeps its identity and logs",
  },
  { flag: "threads", env: "DROVER_THREADS", type: "number", default: defaultThreads, defaultLabel: "cores - 1", description: "CPU threads per llama engine" },
  { flag: "slots", env: "DROVER_SLOTS", type: "number", default: 4, description: "concurrent requests per model on this node" },
  {
    flag: "memory-limit",
    env: "DROVER_MEMORY_LIMIT",
    type: "string",
    description: "memory models may use, e.g. 24GB (default: GPU memory, else RAM minus a reserve)",
  },
  REASONING_FIELD_OPTION,
  { flag: "max-downloads", env: "DROVER_MAX_DOWNLOADS", type: "number", default: 2, description: "model files downloaded from the router at once" },
  {
    flag: "download-limit",
    env: "DROVER_DOWNLOAD_LIMIT",
    type: "string",
    description: "bytes per second for all model downloads of this node, e.g. 100MB (default: unlimited)",
  },
  {
    flag: "node-token",
    env: "DROVER_NODE_TOKEN",
    type: "string",
    description: "the router's node token (required): the node presents it to the router, and accepts only routers that prove they hold it",
  },
  {
    flag: "public-metrics",
    env: "DROVER_PUBLIC_METRICS",
    type: "boolean",
    description: "serve GET /metrics to anyone (a Prometheus scraper); by default only the routers of the fleet may read it",
  },
  { flag: "log-level", env: "DROVER_LOG_LEVEL", type: "string", default: "info", description: "trace, debug, info, warn or error" },
  ...logFileOptions("node"),
];

const UP_OPTIONS: OptionSpec[] = [
  ...ROUTER_OPTIONS,
  {
    flag: "threads",
    env: "DROVER_THREADS",
    type: "number",
    default: defaultThreads,
    defaultLabel: "cores - 1",
    description: "CPU threads per llama engine of the local node",
  },
  { flag: "slots", env: "DROVER_SLOTS", type: "number", default: 4, description: "concurrent requests per model on the local node" },
  { flag: "memory-limit", env: "DROVER_MEMORY_LIMIT", type: "string", description: "memory the local node's models may use, e.g. 8GB" },
  REASONING_FIELD_OPTION,
];

const ENGINE_OPTIONS: OptionSpec[] = [
  { flag: "model-path", type: "string", description: "GGUF file to serve (required)" },
  { flag: "model-id", type: "string", description: "model id clients ask for (required)" },
  { flag: "host", type: "string", default: "127.0.0.1", description: "address to listen on" },
  { flag: "port", type: "number", default: 0, description: "port (0 = pick a free port)" },
  { flag: "threads", env: "DROVER_THREADS", type: "number", default: defaultThreads, defaultLabel: "cores - 1", description: "CPU threads" },
  { flag: "slots", type: "number", default: 4, description: "requests generated concurrently" },
  { flag: "context-size", type: "number", default: 4096, description: "context tokens per slot" },
  REASONING_FIELD_OPTION,
  { flag: "exit-with-stdin", type: "boolean", description: "exit when standard input closes (the node passes it, so engines die with their node)" },
];

export const COMMANDS = {
  up: { summary: "router plus one local node in one process (the quick start)", options: UP_OPTIONS },
  router: { summary: "the router: catalog, queue, routing, API, dashboard", options: ROUTER_OPTIONS },
  node: { summary: "a node on a GPU machine: downloads models, runs one engine per model", options: NODE_OPTIONS },
  engine: { summary: "one inference engine process (started by the node; not for direct use)", options: ENGINE_OPTIONS },
  keys: {
    summary: "inference API keys: create (shown once), list, revoke",
    options: KEYS_OPTIONS,
    usage: ["drover keys create NAME [--models a,b] [--expires-in-days N]", "drover keys list", "drover keys revoke ID|NAME"],
  },
  users: {
    summary: "dashboard/admin users: create, list, delete, passwd",
    options: USERS_OPTIONS,
    usage: [
      "drover users create NAME [--role admin|viewer] [--password P | --password-stdin]",
      "drover users list",
      "drover users delete NAME",
      "drover users passwd NAME [--password P | --password-stdin]",
    ],
  },
} as const satisfies Record<string, { summary: string; options: OptionSpec[]; usage?: readonly string[] }>;
export type CommandName = keyof typeof COMMANDS;

export class UsageError extends Error {}

export type ParsedOptions = Record<string, string | number | boolean | undefined>;

/** Flag, else environment variable, else default; numbers are checked. */
export function parseOptions(command: CommandName, argv: string[]): ParsedOptions {
  const specs: OptionSpec[] = COMMANDS[command].options;
  const { values: parsedValues } = parseArgs({
    args: argv,
    options: Object.fromEntries([
      ...specs.map((s) => [s.flag, { type: s.type === "boolean" ? "boolean" : "string" }] as const),
      ["help", { type: "boolean", short: "h" }],
    ]),
    strict: true,
    allowPositionals: false,
  });
  const values = parsedValues as Record<string, string | boolean | undefined>;
  const out: ParsedOptions = { help: values.help as boolean | undefined };
  for (const s of specs) {
    let raw: unknown = values[s.flag];
    if (raw === undefined && s.env && process.env[s.env] !== undefined && process.env[s.env] !== "") raw = process.env[s.env];
    if (raw === undefined) raw = typeof s.default === "function" ? s.default() : s.default;
    if (raw === undefined) continue;
    if (s.type === "number") {
      const n = Number(raw);
      if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${s.flag}${s.env ? ` / ${s.env}` : ""} must be a non-negative number, got "${raw}"`);
      out[s.flag] = n;
    } else out[s.flag] = raw as string | boolean;
  }
  return out;
}

/** "24GB", "512MiB", "1.5G" or a byte count. */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*$/i.exec(text);
  if (!m) throw new UsageError(`cannot read "${text}" as a size; write e.g. 24GB or 512MiB`);
  const power = " KMGT".indexOf(m[2]!.toUpperCase() || " ");
  return Math.round(Number(m[1]) * (m[3] ? 1024 : 1000) ** power);
}

export function helpText(command?: CommandName): string {
  if (!command) {
    const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
    return [
      "drover — one OpenAI- and Ollama-compatible endpoint in front of a fleet of GPU machines",
      "",
      "Usage: drover <command> [flags]",
      "",
      "Commands:",
      ...lines,
      "",
      "Run `drover <command> --help` for its flags and environment variables.",
    ].join("\n");
  }
  const specs: OptionSpec[] = COMMANDS[command].options;
  const rows = specs.map((s) => {
    const def = s.defaultLabel ?? (typeof s.default === "function" ? undefined : s.default);
    const flag = `--${s.flag}${s.type === "boolean" ? "" : " <value>"}`;
    return `  ${flag.padEnd(26)} ${s.description}${def !== undefined ? ` (default: ${def})` : ""}${s.env ? `\n  ${"".padEnd(26)} env: ${s.env}` : ""}`;
  });
  const entry = COMMANDS[command] as { summary: string; usage?: readonly string[] };
  const usage = entry.usage ? ["Usage:", ...entry.usage.map((u) => `  ${u} [flags]`)] : [`Usage: drover ${command} [flags]`];
  return [`drover ${command} — ${COMMANDS[command].summary}`, "", ...usage, "", "Flags:", ...rows, `  ${"-h, --help".padEnd(26)} show this help`].join("\n");
}
