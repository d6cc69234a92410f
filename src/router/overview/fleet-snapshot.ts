// The whole fleet as one JSON document: nodes, models aggregated across nodes, queue and the
// summary numbers the dashboard's header shows. Pushed over /api/events once a second.
import type { Catalog } from "../../protocol/catalog.js";
import type { FleetSnapshot } from "../../protocol/fleet-view.js";
import type { AdmissionQueue } from "../request-path/admission-queue.js";
import type { FleetActivity } from "./fleet-activity.js";
import type { NodeRegistry } from "../fleet/node-registry.js";
import { modelRows, nodeView } from "../routes/status-routes.js";

export interface FleetSnapshotDeps {
  catalog: Catalog;
  registry: NodeRegistry;
  queue: AdmissionQueue;
  activity: FleetActivity;
  startedAt: number;
}

export function fleetSnapshot(deps: FleetSnapshotDeps, now = Date.now()): FleetSnapshot {
  const nodes = deps.registry.all().map(nodeView);
  const queue = deps.queue.snapshot();
  const count = (state: string) => nodes.filter((n) => n.state === state).length;
  return {
    at: now,
    routerUptimeMs: now - deps.startedAt,
    summary: {
      nodesOnline: count("online"),
      nodesInitializing: count("initializing"),
      nodesOffline: count("offline"),
      inFlight: nodes.reduce((a, n) => a + n.inFlight, 0),
      queueDepth: queue.total,
      queueLimit: queue.limit,
      ...deps.activity.summary(now),
    },
    nodes,
    models: modelRows(deps),
    queue,
  };
}
