// Request ids and W3C trace context: accepted from the client when well-formed, generated
// otherwise, and passed on to the node with a new parent span id.
import { randomFillSync, randomUUID } from "node:crypto";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === "string" && REQUEST_ID.test(header) ? header : `req_${randomUUID().replace(/-/g, "")}`;
}

// Random ids come from a pool refilled 4 KiB at a time: one CSPRNG call per ~170 requests
// instead of two per request (randomUUID pools the same way).
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += bytes;
  return pool.toString("hex", poolAt - bytes, poolAt);
}

/** The traceparent to send downstream: same trace, this hop as the parent. */
export function childTraceparent(header: string | string[] | undefined): string {
  const m = typeof header === "string" ? TRACEPARENT.exec(header) : null;
  const traceId = m && !/^0+$/.test(m[1]!) ? m[1]! : randomHex(16);
  const flags = m ? m[3]! : "01";
  return `00-${traceId}-${randomHex(8)}-${flags}`;
}
