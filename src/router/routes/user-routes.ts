// User administration (admin only): list, create, change role or password, delete.
import type { FastifyInstance } from "fastify";
import { userView, type UserAccounts } from "../auth/user-accounts.js";
import { HttpError } from "../http/http-errors.js";

export interface UserRouteDeps {
  accounts: UserAccounts;
}

export function registerUserRoutes(app: FastifyInstance, deps: UserRouteDeps): void {
  app.get("/api/users", { config: { auth: "admin" } }, async () => ({ users: (await deps.accounts.list()).map(userView) }));

  app.post("/api/users", { config: { auth: "admin" } }, async (req, reply) => {
    const body = (req.body ?? {}) as { username?: unknown; password?: unknown; role?: unknown };
    const user = await deps.accounts.create(body);
    return reply.code(201).send(userView(user));
  });

  app.patch("/api/users/:username", { config: { auth: "admin" } }, async (req) => {
    const { username } = req.params as { username: string };
    const body = (req.body ?? {}) as { role?: unknown; password?: unknown };
    if (body.role === undefined && body.password === undefined) {
      throw new HttpError(400, "send a role and/or a password to change", "invalid_request_error", "invalid_request");
    }
    if (body.password !== undefined) await deps.accounts.setPassword(username, body.password);
    const user = body.role !== undefined ? await deps.accounts.setRole(username, body.role) : await deps.accounts.get(username);
    return userView(user);
  });

  app.delete("/api/users/:username", { config: { auth: "admin" } }, async (req, reply) => {
    await deps.accounts.delete((req.params as { username: string }).username);
    return reply.code(204).send();
  });
}
