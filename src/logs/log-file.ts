// Log files: each process writes JSON lines to <data-dir>/logs/<component>.log, rotated by size
// in the logrotate way (router.log → router.log.1 → … → router.log.N, oldest dropped), so the
// current file always has the same name for readers such as the node's /api/logs.
import { basename, dirname, join } from "node:path";
import { createStream, type RotatingFileStream } from "rotating-file-stream";

export type LogComponent = "router" | "node";

export interface LogFileSettings {
  /** Size at which the current file is rotated. */
  maxBytes: number;
  /** Rotated files kept besides the current one. */
  keep: number;
}

export const DEFAULT_LOG_FILE_SETTINGS: LogFileSettings = { maxBytes: 10 * 1024 * 1024, keep: 5 };

export function logFilePath(dataDir: string, component: LogComponent): string {
  return join(dataDir, "logs", `${component}.log`);
}

/** The current file and its rotated predecessors, newest first. */
export function logFileGeneration(file: string, keep: number): string[] {
  return [file, ...Array.from({ length: keep }, (_, i) => `${file}.${i + 1}`)];
}

const open = new Set<RotatingFileStream>();

/** An appending, size-rotated stream (directories are created as needed). */
export function openLogFile(file: string, settings: LogFileSettings = DEFAULT_LOG_FILE_SETTINGS): RotatingFileStream {
  const stream = createStream(basename(file), {
    path: dirname(file),
    size: `${Math.max(1, Math.floor(settings.maxBytes))}B`,
    rotate: Math.max(1, Math.floor(settings.keep)),
  });
  let reported = false;
  // A full disk or a read-only directory must not take the process down; say so once.
  stream.on("error", (err) => {
    if (reported) return;
    reported = true;
    process.stderr.write(`drover: cannot write the log file ${file}: ${err.message}\n`);
  });
  open.add(stream);
  stream.once("close", () => open.delete(stream));
  return stream;
}

/** Ends every open log file, so buffered lines reach the disk before the process exits. */
export async function closeLogFiles(timeoutMs = 2000): Promise<void> {
  const ending = [...open].map(
    (stream) =>
      new Promise<void>((resolve) => {
        if (stream.destroyed || stream.writableFinished) return resolve();
        stream.once("finish", () => resolve());
        stream.once("error", () => resolve());
        stream.end();
      }),
  );
  await Promise.race([Promise.all(ending), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
}
