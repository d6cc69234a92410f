// The request history while its database is down, end to end: a real router on a real
// PostgreSQL (started for this file), one real node. The test stops PostgreSQL (its clients cut off),
// sends requests (they must all still succeed: admission and answers never wait on the
// database), starts it again, and checks that every request's record lands afterwards.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { authHeadersFor, getJson, startNode, startRouter, TEST_API_KEY, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";
import { startPostgres, type TestPostgres } from "../support/postgres.js";

const CHAT = "demo-chat";
const EMBED = "demo-embed";
let pg: TestPostgres;
let router: DroverProcess;
let node: DroverProcess;
let client: OpenAI;

beforeAll(async () => {
  pg = await startPostgres();
  router = await startRouter(["--database-url", await pg.createDatabase()]);
  node = await startNode(router.url, "db-down-node");
  await waitForReady(router.url, [CHAT, EMBED], 1);
  client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
});

afterAll(async () => {
  await node?.stop();
  await router?.stop();
  await pg?.stop();
});

type Rec = { requestId: string; status: number; endpoint: string; stream: boolean; completionTokens: number | null };
const record = (id: string) => getJson<Rec>(`${router.url}/api/requests/${id}`).catch(() => null);

describe("request history with the database down", () => {
  test("requests still succeed while PostgreSQL is down, and all their records land once it is back", async () => {
    // The key has been looked up once, as on any router that has been serving.
    const warm = `db-warm-${Date.now()}`;
    await client.chat.completions.create({ model: CHAT, messages: [{ role: "user", content: "hi" }], max_tokens: 2 }, { headers: { "x-request-id": warm } });
    await waitFor("the first record", () => record(warm), 15_000, 100);

    const admin = await authHeadersFor(`${router.url}/api/requests`);
    expect((await fetch(`${router.url}/api/requests?limit=1`, { headers: admin })).status).toBe(200);
    pg.halt();
    // Proof that the database is really gone for the router: the same history read (same admin
    // session) now fails on the server side.
    const refused = await fetch(`${router.url}/api/requests?limit=1`, { headers: admin });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("auth_unavailable");

    const ids: string[] = [];
    const sent: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      const id = `db-down-${i}-${Date.now()}`;
      ids.push(id);
      const headers = { "x-request-id": id };
      if (i % 3 === 0) sent.push(client.chat.completions.create({ model: CHAT, messages: [{ role: "user", content: `q${i}` }], max_tokens: 3 }, { headers }));
      else if (i % 3 === 1) sent.push(client.embeddings.create({ model: EMBED, input: `e${i}` }, { headers }));
      else
        sent.push(
          (async () => {
            const stream = await client.chat.completions.create(
              { model: CHAT, messages: [{ role: "user", content: `s${i}` }], max_tokens: 3, stream: true },
              { headers },
            );
            let n = 0;
            for await (const _ of stream) n++;
            return n;
          })(),
        );
    }
    const results = await Promise.allSettled(sent);
    expect(results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    // The recorder has tried (and failed) to write them: the router says so in its log.
    await waitFor("the router's warning about the history write", async () => /could not write request history; will retry/.test(router.output()), 30_000, 100);

    pg.resume();
    const landed = await waitFor(
      "every record written after the database came back",
      async () => {
        const recs = await Promise.all(ids.map(record));
        return recs.every((r) => r !== null) ? (recs as Rec[]) : null;
      },
      60_000,
      250,
    );
    expect(landed.map((r) => r.requestId)).toEqual(ids);
    expect(landed.every((r) => r.status === 200)).toBe(true);
    expect(landed.filter((r) => r.endpoint === "/v1/embeddings")).toHaveLength(10);
    expect(landed.filter((r) => r.stream)).toHaveLength(10);
    expect(landed.filter((r) => r.endpoint === "/v1/chat/completions" && !r.stream).map((r) => r.completionTokens)).toEqual(Array(10).fill(3));
    // Written once each: no duplicates from the retries.
    const { requests, total } = await getJson<{ requests: Rec[]; total: number }>(`${router.url}/api/requests?limit=1000`);
    expect(total).toBe(31);
    expect(new Set(requests.map((r) => r.requestId)).size).toBe(31);
  });
});
