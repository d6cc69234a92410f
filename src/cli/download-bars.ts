// Download progress bars on a terminal: one line per downloading model, kept at the bottom of
// the screen below the scrolling log. Log lines go through `logStream`, which lifts the bars,
// writes the line and draws them again, so the two never tear each other. Hand-rolled (about a
// hundred lines) because the bars must share the terminal with pino-pretty's stream; progress
// libraries draw well but cannot interleave a logger that writes on its own.
// Without a terminal nothing is drawn: the downloader logs a plain line every 10 %.
import { Writable } from "node:stream";
import type { ModelStatus } from "../protocol/node-api.js";

const UNITS = ["B", "kB", "MB", "GB", "TB"] as const;

function bytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** One bar line for a downloading model, at most `width` characters. */
export function formatBar(status: ModelStatus, width: number, nameWidth = 22): string {
  const progress = Math.min(1, Math.max(0, status.progress ?? 0));
  const name = status.id.length > nameWidth ? `${status.id.slice(0, nameWidth - 1)}…` : status.id.padEnd(nameWidth);
  const cells = 24;
  const filled = Math.round(progress * cells);
  const bar = `[${"#".repeat(filled)}${"-".repeat(cells - filled)}]`;
  const pct = `${String(Math.floor(progress * 100)).padStart(3)}%`;
  let detail: string;
  if (status.reason && (status.bytesDone ?? 0) === 0) {
    detail = status.reason;
  } else {
    const sizes = status.bytesTotal ? `${bytes(status.bytesDone ?? 0)}/${bytes(status.bytesTotal)}` : bytes(status.bytesDone ?? 0);
    const speed = status.speed ? `${bytes(status.speed)}/s` : "";
    const eta = status.speed && status.bytesTotal ? duration((status.bytesTotal - (status.bytesDone ?? 0)) / status.speed) : "";
    detail = [sizes, speed, eta && `ETA ${eta}`].filter(Boolean).join("  ");
  }
  const line = `${name} ${bar} ${pct}  ${detail}`;
  return line.length > width ? `${line.slice(0, Math.max(0, width - 1))}…` : line;
}

export class DownloadBars {
  private drawn: string[] = [];
  private models: () => ModelStatus[] = () => [];
  private timer: NodeJS.Timeout | undefined;

  /** Log output; pass it to the pretty logger as its destination. */
  readonly logStream: Writable;

  constructor(private readonly out: NodeJS.WritableStream & { columns?: number }) {
    this.logStream = new Writable({
      write: (chunk: Buffer | string, _enc, done) => {
        this.out.write(this.lift() + chunk.toString() + this.draw());
        done();
      },
    });
  }

  /** Redraws every `intervalMs` from `models()` (a node's model states) until stop(). */
  start(models: () => ModelStatus[], intervalMs = 250): void {
    this.models = models;
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.models = () => [];
    this.out.write(this.lift());
  }

  refresh(): void {
    const next = this.lines();
    if (next.join("\n") === this.drawn.join("\n")) return;
    this.out.write(this.lift() + this.draw(next));
  }

  /** Moves the cursor back over the drawn bars and clears them. */
  private lift(): string {
    const n = this.drawn.length;
    this.drawn = [];
    return n === 0 ? "" : `\x1b[${n}F\x1b[0J`;
  }

  private lines(): string[] {
    const width = Math.max(40, (this.out.columns || 100) - 1); // 0 when the terminal did not say
    return this.models()
      .filter((m) => m.state === "downloading")
      .map((m) => formatBar(m, width));
  }

  /** Draws the bars of the downloading models below the cursor. */
  private draw(lines: string[] = this.lines()): string {
    this.drawn = lines;
    return lines.map((l) => `${l}\n`).join("");
  }
}

/** The process's bars on stderr, shared by the logger and the node command. */
export const stderrBars = new DownloadBars(process.stderr);
