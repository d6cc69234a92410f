// Credentials between router and node (see docs/SECURITY.md).
// - router → node: every node route but /healthz needs `Authorization: Bearer <credential>`,
//   where the credential is an HMAC of the node's id keyed with the fleet's node token. Only a
//   holder of the node token can compute it, and one node's credential opens no other node.
// - node → router: the node token (Bearer) plus the node's own secret (the
//   x-drover-node-secret header of registrations and heartbeats), bound to its id on first
//   registration.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** The Bearer credential a router presents to the node `nodeId`. */
export function routerCredential(nodeToken: string, nodeId: string): string {
  return createHmac("sha256", nodeToken).update(`drover router to node ${nodeId}`).digest("base64url");
}

/** Headers for a router's call to a node (none when the fleet runs without a node token). */
export function routerAuthHeaders(nodeToken: string | null | undefined, nodeId: string): Record<string, string> {
  return nodeToken ? { authorization: `Bearer ${routerCredential(nodeToken, nodeId)}` } : {};
}

/** A node's secret as the router accepts it: what the node generates (43 base64url characters) and more. */
export function isNodeSecret(value: unknown): value is string {
  return typeof value === "string" && /^[A-Za-z0-9._~+/=-]{16,256}$/.test(value);
}

/** What the router keeps of a node's secret. */
export function nodeSecretHash(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Constant-time string comparison. */
export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
