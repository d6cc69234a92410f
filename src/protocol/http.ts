// HTTP conventions shared by router, node and engine.

export const HEADER_REQUEST_ID = "x-request-id";
export const HEADER_NODE = "x-drover-node";
export const HEADER_TRACEPARENT = "traceparent";
/**
 * The catalog id of the model a router's inference request is for, as the router validated it
 * from the body. The node routes by it and forwards the body to the engine without parsing it.
 */
export const HEADER_MODEL = "x-drover-model";
/** The node's own secret on registrations and heartbeats (see src/protocol/node-auth.ts). */
export const HEADER_NODE_SECRET = "x-drover-node-secret";

/** Paths on the router that nodes call. */
export const FLEET_PATHS = {
  register: "/api/nodes/register",
  heartbeat: "/api/nodes/heartbeat",
  catalog: "/api/catalog",
  /** `part` (1-based) for the files of a split model after the first. */
  modelFile: (id: string, part?: number) => `/api/models/${encodeURIComponent(id)}/file${part !== undefined && part > 1 ? `?part=${part}` : ""}`,
} as const;

/** Paths on the node that routers call (besides the inference routes). */
export const NODE_PATHS = {
  /** A router shutting down says goodbye, so the node drops it at once. */
  routerLeaving: "/api/routers/leaving",
} as const;

/** A router URL as nodes and routers compare them: origin and path, no trailing slash. */
export function normalizeRouterUrl(url: string): string {
  return new URL(url).toString().replace(/\/+$/, "");
}

/**
 * A header value safe for any text (node names in any script): printable ASCII is kept as is,
 * everything else is percent-encoded as UTF-8 (read it back with decodeURIComponent).
 */
export function headerSafe(value: string): string {
  return value.replace(/[^\x20-\x24\x26-\x7e]+/g, (s) => encodeURIComponent(s));
}
