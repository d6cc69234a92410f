// The API nodes call: registration (behind the readiness gate), heartbeats, the catalog and
// model files.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { Catalog } from "../../protocol/catalog.js";
import { FLEET_PATHS, HEADER_NODE_SECRET } from "../../protocol/http.js";
import { isNodeSecret } from "../../protocol/node-auth.js";
import { Heartbeat, NodeRegistration, type RegistrationAccepted, type RegistrationPending } from "../../protocol/node-api.js";
import { describeZodError } from "../../protocol/openai.js";
import { HttpError, sendError } from "../http/http-errors.js";
import type { ModelCache } from "../model-cache/model-cache.js";
import type { NodeRegistry } from "../fleet/node-registry.js";
import { probeNode } from "../fleet/registration-gate.js";

export interface FleetRouteDeps {
  catalog: Catalog;
  registry: NodeRegistry;
  cache: ModelCache;
  heartbeatMs: number;
  gateTimeoutMs: number;
  /** The fleet's node token: the gate's probe presents the router credential derived from it. */
  nodeToken: string | null;
  /** A node id another router sharing the database may have bound already (null: unknown there too). */
  storedSecretHash?: (nodeId: string) => Promise<string | null | undefined>;
  logger?: Logger;
}

/** The node's secret from its header; a 400 naming the header when it is missing or malformed. */
function secretOf(req: FastifyRequest): string {
  const value = req.headers[HEADER_NODE_SECRET];
  if (!isNodeSecret(value)) {
    throw new HttpError(
      400,
      `send the node's secret in the ${HEADER_NODE_SECRET} header (16-256 characters; drover nodes keep theirs in <data dir>/node-secret)`,
      "invalid_request_error",
      "node_secret_required",
    );
  }
  return value;
}

function idTaken(nodeId: string): HttpError {
  return new HttpError(
    403,
    `node id ${nodeId} belongs to another node (its node-secret differs). If this machine replaced it (a lost data dir), delete the old node first: DELETE /api/nodes/${nodeId} or the dashboard`,
    "permission_error",
    "node_id_taken",
  );
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: import("zod").ZodError } }, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const { message, param } = describeZodError(r.error);
    throw new HttpError(400, message, "invalid_request_error", "invalid_request", param);
  }
  return r.data;
}

/** Parses `bytes=A-B` / `bytes=A-` / `bytes=-N`; null when absent or unsatisfiable. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | "invalid" | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return "invalid";
  let start: number;
  let end: number;
  if (m[1] === "") {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return "invalid";
  return { start, end };
}

export function registerFleetRoutes(app: FastifyInstance, deps: FleetRouteDeps): void {
  const byId = new Map(deps.catalog.models.map((m) => [m.id, m]));

  app.post(FLEET_PATHS.register, { config: { auth: "node" } }, async (req, reply) => {
    const reg = parse(NodeRegistration, req.body);
    const secret = secretOf(req);
    let identity = deps.registry.checkIdentity(reg.nodeId, secret);
    if (identity === "unknown" && deps.storedSecretHash) {
      const stored = await deps.storedSecretHash(reg.nodeId);
      if (stored) {
        deps.registry.restore([{ id: reg.nodeId, name: reg.name, apiUrl: reg.apiUrl, firstSeen: Date.now(), lastRegistered: Date.now(), secretHash: stored }]);
        identity = deps.registry.checkIdentity(reg.nodeId, secret);
      }
    }
    if (identity === "taken") {
      deps.logger?.warn({ nodeId: reg.nodeId, apiUrl: reg.apiUrl, ip: req.ip }, "registration refused: the node id is bound to another node's secret");
      throw idTaken(reg.nodeId);
    }
    const gate = await probeNode(reg.apiUrl, deps.gateTimeoutMs, deps.nodeToken, reg.nodeId);
    if (!gate.ok) {
      if (gate.detail) deps.logger?.info({ nodeId: reg.nodeId, apiUrl: reg.apiUrl, detail: gate.detail }, "registration gate: node not reachable yet");
      deps.registry.recordPending({ ...reg, models: gate.models ?? reg.models }, secret);
      const body: RegistrationPending = { status: "initializing", nodeId: reg.nodeId, message: gate.reason, retryAfterMs: 1000 };
      return reply.code(503).header("retry-after", "1").send(body);
    }
    deps.registry.accept({ ...reg, models: gate.models }, secret);
    const body: RegistrationAccepted = { status: "registered", nodeId: reg.nodeId, heartbeatIntervalMs: deps.heartbeatMs };
    return body;
  });

  app.post(FLEET_PATHS.heartbeat, { config: { auth: "node" } }, async (req) => {
    const hb = parse(Heartbeat, req.body);
    const result = deps.registry.heartbeat(hb, secretOf(req));
    if (result === "taken") throw idTaken(hb.nodeId);
    if (result === "unknown") {
      throw new HttpError(404, `node ${hb.nodeId} is not registered; register again`, "not_found_error", "node_not_registered");
    }
    return { status: "ok" };
  });

  app.get(FLEET_PATHS.catalog, { config: { auth: "node" } }, async () => deps.catalog);

  // Weights for nodes, from the router's cache (filled from upstream on first demand).
  app.get("/api/models/:id/file", { config: { auth: "node" } }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    if (!byId.has(id)) throw new HttpError(404, `The model '${id}' is not in the catalog`, "not_found_error", "model_not_found");
    // `?part=N` (1-based) names one file of a split model; without it, the first (or only) file.
    const partParam = (req.query as { part?: string }).part;
    const part = partParam === undefined ? 1 : /^[1-9]\d{0,1}$/.test(partParam) ? Number(partParam) : NaN;
    if (Number.isNaN(part))
      throw new HttpError(400, `part must be a part number from 1 (got '${partParam}')`, "invalid_request_error", "invalid_request", "part");
    const lookup = await deps.cache.lookup(id, part - 1);
    if (lookup.status === "unavailable") throw new HttpError(404, lookup.message, "not_found_error", "model_file_unavailable");
    if (lookup.status === "pending" || lookup.status === "failed") {
      // 503: the router is fetching it (the node polls); 502: the upstream fetch failed.
      reply.header("retry-after", String(lookup.retryAfterS));
      const pending = lookup.status === "pending";
      sendError(reply, new HttpError(pending ? 503 : 502, lookup.message, "server_error", pending ? "model_caching" : "model_cache_failed"));
      return reply;
    }
    const file = lookup.file;
    const etag = `"${file.sha256}"`;
    reply.header("accept-ranges", "bytes").header("etag", etag).header("x-drover-sha256", file.sha256).type("application/octet-stream");
    if (req.headers["if-none-match"] === etag) return reply.code(304).send();
    const ifRange = req.headers["if-range"];
    const range = ifRange && ifRange !== etag ? null : parseRange(req.headers.range, file.size);
    deps.cache.logRequest(id, req.headers.range, range === "invalid" ? 416 : range ? 206 : 200, partParam === undefined ? undefined : part);
    if (range === "invalid") {
      return reply.code(416).header("content-range", `bytes */${file.size}`).send();
    }
    if (range) {
      reply
        .code(206)
        .header("content-range", `bytes ${range.start}-${range.end}/${file.size}`)
        .header("content-length", range.end - range.start + 1);
      return reply.send(deps.cache.openForServing(id, file, range, part - 1));
    }
    reply.header("content-length", file.size);
    return reply.send(deps.cache.openForServing(id, file, undefined, part - 1));
  });
}
