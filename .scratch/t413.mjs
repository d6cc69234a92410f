import { startRouter } from "../dist/router/main.js";
import { loadCatalog } from "../dist/catalog/load.js";
import pino from "pino";
import { mkdtempSync } from "node:fs";
const r = await startRouter({ host: "127.0.0.1", port: 0, catalog: await loadCatalog("demo"), dataDir: mkdtempSync("/tmp/r413-"), queueLimit: 8, queueTimeoutMs: 0, heartbeatMs: 5000, nodeToken: "t", logger: pino({ level: "silent" }), apiKey: "drv-k", adminPassword: "pw-pw-pw-pw" });
const big = JSON.stringify({ model: "demo-chat", messages: [{ role: "user", content: "x".repeat(Number(process.env.MB ?? 9) * 1024 * 1024) }] });
let ok = 0, bad = [];
for (let i = 0; i < 10; i++) {
  const res = await fetch(`${r.url}/v1/embeddings`, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer drv-k" }, body: new Blob([big]).stream(), duplex: "half" }).catch((e) => e);
  if (res instanceof Error) bad.push(res.cause?.code ?? res.message); else { ok += res.status === 413; await res.text(); }
}
console.log("ok", ok, "errors", bad);
await r.close();
