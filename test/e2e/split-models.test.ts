// Split GGUF models (llama.cpp's gguf-split, three files) through real router and node processes:
// the router fetches each part from "the internet" (a local upstream server) once, both nodes
// download every part beside each other and serve the model with real llama.cpp inference; a
// node killed mid-download resumes the part it was on; an altered byte in part 2 is caught by
// that part's sha256, in the router's cache and on a node, and only that part is fetched again.
import { existsSync, writeFileSync } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { splitPartPath } from "../../src/catalog/split.js";
import { writeTinyModelParts, type TinyModelSpec } from "../../src/gguf/tiny-model.js";
import { modelFilePaths } from "../../src/node/model-file-store.js";
import type { ModelStatus } from "../../src/protocol/node-api.js";
import { UpstreamServer } from "../fixtures/upstream-server.js";
import { getJson, startNode, startRouter, tempDir, TEST_API_KEY, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";

const running: DroverProcess[] = [];
const track = <T extends DroverProcess>(p: T) => {
  running.push(p);
  return p;
};
afterAll(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop("SIGKILL")));
});

const MODEL = "split-chat";
// ~4 MB in three parts: big enough that a node limited to 1 MB/s is caught inside part 2.
const SPEC: TinyModelSpec = {
  name: MODEL,
  seed: 21,
  embeddingLength: 128,
  blockCount: 4,
  headCount: 4,
  headCountKv: 4,
  feedForwardLength: 512,
  contextLength: 2048,
  parts: 3,
};
const partName = (i: number) => `${MODEL}-0000${i + 1}-of-00003.gguf`;

async function nodeModel(node: DroverProcess): Promise<ModelStatus | undefined> {
  const list = await getJson<{ data: { id: string; drover: ModelStatus }[] }>(`${node.url}/v1/models`);
  return list.data.find((m) => m.id === MODEL)?.drover;
}

interface PartRow {
  part: number;
  state: string;
  sizeBytes?: number;
  sha256?: string;
  upstream: { fetches: number; requests: number; bytes: number; failures: number };
}
async function cacheRow(routerUrl: string): Promise<{ state: string; upstream: PartRow["upstream"]; parts: PartRow[] }> {
  const { models } = await getJson<{ models: { id: string; state: string; upstream: PartRow["upstream"]; parts: PartRow[] }[] }>(`${routerUrl}/api/cache`);
  return models.find((m) => m.id === MODEL)!;
}

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

async function flipByte(path: string): Promise<void> {
  const fd = await open(path, "r+");
  const { size } = await fd.stat();
  const one = Buffer.alloc(1);
  await fd.read(one, 0, 1, Math.floor(size / 2));
  one[0] ^= 0xff;
  await fd.write(one, 0, 1, Math.floor(size / 2));
  await fd.close();
}

const nodePartPath = (dir: string, i: number) => splitPartPath(modelFilePaths(join(dir, "models"), MODEL).final, i, 3);

