// GET /api/nodes/:id/logs?tail=N (and /api/agents/:id/logs): the node's last N log lines,
// fetched from the node's GET /api/logs with the router credential. The node's answer is buffered, so a
// node that stalls midway still gets a clean 502 instead of a truncated 200.
import type { FastifyInstance } from "fastify";
import { request } from "undici";
import { routerAuthHeaders } from "../../protocol/node-auth.js";
import { LOGS_CONTENT_TYPE, NODE_LOGS_PATH, parseTailParam } from "../../protocol/logs.js";
import { HttpError } from "../http/http-errors.js";
import type { NodeRegistry } from "../fleet/node-registry.js";

export interface NodeLogRouteDeps {
  registry: NodeRegistry;
  nodeToken: string | null;
  /** Whole exchange with the node, connect to last byte (default 5 s). */
  timeoutMs?: number;
}

/** The node answered, but not with its logs. */
class NodeAnswerError extends Error {}

/** Far above 5000 lines of normal log lines; a node sending more is misbehaving. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export function registerNodeLogRoutes(app: FastifyInstance, deps: NodeLogRouteDeps): void {
  const timeoutMs = deps.timeoutMs ?? 5000;
  for (const path of ["/api/nodes/:id/logs", "/api/agents/:id/logs"]) {
    app.get(path, { config: { auth: "admin" } }, async (req, reply) => {
      const id = (req.params as { id: string }).id;
      const tail = parseTailParam((req.query as Record<string, unknown>).tail);
      if (!tail.ok) throw new HttpError(400, tail.message, "invalid_request_error", "invalid_tail", "tail");
      const node = deps.registry.get(id);
      if (!node) throw new HttpError(404, `no node with id '${id}'`, "not_found_error", "node_not_found");

      const url = new URL(NODE_LOGS_PATH, node.apiUrl);
      url.searchParams.set("tail", String(tail.tail));
      const signal = AbortSignal.timeout(timeoutMs);
      let text: string;
      try {
        const res = await request(url, { headers: routerAuthHeaders(deps.nodeToken, node.id), signal });
        const body = await readLimited(res.body, MAX_BODY_BYTES);
        if (res.statusCode !== 200) throw new NodeAnswerError(`answered HTTP ${res.statusCode}: ${body.slice(0, 200)}`);
        text = body;
      } catch (err) {
        const why =
          err instanceof NodeAnswerError
            ? err.message
            : signal.aborted
              ? `did not answer within ${timeoutMs / 1000} s`
              : `could not be reached: ${(err as Error).message}`;
        throw new HttpError(502, `node '${node.name}' ${why}`, "server_error", "node_unavailable");
      }
      return reply.type(LOGS_CONTENT_TYPE).send(text);
    });
  }
}

async function readLimited(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new NodeAnswerError(`sent more than ${limit} bytes of logs`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
