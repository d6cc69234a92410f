// GET /api/logs?tail=N on the node: the last N lines of its JSON-lines log (engine output
// included), for the router's log proxy. Behind the router credential, like every node route
// (checked by the server's hook).
import type { FastifyInstance } from "fastify";
import { readLastLines } from "../logs/log-tail.js";
import { LOGS_CONTENT_TYPE, NODE_LOGS_PATH, parseTailParam } from "../protocol/logs.js";
import { openAiError } from "../protocol/openai-errors.js";

export interface NodeLogRouteOptions {
  /** The log file and its rotated predecessors, newest first. */
  logFiles: readonly string[];
}

export async function nodeLogRoutes(app: FastifyInstance, opts: NodeLogRouteOptions): Promise<void> {
  app.get(NODE_LOGS_PATH, async (req, reply) => {
    const tail = parseTailParam((req.query as Record<string, unknown>).tail);
    if (!tail.ok) return reply.code(400).send(openAiError(tail.message, "invalid_request_error", "invalid_tail", "tail"));
    const lines = await readLastLines(opts.logFiles, tail.tail);
    return reply.type(LOGS_CONTENT_TYPE).send(lines.length ? `${lines.join("\n")}\n` : "");
  });
}
