// A router shutting down tells each node it knows (POST NODE_PATHS.routerLeaving), so the node
// stops registering and heartbeating with it at once instead of after missed answers.
import type { Logger } from "pino";
import { request } from "undici";
import { NODE_PATHS } from "../../protocol/http.js";
import { routerAuthHeaders } from "../../protocol/node-auth.js";
import type { RouterLeaving } from "../../protocol/node-api.js";
import type { NodeRegistry } from "./node-registry.js";

const GOODBYE_TIMEOUT_MS = 2_000;

export async function tellNodesLeaving(registry: NodeRegistry, routerUrl: string, nodeToken: string | null, logger: Logger): Promise<void> {
  const body: RouterLeaving = { url: routerUrl };
  const nodes = registry.all().filter((n) => n.state !== "offline");
  await Promise.all(
    nodes.map(async (node) => {
      try {
        const res = await request(`${new URL(node.apiUrl).origin}${NODE_PATHS.routerLeaving}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...routerAuthHeaders(nodeToken, node.id) },
          body: JSON.stringify(body),
          headersTimeout: GOODBYE_TIMEOUT_MS,
          bodyTimeout: GOODBYE_TIMEOUT_MS,
          signal: AbortSignal.timeout(GOODBYE_TIMEOUT_MS),
        });
        await res.body.dump();
        if (res.statusCode >= 300)
          logger.info({ node: node.name, status: res.statusCode }, "node did not take this router's goodbye; it forgets the router after missed answers");
      } catch (err) {
        logger.info(
          { node: node.name, err: (err as Error).message },
          "could not tell a node this router is leaving; it forgets the router after missed answers",
        );
      }
    }),
  );
}
