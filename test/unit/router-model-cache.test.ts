// The router's model cache against a local "upstream" (the internet in these tests): single
// flight, resume, retry, checksum pinning and re-verification of files that changed.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, open, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ModelCache, modelFileName, type FileLookup } from "../../src/router/model-cache/model-cache.js";
import type { Catalog, CatalogEntry } from "../../src/protocol/catalog.js";
import { captureLogger } from "../fixtures/capture-logger.js";
import { waitFor } from "../fixtures/fake-router.js";
import { UpstreamServer } from "../fixtures/upstream-server.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
// Deterministic, incompressible-looking bytes.
const bytesOf = (size: number, seed: number) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 0xff));

const FILE = bytesOf(200_000, 1);
let work: string;
let upstream: UpstreamServer;
let dir: string;
const caches: ModelCache[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "drover-cache-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});
beforeEach(async () => {
  upstream = await new UpstreamServer().start();
  upstream.set("m.gguf", FILE);
  dir = await mkdtemp(join(work, "cache-"));
});
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.close()));
  await upstream.close();
});

function entry(extra: Partial<CatalogEntry> & { sha256?: string; url?: string } = {}): CatalogEntry {
  const { sha256, url, ...rest } = extra;
  return {
    id: "org/m:1",
    description: "",
    sizeBytes: 1,
    memoryBytes: 1,
    tags: [],
    capabilities: ["chat"],
    contextLength: 2048,
    source: { gguf: { url: url ?? upstream.fileUrl("m.gguf"), ...(sha256 ? { sha256 } : {}) } },
    ...rest,
  };
}

async function cacheFor(models: CatalogEntry[], opts: ConstructorParameters<typeof ModelCache>[2] = {}) {
  const log = captureLogger();
  const catalog: Catalog = { name: "t", models };
  const cache = new ModelCache(dir, log.logger, { holdMs: 50, retryInitialMs: 10, retryMaxMs: 20, failureCooldownMs: 60_000, ...opts });
  caches.push(cache);
  await cache.prepare(catalog);
  return { cache, catalog, log };
}

async function ready(cache: ModelCache, id: string): Promise<Extract<FileLookup, { status: "ready" }>> {
  return waitFor(
    async () => {
      const r = await cache.lookup(id);
      if (r.status === "failed" || r.status === "unavailable") throw new Error(r.message);
      return r.status === "ready" ? r : undefined;
    },
    10_000,
    `${id} cached`,
  );
}

/** Resolves once the cache's partial file holds `bytes`. */
const partHolds = (bytes: number) =>
  waitFor(
    async () => ((await stat(join(dir, `${modelFileName("org/m:1")}.part`)).catch(() => null))?.size ?? 0) >= bytes,
    10_000,
    `${bytes} bytes in the partial file`,
  );

const stats = (cache: ModelCache, id = "org/m:1") => cache.snapshot().find((s) => s.id === id)!;

