// Cache-aware routing: multi-turn conversations that share a long system prompt, over 2+ nodes
// running the llama engine, once with --routing least-load and once with --routing prefix.
// Each engine keeps every slot's evaluated tokens and gives a request the slot with the longest
// shared prefix, so a turn that returns to its conversation's node evaluates only what is new.
// Measured per policy: TTFT p50/p95 (first content chunk of a streamed answer), throughput, the
// share of prompt tokens served from the engines' caches, and the router's affinity counters.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, request } from "undici";
import { DEMO_CATALOG } from "../src/catalog/builtin.js";
import { DEFAULT_LOAD_FACTOR } from "../src/router/request-path/node-selector.js";
import { metricSum, parsePrometheus } from "../test/support/prometheus.js";
import { AUTH_HEADERS, startNode, startRouter, tempDir, waitForReady, type DroverProcess } from "../test/support/fleet.js";
import { BenchFailure, fmt } from "./lib/processes.js";

const MODEL = "affinity-chat";
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

export interface AffinityOptions {
  conversations: number;
  turns: number;
  concurrency: number;
  /** Conversations open at once (their turns interleave). */
  open: number;
  nodes: number;
  /** Slots per node (engine sequences). */
  slots: number;
  maxTokens: number;
  /** The router's --routing-load-factor (how far above its share a key's node may go before the next takes over); null: the router's default. */
  loadFactor: number | null;
}

export function affinityOptionsFromEnv(): AffinityOptions {
  return {
    // 64, not 32: each fresh slot evaluates the system prompt once, and a short run measures mostly that warm-up (docs/BENCHMARKS.md).
    conversations: env("BENCH_AFFINITY_CONVERSATIONS", 64),
    turns: env("BENCH_AFFINITY_TURNS", 6),
    concurrency: env("BENCH_AFFINITY_CONCURRENCY", 8),
    nodes: env("BENCH_AFFINITY_NODES", 2),
    // Conversations open at once: users start new ones as others end.
    open: env("BENCH_AFFINITY_OPEN", 16),
    // The engine's prefix cache is its slots: a node must hold the state of its share of the open
    // conversations to reuse it. More slots cost time (llama.cpp attends over the whole KV cache).
    slots: env("BENCH_AFFINITY_SLOTS", 12),
    maxTokens: env("BENCH_AFFINITY_MAX_TOKENS", 24),
    loadFactor: process.env.BENCH_AFFINITY_LOAD_FACTOR ? Number(process.env.BENCH_AFFINITY_LOAD_FACTOR) : null,
  };
}

/** The demo chat model with room for a 2,000-token system prompt plus six turns (8k context). */
export function affinityModelSpec() {
  const demo = DEMO_CATALOG.models.find((m) => m.id === "demo-chat")!;
  return { demo, spec: { ...demo.source.generate!, name: MODEL, contextLength: 8192 } };
}

function catalogFile(): string {
  const { demo, spec } = affinityModelSpec();
  const path = join(tempDir("bench-affinity"), "catalog.json");
  writeFileSync(
    path,
    JSON.stringify({
      name: "bench-affinity",
      models: [
        {
          id: MODEL,
          sizeBytes: demo.sizeBytes,
          memoryBytes: demo.memoryBytes,
          capabilities: ["chat", "completion"],
          contextLength: 8192,
          source: { generate: spec },
        },
      ],
    }),
  );
  return path;
}

/** ~2,000 tokens (the demo vocabulary is byte-level: one token per byte of ASCII). */
export const SYSTEM_PROMPT = Array.from(
  { length: 29 },
  (_, i) => `Rule ${String(i + 1).padStart(2, "0")}: answer the operator's questions about the fleet precisely.`,
).join("\n");

/** Each conversation opens with its own ~450-token context (a file, a ticket), then short questions. */
export function opening(c: number): string {
  const lines = Array.from(
    { length: 8 },
    (_, i) => `conversation ${c} line ${i}: value=${(c * 7919 + i * 104729) % 1000003} status=${(c + i) % 3 ? "ok" : "degraded"}`,
  );
  return `Here is the log of incident ${c}:\n${lines.join("\n")}\nWhat went wrong first?`;
}

export const question = (c: number, t: number) => `Turn ${t} of conversation ${c}: and after that, which component reacted next, and why?`;

interface TurnResult {
  ttftMs: number;
  totalMs: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  node: string;
}

