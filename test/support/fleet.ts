// Starts real drover processes (router, nodes) from the built CLI for end-to-end tests, and
// stops them afterwards. Their output is kept for failure messages.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { routerCredential } from "../../src/protocol/node-auth.js";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, "../..");
export const DROVER_BIN = join(REPO_ROOT, "bin/drover.js");

export interface DroverProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `drover-${prefix}-`));
}

/** Spawns `drover <args>` and resolves once it prints the URL line matching `banner`. */
export function startDrover(args: string[], banner: RegExp, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<DroverProcess> {
  const child = spawn(process.execPath, [DROVER_BIN, ...args], {
    env: { ...process.env, DROVER_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let out = "";
  const output = () => out;
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 8_000);
    await exited;
    clearTimeout(timer);
    live.delete(child);
  };
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      void stop("SIGKILL");
      reject(new Error(`drover ${args[0]} did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = () => {
      const m = banner.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off("data", onData);
        resolvePromise({ child, url: m[1]!, output, stop });
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`drover ${args[0]} exited (${code ?? sig}) before starting:\n${out}`));
    });
  });
}

/** Bootstrap secrets every test router starts with (DROVER_API_KEY, DROVER_ADMIN_PASSWORD, DROVER_NODE_TOKEN). */
export const TEST_API_KEY = "drv-test-inference-key";
export const TEST_ADMIN = { username: "admin", password: "test-admin-password" };
export const TEST_NODE_TOKEN = "test-node-token";
export const AUTH_HEADERS = { authorization: `Bearer ${TEST_API_KEY}` };

export const ROUTER_BANNER = /drover router\s+(http:\/\/\S+)/;
export const NODE_BANNER = /drover node\s+(http:\/\/\S+)/;

export function startRouter(extra: string[] = [], env: Record<string, string> = {}): Promise<DroverProcess> {
  const dataDir = tempDir("router");
  return startDrover(
    ["router", "--host", "127.0.0.1", "--port", "0", "--catalog", "demo", "--data-dir", dataDir, "--node-token", TEST_NODE_TOKEN, ...extra],
    ROUTER_BANNER,
    {
      DROVER_API_KEY: TEST_API_KEY,
      DROVER_ADMIN_PASSWORD: TEST_ADMIN.password,
      ...env,
    },
  );
}

export function startNode(
  routerUrl: string,
  name: string,
  extra: string[] = [],
  env: Record<string, string> = {},
  dataDir = tempDir(`node-${name}`),
): Promise<DroverProcess> {
  return startDrover(
    [
      "node",
      "--router",
      routerUrl,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--name",
      name,
      "--data-dir",
      dataDir,
      "--threads",
      "1",
      "--slots",
      "2",
      "--node-token",
      TEST_NODE_TOKEN,
      ...extra,
    ],
    NODE_BANNER,
    env,
  ).then((node) => {
    nodeOrigins.add(new URL(node.url).origin);
    return node;
  });
}

/** Origins of the nodes started here: requests to them carry the router credential. */
const nodeOrigins = new Set<string>();

/**
 * What a router of the test fleet presents to the node at `url` (a node serves only its routers):
 * the HMAC of TEST_NODE_TOKEN and the node's id, read from its public /healthz.
 */
export async function routerCredentialFor(url: string): Promise<string> {
  const { nodeId } = (await (await fetch(`${new URL(url).origin}/healthz`)).json()) as { nodeId: string };
  return routerCredential(TEST_NODE_TOKEN, nodeId);
}

/** Ollama routes that need the inference key (the rest of /api/* needs a logged-in user). */
const OLLAMA_KEY_PATHS = new Set(["/api/tags", "/api/ps", "/api/show", "/api/chat", "/api/generate", "/api/embed", "/api/embeddings"]);
const adminTokens = new Map<string, Promise<string | null>>();

/** A session token for TEST_ADMIN on this router, logged in once per origin (null: not a router). */
export function adminToken(origin: string): Promise<string | null> {
  let token = adminTokens.get(origin);
  if (!token) {
    token = fetch(`${origin}/api/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(TEST_ADMIN) })
      .then(async (res) => (res.ok ? ((await res.json()) as { token: string }).token : null))
      .catch(() => null);
    adminTokens.set(origin, token);
  }
  return token;
}

/** Headers that authenticate a test request to `url`: the router credential for a node, the API key for inference routes, the admin's session for the rest of /api. */
export async function authHeadersFor(url: string): Promise<Record<string, string>> {
  const { origin, pathname } = new URL(url);
  if (nodeOrigins.has(origin)) return pathname === "/healthz" ? {} : { authorization: `Bearer ${await routerCredentialFor(url)}` };
  if (pathname.startsWith("/v1/") || OLLAMA_KEY_PATHS.has(pathname)) return AUTH_HEADERS;
  if (pathname.startsWith("/api/")) {
    const token = await adminToken(origin);
    return token ? { authorization: `Bearer ${token}` } : {};
  }
  return {};
}

/** GET (or `init`) as JSON, authenticated as the test harness's key or admin unless `init` sets authorization. */
export async function getJson<T = any>(url: string, init?: RequestInit): Promise<T> {
  const given = new Headers(init?.headers);
  const send = async () => {
    const headers = new Headers(given);
    if (!headers.has("authorization")) for (const [k, v] of Object.entries(await authHeadersFor(url))) headers.set(k, v);
    return fetch(url, { ...init, headers });
  };
  let res = await send();
  if (res.status === 401 && !given.has("authorization")) {
    // A router restarted with fresh state on the same address: log in again.
    adminTokens.delete(new URL(url).origin);
    res = await send();
  }
  if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${url} → ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 90_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
}

/** Resolves once `count` nodes report every listed model ready. */
export function waitForReady(routerUrl: string, models: string[], count: number, timeoutMs = 120_000) {
  return waitFor(
    `${count} ready node(s) for ${models.join(", ")}`,
    async () => {
      const { models: rows } = await getJson<{ models: { id: string; readyNodes: number }[] }>(`${routerUrl}/api/models`);
      return models.every((id) => (rows.find((r) => r.id === id)?.readyNodes ?? 0) >= count);
    },
    timeoutMs,
  );
}
