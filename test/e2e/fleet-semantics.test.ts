// Fleet semantics with real router and node processes: the readiness gate, the admission queue
// (limit, overflow, disconnects), proportional routing by slots, failover when a node dies, and
// re-registration after a router restart.
import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import OpenAI from "openai";
import { Agent, request } from "undici";
import { afterEach, describe, expect, test } from "vitest";
import { DEMO_CATALOG } from "../../src/catalog/builtin.js";
import { writeTinyModel } from "../../src/gguf/tiny-model.js";
import { UpstreamServer } from "../fixtures/upstream-server.js";
import {
  AUTH_HEADERS,
  authHeadersFor,
  getJson,
  startDrover,
  startNode,
  startRouter,
  tempDir,
  waitFor,
  waitForReady,
  ROUTER_BANNER,
  TEST_ADMIN,
  TEST_API_KEY,
  TEST_NODE_TOKEN,
  type DroverProcess,
} from "../support/fleet.js";

const CHAT = "demo-chat";
const running: DroverProcess[] = [];
const track = <T extends DroverProcess>(p: T) => {
  running.push(p);
  return p;
};

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop("SIGKILL")));
});

const agent = new Agent({ connections: 4096, headersTimeout: 600_000, bodyTimeout: 600_000 });

async function complete(routerUrl: string, body: object, signal?: AbortSignal) {
  const res = await request(`${routerUrl}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...AUTH_HEADERS },
    body: JSON.stringify({ model: CHAT, prompt: "hi", max_tokens: 1, ...body }),
    dispatcher: agent,
    signal,
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: text };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

describe("registration gate", () => {
  test("a node with no ready model is listed as initializing, never routed to, and becomes routable once a model is ready", async () => {
    // The model's upstream holds every request until the test opens it: the node cannot have a
    // ready model before then, however fast the machine.
    const upstream = await new UpstreamServer().start();
    try {
      const file = join(tempDir("upstream"), "demo-chat.gguf");
      await writeTinyModel(DEMO_CATALOG.models[0]!.source.generate!, file);
      const bytes = await readFile(file);
      upstream.set("demo-chat.gguf", bytes);
      let open!: () => void;
      upstream.gate = new Promise<void>((r) => (open = r));
      const catalogPath = join(tempDir("catalog"), "catalog.yaml");
      writeFileSync(
        catalogPath,
        [
          "name: held",
          "models:",
          "  - id: demo-chat",
          `    sizeBytes: ${bytes.length}`,
          "    memoryBytes: 64000000",
          "    capabilities: [chat, completion]",
          "    source:",
          `      gguf: { url: ${upstream.fileUrl("demo-chat.gguf")} }`,
        ].join("\n"),
      );
      const router = track(await startRouter(["--catalog", catalogPath]));
      // Sent before any node exists: it must wait, not fail.
      let earlySettled = false;
      const early = complete(router.url, {}).finally(() => (earlySettled = true));
      const node = track(await startNode(router.url, "slow-node"));

      const seen = await waitFor(
        "the node listed as initializing",
        async () => {
          const { nodes } = await getJson(`${router.url}/api/nodes`);
          return nodes.find((n: { name: string; state: string }) => n.name === "slow-node" && n.state === "initializing");
        },
        60_000,
      );
      expect(seen.models[0].state).not.toBe("ready");
      // Its registration was refused 503 `initializing` by the router's readiness check, and it
      // keeps trying: the router's record of it is refreshed while the model is held back.
      await waitFor(
        "a later registration attempt",
        async () => {
          const { nodes } = await getJson(`${router.url}/api/nodes`);
          const n = nodes.find((x: { name: string }) => x.name === "slow-node");
          return n && Date.parse(n.lastSeen) > Date.parse(seen.lastSeen) ? n : null;
        },
        60_000,
      );
      // Never routed to: the early request still waits in the queue.
      expect((await getJson(`${router.url}/api/queue`)).total).toBe(1);
      expect(earlySettled).toBe(false);
      expect(upstream.fileRequests("demo-chat.gguf").length).toBeGreaterThan(0);

      open();
      await waitForReady(router.url, [CHAT], 1);
      const res = await early;
      expect(res.status).toBe(200);
      expect(res.headers["x-drover-node"]).toBe("slow-node");
      void node;
    } finally {
      await upstream.close();
    }
  });
});

describe("admission queue", () => {
  // The drain runs 1024 real completions through one node: its own generous limit, not the default
  // test timeout, so that a loaded machine is slower, not failing.
  test("1024 waiting requests all complete once a node is ready; the 50 beyond the limit get 503 queue_full while they still wait", {
    timeout: 900_000,
  }, async () => {
    const router = track(await startRouter());
    const sent = Date.now();
    const all = Array.from({ length: 1024 + 50 }, () => complete(router.url, {}).then((r) => ({ ...r, at: Date.now() - sent })));

    const overflow: Awaited<(typeof all)[number]>[] = [];
    await waitFor(
      "50 overflow answers",
      async () => {
        const settled = await Promise.all(all.map((p) => Promise.race([p, Promise.resolve(null)])));
        overflow.splice(0, overflow.length, ...settled.filter((r): r is NonNullable<typeof r> => r !== null));
        return overflow.length >= 50;
      },
      30_000,
      50,
    );
    expect(overflow).toHaveLength(50);
    // Answered without waiting for capacity: no node exists yet, the 1024 are all still queued.
    expect((await getJson<{ nodes: unknown[] }>(`${router.url}/api/nodes`)).nodes).toHaveLength(0);
    for (const r of overflow) {
      expect(r.status).toBe(503);
      expect(r.headers["retry-after"]).toBeDefined();
      expect(JSON.parse(r.body).error).toMatchObject({ type: "server_error", code: "queue_full" });
    }
    const slowest = Math.max(...overflow.map((r) => r.at));
    console.log(`overflow: 50 x 503 queue_full answered within ${slowest} ms of sending 1074 requests`);
    expect((await getJson(`${router.url}/api/queue`)).total).toBe(1024);

    track(await startNode(router.url, "late", ["--slots", "4"]));
    const results = await Promise.all(all);
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 503);
    expect(ok).toHaveLength(1024);
    expect(refused).toHaveLength(50);
    console.log(`drain: 1024 queued requests completed ${Math.max(...ok.map((r) => r.at))} ms after sending`);
    expect((await getJson(`${router.url}/api/queue`)).total).toBe(0);
  });

  test("a client that disconnects while queued frees its place", async () => {
    const router = track(await startRouter());
    const ac = new AbortController();
    const pending = complete(router.url, {}, ac.signal).catch((err) => err);
    const stays = complete(router.url, {});
    await waitFor("two queued", async () => (await getJson(`${router.url}/api/queue`)).total === 2, 10_000, 20);
    ac.abort();
    await waitFor("depth back to one", async () => (await getJson(`${router.url}/api/queue`)).total === 1, 10_000, 20);
    await pending;
    track(await startNode(router.url, "n"));
    expect((await stays).status).toBe(200);
  });
});

describe("routing and failover", () => {
  test("two nodes with 1 and 3 slots share the load in proportion, and no node gets more than its slots", async () => {
    const router = track(await startRouter());
    const nodeProcs = [track(await startNode(router.url, "one-slot", ["--slots", "1"])), track(await startNode(router.url, "three-slots", ["--slots", "3"]))];
    await waitForReady(router.url, [CHAT], 2);
    // Long streams hold their slot; the node serving each is in its response headers at once.
    // Each may run to the context's end (~4,000 tokens), but the tiny demo model writes them in
    // seconds, and on a loaded machine one of the four can end before the fifth reaches the
    // router; the fifth then rightly finds a free slot. Such a round proves nothing either way, so
    // it is run again; a round counts when the fifth is seen in the router's queue while all four
    // still hold their slots (a fifth admitted past full slots would never show there). Then the
    // four are cancelled, which frees their slots, and the fifth must start.
    const all = new AbortController();
    const open = (n: number) =>
      Array.from({ length: n }, () => {
        const own = new AbortController();
        const response = request(`${router.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", ...AUTH_HEADERS },
          body: JSON.stringify({ model: CHAT, prompt: "hi", max_tokens: 4000, stream: true }),
          dispatcher: agent,
          signal: AbortSignal.any([all.signal, own.signal]),
        });
        return { response, cancel: () => own.abort() };
      });
    const settled = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        () => undefined,
      );
    // Requests the nodes refused as busy (503 node_busy: past their slots). The router must keep to
    // the slots itself; a node's refusal is only its backstop, which the router quietly re-queues.
    const busyAnswers = async () => {
      let n = 0;
      for (const node of nodeProcs) {
        const metrics = await (await fetch(`${node.url}/metrics`, { headers: await authHeadersFor(`${node.url}/metrics`) })).text();
        for (const m of metrics.matchAll(/^drover_node_requests_total\{[^}]*status="503"\} (\d+)$/gm)) n += Number(m[1]);
      }
      return n;
    };
    try {
      let counted = 0;
      for (let round = 0; counted < 2; round++) {
        expect(round, "rounds in which a stream ended before the fifth request reached the router").toBeLessThan(8);
        const busyBefore = await busyAnswers();
        const four = open(4);
        const streams = await Promise.all(four.map((f) => f.response));
        const nodes = streams.map((s) => s.headers["x-drover-node"]);
        expect(nodes.filter((n) => n === "three-slots")).toHaveLength(3);
        expect(nodes.filter((n) => n === "one-slot")).toHaveLength(1);
        let ended = 0;
        const ends = streams.map((st) => settled(st.body.text()).finally(() => ended++));
        const [fifth] = open(1);
        // Either the fifth is seen waiting (all four still running), or a stream ended first.
        const queued = await waitFor(
          "the fifth request waiting in the router's queue, or a stream ending first",
          async () => ((await getJson(`${router.url}/api/queue`)).total === 1 ? "queued" : ended > 0 ? "slot freed first" : false),
          60_000,
          20,
        );
        // Up to here no node refused anything: the fifth waited in the router, not at a node. (Once
        // the four are cancelled, the router may free a slot before the node has seen the cancel,
        // and the node's backstop may then refuse the fifth once: that is expected.)
        if (queued === "queued") expect(await busyAnswers(), "node_busy refusals while the fifth waited").toBe(busyBefore);
        for (const f of four) f.cancel();
        const fifthRes = await fifth!.response;
        expect(["one-slot", "three-slots"]).toContain(fifthRes.headers["x-drover-node"]);
        fifth!.cancel();
        await Promise.all([...ends, settled(fifthRes.body.text())]);
        await waitFor(
          "all slots free again",
          async () => {
            const { nodes: list } = await getJson(`${router.url}/api/nodes`);
            return list.every((n: { inFlight: number }) => n.inFlight === 0);
          },
          30_000,
          20,
        );
        if (queued === "queued") counted++;
      }
    } finally {
      all.abort();
    }
  }, 300_000);

  test("a node killed with SIGKILL while requests are queued and in flight loses none of them", async () => {
    const router = track(await startRouter(["--heartbeat-ms", "1000"]));
    const a = track(await startNode(router.url, "victim", ["--slots", "2"]));
    track(await startNode(router.url, "survivor", ["--slots", "2"]));
    await waitForReady(router.url, [CHAT], 2);
    const all = Array.from({ length: 30 }, () => complete(router.url, { max_tokens: 24 }));
    await waitFor(
      "requests in flight on the victim",
      async () => {
        const node = (await getJson(`${router.url}/api/nodes`)).nodes.find((n: { name: string }) => n.name === "victim");
        return node.inFlight > 0;
      },
      10_000,
      10,
    );
    a.child.kill("SIGKILL");
    const results = await Promise.all(all);
    expect(results.map((r) => r.status)).toEqual(Array(30).fill(200));
    await waitFor(
      "victim marked offline",
      async () => {
        const node = (await getJson(`${router.url}/api/nodes`)).nodes.find((n: { name: string }) => n.name === "victim");
        return node.state === "offline";
      },
      15_000,
    );
  });

  test("an engine killed mid-stream ends the client's stream with an error event", async () => {
    const router = track(await startRouter());
    const node = track(await startNode(router.url, "n"));
    await waitForReady(router.url, [CHAT], 1);
    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: CHAT, messages: [{ role: "user", content: "go" }], max_tokens: 4000, stream: true });
    let chunks = 0;
    let failure: unknown = null;
    try {
      for await (const _ of stream) {
        if (++chunks === 3) {
          const { execFileSync } = await import("node:child_process");
          const out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(node.child.pid)], { encoding: "utf8" });
          const line = out.split("\n").find((l) => l.includes(`--model-id ${CHAT}`))!;
          process.kill(Number(line.trim().split(/\s+/)[0]), "SIGKILL");
        }
      }
    } catch (err) {
      failure = err;
    }
    expect(chunks).toBeGreaterThanOrEqual(3);
    expect(failure).toBeInstanceOf(OpenAI.APIError);
  });

  test("after a router restart, nodes register again without operator action", async () => {
    const port = await freePort();
    const dataDir = tempDir("router-restart");
    const args = [
      "router",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--catalog",
      "demo",
      "--data-dir",
      dataDir,
      "--node-token",
      TEST_NODE_TOKEN,
      "--heartbeat-ms",
      "500",
    ];
    const env = { DROVER_API_KEY: TEST_API_KEY, DROVER_ADMIN_PASSWORD: TEST_ADMIN.password };
    let router = track(await startDrover(args, ROUTER_BANNER, env));
    track(await startNode(router.url, "steady"));
    await waitForReady(router.url, [CHAT], 1);
    await router.stop("SIGKILL");
    router = track(await startDrover(args, ROUTER_BANNER, env));
    await waitForReady(router.url, [CHAT], 1, 30_000);
    expect((await complete(router.url, {})).status).toBe(200);
  });
});
