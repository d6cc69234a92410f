// `drover keys ...` and `drover users ...`: administration straight against the router's
// database (the SQLite file in its data dir, or the shared PostgreSQL), with or without a
// router running. A running router sees new keys and users at once; a revoked key stops working
// there within the key cache time (5 s).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { keyView, ApiKeyService } from "../router/auth/api-keys.js";
import { generatePassword } from "../router/auth/passwords.js";
import { userView, UserAccounts } from "../router/auth/user-accounts.js";
import { SQLITE_FILE } from "../router/store/database.js";
import { openStore, type RouterStore } from "../router/store/router-store.js";
import { COMMANDS, helpText, parseOptions, UsageError, type ParsedOptions } from "./options.js";

export type AdminCommand = "keys" | "users";

/** Splits `create NAME --flag v` into positionals and the flags parseOptions checks. */
function splitArgs(command: AdminCommand, argv: string[]): { positionals: string[]; flags: string[] } {
  const specs = COMMANDS[command].options;
  const { tokens } = parseArgs({
    args: argv,
    options: Object.fromEntries([
      ...specs.map((s) => [s.flag, { type: s.type === "boolean" ? "boolean" : "string" }] as const),
      ["help", { type: "boolean", short: "h" }],
    ]),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const positionalAt = new Set(tokens.filter((t) => t.kind === "positional").map((t) => t.index));
  return { positionals: argv.filter((_, i) => positionalAt.has(i)), flags: argv.filter((_, i) => !positionalAt.has(i)) };
}

/** The router's database: --database-url, else drover.db in the data dir (or its router/ dir, as `drover up` lays it out). */
export async function openAdminStore(o: ParsedOptions): Promise<RouterStore> {
  const url = o["database-url"] === undefined ? undefined : String(o["database-url"]);
  if (url) return openStore({ dataDir: "", databaseUrl: url, poolSize: 2 });
  const dataDir = String(o["data-dir"]);
  for (const dir of [dataDir, join(dataDir, "router")]) {
    if (existsSync(join(dir, SQLITE_FILE))) return openStore({ dataDir: dir });
  }
  throw new UsageError(
    `no router database in ${dataDir} (looked for ${SQLITE_FILE} there and in router/); start the router once, or pass --data-dir or --database-url`,
  );
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

async function passwordFrom(o: ParsedOptions): Promise<{ password: string; generated: boolean }> {
  if (o["password-stdin"]) return { password: await readStdin(), generated: false };
  if (o.password !== undefined) return { password: String(o.password), generated: false };
  return { password: generatePassword(), generated: true };
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? "-" : Array.isArray(v) ? v.join(",") : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(columns), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join("\n");
}

function need(value: string | undefined, what: string, usage: string): string {
  if (!value) throw new UsageError(`${what} is missing: ${usage}`);
  return value;
}

async function keys(sub: string | undefined, target: string | undefined, o: ParsedOptions, store: RouterStore): Promise<void> {
  const service = new ApiKeyService(store.apiKeys);
  if (sub === "list") {
    const list = (await service.list()).map((k) => keyView(k));
    console.log(
      o.json
        ? JSON.stringify(list, null, 2)
        : list.length
          ? table(list, ["id", "name", "prefix", "state", "models", "expiresAt", "lastUsedAt", "createdAt"])
          : "no API keys",
    );
  } else if (sub === "create") {
    const name = need(target, "the key's name", "drover keys create NAME");
    const models =
      o.models === undefined
        ? null
        : String(o.models)
            .split(",")
            .map((m) => m.trim())
            .filter(Boolean);
    const days = o["expires-in-days"] === undefined ? null : Number(o["expires-in-days"]);
    if (days !== null && days <= 0) throw new UsageError("--expires-in-days must be more than 0");
    const { key, record } = await service.create({ name, models, expiresAt: days === null ? null : Date.now() + days * 86_400_000, createdBy: "cli" });
    if (o.json) console.log(JSON.stringify({ ...keyView(record), key }, null, 2));
    else {
      console.log(
        `created API key "${record.name}" (id ${record.id}${record.models ? `, models: ${record.models.join(", ")}` : ""}${record.expiresAt ? `, expires ${new Date(record.expiresAt).toISOString()}` : ""})`,
      );
      console.log(`\n  ${key}\n\nThis is the only time the key is shown; drover keeps only its hash.`);
    }
  } else if (sub === "revoke") {
    const revoked = await service.revoke(need(target, "the key's id or name", "drover keys revoke ID|NAME"));
    console.log(o.json ? JSON.stringify(keyView(revoked), null, 2) : `revoked API key "${revoked.name}" (id ${revoked.id})`);
  } else {
    throw new UsageError(`drover keys needs create, list or revoke${sub ? `, not "${sub}"` : ""}`);
  }
}

async function users(sub: string | undefined, target: string | undefined, o: ParsedOptions, store: RouterStore): Promise<void> {
  const accounts = new UserAccounts(store.users, store.sessions);
  if (sub === "list") {
    const list = (await accounts.list()).map(userView);
    console.log(o.json ? JSON.stringify(list, null, 2) : list.length ? table(list, ["username", "role", "createdAt", "updatedAt"]) : "no users");
  } else if (sub === "create") {
    const username = need(target, "the username", "drover users create NAME");
    const { password, generated } = await passwordFrom(o);
    const user = await accounts.create({ username, password, role: o.role });
    console.log(`created ${user.role} "${user.username}"${generated ? `\n\n  password: ${password}\n\nThis is the only time the password is shown.` : ""}`);
  } else if (sub === "passwd") {
    const username = need(target, "the username", "drover users passwd NAME");
    const { password, generated } = await passwordFrom(o);
    await accounts.setPassword(username, password);
    console.log(
      `password of "${username}" changed; their sessions are ended${generated ? `\n\n  password: ${password}\n\nThis is the only time the password is shown.` : ""}`,
    );
  } else if (sub === "delete") {
    const username = need(target, "the username", "drover users delete NAME");
    await accounts.delete(username);
    console.log(`deleted user "${username}"`);
  } else {
    throw new UsageError(`drover users needs create, list, delete or passwd${sub ? `, not "${sub}"` : ""}`);
  }
}

export async function runAdminCommand(command: AdminCommand, argv: string[]): Promise<void> {
  const { positionals, flags } = splitArgs(command, argv);
  const o = parseOptions(command, flags);
  if (o.help || positionals.length === 0) {
    console.log(helpText(command));
    return;
  }
  if (positionals.length > 2) throw new UsageError(`too many arguments: ${positionals.slice(2).join(" ")}`);
  const [sub, target] = positionals;
  const store = await openAdminStore(o);
  try {
    if (command === "keys") await keys(sub, target, o, store);
    else await users(sub, target, o, store);
  } catch (err) {
    // Validation errors from the services (bad name, last admin, unknown key...) are usage errors here.
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status < 500) throw new UsageError((err as Error).message);
    throw err;
  } finally {
    await store.close();
  }
}