describe("router model cache", () => {
  it("fetches once from upstream however many nodes ask at once, and pins the checksum", async () => {
    upstream.bytesPerSecond = 400_000; // ~0.5 s, so the asks overlap the fetch
    const { cache, catalog } = await cacheFor([entry()]);
    expect(stats(cache)).toMatchObject({ state: "absent", source: "gguf", upstream: { fetches: 0 } });
    const first = await Promise.all(Array.from({ length: 8 }, () => cache.lookup("org/m:1")));
    expect(first.every((r) => r.status === "pending")).toBe(true);
    expect(first[0]).toMatchObject({ message: expect.stringContaining("fetching 'org/m:1' from upstream"), retryAfterS: 2 });
    const file = (await ready(cache, "org/m:1")).file;
    expect(upstream.fileRequests("m.gguf")).toHaveLength(1);
    expect(stats(cache)).toMatchObject({
      state: "cached",
      sha256: sha(FILE),
      sha256Origin: "pinned",
      sizeBytes: FILE.length,
      upstream: { fetches: 1, requests: 1, bytes: FILE.length, failures: 0 },
    });
    expect((await readFile(file.path)).equals(FILE)).toBe(true);
    expect(file.path).toBe(join(dir, modelFileName("org/m:1")));
    // Nodes see the checksum and real size in the catalog.
    expect(catalog.models[0]).toMatchObject({ sha256: sha(FILE), sizeBytes: FILE.length });
    const pins = JSON.parse(await readFile(join(dir, "pins.json"), "utf8"));
    expect(pins["org/m:1"]).toMatchObject({ url: upstream.fileUrl("m.gguf"), sha256: sha(FILE), size: FILE.length });
    expect(existsSync(`${file.path}.part`)).toBe(false);

    // A restarted router trusts the verified file and its pin without asking upstream.
    const again = await cacheFor([entry()]);
    expect((await again.cache.lookup("org/m:1")).status).toBe("ready");
    expect(again.catalog.models[0]!.sha256).toBe(sha(FILE));
    expect(upstream.requests).toHaveLength(1);
  });

  it("serves generated models at once and says so for models without a GGUF source", async () => {
    const generated: CatalogEntry = {
      ...entry({ id: "gen" }),
      source: {
        generate: { name: "gen", seed: 5, embeddingLength: 32, blockCount: 1, headCount: 2, headCountKv: 2, feedForwardLength: 64, contextLength: 2048 },
      },
    };
    const ollamaOnly: CatalogEntry = { ...entry({ id: "oll" }), source: { ollama: "oll:1b" } };
    const { cache } = await cacheFor([generated, ollamaOnly]);
    expect((await cache.lookup("gen")).status).toBe("ready");
    expect(stats(cache, "gen")).toMatchObject({ state: "cached", sha256Origin: "generated" });
    expect(await cache.lookup("oll")).toMatchObject({ status: "unavailable", message: expect.stringContaining("no GGUF source") });
    expect(await cache.lookup("nope")).toMatchObject({ status: "unavailable" });
    expect(upstream.requests).toHaveLength(0);
  });

  it("resumes a dropped transfer with Range and If-Range, and follows redirects", async () => {
    upstream.cutAfter = (n) => (n === 1 ? 80_000 : undefined);
    // The connection drops once the cache has the 80 kB on disk: there is something to resume from.
    upstream.beforeCut = () => partHolds(80_000);
    const { cache } = await cacheFor([entry({ url: upstream.fileUrl("m.gguf", true) })]);
    const file = (await ready(cache, "org/m:1")).file;
    expect((await readFile(file.path)).equals(FILE)).toBe(true);
    const reqs = upstream.fileRequests("m.gguf");
    expect(reqs.map((r) => [r.range, r.status])).toEqual([
      [undefined, 200],
      [expect.stringMatching(/^bytes=\d+-$/), 206],
    ]);
    expect(Number(/\d+/.exec(reqs[1]!.range!)![0])).toBeGreaterThan(0);
    expect(reqs[1]!.ifRange).toBe(`"v1-${FILE.length}"`);
    expect(stats(cache).upstream).toMatchObject({ fetches: 1, requests: 2, failures: 0 });
  });

  it("continues a partial file left by a router that was stopped mid-download", async () => {
    upstream.bytesPerSecond = 200_000;
    const first = await cacheFor([entry()]);
    await first.cache.lookup("org/m:1");
    const part = join(dir, `${modelFileName("org/m:1")}.part`);
    await waitFor(async () => ((await stat(part).catch(() => null))?.size ?? 0) > 50_000, 5000, "half the file");
    await first.cache.close();
    upstream.bytesPerSecond = 0;
    const second = await cacheFor([entry()]);
    await ready(second.cache, "org/m:1");
    const last = upstream.fileRequests("m.gguf").at(-1)!;
    expect(last).toMatchObject({ status: 206, range: expect.stringMatching(/^bytes=[1-9]\d*-$/) });
    expect(sha(await readFile(join(dir, modelFileName("org/m:1"))))).toBe(sha(FILE));
  });

  it("starts over when the upstream file changed since the partial download", async () => {
    upstream.cutAfter = (n) => (n === 1 ? 50_000 : undefined);
    const changed = bytesOf(150_000, 2);
    // The upstream file changes while the first transfer is under way (50 kB on disk), then that
    // transfer drops.
    upstream.beforeCut = async () => {
      await partHolds(50_000);
      upstream.set("m.gguf", changed, '"v2"');
    };
    const { cache } = await cacheFor([entry()]);
    await cache.lookup("org/m:1");
    const file = (await ready(cache, "org/m:1")).file;
    expect(upstream.fileRequests("m.gguf")[1]).toMatchObject({ ifRange: `"v1-${FILE.length}"`, status: 200 });
    expect((await readFile(file.path)).equals(changed)).toBe(true);
  });

  it("retries upstream errors with backoff, and reports a permanent failure until the cooldown ends", async () => {
    upstream.failRequest = (n) => (n <= 3 ? 503 : undefined);
    const a = await cacheFor([entry()], { retryInitialMs: 100, retryMaxMs: 1000 });
    await ready(a.cache, "org/m:1");
    const tries = upstream.fileRequests("m.gguf");
    expect(tries.map((r) => r.status)).toEqual([503, 503, 503, 200]);
    // Each wait at least the lower edge of its jittered delay (100, 200, 400 ms, less up to 30 %):
    // the delay grows.
    const gaps = tries.slice(1).map((r, i) => r.at - tries[i]!.at);
    for (const [i, min] of [70, 140, 280].entries()) expect(gaps[i], `wait before retry ${i + 1} (${gaps.join(", ")} ms)`).toBeGreaterThanOrEqual(min - 2);

    await rm(dir, { recursive: true, force: true });
    upstream.failRequest = () => 404;
    const b = await cacheFor([entry()], { failureCooldownMs: 300 });
    const failed = await waitFor(
      async () => {
        const r = await b.cache.lookup("org/m:1");
        return r.status === "failed" ? r : undefined;
      },
      5000,
      "failure",
    );
    expect(failed.message).toMatch(/could not get 'org\/m:1': upstream answered HTTP 404: upstream trouble/);
    const count = upstream.requests.length;
    expect(await b.cache.lookup("org/m:1")).toMatchObject({ status: "failed", message: expect.stringMatching(/next attempt in \d+s/) });
    expect(upstream.requests.length).toBe(count); // no new fetch during the cooldown
    upstream.failRequest = () => undefined;
    // Once the cooldown ends (not before), a lookup starts a new fetch.
    const failedAt = upstream.requests.at(-1)!.at;
    // (Lookups during the cooldown answer `failed` and fetch nothing; the first after it fetches.)
    await waitFor(
      async () => {
        await b.cache.lookup("org/m:1");
        return upstream.requests.length > count;
      },
      10_000,
      "a fetch after the cooldown",
    );
    expect(upstream.requests[count]!.at - failedAt).toBeGreaterThanOrEqual(300 - 2);
    await ready(b.cache, "org/m:1");
    expect(stats(b.cache).upstream).toMatchObject({ fetches: 2, failures: 1 });
  });

  it("rejects an upstream file that does not match the catalog sha256", async () => {
    const { cache } = await cacheFor([entry({ sha256: sha(Buffer.from("something else")) })], { maxFailures: 1 });
    const failed = await waitFor(
      async () => {
        const r = await cache.lookup("org/m:1");
        return r.status === "failed" ? r : undefined;
      },
      5000,
      "failure",
    );
    expect(failed.message).toMatch(/sha256 mismatch: the upstream file is [0-9a-f]{64}, the catalog checksum is/);
    expect(existsSync(join(dir, modelFileName("org/m:1")))).toBe(false);
    expect(existsSync(join(dir, `${modelFileName("org/m:1")}.part`))).toBe(false);
  });

  it("verifies a cache file again when it was modified, and fetches it again when its bytes are wrong", async () => {
    const { cache, log } = await cacheFor([entry()]);
    const { file } = await ready(cache, "org/m:1");
    const fd = await open(file.path, "r+");
    await fd.write(Buffer.from([0xff ^ FILE[1000]!]), 0, 1, 1000);
    await fd.close();
    const again = await ready(cache, "org/m:1");
    expect((await readFile(again.file.path)).equals(FILE)).toBe(true);
    expect(stats(cache).upstream.fetches).toBe(2);
    expect(log.find("failed verification (pinned sha256)")).toHaveLength(1);

    // Only touched, same bytes: verified again, not fetched.
    const later = new Date(Date.now() + 5000);
    await utimes(file.path, later, later);
    await ready(cache, "org/m:1");
    expect(stats(cache).upstream.fetches).toBe(2);
  });

  it("drops a file whose bytes rot while it is served, once the whole-file hash shows it", async () => {
    const { cache, log } = await cacheFor([entry()]);
    const { file } = await ready(cache, "org/m:1");
    const bad = Buffer.from(FILE);
    bad[5] ^= 0x01;
    await writeFile(file.path, bad);
    const served: Buffer[] = [];
    for await (const chunk of cache.openForServing("org/m:1", file)) served.push(chunk as Buffer);
    expect(Buffer.concat(served).equals(bad)).toBe(true);
    await cache.verifyServed("org/m:1", file); // the check runs in a worker thread
    expect(log.find("no longer matches its sha256")).toHaveLength(1);
    await ready(cache, "org/m:1");
    expect((await readFile(file.path)).equals(FILE)).toBe(true);
    expect(stats(cache)).toMatchObject({ upstream: { fetches: 2 }, served: { requests: 1, bytes: FILE.length } });
  });

  it("deletes a file present at start-up that contradicts the catalog sha256", async () => {
    await writeFile(join(dir, modelFileName("org/m:1")), "not the model");
    const { cache, log } = await cacheFor([entry({ sha256: sha(FILE) })]);
    expect(log.find("does not match the catalog sha256; deleting it")).toHaveLength(1);
    const { file } = await ready(cache, "org/m:1");
    expect((await readFile(file.path)).equals(FILE)).toBe(true);
    expect(stats(cache).sha256Origin).toBe("catalog");
  });

  it.skipIf(!existsSync("/dev/full"))("reports a full disk as a clear failure (needs /dev/full)", async () => {
    const { symlink } = await import("node:fs/promises");
    await symlink("/dev/full", join(dir, `${modelFileName("org/m:1")}.part`));
    const { cache } = await cacheFor([entry()]);
    const failed = await waitFor(
      async () => {
        const r = await cache.lookup("org/m:1");
        return r.status === "failed" ? r : undefined;
      },
      5000,
      "failure",
    );
    expect(failed.message).toMatch(/disk full while writing .*ENOSPC/);
  });
});

