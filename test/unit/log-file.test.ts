// Log files: createLogger keeps JSON lines in the file as well as on the terminal, rotated by size
// the logrotate way, and closeLogFiles flushes them.
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLogger } from "../../src/cli/logger.js";
import { closeLogFiles, logFileGeneration, logFilePath } from "../../src/logs/log-file.js";
import { readLastLines } from "../../src/logs/log-tail.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "drover-logfile-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("log files", () => {
  test("paths: <data-dir>/logs/<component>.log and its rotated generation", () => {
    expect(logFilePath("/d", "node")).toBe(join("/d", "logs", "node.log"));
    expect(logFileGeneration("/d/logs/node.log", 2)).toEqual(["/d/logs/node.log", "/d/logs/node.log.1", "/d/logs/node.log.2"]);
  });

  test("JSON lines land in the file (directory created), rotated by size, keeping N old files", async () => {
    const file = logFilePath(join(dir, "node-data"), "node");
    const log = createLogger("node", "info", { path: file, settings: { maxBytes: 1000, keep: 2 } });
    for (let i = 0; i < 60; i++) log.info({ i }, "tick");
    log.debug("below the level: not written");
    await closeLogFiles();

    const [current, first, second, third] = logFileGeneration(file, 3);
    expect(existsSync(first!)).toBe(true);
    expect(existsSync(second!)).toBe(true);
    expect(existsSync(third!)).toBe(false); // keep: 2
    for (const f of [first!, second!]) expect((await stat(f)).size).toBeLessThan(1000 + 200);

    const newest = await readLastLines(logFileGeneration(file, 2), 3);
    expect(newest.map((l) => JSON.parse(l).i)).toEqual([57, 58, 59]);
    const line = JSON.parse(newest[2]!);
    expect(line).toMatchObject({ component: "node", msg: "tick", level: 30 });
    expect(typeof line.pid).toBe("number");
    const all = [await readFile(current!, "utf8"), await readFile(first!, "utf8")].join("");
    expect(all).not.toContain("below the level");
  });

  test("a logger without a file target writes no file (not even a relative default)", async () => {
    // Run in an empty working directory: a default such as ./logs/router.log would land here.
    const cwd = await mkdtemp(join(tmpdir(), "drover-logfile-cwd-"));
    const before = process.cwd();
    process.chdir(cwd);
    try {
      const log = createLogger("router", "info");
      log.info("terminal only");
      await closeLogFiles();
      expect(await readdir(cwd)).toEqual([]);
      // The check sees a file when one is written: the same logger given a (relative) target.
      const withFile = createLogger("router", "info", { path: logFilePath(".", "router") });
      withFile.info("to the file");
      await closeLogFiles();
      expect(await readdir(cwd)).toEqual(["logs"]);
      expect(await readFile(join(cwd, "logs", "router.log"), "utf8")).toContain("to the file");
      expect(await readFile(join(cwd, "logs", "router.log"), "utf8")).not.toContain("terminal only");
    } finally {
      process.chdir(before);
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
