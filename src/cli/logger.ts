// Process logger: JSON lines on stderr, so stdout stays free for banners and, in engines, for
// the readiness line the node reads.
import pino, { type Logger } from "pino";

export function createLogger(component: string, level: string): Logger {
  return pino({ level, base: { component, pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}