describe("router model cache: split models and disk space", () => {
  const PARTS = [bytesOf(120_000, 3), bytesOf(90_000, 4), bytesOf(60_000, 5)];
  const partName = (i: number) => `s-0000${i + 1}-of-00003.gguf`;
  const splitEntry = (parts?: { url: string; sha256?: string }[]): CatalogEntry =>
    entry({ id: "split/m", sizeBytes: 270_000, source: { gguf: { url: upstream.fileUrl(partName(0)), ...(parts ? { parts } : {}) } } });

  beforeEach(() => {
    for (const [i, b] of PARTS.entries()) upstream.set(partName(i), b);
  });

  it("derives the parts from the first part's name, fetches each once (single flight), pins each, and serves each", async () => {
    upstream.bytesPerSecond = 200_000; // ~1.4 s: parts 2 and 3 take ~0.75 s, sampled every 20 ms
    const { cache, catalog } = await cacheFor([splitEntry()]);
    expect(catalog.models[0]!.parts).toEqual([{}, {}, {}]);
    // Progress is over the whole model: sampled while the parts come in, it only grows, and past part 1 it counts part 1.
    const samples: { done: number; total: number }[] = [];
    const sampler = setInterval(() => {
      const s = stats(cache, "split/m");
      if (s.bytesDone !== undefined && s.bytesTotal !== undefined) samples.push({ done: s.bytesDone, total: s.bytesTotal });
    }, 20);
    const asks = await Promise.all([0, 1, 2, 0, 1, 2].map((i) => cache.lookup("split/m", i)));
    expect(asks.every((a) => a.status === "pending" || a.status === "ready")).toBe(true);
    const files = await Promise.all(
      [0, 1, 2].map((i) =>
        waitFor(
          async () => {
            const r = await cache.lookup("split/m", i);
            return r.status === "ready" ? r.file : undefined;
          },
          10_000,
          `part ${i + 1}`,
        ),
      ),
    );
    for (let i = 0; i < 3; i++) {
      expect(upstream.fileRequests(partName(i))).toHaveLength(1);
      expect((await readFile(files[i]!.path)).equals(PARTS[i]!)).toBe(true);
      // llama.cpp finds the parts beside the first by their split names.
      expect(files[i]!.path.endsWith(`-0000${i + 1}-of-00003.gguf`)).toBe(true);
    }
    clearInterval(sampler);
    expect(samples.some((x) => x.done > PARTS[0]!.length)).toBe(true);
    expect(samples.every((x) => x.total === 270_000)).toBe(true);
    expect(samples.every((x, i) => i === 0 || x.done >= samples[i - 1]!.done)).toBe(true);
    const s = stats(cache, "split/m");
    expect(s).toMatchObject({ state: "cached", sizeBytes: 270_000, upstream: { fetches: 3, failures: 0 } });
    expect(s.parts!.map((p) => [p.part, p.state, p.sha256, p.upstream.fetches])).toEqual(PARTS.map((b, i) => [i + 1, "cached", sha(b), 1]));
    // Nodes see every part's checksum and size, and the whole size.
    expect(catalog.models[0]).toMatchObject({ sha256: sha(PARTS[0]!), sizeBytes: 270_000, parts: PARTS.map((b) => ({ sha256: sha(b), sizeBytes: b.length })) });
    const pins = JSON.parse(await readFile(join(dir, "pins.json"), "utf8"));
    expect(Object.keys(pins).sort()).toEqual(["split/m", "split/m#2", "split/m#3"]);
    expect(await cache.lookup("split/m", 3)).toMatchObject({ status: "unavailable", message: expect.stringContaining("has 3 part(s)") });
  });

  it("rejects a part whose bytes do not match its catalog sha256, naming the part", async () => {
    const altered = Buffer.from(PARTS[1]!);
    altered[1000] ^= 0xff;
    upstream.set(partName(1), altered);
    const { cache } = await cacheFor([splitEntry(PARTS.map((b, i) => ({ url: upstream.fileUrl(partName(i)), sha256: sha(b) })))]);
    const failed = await waitFor(
      async () => {
        const r = await cache.lookup("split/m", 1);
        return r.status === "failed" ? r : undefined;
      },
      10_000,
      "part 2 failed",
    );
    expect(failed.message).toMatch(/part 2 of 3: sha256 mismatch/);
    expect((await cache.lookup("split/m", 0)).status).toBe("ready");
    expect(stats(cache, "split/m").parts!.map((p) => p.state)).toEqual(["cached", "failed", "absent"]);
  });

  it("writes a generated split model's parts under llama.cpp's split names and serves each", async () => {
    const spec = {
      name: "g",
      seed: 4,
      embeddingLength: 64,
      blockCount: 2,
      headCount: 4,
      headCountKv: 2,
      feedForwardLength: 128,
      contextLength: 2048,
      parts: 3,
    };
    const { cache, catalog } = await cacheFor([{ ...entry({ id: "gen" }), source: { generate: spec } }]);
    const files = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const r = await cache.lookup("gen", i);
        return r.status === "ready" ? r.file : undefined;
      }),
    );
    expect(files.map((f) => f?.path)).toEqual([1, 2, 3].map((n) => join(dir, `gen-0000${n}-of-00003.gguf`)));
    expect(catalog.models[0]!.parts!.map((p) => p.sha256)).toEqual(files.map((f) => f!.sha256));
    expect(stats(cache, "gen")).toMatchObject({ state: "cached", sha256Origin: "generated", upstream: { fetches: 0 } });
  });

  it("refuses at once, before any upstream byte, a model larger than the free disk", async () => {
    const { cache } = await cacheFor([entry({ sizeBytes: 1e15 })]);
    const r = await waitFor(
      async () => {
        const l = await cache.lookup("org/m:1");
        return l.status === "failed" ? l : undefined;
      },
      10_000,
      "failed",
    );
    expect(r.message).toMatch(/not enough disk: needs 1010\.0 TB, have .* free in /);
    expect(upstream.requests).toEqual([]);
  });
});

