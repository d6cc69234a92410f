// One hook enforces every route's `config.auth`:
//   public     no credentials
//   inference  an API key (Bearer), optionally limited to models — /v1/* and the Ollama routes
//   node       the node token (Bearer) — registration, heartbeats, catalog, model files
//   viewer     a logged-in user of either role (session cookie or Bearer session token)
//   admin      a logged-in admin
// A route that declares nothing is treated as admin: forgetting the declaration cannot open it.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { HttpError } from "../http/http-errors.js";
import type { ApiKeyRecord } from "../store/api-keys.js";
import type { User } from "../store/users.js";
import type { ApiKeyService } from "./api-keys.js";
import { readCookie, sameOrigin, SESSION_COOKIE } from "./session-cookie.js";
import type { SessionService } from "./sessions.js";
import { safeEqual } from "./tokens.js";

export type AuthLevel = "public" | "inference" | "node" | "viewer" | "admin";

declare module "fastify" {
  interface FastifyContextConfig {
    auth?: AuthLevel;
  }
}

export type RequestAuth =
  | { kind: "key"; key: ApiKeyRecord }
  | { kind: "user"; user: User; sessionId: string; token: string; via: "cookie" | "bearer" }
  | { kind: "node" }
  | { kind: "public" };

const authByRequest = new WeakMap<FastifyRequest, RequestAuth>();

export function authOf(req: FastifyRequest): RequestAuth {
  return authByRequest.get(req) ?? { kind: "public" };
}

/** The API key's name for request records, when the request came with one. */
export function apiKeyNameOf(req: FastifyRequest): string | null {
  const auth = authByRequest.get(req);
  return auth?.kind === "key" ? auth.key.name : null;
}

/** The logged-in user of a viewer/admin route (the hook guarantees one there). */
export function userOf(req: FastifyRequest): Extract<RequestAuth, { kind: "user" }> {
  const auth = authByRequest.get(req);
  if (auth?.kind !== "user") throw new HttpError(401, "log in first (POST /api/auth/login)", "authentication_error", "not_authenticated");
  return auth;
}

export interface RouteAuthDeps {
  apiKeys: ApiKeyService;
  sessions: SessionService;
  /** null: nodes need no token. */
  nodeToken: string | null;
}

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== "string") return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1]! : null;
}

/** Anthropic's clients send the key as `x-api-key`; every inference route takes it like a Bearer token. */
function apiKeyHeader(req: FastifyRequest): string | null {
  const h = req.headers["x-api-key"];
  return typeof h === "string" && h.trim() ? h.trim() : null;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Whether a key limited to models allows this one (Ollama's implicit ":latest" included). */
export function keyAllowsModel(key: ApiKeyRecord, model: string): boolean {
  if (key.models === null) return true;
  return key.models.some((m) => m === model || `${m}:latest` === model);
}

export function installRouteAuth(app: FastifyInstance, deps: RouteAuthDeps): void {
  const levelOf = (req: FastifyRequest): AuthLevel => req.routeOptions.config?.auth ?? "admin";

  async function inference(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const token = bearer(req) ?? apiKeyHeader(req);
    if (!token) {
      reply.header("www-authenticate", 'Bearer realm="drover"');
      throw new HttpError(
        401,
        "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' (or 'x-api-key: <key>').",
        "invalid_request_error",
        "missing_api_key",
      );
    }
    const check = await deps.apiKeys.check(token);
    if (!check.ok) {
      const message =
        check.reason === "revoked"
          ? "This API key has been revoked."
          : check.reason === "expired"
            ? "This API key has expired."
            : "Incorrect API key provided.";
      reply.header("www-authenticate", 'Bearer realm="drover", error="invalid_token"');
      throw new HttpError(401, message, "invalid_request_error", check.reason === "unknown" ? "invalid_api_key" : `api_key_${check.reason}`);
    }
    authByRequest.set(req, { kind: "key", key: check.key });
  }

  async function user(req: FastifyRequest, level: "viewer" | "admin"): Promise<void> {
    const fromBearer = bearer(req);
    const token = fromBearer ?? readCookie(req, SESSION_COOKIE);
    let session: Awaited<ReturnType<SessionService["resolve"]>> = null;
    try {
      session = token ? await deps.sessions.resolve(token) : null;
    } catch {
      throw new HttpError(503, "the router cannot reach its database to check the session; try again shortly", "server_error", "auth_unavailable");
    }
    if (!session || !token) {
      throw new HttpError(
        401,
        "log in first: POST /api/auth/login, then send the session cookie or 'Authorization: Bearer <token>'",
        "authentication_error",
        "not_authenticated",
      );
    }
    const via = fromBearer ? "bearer" : "cookie";
    if (via === "cookie" && !SAFE_METHODS.has(req.method) && !sameOrigin(req)) {
      throw new HttpError(403, "cross-site request refused", "permission_error", "csrf_rejected");
    }
    if (level === "admin" && session.user.role !== "admin") {
      throw new HttpError(403, "this needs an admin; your role is viewer", "permission_error", "admin_required");
    }
    authByRequest.set(req, { kind: "user", user: session.user, sessionId: session.id, token, via });
  }

  app.addHook("onRequest", async (req, reply) => {
    // Unknown paths answer 404 whoever asks.
    if (req.is404) return;
    const level = levelOf(req);
    if (level === "public") return;
    if (level === "node") {
      if (deps.nodeToken === null) return void authByRequest.set(req, { kind: "node" });
      const token = bearer(req);
      if (!token || !safeEqual(token, deps.nodeToken)) {
        throw new HttpError(
          401,
          "a valid node token is required (set DROVER_NODE_TOKEN on the node to the router's node token)",
          "authentication_error",
          "invalid_node_token",
        );
      }
      return void authByRequest.set(req, { kind: "node" });
    }
    if (level === "inference") return inference(req, reply);
    return user(req, level);
  });

  // The model a key may use is known once the body is parsed.
  app.addHook("preHandler", async (req) => {
    const auth = authByRequest.get(req);
    if (auth?.kind !== "key" || auth.key.models === null) return;
    const body = req.body as { model?: unknown; name?: unknown } | undefined;
    const model = body && typeof body === "object" ? (typeof body.model === "string" ? body.model : typeof body.name === "string" ? body.name : null) : null;
    if (model !== null && !keyAllowsModel(auth.key, model)) {
      throw new HttpError(
        403,
        `This API key may not use the model '${model}' (allowed: ${auth.key.models.join(", ")})`,
        "permission_error",
        "model_not_allowed",
        "model",
      );
    }
  });
}
