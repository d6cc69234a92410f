// A node that accepts connections but never answers (SIGSTOPped after it is ready: the kernel still
// accepts TCP connections, nothing replies). With a short --upstream-timeout the router gives up
// on it, retries on the healthy node, opens the hung node's breaker and keeps traffic away; when
// the node resumes, it serves again. Nothing is lost on the way.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { getJson, startNode, startRouter, TEST_API_KEY, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";

const CHAT = "demo-chat";
const UPSTREAM_TIMEOUT_MS = 2_000;

let router: DroverProcess;
let hung: DroverProcess;
let healthy: DroverProcess;
let client: OpenAI;

beforeAll(async () => {
  router = await startRouter(["--upstream-timeout", String(UPSTREAM_TIMEOUT_MS)]);
  [hung, healthy] = await Promise.all([startNode(router.url, "hung"), startNode(router.url, "healthy")]);
  await waitForReady(router.url, [CHAT], 2);
  client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
});

afterAll(async () => {
  hung?.child.kill("SIGCONT");
  await Promise.all([hung?.stop(), healthy?.stop()]);
  await router?.stop();
});

const chat = () => client.chat.completions.create({ model: CHAT, messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
const breakerOf = async (name: string) =>
  (await getJson<{ nodes: { name: string; breaker: string; status: string }[] }>(`${router.url}/api/nodes`)).nodes.find((n) => n.name === name);

describe("a node that accepts connections but never answers", () => {
  test("requests time out on it and retry on the healthy node; its breaker opens; none is lost", async () => {
    hung.child.kill("SIGSTOP");
    try {
      const SENT = 8;
      const results = await Promise.allSettled(Array.from({ length: SENT }, chat));
      const lost = results.filter((r) => r.status === "rejected");
      expect(lost.map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      // The hung node is still "online" (its heartbeats stop only now) but its breaker is open
      // (or, its cooldown over, half-open for one trial).
      const row = await breakerOf("hung");
      expect(row).toBeDefined();
      expect(["open", "half-open"]).toContain(row!.breaker);

      // History: every request finished 200 on the healthy node, some after a retry.
      const history = await waitFor(
        "history rows",
        async () => {
          const { requests } = await getJson<{ requests: { nodeName: string | null; status: number; attempts: number }[] }>(
            `${router.url}/api/requests?limit=50`,
          );
          return requests.length >= SENT ? requests : null;
        },
        10_000,
      );
      expect(history.every((r) => r.status === 200 && r.nodeName === "healthy")).toBe(true);
      expect(history.some((r) => r.attempts > 1)).toBe(true);

      // The next request is served by the healthy node too (if the breaker half-opened meanwhile,
      // its one trial on the hung node costs that request one upstream timeout, then a retry).
      const next = await chat().withResponse();
      const nextId = next.response.headers.get("x-request-id")!;
      const nextRow = await waitFor(
        "the next request's history row",
        () => getJson<{ nodeName: string | null; status: number }>(`${router.url}/api/requests/${nextId}`).catch(() => null),
        10_000,
      );
      expect(nextRow).toMatchObject({ nodeName: "healthy", status: 200 });
      console.log(`hung node: ${SENT}/${SENT} requests succeeded (${history.filter((r) => r.attempts > 1).length} after a retry), breaker ${row!.breaker}`);
    } finally {
      hung.child.kill("SIGCONT");
    }
  });

  test("once it answers again it is used again", async () => {
    await waitFor(
      "the resumed node to serve a request",
      async () => {
        await Promise.all(Array.from({ length: 4 }, chat));
        const { requests } = await getJson<{ requests: { nodeName: string | null }[] }>(`${router.url}/api/requests?limit=4`);
        return requests.some((r) => r.nodeName === "hung");
      },
      60_000,
      500,
    );
    expect((await breakerOf("hung"))?.breaker).toBe("closed");
  });
});
