// The session cookie: httpOnly (scripts cannot read it), SameSite=Strict (browsers do not send
// it on cross-site requests: the CSRF defence, with an Origin check on writes), Secure behind
// HTTPS.
import type { FastifyRequest } from "fastify";

export const SESSION_COOKIE = "drover_session";

/** The value of one cookie from the Cookie header, or null. */
export function readCookie(req: FastifyRequest, name: string): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw);
    } catch {
      return null;
    }
  }
  return null;
}

function secure(req: FastifyRequest): boolean {
  return req.protocol === "https" || req.headers["x-forwarded-proto"] === "https";
}

export function sessionCookie(req: FastifyRequest, token: string, maxAgeMs: number): string {
  return `${SESSION_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(maxAgeMs / 1000)}${secure(req) ? "; Secure" : ""}`;
}

export function clearedSessionCookie(req: FastifyRequest): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure(req) ? "; Secure" : ""}`;
}

/**
 * For writes authenticated by the cookie: the browser's Origin (or Referer) must be this
 * router. Non-browser clients send neither and are not at risk (they hold the token themselves).
 */
export function sameOrigin(req: FastifyRequest): boolean {
  const source = req.headers.origin ?? req.headers.referer;
  if (!source) return true;
  if (source === "null") return false;
  try {
    const host = new URL(source).host;
    // Behind a reverse proxy that rewrites Host, the public name arrives as X-Forwarded-Host.
    return host === req.headers.host || host === req.headers["x-forwarded-host"];
  } catch {
    return false;
  }
}
