// The router's static serving of the built dashboard: files, caching, the single-page-app
// fallback, traversal attempts, and a missing build.
import Fastify, { type FastifyInstance } from "fastify";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { afterEach, describe, expect, test } from "vitest";
import { installErrorHandlers } from "../../src/router/http/http-errors.js";
import { registerDashboardRoutes } from "../../src/router/routes/dashboard-routes.js";

let app: FastifyInstance | undefined;
afterEach(async () => app?.close());

async function serve(root: string) {
  app = Fastify({ forceCloseConnections: true });
  installErrorHandlers(app, () => {});
  registerDashboardRoutes(app, root);
  await app.listen({ host: "127.0.0.1", port: 0 });
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

function build(): string {
  const parent = mkdtempSync(join(tmpdir(), "drover-dash-"));
  const root = join(parent, "dashboard");
  mkdirSync(join(root, "assets"), { recursive: true });
  writeFileSync(join(root, "index.html"), "<!doctype html><title>app</title>");
  writeFileSync(join(root, "assets", "index-abc123.js"), "console.log(1)");
  writeFileSync(join(root, "favicon.svg"), "<svg/>");
  // A file beside the build folder that traversal must not reach.
  writeFileSync(join(parent, "secret.txt"), "TOP-SECRET-CONTENT");
  return root;
}

async function get(url: string) {
  const res = await request(url);
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

describe("dashboard static files", () => {
  test("index, hashed assets cached for good, other files revalidated", async () => {
    const url = await serve(build());
    const index = await get(`${url}/dashboard/`);
    expect(index.status).toBe(200);
    expect(index.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(index.headers["cache-control"]).toBe("no-cache");
    expect(index.body).toContain("<title>app</title>");

    const asset = await get(`${url}/dashboard/assets/index-abc123.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(asset.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(asset.body).toBe("console.log(1)");

    const icon = await get(`${url}/dashboard/favicon.svg`);
    expect(icon.headers["content-type"]).toBe("image/svg+xml");
    expect(icon.headers["cache-control"]).toBe("no-cache");
  });

  test("/dashboard redirects to /dashboard/ keeping the query", async () => {
    const url = await serve(build());
    const res = await request(`${url}/dashboard?x=1`);
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe("/dashboard/?x=1");
    await res.body.dump();
  });

  test("app routes fall back to index.html; missing files are 404", async () => {
    const url = await serve(build());
    for (const page of ["requests", "users", "nodes/abc"]) {
      const res = await get(`${url}/dashboard/${page}`);
      expect(res.status, page).toBe(200);
      expect(res.body).toContain("<title>app</title>");
    }
    for (const missing of ["assets/gone-123.js", "missing.css", "assets/deeper"]) {
      const res = await get(`${url}/dashboard/${missing}`);
      expect(res.status, missing).toBe(404);
      expect(JSON.parse(res.body).error.code).toBe("not_found");
    }
  });

  test("path traversal never leaves the build folder", async () => {
    const url = await serve(build());
    for (const path of ["..%2fsecret.txt", "%2e%2e/secret.txt", "assets/..%2f..%2fsecret.txt", "..%5csecret.txt", "%00index.html"]) {
      const res = await get(`${url}/dashboard/${path}`);
      expect(res.body, path).not.toContain("TOP-SECRET-CONTENT");
      expect([400, 404], path).toContain(res.status);
    }
  });

  test("without a build the dashboard answers 503 saying how to build it", async () => {
    const url = await serve(join(mkdtempSync(join(tmpdir(), "drover-nodash-")), "dashboard"));
    const res = await get(`${url}/dashboard/`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).error.message).toMatch(/npm run build/);
  });
});
