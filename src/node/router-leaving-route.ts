// POST NODE_PATHS.routerLeaving: a router of the fleet shutting down says goodbye, so the node
// stops registering and heartbeating with it at once. Routers only (the router credential).
import type { FastifyInstance } from "fastify";
import { NODE_PATHS } from "../protocol/http.js";
import { RouterLeaving } from "../protocol/node-api.js";
import { describeZodError } from "../protocol/openai.js";
import { openAiError } from "../protocol/openai-errors.js";

export async function routerLeavingRoute(app: FastifyInstance, opts: { leaving: (routerUrl: string) => boolean }): Promise<void> {
  app.post(NODE_PATHS.routerLeaving, { config: { nodeAuth: "router" } }, async (req, reply) => {
    const parsed = RouterLeaving.safeParse(req.body);
    if (!parsed.success) {
      const { message, param } = describeZodError(parsed.error);
      return reply.code(400).send(openAiError(message, "invalid_request_error", "invalid_request", param));
    }
    return { status: opts.leaving(parsed.data.url) ? "dropped" : "unknown" };
  });
}
