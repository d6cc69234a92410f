// Several routers, one fleet (PRODUCT.md §13, issue 19): a real PostgreSQL, three routers sharing
// it, Debian's nginx balancing round-robin in front of them, and two nodes (2 slots each) given
// only nginx's URL. The nodes learn the routers from the routers' answers and connect to each, so
// every router sees every node online; a node never runs more than its slots, however many
// routers send to it; a conversation lands on the same node through any router; a router killed
// mid-run costs only the requests in flight on it; a router stopped with SIGTERM says goodbye.
//
// Load: DROVER_E2E_LB_CLIENTS concurrent clients (default 200) for DROVER_E2E_LB_SECONDS (default
// 60) through nginx: the figure the contract names, in every run (docs/DEPLOY.md).
import OpenAI from "openai";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { authHeadersFor, getJson, startNode, startRouter, TEST_API_KEY, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";
import { findNginx, startNginx, type TestNginx } from "../support/nginx.js";
import { findPostgres, startPostgres, type TestPostgres } from "../support/postgres.js";
import { metricSamples, metricSum, parsePrometheus } from "../support/prometheus.js";

const CHAT = "demo-chat";
const CLIENTS = Number(process.env.DROVER_E2E_LB_CLIENTS ?? 200);
const SECONDS = Number(process.env.DROVER_E2E_LB_SECONDS ?? 60);
const SLOTS = 2;

const nginxFound = findNginx();
const postgresFound = findPostgres();
const missing = [nginxFound.bin ? null : nginxFound.reason, postgresFound.ok ? null : postgresFound.reason].filter(Boolean).join("; ");

let db: TestPostgres;
let databaseUrl: string;
let routers: DroverProcess[] = [];
let nginx: TestNginx;
let nodes: DroverProcess[] = [];
const NODE_NAMES = ["lb-node-1", "lb-node-2"];

interface Result {
  id: string;
  status: number;
  /** The router nginx got the answer from (the last of $upstream_addr), host:port. */
  upstream: string | null;
  node: string | null;
  error?: string;
}

/** How many results fall under each key. */
function countBy(results: Result[], key: (r: Result) => string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) out[key(r) ?? "none"] = (out[key(r) ?? "none"] ?? 0) + 1;
  return out;
}

const lastUpstream = (value: string | null | undefined) => (value ? (value.split(",").pop() ?? "").trim() : null);
const hostOf = (router: DroverProcess) => new URL(router.url).host;

function client(baseUrl: string): OpenAI {
  return new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: TEST_API_KEY, maxRetries: 0, timeout: 300_000 });
}

async function ask(api: OpenAI, id: string, content: string): Promise<Result> {
  try {
    const { response } = await api.chat.completions
      .create({ model: CHAT, messages: [{ role: "user", content }], max_tokens: 2 }, { headers: { "x-request-id": id } })
      .withResponse();
    return { id, status: response.status, upstream: lastUpstream(response.headers.get("x-upstream")), node: response.headers.get("x-drover-node") };
  } catch (err) {
    if (err instanceof OpenAI.APIError)
      return { id, status: err.status ?? 0, upstream: lastUpstream(err.headers?.get("x-upstream")), node: null, error: err.message };
    return { id, status: 0, upstream: null, node: null, error: (err as Error).message };
  }
}

/** CLIENTS clients through nginx, each sending one request after another until `stop()` is true. */
async function load(prefix: string, stop: () => boolean, results: Result[]): Promise<void> {
  const api = client(nginx.url);
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let n = 0; !stop(); n++) results.push(await ask(api, `${prefix}-${c}-${n}`, `client ${c} asks question ${n}`));
    }),
  );
}

/** Every router's view of the two nodes: the names of those not online there (empty: all fine). */
async function notOnline(among: DroverProcess[]): Promise<string[]> {
  const problems: string[] = [];
  for (const r of among) {
    const { nodes: seen } = await getJson<{ nodes: { name: string; state: string }[] }>(`${r.url}/api/nodes`);
    for (const name of NODE_NAMES) {
      const state = seen.find((n) => n.name === name)?.state ?? "absent";
      if (state !== "online") problems.push(`${name} is ${state} on ${r.url}`);
    }
  }
  return problems;
}

async function nodeMetrics(i: number) {
  const url = `${nodes[i]!.url}/metrics`;
  return parsePrometheus(await (await fetch(url, { headers: await authHeadersFor(url) })).text());
}

/** Each node's own metric of the most requests its engine answered at once. */
async function maxInFlight(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const i of nodes.keys()) out[NODE_NAMES[i]!] = metricSamples(await nodeMetrics(i), "drover_model_max_in_flight", { model: CHAT })[0]?.value ?? NaN;
  return out;
}

