// Serves the built dashboard (dist/dashboard, written by `npm run build`) at /dashboard: files
// as they are, hashed assets cached for good, any other path answered with index.html so the
// single-page app can route it. Public: the app itself asks for a login.
import type { FastifyInstance, FastifyReply } from "fastify";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname, extname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { HttpError } from "../http/http-errors.js";

/** Same place from src/router/routes (tests) and dist/router/routes (built). */
export const DASHBOARD_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../../dist/dashboard");

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

/** Vite puts content-hashed files under assets/: their bytes never change under a name. */
const IMMUTABLE = "public, max-age=31536000, immutable";

async function fileSize(path: string): Promise<number | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : null;
  } catch {
    return null;
  }
}

export function registerDashboardRoutes(app: FastifyInstance, root = DASHBOARD_DIR): void {
  const indexPath = resolve(root, "index.html");

  const sendFile = (reply: FastifyReply, path: string, size: number, cacheControl: string) =>
    reply
      .header("content-type", CONTENT_TYPES[extname(path)] ?? "application/octet-stream")
      .header("content-length", size)
      .header("cache-control", cacheControl)
      .header("x-content-type-options", "nosniff")
      .send(createReadStream(path));

  const sendIndex = async (reply: FastifyReply) => {
    const size = await fileSize(indexPath);
    if (size === null) throw new HttpError(503, "the dashboard is not built; run `npm run build`", "server_error", "dashboard_not_built");
    // Never cached: it names the current hashed assets.
    return sendFile(reply, indexPath, size, "no-cache");
  };

  app.get("/dashboard", { config: { auth: "public" } }, async (req, reply) => {
    const query = req.url.indexOf("?");
    return reply.redirect(`/dashboard/${query >= 0 ? req.url.slice(query) : ""}`, 302);
  });

  app.get("/dashboard/*", { config: { auth: "public" } }, async (req, reply) => {
    const rel = (req.params as { "*": string })["*"];
    if (rel === "" || rel === "index.html") return sendIndex(reply);
    const path = resolve(root, rel);
    // Anything that resolves outside the build folder (../, encoded or not) does not exist.
    if (rel.includes("\0") || !path.startsWith(root + sep)) throw new HttpError(404, "not found", "not_found_error", "not_found");
    const size = await fileSize(path);
    if (size !== null) return sendFile(reply, path, size, rel.startsWith("assets/") ? IMMUTABLE : "no-cache");
    // A missing file is a 404; a missing page is the app's own route (e.g. /dashboard/requests).
    if (rel.startsWith("assets/") || extname(rel) !== "") throw new HttpError(404, "not found", "not_found_error", "not_found");
    return sendIndex(reply);
  });
}
