// The last N lines of a log, read backwards from the end of the file in fixed-size chunks, so a
// request for 200 lines of a 10 MB log reads a few kilobytes. Rotated files are read on (newest
// first) when the current one holds fewer lines than asked for.
import { open } from "node:fs/promises";

const NEWLINE = 0x0a;

export interface TailOptions {
  /** Bytes read per step (default 64 KiB). */
  chunkBytes?: number;
  /** Filled with the number of bytes read (for tests and benchmarks). */
  stats?: { bytesRead: number };
}

/**
 * The last `count` non-blank lines of `files` (newest file first, e.g. node.log, node.log.1),
 * oldest line first, without their line endings. Missing files count as empty.
 */
export async function readLastLines(files: readonly string[], count: number, opts: TailOptions = {}): Promise<string[]> {
  const newestFirst: string[] = [];
  for (const file of files) {
    if (newestFirst.length >= count) break;
    await readFileBackwards(file, count - newestFirst.length, newestFirst, opts);
  }
  return newestFirst.reverse();
}

/** Appends up to `want` lines of `file` to `out`, last line first. */
async function readFileBackwards(file: string, want: number, out: string[], opts: TailOptions): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  try {
    const chunkBytes = Math.max(1, opts.chunkBytes ?? 64 * 1024);
    let pos = (await handle.stat()).size;
    let atEnd = true;
    // Pieces of the line whose start has not been reached yet, in file order.
    let partial: Buffer[] = [];
    const emit = (pieces: Buffer[]) => {
      const line = Buffer.concat(pieces).toString("utf8").replace(/\r$/, "");
      if (line.trim() === "") return;
      out.push(line);
      want--;
    };
    while (pos > 0 && want > 0) {
      const length = Math.min(chunkBytes, pos);
      pos -= length;
      // A fresh buffer per step: `partial` keeps views into earlier ones.
      const buf = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(buf, 0, length, pos);
      if (opts.stats) opts.stats.bytesRead += bytesRead;
      let end = bytesRead;
      if (atEnd) {
        if (buf[end - 1] === NEWLINE) end--;
        atEnd = false;
      }
      while (want > 0 && end > 0) {
        const nl = buf.lastIndexOf(NEWLINE, end - 1);
        if (nl < 0) break;
        emit([buf.subarray(nl + 1, end), ...partial]);
        partial = [];
        end = nl;
      }
      if (want > 0) partial.unshift(buf.subarray(0, end));
    }
    // The file's first line has no newline before it.
    if (pos === 0 && want > 0 && partial.length) emit(partial);
  } finally {
    await handle.close();
  }
}
