// Login sessions: a random token handed to the client (cookie and/or Bearer), its sha256 kept
// in the sessions table with an expiry.
import type { SessionsRepository, SessionWithUser } from "../store/sessions.js";
import type { User } from "../store/users.js";
import { generateSessionToken, sha256Hex, SESSION_TOKEN_PREFIX } from "./tokens.js";

export const SESSION_TTL_MS = 24 * 60 * 60 * 1000;

export class SessionService {
  private lastSweep = 0;

  constructor(
    private readonly repo: SessionsRepository,
    private readonly ttlMs = SESSION_TTL_MS,
  ) {}

  async create(user: User, now = Date.now()): Promise<{ token: string; expiresAt: number }> {
    const token = generateSessionToken();
    const expiresAt = now + this.ttlMs;
    await this.repo.create(sha256Hex(token), user.id, expiresAt, now);
    // Expired rows are removed now and then, on the (rare) login path.
    if (now - this.lastSweep > 60 * 60 * 1000) {
      this.lastSweep = now;
      await this.repo.deleteExpired(now);
    }
    return { token, expiresAt };
  }

  /** The session and its user for a presented token, or null. */
  async resolve(token: string, now = Date.now()): Promise<SessionWithUser | null> {
    if (!token.startsWith(SESSION_TOKEN_PREFIX) || token.length > 200) return null;
    return this.repo.find(sha256Hex(token), now);
  }

  async end(token: string): Promise<void> {
    await this.repo.delete(sha256Hex(token));
  }

  /** The stored id of a token (to keep the current session when others are ended). */
  idOf(token: string): string {
    return sha256Hex(token);
  }
}
