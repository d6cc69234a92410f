import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "undici";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Backoff } from "../../src/shared/backoff.js";
import { modelFileName, modelFilePaths } from "../../src/node/model-file-store.js";
import { DownloadError, downloadModel, type ModelDownloadOptions } from "../../src/node/model-downloader.js";
import type { DownloadProgress } from "../../src/node/model-status-board.js";
import { RateLimiter } from "../../src/node/rate-limiter.js";
import { RouterEndpoint } from "../../src/node/router-endpoint.js";
import { captureLogger } from "../fixtures/capture-logger.js";
import { FakeRouter, makeTinyModel, type TinyModel } from "../fixtures/fake-router.js";

let work: string;
let model: TinyModel;
let router: FakeRouter;
let modelsDir: string;
const agent = new Agent();

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "drover-dl-"));
  model = await makeTinyModel(work, "tiny:chat", 7);
});
afterAll(async () => {
  await agent.close();
  await rm(work, { recursive: true, force: true });
});
beforeEach(async () => {
  router = await new FakeRouter([model]).start();
  modelsDir = await mkdtemp(join(work, "models-"));
});
afterEach(async () => {
  await router.close();
});

function options(extra: Partial<ModelDownloadOptions> = {}): ModelDownloadOptions {
  return {
    entry: model.entry,
    modelsDir,
    router: new RouterEndpoint(router.url, "secret-token"),
    dispatcher: agent,
    logger: captureLogger().logger,
    signal: new AbortController().signal,
    retryBackoff: new Backoff({ initialMs: 20, maxMs: 50 }),
    ...extra,
  };
}

