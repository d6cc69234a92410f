// Soak (`npm run soak`): 20,000 mixed requests — OpenAI and Ollama chat, streaming and not —
// through a real router and two real nodes whose engines are the fast benchmark upstream
// (`command` engine), with one node restarted (SIGTERM, then started again on its data dir)
// part way through. Every request must end 200 with a complete body: zero lost, zero 5xx.
// Prints the counts and the router's RSS growth. Env: SOAK_REQUESTS (20000), SOAK_CONCURRENCY (32).
import { startNode, startRouter, tempDir, waitForReady, AUTH_HEADERS, type DroverProcess } from "../test/support/fleet.js";
import { BENCH_MODEL, benchCatalog } from "./lib/drover-fleet.js";
import { rssOf, UPSTREAM_SCRIPT } from "./lib/processes.js";

const TOTAL = Number(process.env.SOAK_REQUESTS ?? 20_000);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 32);
const RESTART_AT = Math.floor(TOTAL * 0.4);

type Kind = "openai" | "openai-stream" | "ollama" | "ollama-stream";
const KINDS: Kind[] = ["openai", "openai-stream", "ollama", "ollama-stream"];

function requestFor(kind: Kind): { path: string; body: object } {
  const messages = [{ role: "user", content: "hi" }];
  if (kind.startsWith("openai"))
    return { path: "/v1/chat/completions", body: { model: BENCH_MODEL, messages, max_tokens: 8, stream: kind === "openai-stream" } };
  return { path: "/api/chat", body: { model: BENCH_MODEL, messages, stream: kind === "ollama-stream" } };
}

/** Whether a 200 body is complete for its kind (a stream cut short is a lost request too). */
function complete(kind: Kind, text: string): boolean {
  switch (kind) {
    case "openai":
      return JSON.parse(text).choices?.[0]?.message?.content !== undefined;
    case "openai-stream":
      return text.trimEnd().endsWith("data: [DONE]");
    case "ollama":
      return JSON.parse(text).done === true;
    case "ollama-stream": {
      const last = text.trimEnd().split("\n").at(-1);
      return last !== undefined && JSON.parse(last).done === true;
    }
  }
}

async function main(): Promise<void> {
  const router = await startRouter(["--catalog", benchCatalog(), "--log-level", "warn"]);
  const template = `${process.execPath} ${UPSTREAM_SCRIPT} --port {port} --model {model} --model-id ${BENCH_MODEL}`;
  const nodeArgs = ["--engine", "command", "--engine-command", template, "--slots", "64", "--log-level", "warn"];
  const dirs = { a: tempDir("soak-node-a"), b: tempDir("soak-node-b") };
  let nodeA: DroverProcess = await startNode(router.url, "soak-a", nodeArgs, {}, dirs.a);
  const nodeB = await startNode(router.url, "soak-b", nodeArgs, {}, dirs.b);
  await waitForReady(router.url, [BENCH_MODEL], 2);

  const counts = { sent: 0, ok: 0, lost: 0, status5xx: 0, byKind: Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number> };
  const failures: string[] = [];
  const rssStart = await rssOf(router.child.pid!);
  let rssPeak = rssStart;
  const rssTimer = setInterval(
    () =>
      void rssOf(router.child.pid!)
        .then((r) => (rssPeak = Math.max(rssPeak, r)))
        .catch(() => {}),
    500,
  );
  let restart: Promise<void> | null = null;
  const t0 = Date.now();

  let next = 0;
  async function worker(): Promise<void> {
    while (next < TOTAL) {
      const i = next++;
      if (i === RESTART_AT) {
        restart = (async () => {
          const t = Date.now();
          await nodeA.stop("SIGTERM");
          nodeA = await startNode(router.url, "soak-a", nodeArgs, {}, dirs.a);
          await waitForReady(router.url, [BENCH_MODEL], 2);
          console.log(`node soak-a restarted (stopped, started, ready again) in ${Date.now() - t} ms, at request ${RESTART_AT}`);
        })();
      }
      const kind = KINDS[i % KINDS.length]!;
      const { path, body } = requestFor(kind);
      counts.sent++;
      counts.byKind[kind]++;
      try {
        const res = await fetch(`${router.url}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...AUTH_HEADERS },
          body: JSON.stringify(body),
        });
        const text = await res.text();
        if (res.status === 200 && complete(kind, text)) counts.ok++;
        else {
          counts.lost++;
          if (res.status >= 500) counts.status5xx++;
          if (failures.length < 20) failures.push(`${kind} #${i}: ${res.status} ${text.slice(0, 200)}`);
        }
      } catch (err) {
        counts.lost++;
        if (failures.length < 20) failures.push(`${kind} #${i}: ${(err as Error).message}`);
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await restart;
  const seconds = (Date.now() - t0) / 1000;
  clearInterval(rssTimer);
  const rssEnd = await rssOf(router.child.pid!);
  await Promise.all([nodeA.stop(), nodeB.stop()]);
  await router.stop();

  const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
  console.log(
    `soak: ${counts.sent} requests (${KINDS.map((k) => `${k} ${counts.byKind[k]}`).join(", ")}) at concurrency ${CONCURRENCY} in ${seconds.toFixed(1)} s`,
  );
  console.log(`      ${counts.ok} ok, ${counts.lost} lost, ${counts.status5xx} answered 5xx`);
  console.log(`      router RSS ${mib(rssStart)} MiB at start → ${mib(rssEnd)} MiB at end (peak ${mib(rssPeak)} MiB, growth ${mib(rssEnd - rssStart)} MiB)`);
  for (const f of failures) console.log(`      failure: ${f}`);
  if (counts.lost > 0 || counts.ok !== TOTAL) process.exitCode = 1;
}

await main();
