// End to end: cache-aware routing over real router and node processes running the llama engine.
// The turns of one conversation return to one node (where its prefix is cached); another
// conversation can land elsewhere; a saturated node passes a conversation on instead of making it
// wait; losing a node moves only its conversations.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { request } from "undici";
import { helpText } from "../../src/cli/options.js";
import { affinityKeyOf } from "../../src/router/request-path/affinity-key.js";
import { rendezvousOrder } from "../../src/router/request-path/node-selector.js";
import { parsePrometheus, metricSum } from "../support/prometheus.js";
import { AUTH_HEADERS, getJson, startNode, startRouter, TEST_API_KEY, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";

const CHAT = "demo-chat";
const SYSTEM = "You are the assistant of a test that checks where conversations are served. ".repeat(4);

type Message = OpenAI.Chat.ChatCompletionMessageParam;

let router: DroverProcess;
const nodes = new Map<string, DroverProcess>();
let client: OpenAI;
/** Node name → node id, as registered. */
let ids: Record<string, string> = {};

async function nodeIds(): Promise<Record<string, string>> {
  const { nodes: list } = await getJson<{ nodes: { id: string; name: string; state: string }[] }>(`${router.url}/api/nodes`);
  return Object.fromEntries(list.filter((n) => n.state === "online").map((n) => [n.name, n.id]));
}

/** The opening of a conversation whose key ranks `first` first among `among` (by their ids). */
function conversationFor(first: string, among: string[], taken: Set<string>): Message[] {
  for (let i = 0; i < 500; i++) {
    const opening: Message[] = [
      { role: "system", content: SYSTEM },
      { role: "user", content: `Conversation ${i}: tell me about topic ${i}.` },
    ];
    const key = affinityKeyOf("/v1/chat/completions", CHAT, { messages: opening }, {})!;
    const order = rendezvousOrder(
      key,
      among.map((n) => ids[n]!),
    );
    if (order[0] === ids[first] && !taken.has(opening[1]!.content as string)) {
      taken.add(opening[1]!.content as string);
      return opening;
    }
  }
  throw new Error(`no conversation found for ${first}`);
}

/** One turn: the node that served it, its usage and request id; the answer joins the history. */
async function turn(history: Message[], user?: string): Promise<{ node: string; cached: number; prompt: number; requestId: string }> {
  if (user) history.push({ role: "user", content: user });
  const { data, response } = await client.chat.completions.create({ model: CHAT, messages: history, max_tokens: 6, temperature: 0 }).withResponse();
  history.push({ role: "assistant", content: data.choices[0]!.message.content ?? "" });
  return {
    node: response.headers.get("x-drover-node")!,
    cached: data.usage!.prompt_tokens_details?.cached_tokens ?? -1,
    prompt: data.usage!.prompt_tokens,
    requestId: response.headers.get("x-request-id")!,
  };
}

beforeAll(async () => {
  router = await startRouter(["--heartbeat-ms", "1000"]);
  for (const name of ["a", "b"]) nodes.set(name, await startNode(router.url, name));
  await waitForReady(router.url, [CHAT], 2);
  ids = await nodeIds();
  client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
});

afterAll(async () => {
  await Promise.all([...nodes.values()].map((n) => n.stop()));
  await router?.stop();
});

describe("prefix-affinity routing (the default)", { timeout: 120_000 }, () => {
  const taken = new Set<string>();

  test("every turn of a conversation lands on one node, where its prefix is cached; another conversation lands on the other", async () => {
    const convA = conversationFor("a", ["a", "b"], taken);
    const convB = conversationFor("b", ["a", "b"], taken);
    const servedA: string[] = [];
    const servedB: string[] = [];
    const turnsA = [];
    for (let i = 0; i < 4; i++) {
      const a = await turn(convA, i ? `Follow-up ${i} for A.` : undefined);
      const b = await turn(convB, i ? `Follow-up ${i} for B.` : undefined);
      servedA.push(a.node);
      servedB.push(b.node);
      turnsA.push(a);
    }
    expect(servedA).toEqual(["a", "a", "a", "a"]);
    expect(servedB).toEqual(["b", "b", "b", "b"]);
    // From the second turn on, the engine evaluated only the new part: the rest came from its cache.
    for (const t of turnsA.slice(1)) expect(t.cached).toBeGreaterThan(t.prompt / 2);

    // The same conversation through the Ollama API goes to the same node.
    const res = await request(`${router.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH_HEADERS },
      body: JSON.stringify({ model: CHAT, messages: [...convA, { role: "user", content: "And via Ollama?" }], stream: false, options: { num_predict: 4 } }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers["x-drover-node"]).toBe("a");
    await res.body.json();

    // The record says how the request was placed; Prometheus counts the hits.
    const last = turnsA.at(-1)!;
    const record = await waitFor("the last turn's record", () => getJson(`${router.url}/api/requests/${last.requestId}`).catch(() => null), 20_000);
    expect(record).toMatchObject({ nodeName: "a", routing: "prefix", affinity: "hit", cachedTokens: last.cached });
    const metrics = parsePrometheus(await (await fetch(`${router.url}/metrics`)).text());
    expect(metricSum(metrics, "drover_affinity_hits_total", { model: CHAT, routing: "prefix" })).toBeGreaterThanOrEqual(9);
    expect(metricSum(metrics, "drover_affinity_misses_total", { model: CHAT })).toBe(0);
  });

  test("when the conversation's node is saturated, the request goes to the other node instead of waiting", async () => {
    const conv = conversationFor("a", ["a", "b"], taken);
    // Two long streams of the conversation fill node a's two slots.
    const ac = new AbortController();
    const open = () =>
      request(`${router.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...AUTH_HEADERS },
        body: JSON.stringify({ model: CHAT, messages: conv, max_tokens: 3000, stream: true }),
        signal: ac.signal,
      });
    try {
      const streams = await Promise.all([open(), open()]);
      expect(streams.map((s) => s.headers["x-drover-node"])).toEqual(["a", "a"]);
      let ended = 0;
      for (const s of streams)
        s.body.text().then(
          () => ended++,
          () => undefined,
        );
      const next = await turn([...conv], "One more while a is busy.");
      // Causal: the streams still held node a when the request was answered elsewhere.
      expect(ended).toBe(0);
      expect(next.node).toBe("b");
      const record = await waitFor("the record", () => getJson(`${router.url}/api/requests/${next.requestId}`).catch(() => null), 20_000);
      expect(record).toMatchObject({ nodeName: "b", routing: "prefix", affinity: "miss" });
    } finally {
      ac.abort();
    }
    await waitFor(
      "all slots free again",
      async () => (await getJson(`${router.url}/api/nodes`)).nodes.every((n: { inFlight: number }) => n.inFlight === 0),
      30_000,
      50,
    );
    // Free again: the conversation is back on its node.
    expect((await turn(conv, "Back to normal?")).node).toBe("a");
  });

  test("removing a node moves only its conversations, each to its next node", async () => {
    nodes.set("c", await startNode(router.url, "c"));
    await waitForReady(router.url, [CHAT], 3);
    ids = await nodeIds();
    const all = ["a", "b", "c"];
    const convs = all.flatMap((first) => [0, 1].map(() => ({ first, history: conversationFor(first, all, taken) })));
    for (const c of convs) expect((await turn(c.history)).node).toBe(c.first);

    await nodes.get("c")!.stop();
    nodes.delete("c");
    await waitFor("node c offline", async () => !(await nodeIds()).c, 30_000);
    for (const c of convs) {
      const next = await turn(c.history, "After c left.");
      if (c.first === "c") {
        // Its next node among a and b: the same order without c.
        const key = affinityKeyOf("/v1/chat/completions", CHAT, { messages: c.history.slice(0, 2) }, {})!;
        const second = rendezvousOrder(key, [ids.a!, ids.b!])[0];
        expect(ids[next.node]).toBe(second);
      } else {
        expect(next.node).toBe(c.first);
      }
    }
  });
});

describe("--routing", () => {
  test("is documented with its environment variables, and a bad value stops the router with a clear message", async () => {
    expect(helpText("router")).toMatch(/--routing <value>[\s\S]*prefix[\s\S]*env: DROVER_ROUTING\b/);
    expect(helpText("up")).toContain("DROVER_ROUTING_LOAD_FACTOR");
    await expect(startRouter(["--routing", "round-robin"])).rejects.toThrow(/--routing \/ DROVER_ROUTING must be least-load or prefix, not "round-robin"/);
    await expect(startRouter([], { DROVER_ROUTING_LOAD_FACTOR: "0.5" })).rejects.toThrow(/must be at least 1/);
  });
});
