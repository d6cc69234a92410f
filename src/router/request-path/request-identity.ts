// Request ids and W3C trace context: accepted from the client when well-formed, generated
// otherwise, and passed on to the node with a new parent span id.
import { randomBytes, randomUUID } from "node:crypto";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === "string" && REQUEST_ID.test(header) ? header : `req_${randomUUID().replace(/-/g, "")}`;
}

/** The traceparent to send downstream: same trace, this hop as the parent. */
export function childTraceparent(header: string | string[] | undefined): string {
  const m = typeof header === "string" ? TRACEPARENT.exec(header) : null;
  const traceId = m && !/^0+$/.test(m[1]!) ? m[1]! : randomBytes(16).toString("hex");
  const flags = m ? m[3]! : "01";
  return `00-${traceId}-${randomBytes(8).toString("hex")}-${flags}`;
}
