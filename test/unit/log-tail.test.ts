// The log tail reader: exact line counts, reading from the end only, odd endings, rotated files.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readLastLines } from "../../src/logs/log-tail.js";

let dir: string;
const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => JSON.stringify({ n: from + i, msg: `line ${from + i}` }));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "drover-tail-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("readLastLines", () => {
  test("returns exactly the last 5 lines, oldest first", async () => {
    const file = join(dir, "small.log");
    await writeFile(file, lines(1, 20).join("\n") + "\n");
    expect(await readLastLines([file], 5)).toEqual(lines(16, 20));
  });

  test("a big file is read from the end only, across chunk boundaries", async () => {
    const file = join(dir, "big.log");
    const all = lines(1, 200_000); // ~6 MB
    await writeFile(file, all.join("\n") + "\n");
    const stats = { bytesRead: 0 };
    const got = await readLastLines([file], 1000, { chunkBytes: 4096, stats });
    expect(got).toEqual(all.slice(-1000));
    const tailBytes = all.slice(-1000).join("\n").length;
    expect(stats.bytesRead).toBeGreaterThanOrEqual(tailBytes);
    expect(stats.bytesRead).toBeLessThan(tailBytes + 2 * 4096);
  });

  test("a last line without a trailing newline counts; blank lines and CRLF are handled", async () => {
    const file = join(dir, "no-newline.log");
    await writeFile(file, "a\r\nb\n\n\nc\nd");
    expect(await readLastLines([file], 2)).toEqual(["c", "d"]);
    expect(await readLastLines([file], 10)).toEqual(["a", "b", "c", "d"]);
  });

  test("lines longer than a chunk and multi-byte characters split across chunks stay whole", async () => {
    const file = join(dir, "long.log");
    const long = "é".repeat(5000) + "日本語";
    await writeFile(file, `first\n${long}\nlast\n`);
    expect(await readLastLines([file], 3, { chunkBytes: 7 })).toEqual(["first", long, "last"]);
  });

  test("a missing file gives no lines; an empty file too", async () => {
    expect(await readLastLines([join(dir, "missing.log")], 5)).toEqual([]);
    const empty = join(dir, "empty.log");
    await writeFile(empty, "");
    expect(await readLastLines([empty], 5)).toEqual([]);
  });

  test("continues into the rotated file when the current one holds fewer lines", async () => {
    const current = join(dir, "node.log");
    await writeFile(`${current}.1`, lines(1, 10).join("\n") + "\n");
    await writeFile(current, lines(11, 12).join("\n") + "\n");
    expect(await readLastLines([current, `${current}.1`, `${current}.2`], 5)).toEqual(lines(8, 12));
    expect(await readLastLines([current, `${current}.1`], 2)).toEqual(lines(11, 12));
  });
});
