import { startRouter } from "../dist/router/main.js";
import { loadCatalog } from "../dist/catalog/load.js";
import pino from "pino";
import { mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { execFileSync } from "node:child_process";
const r = await startRouter({ host: "127.0.0.1", port: 0, catalog: await loadCatalog("demo"), dataDir: mkdtempSync("/tmp/r413-"), queueLimit: 8, queueTimeoutMs: 0, heartbeatMs: 5000, nodeToken: "t", logger: pino({ level: "silent" }), apiKey: "drv-k", adminPassword: "pw-pw-pw-pw" });
const MB = Number(process.env.MB ?? 9);
const big = Buffer.from(JSON.stringify({ model: "demo-chat", messages: [{ role: "user", content: "x".repeat(MB * 1024 * 1024) }] }));
const { port } = new URL(r.url);
function send(chunked) {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/v1/embeddings", method: "POST", headers: { "content-type": "application/json", authorization: "Bearer drv-k", ...(chunked ? {} : { "content-length": big.length }) } }, (res) => { let t = ""; res.on("data", (d) => (t += d)); res.on("end", () => resolve(res.statusCode)); res.on("error", (e) => resolve(e.code)); });
    req.on("error", (e) => resolve(e.code));
    let off = 0;
    const pump = () => { while (off < big.length) { const ok = req.write(big.subarray(off, off + 65536)); off += 65536; if (!ok) return req.once("drain", pump); } req.end(); };
    pump();
  });
}
const out = { chunked: [], curl: [] };
for (let i = 0; i < 5; i++) out.chunked.push(await send(true));
writeFileSync("/tmp/big413.json", big);
for (let i = 0; i < 3; i++) {
  await new Promise((res) => setTimeout(res, 10));
  try { out.curl.push(execFileSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "content-type: application/json", "-H", "authorization: Bearer drv-k", "-H", "transfer-encoding: chunked", "--data-binary", "@/tmp/big413.json", `${r.url}/v1/embeddings`]).toString()); } catch (e) { out.curl.push("curl rc " + e.status + " " + e.stdout); }
}
console.log(JSON.stringify(out));
await r.close();
