import { describe, expect, it } from "vitest";
import { DownloadBars, formatBar } from "../../src/cli/download-bars.js";
import type { ModelStatus } from "../../src/protocol/node-api.js";

const status = (extra: Partial<ModelStatus>): ModelStatus => ({ id: "gpt-oss:20b", state: "downloading", slots: 4, inFlight: 0, restarts: 0, ...extra });

class FakeTerminal {
  columns = 100;
  text = "";
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

describe("download bars", () => {
  it("draws progress, sizes, speed and time left within the terminal width", () => {
    const line = formatBar(status({ progress: 0.5, bytesDone: 7.25e9, bytesTotal: 14.5e9, speed: 100e6 }), 100);
    expect(line).toBe("gpt-oss:20b            [############------------]  50%  7.3 GB/14.5 GB  100.0 MB/s  ETA 1m13s");
    expect(formatBar(status({ progress: 0.5, bytesDone: 7.25e9, bytesTotal: 14.5e9, speed: 100e6 }), 50)).toHaveLength(50);
    // Waiting for the router's upstream fetch: the reason instead of numbers.
    expect(formatBar(status({ progress: 0, bytesDone: 0, reason: "the router is fetching 'gpt-oss:20b' from upstream (12%)" }), 200)).toMatch(
      /\[-{24}\] {3}0% {2}the router is fetching/,
    );
  });

  it("keeps the bars below the log lines and removes them when downloads end", () => {
    const term = new FakeTerminal();
    const bars = new DownloadBars(term as unknown as NodeJS.WritableStream);
    let models = [status({ progress: 0.1, bytesDone: 1, bytesTotal: 10 }), status({ id: "b", state: "ready" })];
    bars.start(() => models, 60_000);
    bars.refresh();
    expect(term.text).toBe(`${formatBar(models[0]!, 99)}\n`);
    term.text = "";
    bars.refresh(); // nothing changed: nothing written
    expect(term.text).toBe("");
    bars.logStream.write("a log line\n");
    // Lift the bar (cursor up one line, clear below), write the log line, draw the bar again.
    expect(term.text).toBe(`\x1b[1F\x1b[0Ja log line\n${formatBar(models[0]!, 99)}\n`);
    term.text = "";
    models = [status({ state: "loading" })];
    bars.refresh();
    expect(term.text).toBe("\x1b[1F\x1b[0J");
    bars.stop();
  });
});
