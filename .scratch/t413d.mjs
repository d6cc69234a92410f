import { startRouter } from "../dist/router/main.js";
import { loadCatalog } from "../dist/catalog/load.js";
import pino from "pino";
import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
const r = await startRouter({ host: "127.0.0.1", port: 0, catalog: await loadCatalog("demo"), dataDir: mkdtempSync("/tmp/r413-"), queueLimit: 8, queueTimeoutMs: 0, heartbeatMs: 5000, nodeToken: "t", logger: pino({ level: "silent" }), apiKey: "drv-k", adminPassword: "pw-pw-pw-pw" });
const { port } = new URL(r.url);
async function slowClient() {
  const sock = connect(Number(port), "127.0.0.1");
  await new Promise((res, rej) => { sock.once("connect", res); sock.once("error", rej); });
  sock.pause();
  let err = null;
  sock.on("error", (e) => (err ??= e.code));
  sock.write(`POST /v1/embeddings HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer drv-k\r\ntransfer-encoding: chunked\r\n\r\n`);
  const chunk = Buffer.alloc(1024 * 1024, "x");
  for (let i = 0; i < 12 && !err; i++) {
    sock.write(`${chunk.length.toString(16)}\r\n`); sock.write(chunk); sock.write("\r\n");
    await new Promise((res) => setTimeout(res, 30));
  }
  sock.write("0\r\n\r\n");
  await new Promise((res) => setTimeout(res, 100));
  let text = "";
  sock.on("data", (d) => (text += d));
  sock.resume();
  await new Promise((res) => { sock.once("close", res); sock.once("end", res); setTimeout(res, 3000); });
  sock.destroy();
  return err ? `error ${err} ${text.slice(0, 12)}` : text.slice(0, 12);
}
for (let i = 0; i < 3; i++) console.log(await slowClient());
await r.close();