describe("cache file names and serving checks", () => {
  it("ids that differ only in '/', ':' and '_' get their own cache files", async () => {
    const OTHER = bytesOf(150_000, 2);
    upstream.set("n.gguf", OTHER);
    const ids = { "org/m:1": "m.gguf", "org/m_1": "n.gguf", "org_m:1": "n.gguf" } as const;
    const { cache } = await cacheFor(Object.entries(ids).map(([id, file]) => entry({ id, url: upstream.fileUrl(file) })));
    const paths = new Set<string>();
    for (const [id, file] of Object.entries(ids)) {
      const { file: cached } = await ready(cache, id);
      paths.add(cached.path);
      expect((await readFile(cached.path)).equals(file === "m.gguf" ? FILE : OTHER), id).toBe(true);
    }
    expect(paths.size).toBe(3);
  });

  it("a file cached under the old shared name by an older router is kept, not fetched again", async () => {
    await writeFile(join(dir, "org_m_1.gguf"), FILE);
    const { cache } = await cacheFor([entry({ sha256: sha(FILE) })]);
    const { file } = await ready(cache, "org/m:1");
    expect(file.path).toBe(join(dir, modelFileName("org/m:1")));
    expect(stats(cache).upstream.fetches).toBe(0);
  });

  it("many nodes downloading the whole file trigger one check of the cached copy, not one per node", async () => {
    const { cache } = await cacheFor([entry()]);
    const { file } = await ready(cache, "org/m:1");
    for (let i = 0; i < 5; i++) {
      const served: Buffer[] = [];
      for await (const chunk of cache.openForServing("org/m:1", file)) served.push(chunk as Buffer);
      expect(Buffer.concat(served).equals(FILE)).toBe(true);
      await cache.verifyServed("org/m:1", file); // joins a running check, if the download started one
    }
    expect(stats(cache)).toMatchObject({ served: { requests: 5, bytes: 5 * FILE.length }, verifications: 1 });
    expect(cache.get("org/m:1")).toBe(file); // the check passed: still cached
  });
});
