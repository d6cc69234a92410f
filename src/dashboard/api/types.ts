// The JSON the router's API sends, as the dashboard reads it.

export type NodeState = "initializing" | "online" | "offline";
export type ModelState = "queued" | "downloading" | "loading" | "ready" | "failed" | "unsupported";

export interface NodeModel {
  id: string;
  state: ModelState;
  progress?: number;
  bytesDone?: number;
  bytesTotal?: number;
  speed?: number;
  reason?: string;
  slots: number;
  inFlight: number;
  restarts: number;
}

export interface Gpu {
  index: number;
  name: string;
  utilizationPercent?: number;
  memoryUsedBytes?: number;
  memoryTotalBytes?: number;
  temperatureC?: number;
}

export interface NodeMetrics {
  cpuPercent?: number;
  memoryUsedBytes?: number;
  memoryTotalBytes?: number;
  gpus?: Gpu[];
}

export interface FleetNode {
  id: string;
  name: string;
  /** Operator settings, when the router stores them. */
  displayName?: string | null;
  tags?: string[];
  notes?: string | null;
  apiUrl: string;
  version: string;
  engine: string;
  state: NodeState;
  firstSeen: string;
  registeredAt: string | null;
  lastSeen: string;
  breaker: string;
  models: NodeModel[];
  inFlight: number;
  totalRequests: number;
  failedRequests: number;
  latencyEwmaMs: number | null;
  metrics: NodeMetrics;
}

export interface ModelRow {
  id: string;
  description?: string;
  tags?: string[];
  capabilities?: string[];
  sizeBytes?: number;
  memoryBytes?: number;
  readyNodes: number;
  loadingNodes: number;
  slots: number;
  inFlight: number;
  queueDepth: number;
}

export interface FleetSummary {
  nodesOnline: number;
  nodesInitializing: number;
  nodesOffline: number;
  inFlight: number;
  queueDepth: number;
  queueLimit: number;
  requestsPerMinute: number;
  errorsPerMinute: number;
  errorRate: number;
}

export interface FleetSnapshot {
  at: number;
  routerUptimeMs: number;
  summary: FleetSummary;
  nodes: FleetNode[];
  models: ModelRow[];
}

/** One finished inference request, as the live stream and the history API carry it. */
export interface RequestRecord {
  id?: string;
  requestId: string;
  startedAt: number;
  api: string;
  endpoint: string;
  modelId: string;
  stream: boolean;
  clientIp: string;
  keyName: string | null;
  nodeId: string | null;
  nodeName: string | null;
  status: number;
  error: string | null;
  attempts: number;
  queueWaitMs: number;
  firstByteMs: number | null;
  durationMs: number;
  promptTokens: number | null;
  completionTokens: number | null;
  /** Tool calls in the answer (null or absent: unknown). */
  toolCalls?: number | null;
  /** Prompt tokens the engine reused from a cached prefix (absent in older records). */
  cachedTokens?: number | null;
  /** The routing policy that placed it, and whether it ran on its affinity key's first node. */
  routing?: "least-load" | "prefix" | null;
  affinity?: "hit" | "miss" | null;
  traceId: string | null;
  requestBody?: unknown;
  responseBody?: unknown;
  /** The router stores bodies but shows them to admins only. */
  bodiesHidden?: boolean;
}

export interface MetricSample {
  t: number;
  cpuPercent: number | null;
  memoryUsedBytes: number | null;
  memoryTotalBytes: number | null;
  gpuPercent: number | null;
  gpuMemoryUsedBytes: number | null;
  gpuMemoryTotalBytes: number | null;
  inFlight: number;
  totalRequests: number;
  failedRequests: number;
  latencyEwmaMs: number | null;
}

export type Role = "admin" | "viewer";

export interface Me {
  username: string;
  role: Role;
}

export interface User {
  id: string;
  username: string;
  role: Role;
  createdAt: number | string;
  updatedAt?: number | string;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  models: string[] | null;
  expiresAt: number | string | null;
  createdAt: number | string;
  createdBy?: string | null;
  lastUsedAt: number | string | null;
  revokedAt?: number | string | null;
  state?: "active" | "revoked" | "expired";
}
