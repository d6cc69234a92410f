// API key administration (admin only): list (never the keys themselves), create (the key is in
// this one answer and nowhere else), revoke.
import type { FastifyInstance } from "fastify";
import type { Catalog } from "../../protocol/catalog.js";
import { keyView, type ApiKeyService } from "../auth/api-keys.js";
import { userOf } from "../auth/route-auth.js";
import { HttpError } from "../http/http-errors.js";

export interface KeyRouteDeps {
  apiKeys: ApiKeyService;
  catalog: Catalog;
}

/** `expiresAt` (ISO-8601 or epoch ms) or `expiresInDays`; null = never. */
export function parseExpiry(body: { expiresAt?: unknown; expiresInDays?: unknown }, now = Date.now()): number | null {
  if (body.expiresAt !== undefined && body.expiresAt !== null) {
    const t = typeof body.expiresAt === "number" ? body.expiresAt : typeof body.expiresAt === "string" ? Date.parse(body.expiresAt) : NaN;
    if (!Number.isFinite(t))
      throw new HttpError(400, "expiresAt must be an ISO-8601 time or epoch milliseconds", "invalid_request_error", "invalid_expiry", "expiresAt");
    return t;
  }
  if (body.expiresInDays !== undefined && body.expiresInDays !== null) {
    const d = body.expiresInDays;
    if (typeof d !== "number" || !(d > 0) || d > 36_500)
      throw new HttpError(400, "expiresInDays must be a positive number of days", "invalid_request_error", "invalid_expiry", "expiresInDays");
    return now + d * 86_400_000;
  }
  return null;
}

export function registerKeyRoutes(app: FastifyInstance, deps: KeyRouteDeps): void {
  const known = new Set(deps.catalog.models.map((m) => m.id));

  app.get("/api/keys", { config: { auth: "admin" } }, async () => ({ keys: (await deps.apiKeys.list()).map((k) => keyView(k)) }));

  app.post("/api/keys", { config: { auth: "admin" } }, async (req, reply) => {
    const body = (req.body ?? {}) as { name?: unknown; models?: unknown; expiresAt?: unknown; expiresInDays?: unknown };
    if (body.models !== undefined && body.models !== null) {
      if (!Array.isArray(body.models)) throw new HttpError(400, "models must be a list of model ids", "invalid_request_error", "invalid_models", "models");
      const unknown = body.models.filter((m) => typeof m !== "string" || !known.has(m));
      if (unknown.length)
        throw new HttpError(400, `not in the catalog: ${unknown.map(String).join(", ")}`, "invalid_request_error", "model_not_found", "models");
    }
    const { key, record } = await deps.apiKeys.create({
      name: body.name as string,
      models: (body.models as string[] | null | undefined) ?? null,
      expiresAt: parseExpiry(body),
      createdBy: userOf(req).user.username,
    });
    return reply.code(201).send({ ...keyView(record), key });
  });

  app.delete("/api/keys/:id", { config: { auth: "admin" } }, async (req) => keyView(await deps.apiKeys.revoke((req.params as { id: string }).id)));
}
