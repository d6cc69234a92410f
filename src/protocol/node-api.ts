// Messages between router and node: registration, heartbeats and per-model state.
import { z } from "zod";

export const ModelState = z.enum(["queued", "downloading", "loading", "ready", "failed", "unsupported"]);
export type ModelState = z.infer<typeof ModelState>;

export const ModelStatus = z.object({
  id: z.string(),
  state: ModelState,
  /** 0..1 while downloading. */
  progress: z.number().min(0).max(1).optional(),
  bytesDone: z.number().nonnegative().optional(),
  bytesTotal: z.number().nonnegative().optional(),
  /** Bytes per second while downloading. */
  speed: z.number().nonnegative().optional(),
  /** Why the model is failed or unsupported. */
  reason: z.string().optional(),
  /** Concurrent requests this model's engine accepts on this node. */
  slots: z.number().int().nonnegative().default(0),
  inFlight: z.number().int().nonnegative().default(0),
  restarts: z.number().int().nonnegative().default(0),
});
export type ModelStatus = z.infer<typeof ModelStatus>;

export const NodeMetrics = z.object({
  cpuPercent: z.number().optional(),
  memoryUsedBytes: z.number().optional(),
  memoryTotalBytes: z.number().optional(),
  gpus: z
    .array(
      z.object({
        index: z.number().int(),
        name: z.string(),
        utilizationPercent: z.number().optional(),
        memoryUsedBytes: z.number().optional(),
        memoryTotalBytes: z.number().optional(),
        temperatureC: z.number().optional(),
      }),
    )
    .optional(),
});
export type NodeMetrics = z.infer<typeof NodeMetrics>;

export const NodeRegistration = z.object({
  /** Stable across restarts of the node (kept in its data directory). */
  nodeId: z.string().min(1).max(128),
  name: z.string().min(1).max(128),
  /** Base URL of the node's API as the router should reach it. */
  apiUrl: z.string().url(),
  version: z.string(),
  engine: z.string(),
  models: z.array(ModelStatus),
  metrics: NodeMetrics.default({}),
});
export type NodeRegistration = z.infer<typeof NodeRegistration>;

/**
 * The advertised URLs of the live routers of the fleet (routers sharing PostgreSQL find each other
 * through it): a node registers and heartbeats with each. Absent where the router is alone (SQLite).
 */
export const RouterUrls = z.array(z.string().url()).max(256);
export type RouterUrls = z.infer<typeof RouterUrls>;

export const RegistrationAccepted = z.object({
  status: z.literal("registered"),
  nodeId: z.string(),
  heartbeatIntervalMs: z.number().int().positive(),
  routers: RouterUrls.optional(),
});
export type RegistrationAccepted = z.infer<typeof RegistrationAccepted>;

/** 503 answer while the node has no ready model (or does not answer its /v1/models). */
export const RegistrationPending = z.object({
  status: z.literal("initializing"),
  nodeId: z.string(),
  message: z.string(),
  retryAfterMs: z.number().int().positive(),
  routers: RouterUrls.optional(),
});
export type RegistrationPending = z.infer<typeof RegistrationPending>;

export const Heartbeat = z.object({
  nodeId: z.string(),
  models: z.array(ModelStatus),
  inFlight: z.number().int().nonnegative().default(0),
  metrics: NodeMetrics.default({}),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

/** The router's answer to a heartbeat. */
export const HeartbeatAccepted = z.object({
  status: z.literal("ok"),
  routers: RouterUrls.optional(),
});
export type HeartbeatAccepted = z.infer<typeof HeartbeatAccepted>;

/** Router → node (POST NODE_PATHS.routerLeaving): this router is shutting down; stop heartbeating it. */
export const RouterLeaving = z.object({ url: z.string().url() });
export type RouterLeaving = z.infer<typeof RouterLeaving>;

/** The node's GET /v1/models: OpenAI's list shape with drover's per-model state added. */
export const NodeModelList = z.object({
  object: z.literal("list"),
  data: z.array(
    z.object({
      id: z.string(),
      object: z.literal("model"),
      created: z.number().int(),
      owned_by: z.string(),
      drover: ModelStatus,
    }),
  ),
});
export type NodeModelList = z.infer<typeof NodeModelList>;

/**
 * Optional header on the router's model file response (GET /api/models/:id/file) carrying the
 * file's sha256 (hex). Nodes use it when the catalog entry has no `sha256` yet.
 */
export const MODEL_FILE_SHA256_HEADER = "x-drover-sha256";

/**
 * Engine → node: the engine prints exactly one stdout line
 * `DROVER_ENGINE_READY {"port":N}` once it listens on 127.0.0.1:N with its model loaded.
 */
export const ENGINE_READY_PREFIX = "DROVER_ENGINE_READY";
export const EngineReady = z.object({ port: z.number().int().min(1).max(65535) }).passthrough();
export type EngineReady = z.infer<typeof EngineReady>;

/** Parses one engine stdout line; the announced port when it is the readiness line. */
export function parseEngineReadyLine(line: string): EngineReady | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith(`${ENGINE_READY_PREFIX} `)) return undefined;
  try {
    const parsed = EngineReady.safeParse(JSON.parse(trimmed.slice(ENGINE_READY_PREFIX.length + 1)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
