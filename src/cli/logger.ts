// Process logger: on stderr, so stdout stays free for banners and, in engines, for the readiness
// line the node reads. JSON lines for machines; a readable one-line format when a person watches
// the terminal.
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export function createLogger(component: string, level: string): Logger {
  const base = { component };
  if (process.stderr.isTTY && !process.env.DROVER_LOG_JSON) {
    return pino({ level, base }, pretty({ destination: 2, colorize: true, translateTime: "HH:MM:ss", ignore: "pid,hostname", messageKey: "msg", singleLine: true }));
  }
  return pino({ level, base: { ...base, pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}
