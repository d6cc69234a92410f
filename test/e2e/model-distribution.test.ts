// Model distribution with real router and node processes: nodes with empty model directories
// fill up from the router, which fetched each file from "the internet" (a local upstream server)
// once; memory limits make models unsupported with a reason; downloads resume after a kill;
// altered bytes are caught by sha256 on the node and in the router's cache; a full disk is a
// clear `failed` state; and the ollama and command engine kinds serve through the fleet.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DEMO_CATALOG } from "../../src/catalog/builtin.js";
import { writeTinyModel, type TinyModelSpec } from "../../src/gguf/tiny-model.js";
import { modelFilePaths } from "../../src/node/model-file-store.js";
import type { ModelStatus } from "../../src/protocol/node-api.js";
import { UpstreamServer } from "../fixtures/upstream-server.js";
import {
  AUTH_HEADERS,
  getJson,
  REPO_ROOT,
  routerCredentialFor,
  startNode,
  startRouter,
  tempDir,
  TEST_API_KEY,
  TEST_NODE_TOKEN,
  waitFor,
  waitForReady,
  type DroverProcess,
} from "../support/fleet.js";

const running: DroverProcess[] = [];
const track = <T extends DroverProcess>(p: T) => {
  running.push(p);
  return p;
};
afterAll(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop("SIGKILL")));
});

const CHAT_SPEC = DEMO_CATALOG.models[0]!.source.generate!;
const EMBED_SPEC = DEMO_CATALOG.models[1]!.source.generate!;

function writeCatalog(lines: string[]): string {
  const path = join(tempDir("catalog"), "catalog.yaml");
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

const specYaml = (s: TinyModelSpec) =>
  `{ name: ${s.name}, seed: ${s.seed}, embeddingLength: ${s.embeddingLength}, blockCount: ${s.blockCount}, headCount: ${s.headCount}, headCountKv: ${s.headCountKv}, feedForwardLength: ${s.feedForwardLength}, contextLength: ${s.contextLength} }`;

async function nodeModels(node: DroverProcess): Promise<Map<string, ModelStatus>> {
  const list = await getJson<{ data: { id: string; drover: ModelStatus }[] }>(`${node.url}/v1/models`);
  return new Map(list.data.map((m) => [m.id, m.drover]));
}

interface CacheRow {
  id: string;
  state: string;
  sha256?: string;
  sha256Origin?: string;
  upstream: { fetches: number; requests: number; bytes: number; failures: number };
  served: { requests: number; bytes: number };
}
async function cacheRow(routerUrl: string, id: string): Promise<CacheRow> {
  const { models } = await getJson<{ models: CacheRow[] }>(`${routerUrl}/api/cache`);
  return models.find((m) => m.id === id)!;
}

/** Flips one byte in the middle of a file (its mtime changes, as with any write). */
async function flipByte(path: string): Promise<void> {
  const fd = await open(path, "r+");
  const { size } = await fd.stat();
  const one = Buffer.alloc(1);
  await fd.read(one, 0, 1, Math.floor(size / 2));
  one[0] ^= 0xff;
  await fd.write(one, 0, 1, Math.floor(size / 2));
  await fd.close();
}

/** JSON log lines of a drover process (it logs JSON when stderr is not a terminal). */
function logLines(p: DroverProcess): Record<string, unknown>[] {
  return p
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

/** Whether this machine lets the test mount a small tmpfs (root on Linux, mount allowed), and why not. */
function probeTmpfs(): { ok: boolean; reason: string } {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return { ok: false, reason: "mounting a tmpfs needs root on Linux" };
  const dir = tempDir("tmpfs-probe");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir], { stdio: "pipe" });
    execFileSync("umount", [dir], { stdio: "pipe" });
    return { ok: true, reason: "" };
  } catch (err) {
    return { ok: false, reason: `cannot mount a tmpfs here: ${(err as Error).message.split("\n")[0]}` };
  }
}
const tmpfs = probeTmpfs();

