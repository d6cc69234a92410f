// The engine's SSE writer: the first event goes at once; events made within COALESCE_MS of the
// previous write share one write (a fast model no longer costs a system call per token on every
// hop); nothing is lost or reordered, and [DONE] goes with whatever was waiting.
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { COALESCE_MS, SseStream } from "../../src/engine/llama/sse.js";

let server: Server | null = null;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = null;
});

/** Serves one SSE response written by `write`; returns the body's chunks as the client read them and the write count. */
async function serve(write: (sse: SseStream) => Promise<void>): Promise<{ body: string; writes: string[] }> {
  const writes: string[] = [];
  server = createServer((_req, res: ServerResponse) => {
    const realWrite = res.write.bind(res);
    const realEnd = res.end.bind(res);
    res.write = ((chunk: string) => {
      writes.push(String(chunk));
      return realWrite(chunk);
    }) as typeof res.write;
    res.end = ((chunk?: string) => {
      if (chunk) writes.push(String(chunk));
      return realEnd(chunk);
    }) as typeof res.end;
    void write(new SseStream(res));
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  const res = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  return { body: await res.body.text(), writes };
}

describe("SseStream", () => {
  it("sends the first event at once and a burst of events in one write, in order, then [DONE]", async () => {
    const { body, writes } = await serve(async (sse) => {
      for (let i = 0; i < 50; i++) sse.send({ i });
      sse.done();
    });
    const events = body.split("\n\n").filter(Boolean);
    expect(events).toEqual([...Array.from({ length: 50 }, (_, i) => `data: {"i":${i}}`), "data: [DONE]"]);
    // The first event alone, the other 49 and [DONE] together.
    expect(writes).toHaveLength(2);
    expect(writes[0]).toBe('data: {"i":0}\n\n');
  });

  it("sends events further apart than the window each as it comes", async () => {
    const { writes } = await serve(async (sse) => {
      for (let i = 0; i < 3; i++) {
        sse.send({ i });
        await new Promise((r) => setTimeout(r, COALESCE_MS * 5));
      }
      sse.done();
    });
    expect(writes).toEqual(['data: {"i":0}\n\n', 'data: {"i":1}\n\n', 'data: {"i":2}\n\n', "data: [DONE]\n\n"]);
  });

  it("flushes waiting events when the window ends, without a [DONE] yet", async () => {
    const { body, writes } = await serve(async (sse) => {
      sse.send({ i: 0 });
      sse.send({ i: 1 });
      sse.send({ i: 2 });
      await new Promise((r) => setTimeout(r, COALESCE_MS * 10));
      sse.end();
    });
    expect(writes).toEqual(['data: {"i":0}\n\n', 'data: {"i":1}\n\ndata: {"i":2}\n\n']);
    expect(body).toBe('data: {"i":0}\n\ndata: {"i":1}\n\ndata: {"i":2}\n\n');
  });
});
