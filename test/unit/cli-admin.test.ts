// `drover keys ...` and `drover users ...` run in-process against a router's SQLite data dir
// (the e2e suites run them as processes next to a live router).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test, vi } from "vitest";
import { runAdminCommand } from "../../src/cli/admin-commands.js";
import { helpText, UsageError } from "../../src/cli/options.js";
import { ApiKeyService } from "../../src/router/auth/api-keys.js";
import { UserAccounts } from "../../src/router/auth/user-accounts.js";
import { openStore } from "../../src/router/store/router-store.js";

async function routerDir(layout: "router" | "up"): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "drover-cli-"));
  const store = await openStore({ dataDir: layout === "up" ? join(dir, "router") : dir });
  await store.close();
  return dir;
}

async function capture(argv: string[], command: "keys" | "users" = "keys"): Promise<string> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void lines.push(a.join(" ")));
  try {
    await runAdminCommand(command, argv);
  } finally {
    spy.mockRestore();
  }
  return lines.join("\n");
}

afterEach(() => vi.restoreAllMocks());

describe("drover keys", () => {
  test("create (shown once), list, revoke — and the key checks out against the same database", async () => {
    const dir = await routerDir("router");
    const out = await capture(["create", "ci-bot", "--models", "demo-chat, demo-embed", "--expires-in-days", "30", "--data-dir", dir]);
    const key = /\n {2}(drv_\S+)\n/.exec(out)![1]!;
    expect(out).toContain('created API key "ci-bot"');
    expect(out).toContain("models: demo-chat, demo-embed");
    const list = await capture(["list", "--data-dir", dir]);
    expect(list).toMatch(/ci-bot\s+drv_\S+\s+active\s+demo-chat,demo-embed/);
    expect(list).not.toContain(key);
    const json = JSON.parse(await capture(["list", "--json", "--data-dir", dir]));
    expect(json[0]).toMatchObject({ name: "ci-bot", models: ["demo-chat", "demo-embed"], state: "active" });
    expect(Date.parse(json[0].expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);

    const store = await openStore({ dataDir: dir });
    try {
      expect((await new ApiKeyService(store.apiKeys).check(key)).ok).toBe(true);
      expect(await capture(["revoke", "ci-bot", "--data-dir", dir])).toContain('revoked API key "ci-bot"');
      expect(await new ApiKeyService(store.apiKeys).check(key)).toEqual({ ok: false, reason: "revoked" });
    } finally {
      await store.close();
    }
  });

  test("finds drover up's layout (<data-dir>/router), and refuses a directory without a database", async () => {
    const dir = await routerDir("up");
    expect(await capture(["list", "--data-dir", dir])).toBe("no API keys");
    const empty = mkdtempSync(join(tmpdir(), "drover-cli-empty-"));
    await expect(runAdminCommand("keys", ["list", "--data-dir", empty])).rejects.toThrow(/no router database/);
  });

  test("usage errors: a missing name, an unknown sub-command, a duplicate name", async () => {
    const dir = await routerDir("router");
    await expect(runAdminCommand("keys", ["create", "--data-dir", dir])).rejects.toBeInstanceOf(UsageError);
    await expect(runAdminCommand("keys", ["rotate", "x", "--data-dir", dir])).rejects.toThrow(/create, list or revoke/);
    await capture(["create", "dup", "--data-dir", dir]);
    await expect(runAdminCommand("keys", ["create", "dup", "--data-dir", dir])).rejects.toThrow(/active key named "dup"/);
    expect(await capture([])).toBe(helpText("keys"));
  });
});

describe("drover users", () => {
  test("create with a generated password, passwd, list, delete; the last admin stays", async () => {
    const dir = await routerDir("router");
    const created = await capture(["create", "ops", "--role", "admin", "--data-dir", dir], "users");
    const password = /password: (\S+)/.exec(created)![1]!;
    await capture(["create", "eve", "--password", "eve-password", "--data-dir", dir], "users");
    expect(await capture(["list", "--data-dir", dir], "users")).toMatch(/eve\s+viewer[\s\S]*ops\s+admin/);

    const store = await openStore({ dataDir: dir });
    const accounts = new UserAccounts(store.users, store.sessions);
    try {
      expect(await accounts.authenticate("ops", password)).toMatchObject({ role: "admin" });
      await capture(["passwd", "ops", "--password", "new-ops-password", "--data-dir", dir], "users");
      expect(await accounts.authenticate("ops", password)).toBeNull();
      expect(await accounts.authenticate("ops", "new-ops-password")).not.toBeNull();
      await expect(runAdminCommand("users", ["delete", "ops", "--data-dir", dir])).rejects.toThrow(/last admin/);
      expect(await capture(["delete", "eve", "--data-dir", dir], "users")).toContain('deleted user "eve"');
      await expect(runAdminCommand("users", ["create", "x", "--password", "short", "--data-dir", dir])).rejects.toThrow(/8 to 1024/);
    } finally {
      await store.close();
    }
  });

  test("the top-level help lists the admin commands", () => {
    expect(helpText()).toMatch(/keys\s+inference API keys/);
    expect(helpText()).toMatch(/users\s+dashboard\/admin users/);
    expect(helpText("users")).toContain("drover users passwd NAME");
    expect(helpText("router")).toContain("DROVER_HISTORY_RETENTION_DAYS");
  });
});