describe("a fleet filling up from one upstream fetch", () => {
  const upstream = new UpstreamServer();
  let chatBytes: Buffer;
  let router: DroverProcess;
  let routerDir: string;
  const dirs: Record<string, string> = {};
  const nodes: Record<string, DroverProcess> = {};

  beforeAll(async () => {
    const src = join(tempDir("upstream"), "demo-chat.gguf");
    await writeTinyModel(CHAT_SPEC, src);
    chatBytes = await readFile(src);
    await upstream.start();
    upstream.set("demo-chat.gguf", chatBytes);
    // Slow enough that both nodes ask while the router is still fetching.
    upstream.bytesPerSecond = 1_000_000;
    const catalog = writeCatalog([
      "name: distribution",
      "models:",
      "  - id: demo-chat",
      `    sizeBytes: ${chatBytes.length}`,
      "    memoryBytes: 64000000",
      "    capabilities: [chat, completion, embedding]",
      "    source:",
      `      gguf: { url: ${upstream.fileUrl("demo-chat.gguf", true)} }`,
      "  - id: demo-embed",
      "    sizeBytes: 500000",
      "    memoryBytes: 48000000",
      "    capabilities: [embedding]",
      "    contextLength: 2048",
      "    source:",
      `      generate: ${specYaml(EMBED_SPEC)}`,
    ]);
    routerDir = tempDir("router");
    // Least-load: the test sends a few one-off prompts and checks that both nodes serve them
    // (prefix routing would place them by their hashes, see prefix-routing.test.ts).
    router = track(await startRouter(["--catalog", catalog, "--data-dir", routerDir, "--heartbeat-ms", "1000", "--routing", "least-load"]));
    for (const name of ["a", "b", "small"]) dirs[name] = tempDir(`node-${name}`);
    const started = await Promise.all([
      startNode(router.url, "a", [], {}, dirs.a),
      startNode(router.url, "b", [], {}, dirs.b),
      // Below demo-chat's 64 MB: that model is unsupported here, demo-embed (48 MB) fits.
      startNode(router.url, "small", ["--memory-limit", "50MB"], {}, dirs.small),
    ]);
    [nodes.a, nodes.b, nodes.small] = started.map(track) as [DroverProcess, DroverProcess, DroverProcess];
    await waitForReady(router.url, ["demo-chat"], 2);
    await waitForReady(router.url, ["demo-embed"], 3);
  }, 180_000);

  afterAll(async () => {
    await upstream.close();
  });

  test("both nodes downloaded the model the router fetched from upstream exactly once, and serve it", async () => {
    expect(upstream.fileRequests("demo-chat.gguf")).toEqual([
      { path: "/demo-chat.gguf", range: undefined, ifRange: undefined, status: 200, at: expect.any(Number) },
    ]);
    const row = await cacheRow(router.url, "demo-chat");
    expect(row).toMatchObject({ state: "cached", sha256Origin: "pinned", upstream: { fetches: 1, requests: 1, bytes: chatBytes.length, failures: 0 } });
    expect(row.served.requests).toBeGreaterThanOrEqual(2);
    expect(row.served.bytes).toBeGreaterThanOrEqual(2 * chatBytes.length);
    // The generated model never touched the upstream.
    expect((await cacheRow(router.url, "demo-embed")).upstream.fetches).toBe(0);

    for (const name of ["a", "b"]) {
      const paths = modelFilePaths(join(dirs[name]!, "models"), "demo-chat");
      expect((await readFile(paths.final)).equals(chatBytes)).toBe(true);
      expect((await readFile(paths.sidecar, "utf8")).startsWith(row.sha256!)).toBe(true);
      expect(existsSync(paths.part)).toBe(false);
    }

    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    const servedBy = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const { data, response } = await client.chat.completions
        .create({ model: "demo-chat", messages: [{ role: "user", content: `hi ${i}` }], max_tokens: 4 })
        .withResponse();
      expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0);
      servedBy.add(response.headers.get("x-drover-node")!);
    }
    expect([...servedBy].sort()).toEqual(["a", "b"]);
  });

  test("a node whose memory limit is below a model's need reports it unsupported and serves the others", async () => {
    const models = await nodeModels(nodes.small!);
    expect(models.get("demo-chat")).toMatchObject({
      state: "unsupported",
      reason: expect.stringMatching(/^insufficient memory: needs 64\.0 MB, have 50\.0 MB/),
    });
    expect(models.get("demo-embed")).toMatchObject({ state: "ready" });
    // Nothing was downloaded for the unsupported model.
    expect(existsSync(modelFilePaths(join(dirs.small!, "models"), "demo-chat").final)).toBe(false);
    const { nodes: listed } = await getJson(`${router.url}/api/nodes`);
    const small = listed.find((n: { name: string }) => n.name === "small");
    expect(small.models.find((m: ModelStatus) => m.id === "demo-chat")).toMatchObject({
      state: "unsupported",
      reason: expect.stringContaining("insufficient memory"),
    });

    // Straight to the node, as a router of the fleet would.
    const direct = new OpenAI({ baseURL: `${nodes.small!.url}/v1`, apiKey: await routerCredentialFor(nodes.small!.url), maxRetries: 0 });
    const emb = await direct.embeddings.create({ model: "demo-embed", input: "hello", encoding_format: "float" });
    expect(emb.data[0]!.embedding).toHaveLength(EMBED_SPEC.embeddingLength);
    const refused = await fetch(`${nodes.small!.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await routerCredentialFor(nodes.small!.url)}` },
      body: JSON.stringify({ model: "demo-chat", messages: [{ role: "user", content: "x" }] }),
    });
    expect(refused.status).toBe(503);
    expect((await refused.json()).error).toMatchObject({ code: "model_not_ready", message: expect.stringContaining("unsupported: insufficient memory") });
  });

  test("a node never downloads or starts a model because a client asked for it", async () => {
    const before = (await cacheRow(router.url, "demo-chat")).served.requests;
    const res = await fetch(`${nodes.a!.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await routerCredentialFor(nodes.a!.url)}` },
      body: JSON.stringify({ model: "gpt-oss:20b", messages: [{ role: "user", content: "x" }] }),
    });
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe("model_not_found");
    expect(
      readdirSync(join(dirs.a!, "models"))
        .filter((f) => f.endsWith(".gguf"))
        .sort(),
    ).toEqual(["demo-chat.gguf", "demo-embed.gguf"]);
    expect((await nodeModels(nodes.a!)).has("gpt-oss:20b")).toBe(false);
    expect((await cacheRow(router.url, "demo-chat")).served.requests).toBe(before);
    // Nor does the router hand out files for models outside its catalog.
    const file = await fetch(`${router.url}/api/models/${encodeURIComponent("gpt-oss:20b")}/file`, { headers: { authorization: `Bearer ${TEST_NODE_TOKEN}` } });
    expect(file.status).toBe(404);
    expect((await file.json()).error.code).toBe("model_not_found");
    expect(upstream.requests.filter((r) => !r.path.includes("demo-chat"))).toEqual([]);
  });

  test("altered bytes in the router's cache and on a node are rejected by sha256 and fetched again", async () => {
    upstream.bytesPerSecond = 0;
    const cacheFile = join(routerDir, "models", "demo-chat.gguf");
    await flipByte(cacheFile);
    // Node b restarts with an altered copy of its own.
    await nodes.b!.stop("SIGTERM");
    const bFile = modelFilePaths(join(dirs.b!, "models"), "demo-chat").final;
    await flipByte(bFile);
    nodes.b = track(await startNode(router.url, "b", [], {}, dirs.b));
    await waitFor("node b ready again", async () => (await nodeModels(nodes.b!)).get("demo-chat")?.state === "ready", 60_000);

    expect(logLines(nodes.b!).some((l) => String(l.msg).includes("existing model file does not match the catalog checksum"))).toBe(true);
    expect(logLines(router).some((l) => String(l.msg).includes("cache file failed verification (pinned sha256)"))).toBe(true);
    expect((await cacheRow(router.url, "demo-chat")).upstream.fetches).toBe(2);
    expect(upstream.fileRequests("demo-chat.gguf")).toHaveLength(2);
    expect((await readFile(cacheFile)).equals(chatBytes)).toBe(true);
    expect((await readFile(bFile)).equals(chatBytes)).toBe(true);
  });

  test.skipIf(!tmpfs.ok)(
    `a model larger than the free disk fails at once with the figures, while the node serves its other models${tmpfs.ok ? "" : ` (skipped: ${tmpfs.reason})`}`,
    async () => {
      const mnt = tempDir("full-disk");
      // 2 MiB: demo-chat (~1.2 MB) plus the margin does not fit; demo-embed (~0.5 MB) does.
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]);
      try {
        const node = track(await startNode(router.url, "full", ["--models-dir", mnt, "--max-downloads", "1"]));
        const failed = await waitFor(
          "demo-chat failed",
          async () => {
            const m = (await nodeModels(node)).get("demo-chat");
            return m?.state === "failed" ? m : undefined;
          },
          30_000,
        );
        expect(failed.reason).toMatch(/^not enough disk: needs 2\.\d MB, have 2\.\d MB free in /);
        // Failed before the first byte: no partial file was ever written, and the router served nothing to this node.
        expect(existsSync(join(mnt, "demo-chat.gguf.part"))).toBe(false);
        expect(logLines(node).some((l) => String(l.msg).startsWith("downloading demo-chat"))).toBe(false);
        expect((await getJson(`${node.url}/healthz`)).status).toBe("ok");
        // The smaller model fits, downloads and serves.
        await waitFor("demo-embed ready", async () => (await nodeModels(node)).get("demo-embed")?.state === "ready", 60_000);
        await node.stop("SIGKILL");
      } finally {
        execFileSync("umount", ["-l", mnt]);
      }
    },
  );
});

