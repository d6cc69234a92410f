// Hostile and malformed input against one real router (and one real node behind it, so bodies
// that happen to be valid go all the way through): property-based fuzzing (fast-check) of every
// JSON body route — OpenAI, Ollama, fleet and admin — plus oversized bodies and headers, path
// traversal, and slow-loris clients. The router must answer 4xx in the route's error shape, never
// 5xx, never crash, and keep serving.
import fc from "fast-check";
import { request as httpRequest } from "node:http";
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { adminToken, AUTH_HEADERS, getJson, startNode, startRouter, TEST_NODE_TOKEN, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";

const CHAT = "demo-chat";
const EMBED = "demo-embed";
/** Generated bodies per route: enough to hit each kind of damage several times, quick on 2 cores. */
const RUNS = 100;
const HEADER_TIMEOUT_MS = 1_500;
const REQUEST_TIMEOUT_MS = 3_000;

let router: DroverProcess;
let node: DroverProcess;
let admin: Record<string, string>;
// The node token and a node secret, as a drover node sends them with registrations and heartbeats.
const NODE_AUTH = { authorization: `Bearer ${TEST_NODE_TOKEN}`, "x-drover-node-secret": "fuzz-node-secret-0001" };

beforeAll(async () => {
  router = await startRouter(["--header-timeout", String(HEADER_TIMEOUT_MS), "--request-timeout", String(REQUEST_TIMEOUT_MS)]);
  node = await startNode(router.url, "node-a");
  await waitForReady(router.url, [CHAT, EMBED], 1);
  admin = { authorization: `Bearer ${await adminToken(router.url)}` };
  // PATCH target for the fuzzer, so the admin account itself is never changed.
  await getJson(`${router.url}/api/users`, {
    method: "POST",
    headers: { ...admin, "content-type": "application/json" },
    body: JSON.stringify({ username: "fuzz-target", password: "fuzz-target-pw", role: "viewer" }),
  });
});

afterAll(async () => {
  await node?.stop();
  await router?.stop();
});

type Shape = "openai" | "ollama" | "anthropic";
interface BodyRoute {
  method: "POST" | "PATCH";
  path: string;
  shape: Shape;
  auth: () => Record<string, string>;
  /** A valid body; the fuzzer drops, retypes and inflates its fields. */
  base: Record<string, unknown>;
  /** Statuses other than 2xx/4xx that are the route's documented answer to a valid body. */
  alsoOk?: number[];
}

const ROUTES: BodyRoute[] = [
  {
    method: "POST",
    path: "/v1/chat/completions",
    shape: "openai",
    auth: () => AUTH_HEADERS,
    base: { model: CHAT, messages: [{ role: "user", content: "hi" }], max_tokens: 2, stream: false, temperature: 0.5 },
  },
  { method: "POST", path: "/v1/completions", shape: "openai", auth: () => AUTH_HEADERS, base: { model: CHAT, prompt: "hi", max_tokens: 2, stream: false } },
  { method: "POST", path: "/v1/embeddings", shape: "openai", auth: () => AUTH_HEADERS, base: { model: EMBED, input: ["a", "b"] } },
  {
    method: "POST",
    path: "/v1/responses",
    shape: "openai",
    auth: () => AUTH_HEADERS,
    base: {
      model: CHAT,
      instructions: "Be brief.",
      input: [{ role: "user", content: [{ type: "input_text", text: "hi" }] }],
      max_output_tokens: 2,
      store: false,
      tools: [{ type: "function", name: "f", parameters: { type: "object" } }],
    },
  },
  {
    method: "POST",
    path: "/v1/messages",
    shape: "anthropic",
    auth: () => AUTH_HEADERS,
    base: {
      model: CHAT,
      system: "Be brief.",
      messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
      max_tokens: 2,
      tools: [{ name: "f", input_schema: { type: "object" } }],
    },
  },
  {
    method: "POST",
    path: "/v1/messages/count_tokens",
    shape: "anthropic",
    auth: () => AUTH_HEADERS,
    base: { model: CHAT, messages: [{ role: "user", content: "hi" }] },
  },
  {
    method: "POST",
    path: "/api/chat",
    shape: "ollama",
    auth: () => AUTH_HEADERS,
    base: { model: CHAT, messages: [{ role: "user", content: "hi" }], stream: false, options: { num_predict: 2 } },
  },
  {
    method: "POST",
    path: "/api/generate",
    shape: "ollama",
    auth: () => AUTH_HEADERS,
    base: { model: CHAT, prompt: "hi", stream: false, options: { num_predict: 2 } },
  },
  { method: "POST", path: "/api/embed", shape: "ollama", auth: () => AUTH_HEADERS, base: { model: EMBED, input: "hi" } },
  { method: "POST", path: "/api/embeddings", shape: "ollama", auth: () => AUTH_HEADERS, base: { model: EMBED, prompt: "hi" } },
  { method: "POST", path: "/api/show", shape: "ollama", auth: () => AUTH_HEADERS, base: { model: CHAT } },
  // A registration that validates is probed (the URL does not answer): 503 "initializing" is its documented answer.
  {
    method: "POST",
    path: "/api/nodes/register",
    shape: "openai",
    auth: () => NODE_AUTH,
    alsoOk: [503],
    base: { nodeId: "fuzz-node", name: "fuzz", apiUrl: "http://127.0.0.1:9/", version: "0.0.0", engine: "llama", models: [{ id: CHAT, state: "ready" }] },
  },
  {
    method: "POST",
    path: "/api/nodes/heartbeat",
    shape: "openai",
    auth: () => NODE_AUTH,
    base: { nodeId: "fuzz-node", models: [{ id: CHAT, state: "ready", slots: 1 }], inFlight: 0 },
  },
  { method: "POST", path: "/api/auth/login", shape: "openai", auth: () => ({}), base: { username: "fuzz-target", password: "wrong-password" } },
  { method: "POST", path: "/api/auth/password", shape: "openai", auth: () => admin, base: { currentPassword: "not-it", newPassword: "new-password-123" } },
  { method: "POST", path: "/api/keys", shape: "openai", auth: () => admin, base: { name: "fuzz", models: [CHAT], expiresInDays: 1 } },
  { method: "POST", path: "/api/users", shape: "openai", auth: () => admin, base: { username: "fuzzed", password: "fuzzed-password", role: "viewer" } },
  { method: "PATCH", path: "/api/users/fuzz-target", shape: "openai", auth: () => admin, base: { role: "viewer" } },
  { method: "PATCH", path: "/api/nodes/no-such-node", shape: "openai", auth: () => admin, base: { enabled: false, slots: 1 } },
];

/** Values of the wrong type, huge or odd numbers, long strings and deep nesting. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 64, 0.5, "", "\u0000", "\ud800", [], {}),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 40 }),
  fc.string({ minLength: 5_000, maxLength: 20_000 }),
  fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 5 }),
  fc.anything({ maxDepth: 3 }),
  fc.integer({ min: 50, max: 400 }).map((depth) => {
    let v: unknown = "deep";
    for (let i = 0; i < depth; i++) v = i % 2 ? { a: v } : [v];
    return v;
  }),
);

/** A body for `route`: the valid base with fields dropped, retyped or added; random JSON; raw bytes; deep nesting. */
/** Token limits stay tiny or invalid (never a large valid count), so bodies that pass generate 2 tokens, not thousands. */
// (null and -1 are left out: they validly mean "no limit", which is a long generation, not bad input.)
const tokenLimit = fc.oneof(fc.integer({ min: 1, max: 3 }), fc.constantFrom(0.5, -7, 1e308, -1e308, 2 ** 64, Number.MAX_SAFE_INTEGER + 2, "2", [], {}, true));
const LIMITERS: Record<string, fc.Arbitrary<unknown>> = {
  max_tokens: tokenLimit,
  max_output_tokens: tokenLimit,
  options: fc.oneof(
    tokenLimit.map((n) => ({ num_predict: n })),
    fc.constantFrom(null, "x", [], 5, { num_predict: 2, temperature: "hot" }, { num_predict: 2, num_ctx: 1e308 }),
  ),
};

function bodyFor(route: BodyRoute): fc.Arbitrary<string | Uint8Array> {
  const keys = Object.keys(route.base).filter((k) => !(k in LIMITERS));
  const limiters = Object.keys(route.base).filter((k) => k in LIMITERS);
  const mutated = fc
    .record({
      drop: fc.subarray(keys),
      retype: fc.dictionary(fc.constantFrom(...keys, "extra", "__proto__", "constructor"), hostileValue, { maxKeys: 3 }),
      limits: fc.record(Object.fromEntries(limiters.map((k) => [k, LIMITERS[k]!]))),
    })
    .map(({ drop, retype, limits }) => {
      const body: Record<string, unknown> = { ...route.base, ...limits };
      for (const k of drop) delete body[k];
      for (const [k, v] of Object.entries(retype)) Object.defineProperty(body, k, { value: v, enumerable: true, writable: true, configurable: true });
      return JSON.stringify(body);
    });
  const deepText = fc.integer({ min: 1_000, max: 100_000 }).map((n) => "[".repeat(n) + "]".repeat(n));
  // Invalid UTF-8 inside an otherwise well-formed body, and plain random bytes.
  const badUtf8 = fc.uint8Array({ minLength: 1, maxLength: 8 }).map((bytes) => {
    const [head, tail] = JSON.stringify({ ...route.base, [keys[0]!]: "XX" }).split("XX") as [string, string];
    return Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe, 0xc3, ...bytes]), Buffer.from(tail)]);
  });
  return fc.oneof(
    { weight: 5, arbitrary: mutated },
    { weight: 2, arbitrary: fc.json({ maxDepth: 4 }) },
    { weight: 1, arbitrary: deepText },
    { weight: 1, arbitrary: badUtf8 },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.constantFrom("", "null", "{", '{"model":', "[]", '"x"', "1e999") },
  );
}

