import type { LiveRequestEvent } from "../../protocol/request-record";
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

/** One finished inference request as the dashboard shows it: a live event, or a history row with its names and times made the live event's. */
export interface RequestRecord extends LiveRequestEvent {
  /** The history row's id (absent on a live event). */
  id?: string;
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
