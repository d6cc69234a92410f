// Secret tokens (API keys, session tokens) and how they are stored: only their sha256, since
// they are long random strings and need no slow hash.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export const API_KEY_PREFIX = "drv_";
export const SESSION_TOKEN_PREFIX = "drv_sess_";

export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(24).toString("base64url");
}

export function generateSessionToken(): string {
  return SESSION_TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The part of a key shown in lists: at most 12 characters and never more than a third of it. */
export function displayPrefix(key: string): string {
  return key.slice(0, Math.min(12, Math.floor(key.length / 3)));
}

/** Constant-time string comparison (for the node token). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
