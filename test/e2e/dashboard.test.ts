// The dashboard in a real browser (Debian's chromium driven by playwright-core) against a real
// router with two real nodes: login, the fleet, the aggregated model panel, live request
// history, node logs, dialogs closed on reload, and what a viewer may see. Screenshots of the
// main views go to test-results/.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DEMO_CATALOG } from "../../src/catalog/builtin.js";
import { getJson, REPO_ROOT, startNode, startRouter, TEST_ADMIN, TEST_API_KEY, waitFor, waitForReady, type DroverProcess } from "../support/fleet.js";

const CHAT = "demo-chat";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = join(REPO_ROOT, "test-results");
const VIEWER = { username: "watcher", password: "viewer-password-1" };

let router: DroverProcess;
const nodes: DroverProcess[] = [];
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium; .ci/run does) or set CHROMIUM_PATH`);
  mkdirSync(SHOTS, { recursive: true });
  // Bodies kept, so the request dialog has a request and a response to show.
  router = await startRouter(["--history-body-bytes", "4096"]);
  nodes.push(await startNode(router.url, "dash-a"), await startNode(router.url, "dash-b"));
  await waitForReady(router.url, [CHAT], 2);
  // launch() gives every browser a fresh temporary profile (--user-data-dir) of its own.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await Promise.all(nodes.map((n) => n.stop()));
  await router?.stop();
});

async function newPage(width = 1280, height = 900): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return page;
}

async function logIn(page: Page, user: { username: string; password: string }): Promise<void> {
  await page.goto(`${router.url}/dashboard/`);
  await page.locator('input[name="username"]').fill(user.username);
  await page.locator('input[name="password"]').fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator('[data-testid="current-user"]').waitFor();
}

const text = async (page: Page, selector: string) => ((await page.locator(selector).first().textContent()) ?? "").trim();
const openDialogs = (page: Page) => page.locator("dialog[open]").count();

describe("dashboard in a browser", () => {
  let admin: Page;

  test("an admin logs in and sees both nodes, and the model panel counts both for a model", async () => {
    admin = await newPage();
    await admin.goto(`${router.url}/dashboard/`);
    await admin.locator("form.login-box").waitFor();
    await admin.screenshot({ path: join(SHOTS, "dashboard-login.png") });

    // A wrong password is refused on the page.
    await admin.locator('input[name="username"]').fill(TEST_ADMIN.username);
    await admin.locator('input[name="password"]').fill("not-the-password");
    await admin.getByRole("button", { name: "Sign in" }).click();
    await admin.getByRole("alert").waitFor();
    expect(await admin.getByRole("alert").textContent()).toMatch(/wrong username or password/i);

    await logIn(admin, TEST_ADMIN);
    expect(await text(admin, '[data-testid="current-user"]')).toContain("admin");
    await admin.locator('tr[data-node="dash-a"]').waitFor();
    await admin.locator('tr[data-node="dash-b"]').waitFor();
    await waitFor("the summary to count 2 online nodes", async () => (await text(admin, '[data-testid="nodes-online"]')).startsWith("2 online"), 10_000);
    const readyCell = `[data-testid="models-table"] tr[data-model="${CHAT}"] [data-testid="ready-nodes"]`;
    await waitFor(`${CHAT} ready on 2 nodes in the model panel`, async () => (await text(admin, readyCell)) === "2", 10_000);
    // Models are the fleet's: the node table has no model column.
    const headers = (await admin.locator('[data-testid="nodes-table"] thead th').allTextContents()).map((h) => h.replace(/[▲▼]/g, "").trim().toLowerCase());
    expect(headers).toEqual(
      expect.arrayContaining(["name", "address", "state", "uptime", "cpu", "memory", "gpu", "in flight", "requests", "latency", "last seen"]),
    );
    expect(headers.some((h) => h.includes("model"))).toBe(false);
    // Search filters the table.
    await admin.getByLabel("Search nodes").fill("dash-b");
    await waitFor("the search to leave one node", async () => (await admin.locator('[data-testid="nodes-table"] tbody tr[data-node]').count()) === 1, 5_000);
    await admin.getByLabel("Search nodes").fill("");
    await admin.locator('tr[data-node="dash-a"]').waitFor();
    await admin.screenshot({ path: join(SHOTS, "dashboard-fleet.png"), fullPage: true });
  });

  test("a completion appears in the request history within seconds, without a reload", async () => {
    await admin.getByRole("link", { name: "Requests" }).click();
    await admin.locator('[data-testid="requests-table"]').waitFor();
    await admin.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));

    const requestId = `dash-e2e-${Date.now()}`;
    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    // The page's next read of the stored history that has this request in it.
    const storedRead = admin.waitForResponse(
      async (r) => new URL(r.url()).pathname === "/api/requests" && (await r.text().catch(() => "")).includes(requestId),
      { timeout: 30_000 },
    );
    await client.chat.completions.create(
      { model: CHAT, messages: [{ role: "user", content: "Hello dashboard" }], max_tokens: 8 },
      { headers: { "x-request-id": requestId } },
    );
    // Within seconds of the answer (a live event, no page reload).
    const row = admin.locator(`[data-testid="requests-table"] tr[data-request-id="${requestId}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await admin.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(await row.textContent()).toContain(CHAT);
    expect(await row.textContent()).toMatch(/200/);
    // Still there once the page has re-read the stored history (the live row replaced by the stored one).
    await storedRead;
    await row.waitFor();
    expect(await row.count()).toBe(1);

    await row.click();
    const dialog = admin.locator('[data-testid="request-dialog"]');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(requestId);
    expect(await dialog.textContent()).toMatch(/dash-[ab]/);
    // Placed by prefix on an idle fleet: on its prefix's node.
    expect(await dialog.locator('[data-testid="request-routing"]').textContent()).toMatch(/^prefix · hit/);
    // The stored request and response bodies (admins see them).
    await dialog.locator('[data-testid="response-body"]').waitFor();
    expect(await dialog.locator('[data-testid="response-body"]').textContent()).toContain("chat.completion");
    expect(await dialog.textContent()).toContain("Hello dashboard");
    await admin.screenshot({ path: join(SHOTS, "dashboard-request.png") });
    await admin.keyboard.press("Escape");
    await waitFor("the request dialog to close on Escape", async () => (await openDialogs(admin)) === 0, 5_000);
    await admin.screenshot({ path: join(SHOTS, "dashboard-requests.png"), fullPage: true });
  });

  test("a node's detail dialog shows its charts and its log lines", async () => {
    await admin.getByRole("link", { name: "Fleet" }).click();
    await admin.locator('tr[data-node="dash-a"]').click();
    const dialog = admin.locator('[data-testid="node-dialog"]');
    await dialog.waitFor();
    await dialog.locator('[data-testid="node-charts"] canvas').first().waitFor();
    await admin.screenshot({ path: join(SHOTS, "dashboard-node.png") });

    await dialog.getByRole("tab", { name: "Logs" }).click();
    await dialog.locator('[data-testid="log-line"]').first().waitFor();
    const lines = await dialog.locator('[data-testid="log-line"]').allTextContents();
    expect(lines.length).toBeGreaterThan(0);
    // The node's own lines: it logs its engines starting and its registration.
    expect(lines.join("\n")).toMatch(/engine|register|ready/i);
    await dialog.locator('[data-testid="log-tail"]').selectOption("50");
    await waitFor(
      "at most 50 lines after choosing tail 50",
      async () => {
        const n = await dialog.locator('[data-testid="log-line"]').count();
        return n > 0 && n <= 50;
      },
      5_000,
    );
    await admin.screenshot({ path: join(SHOTS, "dashboard-logs.png") });

    await admin.keyboard.press("Escape");
    await waitFor("the node dialog to close on Escape", async () => (await openDialogs(admin)) === 0, 5_000);
  });

  test("an admin renames and tags a node from its dialog", async () => {
    await admin.locator('tr[data-node="dash-b"]').click();
    const dialog = admin.locator('[data-testid="node-dialog"]');
    await dialog.getByRole("tab", { name: "Settings" }).click();
    await dialog.locator('input[name="displayName"]').fill("GPU box B");
    await dialog.locator('input[name="tags"]').fill("rack-2, a100");
    await dialog.getByRole("button", { name: "Save settings" }).click();
    await dialog.getByText("Saved.").waitFor();
    await admin.screenshot({ path: join(SHOTS, "dashboard-node-settings.png") });
    await admin.keyboard.press("Escape");
    const row = admin.locator('tr[data-node="dash-b"]');
    await waitFor(
      "the new name and tags in the node table",
      async () => /GPU box B/.test((await row.textContent()) ?? "") && /rack-2/.test((await row.textContent()) ?? ""),
      5_000,
    );
    const stored = await getJson<{ nodes: { name: string; displayName: string | null; tags: string[] }[] }>(`${router.url}/api/nodes`);
    expect(stored.nodes.find((n) => n.name === "dash-b")).toMatchObject({ displayName: "GPU box B", tags: ["rack-2", "a100"] });

    // Some traffic, then the overview (the README's picture).
    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        client.chat.completions.create({ model: CHAT, messages: [{ role: "user", content: `question ${i}` }], max_tokens: 12 }),
      ),
    );
    await waitFor("the summary to count the traffic", async () => Number(await text(admin, '[data-testid="requests-per-minute"]')) >= 7, 5_000);
    await admin.screenshot({ path: join(SHOTS, "dashboard-overview.png"), fullPage: true });
  });

  test("reloading with a dialog open comes back with no dialog open", async () => {
    await admin.locator('tr[data-node="dash-b"]').click();
    await admin.locator('[data-testid="node-dialog"]').waitFor();
    expect(await openDialogs(admin)).toBe(1);
    await admin.reload();
    // The node rows are rendered from the same fleet data a restored dialog would need.
    await admin.locator('tr[data-node="dash-b"]').waitFor();
    expect(await openDialogs(admin)).toBe(0);
    expect(await admin.locator("dialog").count()).toBe(0);
  });

  test("a viewer sees the fleet and the history but not the admin pages", async () => {
    await getJson(`${router.url}/api/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...VIEWER, role: "viewer" }),
    });
    const viewer = await newPage();
    await logIn(viewer, VIEWER);
    expect(await text(viewer, '[data-testid="current-user"]')).toContain("viewer");
    const nav = (await viewer.locator("nav.nav a").allTextContents()).map((t) => t.trim());
    expect(nav).toEqual(["Fleet", "Requests"]);
    await viewer.locator('tr[data-node="dash-a"]').waitFor();

    // Typing an admin page's address shows the fleet, not the page.
    for (const page of ["users", "keys"]) {
      await viewer.goto(`${router.url}/dashboard/${page}`);
      await viewer.locator('tr[data-node="dash-a"]').waitFor();
      expect(await viewer.locator('[data-testid="users-table"], [data-testid="keys-table"]').count()).toBe(0);
    }
    // And the API behind them refuses the viewer's session.
    const status = await viewer.evaluate(async () => [(await fetch("/api/users")).status, (await fetch("/api/keys")).status]);
    expect(status).toEqual([403, 403]);

    // No settings tab on a node for a viewer.
    await viewer.locator('tr[data-node="dash-a"]').click();
    const dialog = viewer.locator('[data-testid="node-dialog"]');
    await dialog.waitFor();
    expect((await dialog.getByRole("tab").allTextContents()).map((t) => t.trim())).not.toContain("Settings");
    await viewer.keyboard.press("Escape");
  });

  test("the admin pages list users and keys", async () => {
    await admin.getByRole("link", { name: "Users" }).click();
    await admin.locator(`[data-testid="users-table"] tr[data-user="${VIEWER.username}"]`).waitFor();
    // Exactly the router's users, each with its role.
    const { users } = await getJson<{ users: { username: string; role: string }[] }>(`${router.url}/api/users`);
    const userRows = admin.locator('[data-testid="users-table"] tbody tr[data-user]');
    expect((await userRows.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-user")))).sort()).toEqual(users.map((u) => u.username).sort());
    expect(users.map((u) => u.username).sort()).toEqual([TEST_ADMIN.username, VIEWER.username].sort());
    expect(await admin.locator(`[data-testid="users-table"] tr[data-user="${VIEWER.username}"]`).textContent()).toContain("viewer");
    await admin.screenshot({ path: join(SHOTS, "dashboard-users.png") });
    await admin.getByRole("link", { name: "API keys" }).click();
    await admin.locator('[data-testid="keys-table"] tbody tr').first().waitFor();
    // Exactly the router's keys (the bootstrap key at least), shown by name and prefix, never whole.
    const { keys } = await getJson<{ keys: { name: string; prefix: string }[] }>(`${router.url}/api/keys`);
    expect(keys.map((k) => k.name)).toContain("bootstrap");
    const names = await admin.locator('[data-testid="keys-table"] tbody tr td.cell-title').allTextContents();
    expect(names.map((n) => n.trim()).sort()).toEqual(keys.map((k) => k.name).sort());
    const table = (await admin.locator('[data-testid="keys-table"]').textContent()) ?? "";
    for (const k of keys) expect(table).toContain(k.prefix);
    expect(table).not.toContain(TEST_API_KEY);
    await admin.screenshot({ path: join(SHOTS, "dashboard-keys.png") });
  });

  test("a node still downloading is listed as initializing with per-model progress; an admin deletes it", async () => {
    // A real node whose downloads from the router are throttled to 4 kB/s, one at a time: demo-chat
    // (1.2 MB) takes minutes, the other demo models wait their turn, so the node stays initializing (no model
    // ready: the router's readiness gate answers its registrations 503) for the whole test.
    const pending = await startNode(router.url, "dash-pending", ["--download-limit", "4KB", "--max-downloads", "1"]);
    nodes.push(pending);
    const reported = await waitFor(
      "the pending node's registration with a download under way",
      async () => {
        const { nodes: rows } = await getJson<{ nodes: { name: string; state: string; models: { id: string; state: string; progress?: number }[] }[] }>(
          `${router.url}/api/nodes`,
        );
        const row = rows.find((n) => n.name === "dash-pending");
        return row?.models.some((m) => m.state === "downloading") ? row : null;
      },
      30_000,
    );
    expect(reported.state).toBe("initializing");
    // One download at a time, in catalog order: demo-chat first, every other demo model waits.
    const expected = DEMO_CATALOG.models.map((m) => [m.id, m.id === CHAT ? "downloading" : "queued"]);
    expect(reported.models.map((m) => [m.id, m.state]).sort()).toEqual(expected.sort());

    await admin.getByRole("link", { name: "Fleet" }).click();
    const row = admin.locator('tr[data-node="dash-pending"]');
    await row.waitFor();
    // The page shows what the node reported: demo-chat downloading with its percentage, demo-embed
    // queued (waited for: the page updates on the node's next report).
    const progress = row.locator('[data-testid="model-progress"]');
    const modelsText = new RegExp(`${CHAT}.*\\d+%.*demo-embed.*queued`);
    await waitFor(
      "the pending node's progress",
      async () => /initializing/.test((await row.textContent()) ?? "") && modelsText.test((await progress.textContent()) ?? ""),
      30_000,
    );
    const shown = Number(await row.locator('[role="progressbar"]').getAttribute("aria-valuenow"));
    expect(shown).toBeGreaterThanOrEqual(0);
    expect(shown).toBeLessThan(100);
    expect(await text(admin, '[data-testid="nodes-initializing"]')).toBe("1 initializing");
    const loadingCell = `[data-testid="models-table"] tr[data-model="${CHAT}"] [data-testid="loading-nodes"]`;
    await waitFor("the model panel to count it as loading", async () => (await text(admin, loadingCell)) === "1", 10_000);
    await admin.screenshot({ path: join(SHOTS, "dashboard-initializing.png"), fullPage: true });

    // The machine is decommissioned: its process ends (a live node would register again), then
    // the admin deletes it.
    await pending.stop("SIGKILL");
    await row.click();
    const dialog = admin.locator('[data-testid="node-dialog"]');
    await dialog.getByRole("tab", { name: "Settings" }).click();
    await dialog.getByRole("button", { name: "Delete…" }).click();
    await dialog.getByRole("button", { name: "Confirm delete" }).click();
    await waitFor(
      "the deleted node to leave the table and its dialog to close",
      async () => (await row.count()) === 0 && (await openDialogs(admin)) === 0,
      10_000,
    );
    expect((await getJson<{ nodes: { name: string }[] }>(`${router.url}/api/nodes`)).nodes.map((n) => n.name).sort()).toEqual(["dash-a", "dash-b"]);
  });

  test("readable at 800 px: nothing wider than the window", async () => {
    const narrow = await newPage(800, 1000);
    await logIn(narrow, TEST_ADMIN);
    await narrow.locator('tr[data-node="dash-a"]').waitFor();
    const widths = await narrow.evaluate(() => ({ page: document.documentElement.scrollWidth, window: window.innerWidth }));
    expect(widths.page).toBeLessThanOrEqual(widths.window);
    await narrow.screenshot({ path: join(SHOTS, "dashboard-fleet-800.png"), fullPage: true });
  });
});
