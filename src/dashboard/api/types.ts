// The JSON the router's API sends, as the dashboard reads it; what the router and the dashboard
// share is defined once in src/protocol/.
import type { LiveRequestEvent } from "../../protocol/request-record";

export type { FleetNode, FleetSnapshot, FleetSummary, MetricSample, ModelRow, NodeState } from "../../protocol/fleet-view";
export type { ModelState } from "../../protocol/node-api";
export type { NodeModelView as NodeModel } from "../../protocol/fleet-view";

/** One finished inference request as the dashboard shows it: a live event, or a history row with its names and times made the live event's. */
export interface RequestRecord extends LiveRequestEvent {
  /** The history row's id (absent on a live event). */
  id?: string;
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