describe("resume", () => {
  test("a download interrupted half-way (node killed) continues from where it stopped", async () => {
    // A bigger generated model (~4 MB) and a node download limit of 1 MB/s: ~4 s to download.
    const spec: TinyModelSpec = {
      name: "big",
      seed: 11,
      embeddingLength: 128,
      blockCount: 4,
      headCount: 4,
      headCountKv: 4,
      feedForwardLength: 512,
      contextLength: 2048,
    };
    const catalog = writeCatalog([
      "models:",
      "  - id: big-chat",
      "    sizeBytes: 4000000",
      "    memoryBytes: 100000000",
      "    source:",
      `      generate: ${specYaml(spec)}`,
    ]);
    const router = track(await startRouter(["--catalog", catalog]));
    const dir = tempDir("node-resume");
    const first = track(await startNode(router.url, "resumer", ["--download-limit", "1MB"], {}, dir));
    const progress = await waitFor(
      "a quarter downloaded",
      async () => {
        const m = (await nodeModels(first)).get("big-chat");
        return m?.state === "downloading" && (m.progress ?? 0) >= 0.25 ? m.progress : undefined;
      },
      30_000,
      50,
    );
    await first.stop("SIGKILL");
    const paths = modelFilePaths(join(dir, "models"), "big-chat");
    const { size: partSize } = await (await open(paths.part, "r")).stat();
    expect(partSize).toBeGreaterThan(0);
    expect(progress).toBeLessThan(1);

    const second = track(await startNode(router.url, "resumer", [], {}, dir));
    await waitFor("big-chat ready", async () => (await nodeModels(second)).get("big-chat")?.state === "ready", 60_000);
    const requests = logLines(router).filter((l) => l.msg === "model file request" && l.model === "big-chat");
    expect(requests[0]).toMatchObject({ status: 200 });
    expect(requests[0]!.range).toBeUndefined();
    const resumed = requests.at(-1)!;
    expect(resumed).toMatchObject({ status: 206, range: expect.stringMatching(/^bytes=\d+-$/) });
    expect(Number(/\d+/.exec(resumed.range as string)![0])).toBeGreaterThanOrEqual(partSize);
    expect(logLines(second).some((l) => String(l.msg).startsWith("resuming download at"))).toBe(true);

    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    await waitForReady(router.url, ["big-chat"], 1);
    const res = await client.completions.create({ model: "big-chat", prompt: "x", max_tokens: 2 });
    expect(res.choices[0]!.text).toBeTypeOf("string");
  });
});