function isErrorShape(shape: Shape, body: unknown): boolean {
  if (typeof body !== "object" || body === null) return false;
  const error = (body as { error?: unknown }).error;
  if (shape === "ollama") return typeof error === "string" && error.length > 0;
  if (shape === "anthropic")
    return (
      (body as { type?: unknown }).type === "error" &&
      typeof error === "object" &&
      error !== null &&
      typeof (error as { message?: unknown }).message === "string" &&
      typeof (error as { type?: unknown }).type === "string"
    );
  return (
    typeof error === "object" &&
    error !== null &&
    typeof (error as { message?: unknown }).message === "string" &&
    typeof (error as { type?: unknown }).type === "string"
  );
}

/** Raw HTTP/1.1 request without any URL normalisation (fetch would resolve ../ itself). */
function rawSend(method: string, path: string, headers: Record<string, string> = {}, body?: string, finish = true): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(router.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, body: text }));
    });
    // The router answers 413 and closes before a too-large body is sent: the answer counts, not the write error.
    req.on("error", (err) => setTimeout(() => reject(err), 500));
    if (finish) req.end(body);
    else req.write(body ?? "");
  });
}
/**
 * A raw HTTP/1.1 client that sends a chunked body of `mib` MiB in 1 MiB pieces and only then reads
 * the answer; resolves with the answer's text, or "error <code>" when the connection was reset.
 */
