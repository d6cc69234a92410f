// The fleet as the router's status API (/api/nodes, /api/models, /api/queue, /api/nodes/:id/metrics)
// and the dashboard's live stream (/api/events `snapshot`) show it. Types only: the router's views
// are declared with them and the dashboard reads them, so the two cannot drift apart.
import type { ModelStatus, NodeMetrics } from "./node-api.js";

export type NodeState = "initializing" | "online" | "offline";

/** A model on one node: its state as the node reported it, and the router's in-flight count. */
export type NodeModelView = ModelStatus;

export interface FleetNode {
  id: string;
  name: string;
  /** Operator settings, when the router stores them. */
  displayName: string | null;
  tags: string[];
  notes: string | null;
  apiUrl: string;
  version: string;
  engine: string;
  state: NodeState;
  /** ISO times. */
  firstSeen: string;
  registeredAt: string | null;
  lastSeen: string;
  /** The circuit breaker: closed, open or half-open. */
  breaker: string;
  models: NodeModelView[];
  inFlight: number;
  totalRequests: number;
  failedRequests: number;
  latencyEwmaMs: number | null;
  metrics: NodeMetrics;
}

/** One catalog model, aggregated over the fleet. */
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

export interface QueueSnapshot {
  total: number;
  limit: number;
  perModelLimit: number;
  models: Record<string, { depth: number; oldestWaitMs: number }>;
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
  /** Epoch ms. */
  at: number;
  routerUptimeMs: number;
  summary: FleetSummary;
  nodes: FleetNode[];
  models: ModelRow[];
  queue: QueueSnapshot;
}

/** One heartbeat's reading of a node, for the dashboard's charts. */
export interface MetricSample {
  /** Epoch ms of the heartbeat. */
  t: number;
  cpuPercent: number | null;
  memoryUsedBytes: number | null;
  memoryTotalBytes: number | null;
  /** Mean utilisation over the node's GPUs, when it reports any. */
  gpuPercent: number | null;
  gpuMemoryUsedBytes: number | null;
  gpuMemoryTotalBytes: number | null;
  inFlight: number;
  totalRequests: number;
  failedRequests: number;
  latencyEwmaMs: number | null;
}
