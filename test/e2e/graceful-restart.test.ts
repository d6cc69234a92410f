// A graceful node restart loses no request (PRODUCT.md §5, issue 13 §4): while clients keep
// sending, one of two nodes is stopped with SIGTERM and started again. The stopping node refuses
// new requests with 503 node_closing (and, while its server closes, Fastify's closing 503; then the
// port refuses connections): the router retries each of those on the other node. Requests already
// running there finish before its engines stop. Real router, nodes, engines and OpenAI client.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { getJson, startNode, startRouter, TEST_API_KEY, tempDir, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";

const CHAT = "demo-chat";
let router: DroverProcess;
let steady: DroverProcess;
let restarting: DroverProcess;
const restartingDir = tempDir("node-restarting");

beforeAll(async () => {
  router = await startRouter(["--heartbeat-ms", "1000"]);
  [steady, restarting] = await Promise.all([startNode(router.url, "steady"), startNode(router.url, "restarting", [], {}, restartingDir)]);
  await waitForReady(router.url, [CHAT], 2);
});

afterAll(async () => {
  await Promise.all([steady?.stop(), restarting?.stop()]);
  await router?.stop();
});

describe("a node restarted gracefully under load", () => {
  test("every request succeeds while it stops and comes back", async () => {
    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    let stop = false;
    const failures: string[] = [];
    let sent = 0;
    const worker = async () => {
      while (!stop) {
        sent++;
        await client.chat.completions
          .create({ model: CHAT, messages: [{ role: "user", content: "hi" }], max_tokens: 2 })
          .catch((err: Error) => failures.push(err.message));
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    // Traffic reaches both nodes first.
    await waitFor(
      "requests on the node that will restart",
      async () => {
        const { requests } = await getJson<{ requests: { nodeName: string | null }[] }>(`${router.url}/api/requests?node=restarting&limit=1`);
        return requests.length > 0;
      },
      60_000,
    );
    await restarting.stop("SIGTERM");
    const sentWhileDown = sent;
    restarting = await startNode(router.url, "restarting", [], {}, restartingDir);
    await waitForReady(router.url, [CHAT], 2);
    // And reaches the restarted node again.
    const since = new Date().toISOString();
    await waitFor(
      "requests on the restarted node",
      async () => {
        const { requests } = await getJson<{ requests: { nodeName: string | null }[] }>(
          `${router.url}/api/requests?node=restarting&from=${encodeURIComponent(since)}&limit=1`,
        );
        return requests.length > 0;
      },
      60_000,
    );
    stop = true;
    await Promise.all(workers);
    console.log(`graceful restart: ${sent} requests sent (${sentWhileDown} by the time the node had stopped), ${failures.length} failed`);
    expect(failures).toEqual([]);
  });
});