describe("engine kinds", () => {
  test("ollama: one `ollama serve` per model with pull progress; command: an OpenAI server from a template; both serve through the router", async () => {
    const catalog = writeCatalog([
      "models:",
      "  - id: tiny-chat",
      "    sizeBytes: 1200000",
      "    memoryBytes: 64000000",
      "    source:",
      `      generate: ${specYaml(CHAT_SPEC)}`,
      "      ollama: tiny-chat:1b",
      "  - id: team/coder",
      "    sizeBytes: 1000",
      "    memoryBytes: 1000000",
      "    source: { ollama: 'coder:7b' }",
    ]);
    // Least-load: the same one-off prompt must reach both engine kinds (prefix routing keeps it on one node).
    const router = track(await startRouter(["--catalog", catalog, "--heartbeat-ms", "500", "--routing", "least-load"]));
    const store = tempDir("ollama-store");
    mkdirSync(store, { recursive: true });
    const fakeOllamaDir = join(REPO_ROOT, "test/fixtures/ollama");
    const ollamaNode = track(
      await startNode(router.url, "ollama-node", ["--engine", "ollama"], {
        PATH: `${fakeOllamaDir}:${process.env.PATH}`,
        OLLAMA_MODELS: store,
        FAKE_OLLAMA_PULL_STEP_MS: "100",
      }),
    );
    // Pull progress shows as `downloading` with a fraction on the node.
    const pulling = await waitFor(
      "pull progress",
      async () => {
        const m = (await nodeModels(ollamaNode)).get("tiny-chat");
        return m?.state === "downloading" && (m.progress ?? 0) > 0 && (m.progress ?? 0) < 1 ? m : undefined;
      },
      30_000,
      20,
    );
    expect(pulling.bytesDone).toBeGreaterThan(0);
    const template = `"${process.execPath}" ${join(REPO_ROOT, "test/fixtures/openai-server.mjs")} --model {model} --port {port} --id {id}`;
    const commandNode = track(await startNode(router.url, "command-node", ["--engine", "command", "--engine-command", template]));
    await waitForReady(router.url, ["tiny-chat"], 2);
    await waitForReady(router.url, ["team/coder"], 1);

    const ollamaModels = await nodeModels(ollamaNode);
    expect(ollamaModels.get("team/coder")).toMatchObject({ state: "ready" });
    const commandModels = await nodeModels(commandNode);
    expect(commandModels.get("team/coder")).toMatchObject({ state: "unsupported", reason: expect.stringContaining("no GGUF source for the command engine") });
    // The ollama node downloaded nothing from the router; the command node got the GGUF file.
    const tinyRow = await cacheRow(router.url, "tiny-chat");
    expect(tinyRow.served.requests).toBe(1);

    // Requests through the router reach both kinds; each ollama model has its own process and port.
    const ask = async (model: string) => {
      const res = await fetch(`${router.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...AUTH_HEADERS },
        body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
      });
      expect(res.status).toBe(200);
      return {
        node: res.headers.get("x-drover-node"),
        body: (await res.json()) as { model: string; choices: { message: { content: string } }[]; fake: { pid: number; host?: string; port?: number } },
      };
    };
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await ask("tiny-chat"));
    expect(new Set(answers.map((a) => a.node))).toEqual(new Set(["ollama-node", "command-node"]));
    const fromOllama = answers.find((a) => a.node === "ollama-node")!.body;
    expect(fromOllama.choices[0]!.message.content).toBe("ollama says hi");
    const coder = (await ask("team/coder")).body;
    expect(coder.model).toBe("team/coder");
    expect(coder.fake.pid).not.toBe(fromOllama.fake.pid);
    expect(coder.fake.host).not.toBe(fromOllama.fake.host);
    const fromCommand = answers.find((a) => a.node === "command-node")!.body;
    expect(fromCommand.choices[0]!.message.content).toBe("from the command engine");

    // Through the official client too (a streamed answer from ollama's /v1).
    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: "team/coder", messages: [{ role: "user", content: "hello there" }], stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text.trim()).toBe("ollama says hello there");

    // A node that dies takes its ollama and command engines with it.
    const pids = [fromOllama.fake.pid, coder.fake.pid, fromCommand.fake.pid];
    await ollamaNode.stop("SIGKILL");
    await commandNode.stop("SIGKILL");
    await waitFor(
      "engines gone with their nodes",
      async () =>
        pids.every((pid) => {
          try {
            process.kill(pid, 0);
            return false;
          } catch {
            return true;
          }
        }),
      10_000,
    );
  });
});