describe("model downloader", () => {
  it("names files safely", () => {
    expect(modelFileName("demo-chat")).toBe("demo-chat.gguf");
    expect(modelFileName("gpt-oss:20b")).toMatch(/^gpt-oss_20b-[0-9a-f]{8}\.gguf$/);
    expect(modelFileName("a:b")).not.toBe(modelFileName("a_b"));
    expect(modelFileName("org/model")).not.toContain("/");
  });

  it("downloads, verifies sha256, renames into place and writes a sidecar", async () => {
    const progress: DownloadProgress[] = [];
    const path = await downloadModel(options({ onProgress: (p) => progress.push(p) }));
    const paths = modelFilePaths(modelsDir, model.entry.id);
    expect(path).toBe(paths.final);
    expect((await readFile(path)).equals(model.bytes)).toBe(true);
    expect(existsSync(paths.part)).toBe(false);
    expect((await readFile(paths.sidecar, "utf8")).split(/\s+/)[0]).toBe(model.entry.sha256);
    expect(progress.at(-1)).toMatchObject({ progress: 1, bytesDone: model.bytes.length, bytesTotal: model.bytes.length });
    expect(router.fileRequests).toEqual([{ id: "tiny:chat", range: undefined, status: 200 }]);
    expect(router.authHeaders).toContain("Bearer secret-token");
  });

  it("trusts an existing file only with a matching sidecar (or matching content)", async () => {
    await downloadModel(options());
    await downloadModel(options());
    expect(router.fileRequests).toHaveLength(1); // sidecar matched: no second download

    const paths = modelFilePaths(modelsDir, model.entry.id);
    await writeFile(paths.sidecar, `${"0".repeat(64)}  x\n`);
    await downloadModel(options());
    expect(router.fileRequests).toHaveLength(1); // content hashed and matched: sidecar rewritten
    expect((await readFile(paths.sidecar, "utf8")).startsWith(model.entry.sha256!)).toBe(true);

    await writeFile(paths.final, "stale bytes");
    await rm(paths.sidecar);
    await downloadModel(options());
    expect(router.fileRequests).toHaveLength(2); // wrong content: downloaded again
    expect((await readFile(paths.final)).equals(model.bytes)).toBe(true);
  });

  it("hashes a final file again when it was modified after its sidecar was written", async () => {
    await downloadModel(options());
    const paths = modelFilePaths(modelsDir, model.entry.id);
    const bad = Buffer.from(model.bytes);
    bad[100] ^= 0xff;
    await writeFile(paths.final, bad); // the sidecar still names the right checksum
    // A modification time clearly after the sidecar's, whatever the filesystem's clock resolution.
    const later = new Date(Date.now() + 5_000);
    await utimes(paths.final, later, later);
    const log = captureLogger();
    await downloadModel(options({ logger: log.logger }));
    expect(router.fileRequests).toHaveLength(2);
    expect(log.find("does not match the catalog checksum")).toHaveLength(1);
    expect((await readFile(paths.final)).equals(model.bytes)).toBe(true);
  });

  it("waits, without failing, while the router fetches the file from upstream", async () => {
    router.cachingResponses = 1;
    const waits: [string, number][] = [];
    const retries: string[] = [];
    const path = await downloadModel(options({ onWaiting: (m, ms) => waits.push([m, ms]), onRetry: (r) => retries.push(r) }));
    expect(waits).toEqual([[expect.stringContaining("fetching 'tiny:chat' from upstream (40%)"), 1000]]);
    expect(retries).toEqual([]);
    expect(router.fileRequests.map((r) => r.status)).toEqual([503, 200]);
    expect((await readFile(path)).equals(model.bytes)).toBe(true);
  });

  it("passes every byte through the node's rate limiter", async () => {
    const limiter = new RateLimiter(1e9);
    let taken = 0;
    const take = limiter.take.bind(limiter);
    limiter.take = (bytes, signal) => {
      taken += bytes;
      return take(bytes, signal);
    };
    await downloadModel(options({ rateLimiter: limiter }));
    expect(taken).toBe(model.bytes.length);
  });

  it("rate limiter: holds a stream to its rate after the first burst", async () => {
    const limiter = new RateLimiter(2_000_000); // burst: 500 kB
    const started = Date.now();
    for (let i = 0; i < 24; i++) await limiter.take(62_500); // 1.5 MB
    expect(Date.now() - started).toBeGreaterThanOrEqual(450); // (1.5 MB - 0.5 MB) / 2 MB/s = 500 ms
  });

  it("resumes a .part file with a Range request", async () => {
    const paths = modelFilePaths(modelsDir, model.entry.id);
    const half = Math.floor(model.bytes.length / 2);
    await writeFile(paths.part, model.bytes.subarray(0, half));
    const progress: DownloadProgress[] = [];
    await downloadModel(options({ onProgress: (p) => progress.push(p) }));
    expect(router.fileRequests).toEqual([{ id: "tiny:chat", range: `bytes=${half}-`, status: 206 }]);
    expect(progress[0]!.bytesDone).toBe(half);
    expect((await readFile(paths.final)).equals(model.bytes)).toBe(true);
  });

  it("verifies a complete .part (416 to its Range) instead of downloading again", async () => {
    const paths = modelFilePaths(modelsDir, model.entry.id);
    await writeFile(paths.part, model.bytes);
    await downloadModel(options());
    expect(router.fileRequests).toEqual([{ id: "tiny:chat", range: `bytes=${model.bytes.length}-`, status: 416 }]);
    expect((await readFile(paths.final)).equals(model.bytes)).toBe(true);
  });

  it("falls back to a full download when the server ignores Range", async () => {
    router.ignoreRange = true;
    const paths = modelFilePaths(modelsDir, model.entry.id);
    await writeFile(paths.part, model.bytes.subarray(0, 100));
    await downloadModel(options());
    expect(router.fileRequests[0]).toMatchObject({ range: "bytes=100-", status: 200 });
    expect((await readFile(paths.final)).equals(model.bytes)).toBe(true);
  });

  it("rejects a file whose sha256 does not match, retrying a bounded number of times", async () => {
    router.corruptFiles = true;
    const err = await downloadModel(options({ maxChecksumAttempts: 2 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toMatch(/sha256 mismatch/);
    expect(router.fileRequests).toHaveLength(2);
    const paths = modelFilePaths(modelsDir, model.entry.id);
    expect(existsSync(paths.part)).toBe(false);
    expect(existsSync(paths.final)).toBe(false);
  });

  it("retries transient router errors and reports them", async () => {
    router.fileStatus = (n) => (n <= 2 ? 500 : undefined);
    const retries: string[] = [];
    await downloadModel(options({ onRetry: (reason) => retries.push(reason) }));
    expect(retries).toHaveLength(2);
    expect(retries[0]).toMatch(/HTTP 500/);
    expect(router.fileRequests.map((r) => r.status)).toEqual([500, 500, 200]);
  });

  it("fails permanently when the router has no such file", async () => {
    router.fileStatus = () => 404;
    await expect(downloadModel(options())).rejects.toThrow(/HTTP 404/);
  });

  it.skipIf(!existsSync("/dev/full"))("reports a full disk as a clear failure", async () => {
    const paths = modelFilePaths(modelsDir, model.entry.id);
    await symlink("/dev/full", paths.part);
    await expect(downloadModel(options())).rejects.toThrow(/disk full while writing .*ENOSPC/);
    await expect(stat(paths.part)).rejects.toThrow();
  });
});

describe("model downloader: disk space", () => {
  it("fails at once, before asking the router for a byte, when the model does not fit on the disk", async () => {
    const huge = { ...model.entry, sizeBytes: 1e15 };
    const err = await downloadModel(options({ entry: huge })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toMatch(/^not enough disk: needs 1010\.0 TB, have .* free in /);
    expect(router.fileRequests).toEqual([]);
    expect(existsSync(modelFilePaths(modelsDir, huge.id).part)).toBe(false);
  });
});