/** One streamed turn; the assistant's answer is appended to `messages`. */
async function streamTurn(url: string, agent: Agent, messages: { role: string; content: string }[], maxTokens: number): Promise<TurnResult> {
  const t0 = performance.now();
  const res = await request(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...AUTH_HEADERS },
    body: JSON.stringify({ model: MODEL, messages, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
    dispatcher: agent,
  });
  if (res.statusCode !== 200) throw new BenchFailure(`affinity: a turn answered ${res.statusCode}: ${await res.body.text()}`);
  let ttft: number | null = null;
  let text = "";
  type Usage = { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens?: number } };
  let usage = null as Usage | null;
  let pending = "";
  let done = false;
  for await (const chunk of res.body) {
    pending += (chunk as Buffer).toString("utf8");
    let end: number;
    while ((end = pending.indexOf("\n\n")) >= 0) {
      const event = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const data = event.startsWith("data: ") ? event.slice(6) : null;
      if (data === null) continue;
      if (data === "[DONE]") {
        done = true;
        continue;
      }
      const parsed = JSON.parse(data) as { choices: { delta?: { content?: string } }[]; usage?: Usage | null };
      const piece = parsed.choices[0]?.delta?.content;
      if (piece) {
        ttft ??= performance.now() - t0;
        text += piece;
      }
      if (parsed.usage) usage = parsed.usage;
    }
  }
  if (!done || !usage) throw new BenchFailure("affinity: a stream ended without [DONE] or usage");
  messages.push({ role: "assistant", content: text });
  return {
    ttftMs: ttft ?? performance.now() - t0,
    totalMs: performance.now() - t0,
    promptTokens: usage.prompt_tokens,
    cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
    completionTokens: usage.completion_tokens,
    node: String(res.headers["x-drover-node"]),
  };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

