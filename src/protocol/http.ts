// HTTP conventions shared by router, node and engine.

export const HEADER_REQUEST_ID = "x-request-id";
export const HEADER_NODE = "x-drover-node";
export const HEADER_TRACEPARENT = "traceparent";

/** Paths on the router that nodes call. */
export const FLEET_PATHS = {
  register: "/api/nodes/register",
  heartbeat: "/api/nodes/heartbeat",
  catalog: "/api/catalog",
  /** `part` (1-based) for the files of a split model after the first. */
  modelFile: (id: string, part?: number) => `/api/models/${encodeURIComponent(id)}/file${part !== undefined && part > 1 ? `?part=${part}` : ""}`,
} as const;
