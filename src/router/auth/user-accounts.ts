// Users of the dashboard and admin API: creation with a hashed password, role changes,
// deletion, and the check behind login. The last admin can be neither deleted nor demoted.
import { HttpError } from "../http/http-errors.js";
import { isUniqueViolation } from "../store/errors.js";
import type { SessionsRepository } from "../store/sessions.js";
import { ROLES, type Role, type User, type UsersRepository } from "../store/users.js";
import { hashPassword, verifyPassword } from "./passwords.js";

const USERNAME = /^[A-Za-z0-9._@-]{1,64}$/;
export const MIN_PASSWORD_LENGTH = 8;

export function validateUsername(username: unknown): string {
  if (typeof username !== "string" || !USERNAME.test(username)) {
    throw new HttpError(400, "a username is 1-64 letters, digits or . _ @ -", "invalid_request_error", "invalid_username", "username");
  }
  return username;
}

export function validatePassword(password: unknown, param = "password"): string {
  if (typeof password !== "string" || password.length < MIN_PASSWORD_LENGTH || password.length > 1024) {
    throw new HttpError(400, `a password has ${MIN_PASSWORD_LENGTH} to 1024 characters`, "invalid_request_error", "invalid_password", param);
  }
  return password;
}

export function validateRole(role: unknown): Role {
  if (typeof role !== "string" || !ROLES.includes(role as Role)) {
    throw new HttpError(400, `role must be one of: ${ROLES.join(", ")}`, "invalid_request_error", "invalid_role", "role");
  }
  return role as Role;
}

// Verifying against a real hash for unknown users keeps login time the same whether or not
// the username exists.
let dummyHash: Promise<string> | null = null;

export class UserAccounts {
  constructor(
    private readonly users: UsersRepository,
    private readonly sessions: SessionsRepository,
  ) {}

  async create(input: { username?: unknown; password?: unknown; role?: unknown }): Promise<User> {
    const username = validateUsername(input.username);
    const password = validatePassword(input.password);
    const role = input.role === undefined ? "viewer" : validateRole(input.role);
    try {
      return await this.users.create({ username, passwordHash: await hashPassword(password), role });
    } catch (err) {
      if (isUniqueViolation(err)) throw new HttpError(409, `user "${username}" exists`, "invalid_request_error", "user_exists", "username");
      throw err;
    }
  }

  list(): Promise<User[]> {
    return this.users.list();
  }

  async get(username: string): Promise<User> {
    const user = await this.users.findByUsername(username);
    if (!user) throw new HttpError(404, `no user "${username}"`, "not_found_error", "user_not_found");
    const { passwordHash: _hash, ...rest } = user;
    return rest;
  }

  /** The user when the password matches, else null. */
  async authenticate(username: string, password: string): Promise<User | null> {
    const user = await this.users.findByUsername(username);
    if (!user) {
      dummyHash ??= hashPassword("not a password of anyone");
      await verifyPassword(password, await dummyHash);
      return null;
    }
    if (!(await verifyPassword(password, user.passwordHash))) return null;
    const { passwordHash: _hash, ...rest } = user;
    return rest;
  }

  /** Sets a new password and ends the user's sessions, except `keepSession`. */
  async setPassword(username: string, password: unknown, keepSession?: string): Promise<void> {
    const user = await this.get(username);
    await this.users.setPassword(user.id, await hashPassword(validatePassword(password)));
    await this.sessions.deleteForUser(user.id, keepSession);
  }

  async setRole(username: string, role: unknown): Promise<User> {
    const user = await this.get(username);
    const next = validateRole(role);
    if (user.role === "admin" && next !== "admin" && (await this.users.countAdmins()) <= 1) {
      throw new HttpError(409, "the last admin cannot be demoted; make another user admin first", "invalid_request_error", "last_admin");
    }
    await this.users.setRole(user.id, next);
    return { ...user, role: next };
  }

  async delete(username: string): Promise<void> {
    const user = await this.get(username);
    if (user.role === "admin" && (await this.users.countAdmins()) <= 1) {
      throw new HttpError(409, "the last admin cannot be deleted; make another user admin first", "invalid_request_error", "last_admin");
    }
    await this.users.delete(user.id);
  }
}

export function userView(u: User) {
  return { id: u.id, username: u.username, role: u.role, createdAt: new Date(u.createdAt).toISOString(), updatedAt: new Date(u.updatedAt).toISOString() };
}