async function runPolicy(routing: "least-load" | "prefix", o: AffinityOptions, catalog: string) {
  const factor = o.loadFactor === null ? [] : ["--routing-load-factor", String(o.loadFactor)];
  const router = await startRouter(["--catalog", catalog, "--routing", routing, ...factor, "--log-level", "warn"]);
  const nodes: DroverProcess[] = [];
  const agent = new Agent({ connections: o.concurrency * 2, headersTimeout: 600_000, bodyTimeout: 600_000 });
  try {
    for (let i = 0; i < o.nodes; i++)
      nodes.push(await startNode(router.url, `affinity-${i}`, ["--slots", String(o.slots), "--threads", "1", "--log-level", "warn"]));
    await waitForReady(router.url, [MODEL], o.nodes);
    const results: TurnResult[] = [];
    // Every turn, in order of completion, for the results file: where reuse was lost, and when.
    const turns: { c: number; turn: number; node: string; startMs: number; ttftMs: number; promptTokens: number; cachedTokens: number }[] = [];
    let sameNode = 0;
    // `open` conversations at a time, as users of a shared endpoint have: a conversation whose turn
    // is answered goes to the back of the line (its user reads and types), the next free worker
    // sends the turn of the conversation at the front, and a finished conversation makes room for
    // a new one. So turns of different conversations interleave, and where a turn lands does not
    // depend on where the same worker's previous request ran (a closed loop of one conversation per
    // worker would hand least-load the slot that conversation just freed).
    const conversations = Array.from({ length: o.conversations }, (_, c) => ({
      c,
      turn: 0,
      previous: null as string | null,
      messages: [
        { role: "system", content: SYSTEM_PROMPT },
        { role: "user", content: opening(c) },
      ],
    }));
    const line = conversations.slice(0, o.open);
    let opened = line.length;
    const idle: (() => void)[] = [];
    let remaining = o.conversations * o.turns;
    const t0 = performance.now();
    const worker = async () => {
      while (remaining > 0) {
        const conv = line.shift();
        if (!conv) {
          await new Promise<void>((resolve) => idle.push(resolve));
          continue;
        }
        if (conv.turn > 0) conv.messages.push({ role: "user", content: question(conv.c, conv.turn) });
        const startMs = performance.now() - t0;
        const r = await streamTurn(router.url, agent, conv.messages, o.maxTokens);
        results.push(r);
        turns.push({
          c: conv.c,
          turn: conv.turn,
          node: r.node,
          startMs: Math.round(startMs),
          ttftMs: Math.round(r.ttftMs),
          promptTokens: r.promptTokens,
          cachedTokens: r.cachedTokens,
        });
        remaining--;
        if (conv.previous === r.node) sameNode++;
        conv.previous = r.node;
        if (++conv.turn < o.turns) line.push(conv);
        else if (opened < conversations.length) line.push(conversations[opened++]!);
        // Wake everyone: either a conversation is waiting, or the run is over.
        for (const wake of idle.splice(0)) wake();
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    const wallS = (performance.now() - t0) / 1000;
    const metrics = parsePrometheus(await (await fetch(`${router.url}/metrics`)).text());
    const hits = metricSum(metrics, "drover_affinity_hits_total", { model: MODEL });
    const misses = metricSum(metrics, "drover_affinity_misses_total", { model: MODEL });
    const ttft = results.map((r) => r.ttftMs).sort((a, b) => a - b);
    const followUps = results.length - o.conversations;
    const sum = (f: (r: TurnResult) => number) => results.reduce((a, r) => a + f(r), 0);
    const perNode: Record<string, number> = {};
    for (const r of results) perNode[r.node] = (perNode[r.node] ?? 0) + 1;
    return {
      routing,
      requests: results.length,
      wallS,
      ttftP50Ms: pct(ttft, 0.5),
      ttftP95Ms: pct(ttft, 0.95),
      requestsPerS: results.length / wallS,
      completionTokensPerS: sum((r) => r.completionTokens) / wallS,
      promptTokens: sum((r) => r.promptTokens),
      cachedTokenRatio: sum((r) => r.cachedTokens) / sum((r) => r.promptTokens),
      affinityHitRatio: hits + misses > 0 ? hits / (hits + misses) : null,
      sameNodeAsPreviousTurn: followUps > 0 ? sameNode / followUps : null,
      perNode,
      turns,
    };
  } finally {
    await agent.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await router.stop();
  }
}

export async function runAffinity(o: AffinityOptions = affinityOptionsFromEnv()) {
  if (o.nodes < 2 || o.conversations < 1 || o.turns < 2 || o.concurrency < 1 || o.open < 1)
    throw new BenchFailure("affinity: needs 2+ nodes, 2+ turns, 1+ conversations and concurrency");
  const catalog = catalogFile();
  const leastLoad = await runPolicy("least-load", o, catalog);
  const prefix = await runPolicy("prefix", o, catalog);
  const ttftGain = leastLoad.ttftP50Ms / prefix.ttftP50Ms;
  const throughputGain = prefix.completionTokensPerS / leastLoad.completionTokensPerS;
  const row = (r: typeof prefix) =>
    `| ${r.routing} | ${r.requests} | ${fmt(r.ttftP50Ms, 0)} | ${fmt(r.ttftP95Ms, 0)} | ${fmt(r.requestsPerS)} | ${fmt(r.completionTokensPerS, 1)} | ${fmt(r.cachedTokenRatio * 100, 1)}% | ${r.affinityHitRatio === null ? "—" : `${fmt(r.affinityHitRatio * 100, 1)}%`} | ${r.sameNodeAsPreviousTurn === null ? "—" : `${fmt(r.sameNodeAsPreviousTurn * 100, 1)}%`} | ${Object.values(r.perNode).join(" / ")} |`;
  const markdown = [
    `${o.nodes} nodes (llama engine, ${MODEL}: the demo chat model with an 8k context, ${o.slots} slots, 1 thread each) · prefix routing's load factor ${o.loadFactor ?? `${DEFAULT_LOAD_FACTOR} (the default)`} · ${o.conversations} conversations × ${o.turns} turns, ${o.open} open at once, at concurrency ${o.concurrency} · ~2,000-token shared system prompt, ~450-token opening per conversation, ${o.maxTokens} tokens per answer`,
    "",
    "| routing | requests | TTFT p50 ms | TTFT p95 ms | requests/s | completion tokens/s | cached prompt tokens | affinity hits | same node as previous turn | requests per node |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    row(leastLoad),
    row(prefix),
    "",
    `TTFT p50 least-load / prefix: **${fmt(ttftGain)}x** (target ≥ 2) · throughput prefix / least-load: **${fmt(throughputGain)}x** (target ≥ 1)`,
    "",
  ].join("\n");
  return { options: o, leastLoad, prefix, ttftP50Gain: ttftGain, throughputGain, markdown };
}