/** Requests each node refused with 503 (node_busy: its slots were taken by other routers' requests). */
async function refusedBusy(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const i of nodes.keys()) out[NODE_NAMES[i]!] = metricSum(await nodeMetrics(i), "drover_node_requests_total", { model: CHAT, status: "503" });
  return out;
}

async function historyCounts(prefix: string): Promise<Map<string, number>> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const { rows } = await c.query<{ request_id: string; n: number }>(
      "select request_id, count(*)::int as n from requests where request_id like $1 group by request_id",
      [`${prefix}-%`],
    );
    return new Map(rows.map((r) => [r.request_id, r.n]));
  } finally {
    await c.end();
  }
}

const offlineFlips = () =>
  routers.flatMap((r) =>
    r
      .output()
      .split("\n")
      .filter((l) => l.includes("marked offline")),
  );

describe.skipIf(missing !== "")(`several routers behind nginx, one fleet${missing ? ` (skipped: ${missing})` : ""}`, () => {
  beforeAll(async () => {
    db = await startPostgres();
    databaseUrl = await db.createDatabase();
    const args = ["--database-url", databaseUrl, "--heartbeat-ms", "3000"];
    routers = await Promise.all([startRouter(args), startRouter(args), startRouter(args)]);
    nginx = await startNginx(routers.map((r) => r.url));
    nodes = await Promise.all(NODE_NAMES.map((name) => startNode(nginx.url, name)));
    for (const r of routers) await waitForReady(r.url, [CHAT], 2, 180_000);
  }, 240_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all(routers.map((r) => r.stop()));
    await nginx?.stop();
    await db?.stop();
  });

  test("nodes given only the load balancer's URL register with every router, and stop talking to the load balancer", async () => {
    expect(await notOnline(routers)).toEqual([]);
    for (const node of nodes) {
      expect(node.output()).toContain("the given router URL leads to a fleet of routers; linking to each directly");
      for (const r of routers) expect(node.output()).toContain(r.url);
    }
  });

  test("the same conversation lands on the same node through every router", async () => {
    const placements: string[][] = [];
    const seen = new Set<string>();
    // Conversations until both nodes have been chosen for one (rendezvous hashing spreads them).
    for (let i = 0; i < 24 && seen.size < 2; i++) {
      const messages = [
        { role: "system" as const, content: `You are assistant number ${i}.` },
        { role: "user" as const, content: `Conversation ${i}: hello.` },
      ];
      const row: string[] = [];
      for (const r of routers) {
        const { response } = await client(r.url).chat.completions.create({ model: CHAT, messages, max_tokens: 1 }).withResponse();
        row.push(response.headers.get("x-drover-node")!);
      }
      placements.push(row);
      seen.add(row[0]!);
    }
    console.log(`affinity across routers: ${placements.map((p) => p.join("/")).join(", ")}`);
    for (const row of placements) expect(new Set(row).size).toBe(1);
    expect(seen).toEqual(new Set(NODE_NAMES));
  }, 120_000);

  test(
    `${CLIENTS} clients for ${SECONDS} s through nginx: nodes stay online on every router, never past their slots, every request 200 and recorded once`,
    async () => {
      const results: Result[] = [];
      const until = Date.now() + SECONDS * 1000;
      let watching = true;
      const offline: string[] = [];
      const watcher = (async () => {
        while (watching) {
          offline.push(...(await notOnline(routers)));
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      await load("lb", () => Date.now() > until, results);
      watching = false;
      await watcher;

      const perRouter = countBy(results, (r) => r.upstream);
      const peaks = await maxInFlight();
      console.log(
        `load through nginx: ${results.length} requests in ${SECONDS} s by ${CLIENTS} clients; statuses ${JSON.stringify(countBy(results, (r) => String(r.status)))}; ` +
          `per router ${JSON.stringify(perRouter)}; per node ${JSON.stringify(countBy(results, (r) => r.node))}; node max in flight ${JSON.stringify(peaks)}; refused busy by the nodes ${JSON.stringify(await refusedBusy())}`,
      );
      expect(results.filter((r) => r.status !== 200)).toEqual([]);
      expect(offline).toEqual([]);
      expect(offlineFlips()).toEqual([]);
      // Every router took a share (round-robin), and each node ran requests but never more than its slots.
      for (const r of routers) expect(perRouter[hostOf(r)] ?? 0).toBeGreaterThan(0);
      for (const name of NODE_NAMES) {
        expect(peaks[name]).toBeGreaterThan(0);
        expect(peaks[name]).toBeLessThanOrEqual(SLOTS);
      }

      // The shared history: every request exactly once (the recorders write in batches).
      const counts = await waitFor(
        "every request in the shared history",
        async () => {
          const c = await historyCounts("lb");
          return c.size >= results.length ? c : null;
        },
        30_000,
        500,
      );
      expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
      expect(new Set(counts.keys())).toEqual(new Set(results.map((r) => r.id)));
    },
    (SECONDS + 120) * 1000,
  );

  test("a router killed mid-run: only the requests in flight on it fail, a retry succeeds, the nodes forget it, the others keep serving", async () => {
    const [, , victim] = routers as [DroverProcess, DroverProcess, DroverProcess];
    const survivors = routers.slice(0, 2);
    const results: Result[] = [];
    let stop = false;
    const running = load("kill", () => stop, results);
    // Mid-run: the victim is serving its share.
    await waitFor(
      "requests answered through the router to be killed",
      async () => results.filter((r) => r.upstream === hostOf(victim) && r.status === 200).length >= 10,
      60_000,
    );
    victim.child.kill("SIGKILL");
    await new Promise((r) => victim.child.once("exit", r));
    const killedAt = results.length;
    // The nodes forget it after missed answers; traffic keeps flowing meanwhile.
    for (const node of nodes) {
      await waitFor(
        `${node.url} to drop the killed router`,
        async () =>
          node
            .output()
            .split("\n")
            .some((l) => l.includes("dropped a router") && l.includes(victim.url)),
        60_000,
      );
    }
    const droppedAt = results.length;
    await waitFor("more requests after the nodes dropped it", async () => results.length >= droppedAt + 2 * CLIENTS, 120_000);
    stop = true;
    await running;

    const failed = results.filter((r) => r.status !== 200);
    console.log(
      `router killed: ${results.length} requests (${killedAt} before the kill), ${failed.length} failed, all in flight on the killed router ${hostOf(victim)} (statuses ${JSON.stringify(countBy(failed, (f) => String(f.status)))})`,
    );
    // Every failure was on the killed router; every request answered by another router succeeded.
    expect(failed.filter((f) => f.upstream !== hostOf(victim))).toEqual([]);
    expect(results.filter((r) => r.upstream !== hostOf(victim) && r.status !== 200)).toEqual([]);
    expect(results.filter((r) => r.status === 200 && r.upstream !== hostOf(victim)).length).toBeGreaterThan(0);
    // A client's retry of each failed request (same request id) succeeds through the load balancer.
    const api = client(nginx.url);
    for (const f of failed) expect((await ask(api, f.id, "retry")).status).toBe(200);
    // The survivors still see both nodes online, and nothing flapped.
    expect(await notOnline(survivors)).toEqual([]);
    expect(offlineFlips()).toEqual([]);
    expect(Object.values(await maxInFlight()).every((n) => n <= SLOTS)).toBe(true);

    // History: nothing twice; everything the survivors answered (and the retries) is there. What the
    // killed router answered in its last batch window (250 ms) may be missing: SIGKILL loses it.
    const expected = [...results.filter((r) => r.status === 200 && r.upstream !== hostOf(victim)).map((r) => r.id), ...failed.map((f) => f.id)];
    const counts = await waitFor(
      "the survivors' requests and the retries in the shared history",
      async () => {
        const c = await historyCounts("kill");
        return expected.every((id) => c.has(id)) ? c : null;
      },
      30_000,
      500,
    );
    expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
    console.log(
      `history after the kill: ${counts.size} of ${results.length} requests; answered by the killed router but not recorded: ${results.filter((r) => r.status === 200 && r.upstream === hostOf(victim) && !counts.has(r.id)).length}`,
    );
  }, 300_000);

  test("a router stopped with SIGTERM finishes, tells the nodes (they drop it at once), and the last router keeps serving", async () => {
    const [first, second] = routers as [DroverProcess, DroverProcess];
    const api = client(first.url);
    const before = nodes.map((n) => n.output().length);
    // A stream running on the leaving router (its first chunk arrived) finishes.
    const stream = await client(second.url).chat.completions.create({
      model: CHAT,
      messages: [{ role: "user", content: "one running while its router leaves" }],
      max_tokens: 8,
      stream: true,
    });
    const chunks = stream[Symbol.asyncIterator]();
    expect((await chunks.next()).done).toBe(false);
    const stopping = second.stop("SIGTERM");
    let rest = 0;
    for (let c = await chunks.next(); !c.done; c = await chunks.next()) rest++;
    await stopping;
    expect(second.child.exitCode).toBe(0);
    console.log(`SIGTERM: the stream on the leaving router got ${rest} more chunks after the signal and ended normally`);
    for (const [i, node] of nodes.entries()) {
      await waitFor(
        `${node.url} to drop the leaving router`,
        async () =>
          node
            .output()
            .slice(before[i])
            .split("\n")
            .find((l) => l.includes("dropped a router") && l.includes(second.url)),
        30_000,
      );
      const line = node
        .output()
        .slice(before[i])
        .split("\n")
        .find((l) => l.includes("dropped a router") && l.includes(second.url))!;
      expect(line).toContain("the router is leaving the fleet");
    }
    expect((await ask(api, "leave-after", "still there?")).status).toBe(200);
    expect(await notOnline([first])).toEqual([]);
  }, 120_000);
});
