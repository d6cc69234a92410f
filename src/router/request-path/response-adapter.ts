// How the proxy shapes a node's response for its client: each dialect brings one (the OpenAI routes
// relay the node's bytes, passthrough-adapter.ts; the other dialects translate the node's OpenAI
// answer into their own shape).

/** What the proxy knows when the node's response starts. */
export interface UpstreamHead {
  status: number;
  contentType: string;
  nodeName: string;
  /** Time the request waited for capacity so far (all attempts). */
  queueWaitMs: number;
}

export interface ResponseAdapter {
  /** Relays the node's bytes as they are: a body that is not a stream then goes whole, with its length. */
  readonly unchanged: boolean;
  /** Send the head as soon as the node answers (true), or just before the first bytes for the client. */
  readonly eagerHead: boolean;
  /** The node answered; called once, before any other callback. */
  start(head: UpstreamHead): void;
  /** Status and content type for the client, read once, just before the head is written. */
  head(): { status: number; contentType: string };
  /** Bytes for the client from one chunk of the node's body ("" when nothing is due yet). */
  chunk(data: Buffer): string | Buffer;
  /** The node's body ended: the last bytes for the client (a dialect may first write to its store). */
  end(): string | Buffer | Promise<string | Buffer>;
  /** The node's body broke: the bytes that end the client's response, or null to cut the connection. */
  fail(message: string): string | Buffer | null;
}