describe("a split model (3 parts) through router and nodes", () => {
  const upstream = new UpstreamServer();
  const parts: Buffer[] = [];
  let router: DroverProcess;
  let routerDir: string;
  const dirs: Record<string, string> = {};
  const nodes: Record<string, DroverProcess> = {};

  beforeAll(async () => {
    const written = await writeTinyModelParts(SPEC, join(tempDir("upstream"), `${MODEL}.gguf`));
    for (const w of written) parts.push(await readFile(w.path));
    await upstream.start();
    for (const [i, bytes] of parts.entries()) upstream.set(partName(i), bytes);
    // Slow enough that both nodes ask while the router is still fetching.
    upstream.bytesPerSecond = 4_000_000;
    const catalogPath = join(tempDir("catalog"), "catalog.yaml");
    const total = parts.reduce((sum, p) => sum + p.length, 0);
    writeFileSync(
      catalogPath,
      [
        "name: split",
        "models:",
        `  - id: ${MODEL}`,
        `    sizeBytes: ${total}`,
        "    memoryBytes: 100000000",
        "    capabilities: [chat, completion]",
        "    contextLength: 2048",
        "    source:",
        `      gguf: { url: ${upstream.fileUrl(partName(0))} }`,
        "",
      ].join("\n"),
    );
    routerDir = tempDir("router");
    router = track(await startRouter(["--catalog", catalogPath, "--data-dir", routerDir, "--heartbeat-ms", "1000"]));
    for (const name of ["a", "b"]) dirs[name] = tempDir(`node-${name}`);
    [nodes.a, nodes.b] = (await Promise.all([startNode(router.url, "a", [], {}, dirs.a), startNode(router.url, "b", [], {}, dirs.b)])).map(track) as [
      DroverProcess,
      DroverProcess,
    ];
    await waitForReady(router.url, [MODEL], 2);
  }, 180_000);

  afterAll(async () => {
    await upstream.close();
  });

  test("both nodes are ready with every part fetched once from upstream, and chat works through the router", async () => {
    for (let i = 0; i < 3; i++)
      expect(upstream.fileRequests(partName(i))).toMatchObject([{ path: `/${partName(i)}`, range: undefined, ifRange: undefined, status: 200 }]);
    const row = await cacheRow(router.url);
    expect(row.state).toBe("cached");
    expect(row.upstream).toMatchObject({ fetches: 3, requests: 3, failures: 0 });
    expect(row.parts.map((p) => [p.part, p.state, p.sizeBytes, p.upstream.fetches])).toEqual(parts.map((p, i) => [i + 1, "cached", p.length, 1]));

    // The catalog nodes get names every part's checksum.
    const catalog = await getJson<{ models: { id: string; parts?: { sha256?: string }[] }[] }>(`${router.url}/api/catalog`, {
      headers: { authorization: "Bearer test-node-token" },
    });
    expect(catalog.models.find((m) => m.id === MODEL)!.parts!.map((p) => p.sha256)).toEqual(row.parts.map((p) => p.sha256));

    for (const name of ["a", "b"]) {
      for (let i = 0; i < 3; i++) {
        expect((await readFile(nodePartPath(dirs[name]!, i))).equals(parts[i]!)).toBe(true);
        expect(existsSync(`${nodePartPath(dirs[name]!, i)}.part`)).toBe(false);
      }
    }

    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    const servedBy = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const { data, response } = await client.chat.completions
        .create({ model: MODEL, messages: [{ role: "user", content: `hi ${i}` }], max_tokens: 4 })
        .withResponse();
      expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0);
      servedBy.add(response.headers.get("x-drover-node")!);
    }
    expect([...servedBy].sort()).toEqual(["a", "b"]);
  });

  test("a node killed inside part 2 keeps part 1 and resumes part 2 where it stopped", async () => {
    const dir = tempDir("node-resume");
    const first = track(await startNode(router.url, "resumer", ["--download-limit", "1MB"], {}, dir));
    // Inside part 2: past part 1 and a fifth of part 2, not yet at its end.
    const into2 = parts[0]!.length + parts[1]!.length * 0.2;
    await waitFor(
      "the download inside part 2",
      async () => {
        const m = await nodeModel(first);
        return m?.state === "downloading" && (m.bytesDone ?? 0) >= into2 && (m.bytesDone ?? 0) < parts[0]!.length + parts[1]!.length * 0.8;
      },
      30_000,
      50,
    );
    await first.stop("SIGKILL");
    expect((await readFile(nodePartPath(dir, 0))).equals(parts[0]!)).toBe(true);
    const partial = (await stat(`${nodePartPath(dir, 1)}.part`)).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(parts[1]!.length);
    expect(existsSync(nodePartPath(dir, 2))).toBe(false);

    const seen = logLines(router).length;
    const second = track(await startNode(router.url, "resumer", [], {}, dir));
    await waitFor("resumer ready", async () => (await nodeModel(second))?.state === "ready", 60_000);
    const requests = logLines(router)
      .slice(seen)
      .filter((l) => l.msg === "model file request" && l.model === MODEL);
    // Part 1 was not asked for again; part 2 was asked from where the partial file ended; part 3 from the start.
    expect(requests.filter((r) => r.part === undefined)).toEqual([]);
    const part2 = requests.filter((r) => r.part === 2);
    expect(part2[0]).toMatchObject({ status: 206, range: expect.stringMatching(/^bytes=\d+-$/) });
    expect(Number(/\d+/.exec(part2[0]!.range as string)![0])).toBe(partial);
    expect(requests.filter((r) => r.part === 3)[0]).toMatchObject({ status: 200 });
    expect(logLines(second).some((l) => String(l.msg).startsWith("resuming download at") && String(l.msg).endsWith("of part 2"))).toBe(true);
    for (let i = 0; i < 3; i++) expect((await readFile(nodePartPath(dir, i))).equals(parts[i]!)).toBe(true);
    await second.stop("SIGKILL");
  });

  test("an altered byte in part 2 is rejected in the router's cache and on a node; only part 2 is fetched again", async () => {
    upstream.bytesPerSecond = 0;
    const cachePart2 = join(routerDir, "models", partName(1));
    await flipByte(cachePart2);
    await nodes.b!.stop("SIGTERM");
    await flipByte(nodePartPath(dirs.b!, 1));
    nodes.b = track(await startNode(router.url, "b", [], {}, dirs.b));
    await waitFor("node b ready again", async () => (await nodeModel(nodes.b!))?.state === "ready", 60_000);

    expect(
      logLines(nodes.b!).some(
        (l) => String(l.msg).includes("existing model file does not match the catalog checksum") && String(l.path).endsWith("-00002-of-00003.gguf"),
      ),
    ).toBe(true);
    expect(logLines(router).some((l) => String(l.msg).includes("cache file failed verification (pinned sha256)") && l.part === 2)).toBe(true);
    expect(upstream.fileRequests(partName(0))).toHaveLength(1);
    expect(upstream.fileRequests(partName(1))).toHaveLength(2);
    expect(upstream.fileRequests(partName(2))).toHaveLength(1);
    expect((await cacheRow(router.url)).parts.map((p) => p.upstream.fetches)).toEqual([1, 2, 1]);
    expect((await readFile(cachePart2)).equals(parts[1]!)).toBe(true);
    for (let i = 0; i < 3; i++) expect((await readFile(nodePartPath(dirs.b!, i))).equals(parts[i]!)).toBe(true);
    await waitForReady(router.url, [MODEL], 2);
    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    expect((await client.completions.create({ model: MODEL, prompt: "x", max_tokens: 2 })).choices[0]!.text).toBeTypeOf("string");
  });
});