async function uploadThenRead(path: string, mib: number): Promise<string> {
  const { hostname, port } = new URL(router.url);
  const sock = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  sock.pause();
  let failure: string | null = null;
  sock.on("error", (err: NodeJS.ErrnoException) => (failure ??= err.code ?? err.message));
  const auth = Object.entries(AUTH_HEADERS)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  sock.write(`POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\n${auth}transfer-encoding: chunked\r\n\r\n`);
  const piece = Buffer.alloc(1024 * 1024, "x");
  for (let i = 0; i < mib && failure === null; i++) {
    sock.write(`${piece.length.toString(16)}\r\n`);
    sock.write(piece);
    if (!sock.write("\r\n"))
      await new Promise((resolve) => {
        sock.once("drain", resolve);
        sock.once("close", resolve);
      });
    await new Promise((resolve) => setTimeout(resolve, 25)); // a slow uplink: still sending when the router has answered
  }
  if (failure === null) await new Promise<void>((resolve) => sock.write("0\r\n\r\n", () => resolve()));
  let text = "";
  sock.on("data", (d: Buffer) => (text += d.toString("utf8")));
  sock.resume();
  // The head arrives whole in one segment; the status line is all that is read.
  await waitFor("the answer or a reset", async () => failure !== null || text.includes("\r\n\r\n") || sock.destroyed, 30_000, 20);
  sock.destroy();
  return failure !== null && !text ? `error ${failure}` : text;
}

const rawGet = (path: string, headers: Record<string, string> = {}) => rawSend("GET", path, headers);

const alive = (p: DroverProcess) => p.child.exitCode === null && p.child.signalCode === null;

