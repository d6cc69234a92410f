// Process logger: on stderr, so stdout stays free for banners and, in engines, for the readiness
// line the node reads. JSON lines for machines; a readable one-line format when a person watches
// the terminal. Router and node also keep their JSON lines in a rotated file in their data dir.
import { createRequire } from "node:module";
import pino, { type Logger } from "pino";
import { openLogFile, type LogFileSettings } from "../logs/log-file.js";
import { stderrBars } from "./download-bars.js";

export interface LogFileTarget {
  path: string;
  settings?: LogFileSettings;
}

/** Logs to the terminal and, when `file` is given, also as JSON lines to that (rotated) file. */
export function createLogger(component: string, level: string, file?: LogFileTarget): Logger {
  const base = { component, pid: process.pid };
  const terminal =
    process.stderr.isTTY && !process.env.DROVER_LOG_JSON
      ? // Through the download bars, which keep themselves below the log lines (src/cli/download-bars.ts).
        // Loaded only for a terminal: a service logging JSON does not carry it in its memory.
        (createRequire(import.meta.url)("pino-pretty") as typeof import("pino-pretty"))({
          destination: stderrBars.logStream,
          colorize: true,
          translateTime: "HH:MM:ss",
          ignore: "pid,hostname",
          messageKey: "msg",
          singleLine: true,
        })
      : pino.destination({ dest: 2, sync: false });
  if (!file) return pino({ level, base }, terminal);
  return pino(
    { level, base },
    pino.multistream([
      { level: level as pino.Level, stream: terminal },
      { level: level as pino.Level, stream: openLogFile(file.path, file.settings) },
    ]),
  );
}
