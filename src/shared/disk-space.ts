// Space before bytes: a download (router cache or node) first checks that the file system it
// writes to has room for everything still missing plus a margin, so a model too big for the disk
// fails at once with the figures instead of hours into a download with ENOSPC.
import { statfs } from "node:fs/promises";
import { formatBytes } from "./byte-format.js";

/** Room kept free beyond the download itself: 1 % of it plus 1 MiB (temporary files, sidecars, logs). */
export function diskMargin(bytes: number): number {
  return Math.ceil(bytes * 0.01) + 1024 * 1024;
}

/** Bytes the current user may still write on the file system holding `dir`. */
export async function freeDiskBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/**
 * Undefined when `dir` has room for `bytes` plus the margin; else the reason, as a model state
 * shows it: `not enough disk: needs X, have Y`.
 */
export async function checkDiskSpace(dir: string, bytes: number): Promise<string | undefined> {
  if (bytes <= 0) return undefined;
  const needed = bytes + diskMargin(bytes);
  const free = await freeDiskBytes(dir);
  if (needed <= free) return undefined;
  return `not enough disk: needs ${formatBytes(needed)}, have ${formatBytes(free)} free in ${dir}`;
}
