// Incremental reader of a server-sent-events body: bytes in, the `data` payload of each complete
// event out. Chunks may split events, lines and UTF-8 characters anywhere.
import { StringDecoder } from "node:string_decoder";

export class SseDataParser {
  private readonly decoder = new StringDecoder("utf8");
  private buffer = "";
  private data: string[] = [];

  /** The data payloads of the events completed by this chunk. */
  push(chunk: Buffer | string): string[] {
    this.buffer += typeof chunk === "string" ? chunk : this.decoder.write(chunk);
    return this.drainLines();
  }

  /** The body ended: the payload of a last event that lacked its blank line, if any. */
  end(): string[] {
    this.buffer += this.decoder.end();
    const out = this.drainLines();
    if (this.buffer) this.line(this.buffer);
    this.buffer = "";
    if (this.data.length) out.push(this.data.join("\n"));
    this.data = [];
    return out;
  }

  private drainLines(): string[] {
    const out: string[] = [];
    let nl: number;
    while ((nl = this.buffer.search(/\r\n|\r|\n/)) !== -1) {
      const line = this.buffer.slice(0, nl);
      // A lone "\r" at the end of the buffer may be the first half of "\r\n": wait for more.
      if (this.buffer[nl] === "\r" && nl === this.buffer.length - 1) break;
      this.buffer = this.buffer.slice(nl + (this.buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        if (this.data.length) out.push(this.data.join("\n"));
        this.data = [];
      } else {
        this.line(line);
      }
    }
    return out;
  }

  private line(line: string): void {
    if (line.startsWith(":")) return; // comment
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== "data") return; // event, id, retry: not used by OpenAI streams
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    this.data.push(value);
  }
}
