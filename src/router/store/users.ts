// The users table: dashboard and admin API accounts with a role.
import { randomUUID } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import type { Database, UsersTable } from "./schema.js";

export type Role = "admin" | "viewer";
export const ROLES: readonly Role[] = ["admin", "viewer"];

export interface User {
  id: string;
  username: string;
  role: Role;
  createdAt: number;
  updatedAt: number;
}

export interface UserWithHash extends User {
  passwordHash: string;
}

function toUser(row: Selectable<UsersTable>): UserWithHash {
  return { id: row.id, username: row.username, role: row.role, createdAt: row.created_at, updatedAt: row.updated_at, passwordHash: row.password_hash };
}

function withoutHash({ passwordHash: _hash, ...user }: UserWithHash): User {
  return user;
}

export class UsersRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Throws a unique violation (see isUniqueViolation) when the username is taken. */
  async create(input: { username: string; passwordHash: string; role: Role }, now = Date.now()): Promise<User> {
    const row = { id: randomUUID(), username: input.username, password_hash: input.passwordHash, role: input.role, created_at: now, updated_at: now };
    await this.db.insertInto("users").values(row).execute();
    return withoutHash(toUser(row));
  }

  async findByUsername(username: string): Promise<UserWithHash | null> {
    const row = await this.db.selectFrom("users").selectAll().where("username", "=", username).executeTakeFirst();
    return row ? toUser(row) : null;
  }

  async findById(id: string): Promise<User | null> {
    const row = await this.db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? withoutHash(toUser(row)) : null;
  }

  async list(): Promise<User[]> {
    const rows = await this.db.selectFrom("users").selectAll().orderBy("username").execute();
    return rows.map((r) => withoutHash(toUser(r)));
  }

  async count(): Promise<number> {
    const r = await this.db
      .selectFrom("users")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async countAdmins(): Promise<number> {
    const r = await this.db
      .selectFrom("users")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .where("role", "=", "admin")
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async setPassword(id: string, passwordHash: string, now = Date.now()): Promise<boolean> {
    const r = await this.db.updateTable("users").set({ password_hash: passwordHash, updated_at: now }).where("id", "=", id).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async setRole(id: string, role: Role, now = Date.now()): Promise<boolean> {
    const r = await this.db.updateTable("users").set({ role, updated_at: now }).where("id", "=", id).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Deletes the user and (by cascade, and explicitly for SQLite files opened without foreign keys) their sessions. */
  async delete(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom("sessions").where("user_id", "=", id).execute();
      const r = await tx.deleteFrom("users").where("id", "=", id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }
}
