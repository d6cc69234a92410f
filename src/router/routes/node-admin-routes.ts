// What an admin may change about a node from the dashboard or the API: its display name, tags
// and notes (PATCH /api/nodes/:id, kept in the database), disconnecting it (POST
// /api/nodes/:id/disconnect) and forgetting it (DELETE /api/nodes/:id).
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { describeZodError } from "../../protocol/openai.js";
import { HttpError } from "../http/http-errors.js";
import type { NodeRecord, NodeRegistry, NodeSettings } from "../fleet/node-registry.js";
import type { NodesRepository } from "../store/nodes.js";
import { nodeView } from "./status-routes.js";

export interface NodeAdminRouteDeps {
  registry: NodeRegistry;
  nodes: NodesRepository;
}

/** An empty display name or notes field clears it. */
const blankToNull = (v: string | null) => (v === null || v.trim() === "" ? null : v.trim());

export const NodeSettingsPatch = z
  .object({
    displayName: z.string().max(128).nullable().transform(blankToNull).optional(),
    tags: z
      .array(z.string().trim().min(1, "tags must not be empty").max(64))
      .max(32)
      .transform((tags) => [...new Set(tags)])
      .optional(),
    notes: z.string().max(4096).nullable().transform(blankToNull).optional(),
  })
  .strict();

function nodeOr404(registry: NodeRegistry, id: string): NodeRecord {
  const node = registry.get(id);
  if (!node) throw new HttpError(404, `no node with id '${id}'`, "not_found_error", "node_not_found");
  return node;
}

export function registerNodeAdminRoutes(app: FastifyInstance, deps: NodeAdminRouteDeps): void {
  // Settings saved by earlier runs, onto the nodes the registry restored from the database.
  app.addHook("onReady", async () => {
    for (const stored of await deps.nodes.list()) {
      const node = deps.registry.get(stored.id);
      if (node && (stored.displayName !== null || stored.tags.length > 0 || stored.notes !== null)) {
        node.settings = { displayName: stored.displayName, tags: stored.tags, notes: stored.notes };
      }
    }
  });

  app.patch("/api/nodes/:id", { config: { auth: "admin" } }, async (req) => {
    const node = nodeOr404(deps.registry, (req.params as { id: string }).id);
    const parsed = NodeSettingsPatch.safeParse(req.body ?? {});
    if (!parsed.success) {
      const { message, param } = describeZodError(parsed.error);
      throw new HttpError(400, message, "invalid_request_error", "invalid_request", param);
    }
    const change = parsed.data;
    if (change.displayName === undefined && change.tags === undefined && change.notes === undefined) {
      throw new HttpError(400, "send displayName, tags and/or notes", "invalid_request_error", "invalid_request");
    }
    // Saved first: the dashboard shows what the database holds.
    if (!(await deps.nodes.updateSettings(node.id, change))) {
      await deps.nodes.save({ id: node.id, name: node.name, apiUrl: node.apiUrl, firstSeen: node.firstSeen, secretHash: node.secretHash });
      await deps.nodes.updateSettings(node.id, change);
    }
    const current: NodeSettings = node.settings ?? { displayName: null, tags: [], notes: null };
    node.settings = {
      displayName: change.displayName !== undefined ? change.displayName : current.displayName,
      tags: change.tags ?? current.tags,
      notes: change.notes !== undefined ? change.notes : current.notes,
    };
    return nodeView(node);
  });

  app.post("/api/nodes/:id/disconnect", { config: { auth: "admin" } }, async (req) => {
    const node = nodeOr404(deps.registry, (req.params as { id: string }).id);
    deps.registry.disconnect(node.id);
    return nodeView(node);
  });

  app.delete("/api/nodes/:id", { config: { auth: "admin" } }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const known = deps.registry.remove(id);
    const stored = await deps.nodes.delete(id);
    if (!known && !stored) throw new HttpError(404, `no node with id '${id}'`, "not_found_error", "node_not_found");
    return reply.code(204).send();
  });
}