describe("fuzzed JSON bodies: 4xx in the route's error shape, never 5xx", () => {
  const tally = { sent: 0, ok2xx: 0, rejected4xx: 0 };
  for (const route of ROUTES) {
    test(`${route.method} ${route.path}`, async () => {
      await fc.assert(
        fc.asyncProperty(bodyFor(route), async (body) => {
          const res = await fetch(`${router.url}${route.path}`, {
            method: route.method,
            headers: { "content-type": "application/json", ...route.auth() },
            body: body as BodyInit,
          });
          const text = await res.text();
          tally.sent++;
          if (res.status >= 200 && res.status < 300) return void tally.ok2xx++;
          if (route.alsoOk?.includes(res.status)) return;
          expect(res.status, text.slice(0, 300)).toBeGreaterThanOrEqual(400);
          expect(res.status, text.slice(0, 300)).toBeLessThan(500);
          expect(isErrorShape(route.shape, JSON.parse(text)), text.slice(0, 300)).toBe(true);
          tally.rejected4xx++;
        }),
        { numRuns: RUNS, endOnFailure: true },
      );
    });
  }

  test("a JSON body route answers wrong content types with 4xx too", async () => {
    for (const [type, body] of [
      ["text/plain", "hi"],
      ["application/x-www-form-urlencoded", "model=x"],
      ["application/json; charset=latin1", "{}"],
      ["multipart/form-data; boundary=x", "--x--"],
    ] as const) {
      const res = await fetch(`${router.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": type, ...AUTH_HEADERS }, body });
      expect(res.status, type).toBeGreaterThanOrEqual(400);
      expect(res.status, type).toBeLessThan(500);
    }
  });

  test("history filters: fuzzed query strings give 200 or a 4xx in OpenAI's shape", async () => {
    const params = fc.dictionary(
      fc.constantFrom("model", "node", "status", "from", "to", "limit", "offset", "apiKey", "q", "endpoint", "sort"),
      fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String), fc.constantFrom("-1", "1e999", "NaN", "9".repeat(40), "%", "\u0000")),
      { maxKeys: 4 },
    );
    await fc.assert(
      fc.asyncProperty(params, async (q) => {
        const res = await fetch(`${router.url}/api/requests?${new URLSearchParams(q)}`, { headers: admin });
        const text = await res.text();
        if (res.status === 200) return;
        expect(res.status, text).toBeGreaterThanOrEqual(400);
        expect(res.status, text).toBeLessThan(500);
        expect(isErrorShape("openai", JSON.parse(text)), text).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  afterAll(() => console.log(`fuzzing: ${tally.sent} bodies sent, ${tally.ok2xx} accepted (2xx), ${tally.rejected4xx} rejected with 4xx, 0 answered 5xx`));
});

describe("limits", () => {
  test("a body over the 8 MiB limit gets 413 in OpenAI's shape", async () => {
    const big = JSON.stringify({ model: CHAT, messages: [{ role: "user", content: "x".repeat(9 * 1024 * 1024) }] });
    const headers = { "content-type": "application/json", "content-length": String(big.length), ...AUTH_HEADERS };
    // The router answers from the declared length without reading the body; the first 64 KiB are sent.
    const res = await rawSend("POST", "/v1/chat/completions", headers, big.slice(0, 65_536), false);
    expect(res.status).toBe(413);
    expect(isErrorShape("openai", JSON.parse(res.body))).toBe(true);
    expect((await rawSend("POST", "/api/chat", headers, big.slice(0, 65_536), false)).status).toBe(413);
    // Without a length (chunked), the limit applies while reading.
    // A reset instead of the answer fails the test.
    const chunked = await fetch(`${router.url}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH_HEADERS },
      body: new Blob([big]).stream(),
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(isErrorShape("openai", await chunked.json())).toBe(true);
  });

  test("a client that sends its whole over-limit body before reading gets the 413, not a reset", async () => {
    // Like curl or a proxy: the body goes out in pieces, and the answer is read only afterwards.
    // The router reads and discards the rest of the body (as nginx's lingering close does).
    for (const path of ["/v1/chat/completions", "/api/chat"]) {
      const answer = await uploadThenRead(path, 12);
      expect(answer, path).toMatch(/^HTTP\/1\.1 413 /);
    }
  });

  test("oversized request headers get 431", async () => {
    const res = await rawGet("/healthz", { "x-filler": "a".repeat(64 * 1024) }).catch((err: Error) => ({ status: -1, body: err.message }));
    expect(res.status).toBe(431);
  });

  test("path traversal on /dashboard/* and the model file route never reaches a file outside", async () => {
    const traversals = [
      "../../../../etc/passwd",
      "..%2f..%2f..%2f..%2fetc%2fpasswd",
      "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
      "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
      "..%5c..%5c..%5cetc%5cpasswd",
      "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
      "..%00/etc/passwd",
      "assets/../../../../package.json",
      "assets/%2e%2e/%2e%2e/%2e%2e/%2e%2e/package.json",
    ];
    const seen: string[] = [];
    for (const t of traversals) {
      const dash = await rawGet(`/dashboard/${t}`);
      expect(dash.body, t).not.toMatch(/root:.*:0:0:|"name": "drover"/);
      // A page path the app does not know serves the app's index (its client-side routing); a file path is 404.
      if (dash.status !== 404) expect(dash.body, `${t} → ${dash.status}`).toMatch(/<!doctype html>/i);
      seen.push(`${t} ${dash.status}`);
      const file = await rawGet(`/api/models/${t}/file`, NODE_AUTH);
      expect(file.status, t).toBe(404);
      expect(file.body).not.toMatch(/root:.*:0:0:/);
    }
    // Every variant that names a file (package.json, passwd through an encoded slash) is a plain 404.
    expect(seen.filter((s) => s.includes("package.json")).every((s) => s.endsWith(" 404"))).toBe(true);
  });
});

describe("slow-loris", () => {
  test("clients trickling headers or never finishing a body are cut off, and others are served meanwhile", async () => {
    const { hostname, port } = new URL(router.url);
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const s = connect(Number(port), hostname, () => resolve(s));
        s.on("error", () => {});
        // Read the router's answer (its 408) and FIN, or 'close' never comes.
        s.on("data", (d: Buffer) => received.set(s, (received.get(s) ?? "") + d.toString("latin1")));
        s.once("error", reject);
      });
    const received = new Map<Socket, string>();
    const closedWithin = (s: Socket) =>
      new Promise<number>((resolve) => {
        const t0 = Date.now();
        s.once("close", () => resolve(Date.now() - t0));
      });
    const SLOW = 60;
    const sockets: Socket[] = [];
    const timers: NodeJS.Timeout[] = [];
    const closes: Promise<number>[] = [];
    for (let i = 0; i < SLOW; i++) {
      const s = await open();
      sockets.push(s);
      closes.push(closedWithin(s));
      if (i % 2 === 0) {
        // Headers one byte every 100 ms, never finished.
        const head = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ${"z".repeat(1000)}`;
        let at = 0;
        timers.push(setInterval(() => s.writable && s.write(head[at++ % head.length]!), 100));
      } else {
        // Complete headers, a body that stops half way.
        s.write(
          `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH_HEADERS.authorization}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":`,
        );
      }
    }
    try {
      // While they hang, normal clients are served.
      for (let i = 0; i < 5; i++) expect((await fetch(`${router.url}/healthz`)).status).toBe(200);
      const res = await fetch(`${router.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...AUTH_HEADERS },
        body: JSON.stringify({ model: CHAT, messages: [{ role: "user", content: "hi" }], max_tokens: 2 }),
      });
      expect(res.status).toBe(200);
      // The server closes every slow socket once its header/request timeout (plus the check
      // interval) passes, with a 408 first: the close is the router's, not a reset. The wait is
      // generous (a loaded machine checks late); no socket may close before its timeout.
      const waited = await Promise.race([Promise.all(closes), new Promise<null>((r) => setTimeout(() => r(null), 60_000))]);
      expect(waited, "slow sockets still open after 60 s").not.toBeNull();
      sockets.forEach((s, i) => {
        expect(received.get(s) ?? "", `socket ${i}`).toMatch(/^HTTP\/1\.1 408 /);
        expect(waited![i], `socket ${i} closed before its timeout`).toBeGreaterThanOrEqual((i % 2 === 0 ? HEADER_TIMEOUT_MS : REQUEST_TIMEOUT_MS) - 250);
      });
      console.log(`slow-loris: ${SLOW} slow sockets answered 408 and closed by the router after ${Math.min(...waited!)}–${Math.max(...waited!)} ms`);
    } finally {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
    }
  });
});

describe("after all of it", () => {
  test("router and node are still running and healthy, and inference still works", async () => {
    expect(alive(router)).toBe(true);
    expect(alive(node)).toBe(true);
    expect((await fetch(`${router.url}/healthz`)).status).toBe(200);
    const res = await fetch(`${router.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...AUTH_HEADERS },
      body: JSON.stringify({ model: CHAT, messages: [{ role: "user", content: "hi" }], max_tokens: 2 }),
    });
    expect(res.status).toBe(200);
    expect(router.output()).not.toMatch(/unhandled error|uncaughtException|FATAL/i);
  });
});
