// Login and the session: POST /api/auth/login sets an httpOnly session cookie and returns the
// token for scripts (Bearer); logout, who am I, and changing one's own password.
import type { FastifyInstance } from "fastify";
import type { LoginRateLimiter } from "../auth/login-rate-limit.js";
import { userOf } from "../auth/route-auth.js";
import { clearedSessionCookie, sessionCookie } from "../auth/session-cookie.js";
import type { SessionService } from "../auth/sessions.js";
import { userView, validatePassword, type UserAccounts } from "../auth/user-accounts.js";
import { HttpError } from "../http/http-errors.js";

export interface AuthRouteDeps {
  accounts: UserAccounts;
  sessions: SessionService;
  limiter: LoginRateLimiter;
  sessionTtlMs: number;
}

export function registerAuthRoutes(app: FastifyInstance, deps: AuthRouteDeps): void {
  app.post("/api/auth/login", { config: { auth: "public" } }, async (req, reply) => {
    const body = req.body as { username?: unknown; password?: unknown } | null;
    if (!body || typeof body !== "object" || typeof body.username !== "string" || typeof body.password !== "string") {
      throw new HttpError(400, 'send {"username": "...", "password": "..."}', "invalid_request_error", "invalid_request");
    }
    const { username, password } = body as { username: string; password: string };
    const wait = deps.limiter.retryAfterS(req.ip, username);
    if (wait > 0) {
      reply.header("retry-after", String(wait));
      throw new HttpError(
        429,
        `too many failed logins from your address (for this user, or for any); try again in ${wait} s`,
        "rate_limit_error",
        "too_many_login_attempts",
      );
    }
    const user = await deps.accounts.authenticate(username, password);
    if (!user) {
      deps.limiter.fail(req.ip, username);
      throw new HttpError(401, "invalid username or password", "authentication_error", "invalid_credentials");
    }
    deps.limiter.succeed(req.ip, username);
    const session = await deps.sessions.create(user);
    reply.header("set-cookie", sessionCookie(req, session.token, deps.sessionTtlMs));
    return { token: session.token, expiresAt: new Date(session.expiresAt).toISOString(), user: userView(user) };
  });

  app.post("/api/auth/logout", { config: { auth: "viewer" } }, async (req, reply) => {
    await deps.sessions.end(userOf(req).token);
    reply.header("set-cookie", clearedSessionCookie(req));
    return { status: "logged out" };
  });

  app.get("/api/auth/me", { config: { auth: "viewer" } }, async (req) => userView(userOf(req).user));

  /** Changes the caller's own password (the current one is required) and ends their other sessions. */
  app.post("/api/auth/password", { config: { auth: "viewer" } }, async (req) => {
    const me = userOf(req);
    const body = (req.body ?? {}) as { currentPassword?: unknown; newPassword?: unknown };
    if (typeof body.currentPassword !== "string" || !(await deps.accounts.authenticate(me.user.username, body.currentPassword))) {
      throw new HttpError(403, "the current password is wrong", "permission_error", "invalid_credentials", "currentPassword");
    }
    validatePassword(body.newPassword, "newPassword");
    await deps.accounts.setPassword(me.user.username, body.newPassword, me.sessionId);
    return { status: "password changed" };
  });
}
