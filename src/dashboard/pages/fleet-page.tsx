// The fleet at a glance: summary, models aggregated across nodes, the node table and the node
// detail dialog. Everything comes from the live stream.
import { useState } from "preact/hooks";
import type { FleetSnapshot } from "../api/types";
import { ModelsPanel } from "../components/models-panel";
import { NodeDialog } from "../components/node-dialog";
import { NodeTable } from "../components/node-table";
import { SummaryCards } from "../components/summary-cards";

export function FleetPage({ snapshot, isAdmin }: { snapshot: FleetSnapshot | null; isAdmin: boolean }) {
  const [openNode, setOpenNode] = useState<string | null>(null);
  if (!snapshot) return <div class="loading">Connecting to the router…</div>;
  const node = openNode ? snapshot.nodes.find((n) => n.id === openNode) : undefined;
  return (
    <div class="page-fleet">
      <SummaryCards summary={snapshot.summary} />
      <ModelsPanel models={snapshot.models} />
      <NodeTable nodes={snapshot.nodes} now={snapshot.at} onOpen={setOpenNode} />
      {node && <NodeDialog key={node.id} node={node} now={snapshot.at} isAdmin={isAdmin} onClose={() => setOpenNode(null)} />}
    </div>
  );
}
