// The sessions table: one row per dashboard/API login, keyed by the hash of its token.
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";
import type { Role, User } from "./users.js";

export interface SessionWithUser {
  id: string;
  expiresAt: number;
  user: User;
}

export class SessionsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(id: string, userId: string, expiresAt: number, now = Date.now()): Promise<void> {
    await this.db.insertInto("sessions").values({ id, user_id: userId, created_at: now, expires_at: expiresAt }).execute();
  }

  /** The live session with this id and its user; null when unknown or expired. */
  async find(id: string, now = Date.now()): Promise<SessionWithUser | null> {
    const row = await this.db
      .selectFrom("sessions")
      .innerJoin("users", "users.id", "sessions.user_id")
      .select(["sessions.id as sid", "sessions.expires_at", "users.id as uid", "users.username", "users.role", "users.created_at", "users.updated_at"])
      .where("sessions.id", "=", id)
      .where("sessions.expires_at", ">", now)
      .executeTakeFirst();
    if (!row) return null;
    return {
      id: row.sid,
      expiresAt: row.expires_at,
      user: { id: row.uid, username: row.username, role: row.role as Role, createdAt: row.created_at, updatedAt: row.updated_at },
    };
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom("sessions").where("id", "=", id).execute();
  }

  /** Ends every session of a user (password changed, user deleted), optionally but one. */
  async deleteForUser(userId: string, except?: string): Promise<void> {
    let q = this.db.deleteFrom("sessions").where("user_id", "=", userId);
    if (except) q = q.where("id", "!=", except);
    await q.execute();
  }

  async deleteExpired(now = Date.now()): Promise<number> {
    const r = await this.db.deleteFrom("sessions").where("expires_at", "<=", now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
