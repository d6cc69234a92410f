import { startRouter } from "../dist/router/main.js";
import { loadCatalog } from "../dist/catalog/load.js";
import pino from "pino";
import { mkdtempSync } from "node:fs";
import { request } from "node:http";
const r = await startRouter({ host: "127.0.0.1", port: 0, catalog: await loadCatalog("demo"), dataDir: mkdtempSync("/tmp/r413-"), queueLimit: 8, queueTimeoutMs: 0, heartbeatMs: 5000, nodeToken: "t", logger: pino({ level: "silent" }), apiKey: "drv-k", adminPassword: "pw-pw-pw-pw" });
const MB = Number(process.env.MB ?? 9);
const big = Buffer.from(JSON.stringify({ model: "demo-chat", messages: [{ role: "user", content: "x".repeat(MB * 1024 * 1024) }] }));
const { port } = new URL(r.url);
function send(chunked) {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve("TIMEOUT"), 8000);
    const req = request({ host: "127.0.0.1", port, path: "/v1/embeddings", method: "POST", agent: false, headers: { "content-type": "application/json", authorization: "Bearer drv-k", ...(chunked ? {} : { "content-length": big.length }) } }, (res) => { console.log("response", res.statusCode, res.headers.connection); let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => { clearTimeout(t); resolve(res.statusCode); }); res.on("error", (e) => resolve("res " + e.code)); });
    req.on("error", (e) => { clearTimeout(t); resolve("req " + e.code); });
    let off = 0;
    const pump = () => { while (off < big.length) { const ok = req.write(big.subarray(off, off + 65536)); off += 65536; if (!ok) return req.once("drain", pump); } console.log("sent all"); req.end(); };
    pump();
  });
}
for (let i = 0; i < 3; i++) console.log("chunked", await send(true));
for (let i = 0; i < 3; i++) console.log("length", await send(false));
await r.close();
