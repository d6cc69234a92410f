// First-start secrets: the first admin user (DROVER_ADMIN_PASSWORD, else a generated password)
// and an inference key (DROVER_API_KEY with exactly that value, else a generated one when no
// key exists yet). Generated values are returned so the banner can print them once; only their
// hashes are stored. Existing users and keys are never changed.
import type { RouterStore } from "../store/router-store.js";
import { isUniqueViolation } from "../store/errors.js";
import type { ApiKeyService } from "./api-keys.js";
import { generatePassword } from "./passwords.js";
import { sha256Hex } from "./tokens.js";
import type { UserAccounts } from "./user-accounts.js";

export interface BootstrapInput {
  adminPassword?: string;
  apiKey?: string;
}

export interface BootstrapResult {
  /** Set when this start created the admin with a generated password. */
  generatedAdminPassword: string | null;
  /** Set when this start generated the first API key. */
  generatedApiKey: string | null;
  /** Set when this start created the admin user (with either password). */
  createdAdmin: string | null;
}

export const BOOTSTRAP_ADMIN = "admin";

export async function bootstrapSecrets(store: RouterStore, accounts: UserAccounts, apiKeys: ApiKeyService, input: BootstrapInput): Promise<BootstrapResult> {
  const result: BootstrapResult = { generatedAdminPassword: null, generatedApiKey: null, createdAdmin: null };

  if ((await store.users.count()) === 0) {
    const password = input.adminPassword || generatePassword();
    try {
      await accounts.create({ username: BOOTSTRAP_ADMIN, password, role: "admin" });
      result.createdAdmin = BOOTSTRAP_ADMIN;
      if (!input.adminPassword) result.generatedAdminPassword = password;
    } catch (err) {
      // Another router sharing the database created it first.
      if (!isUniqueViolation(err) && (err as { statusCode?: number }).statusCode !== 409) throw err;
    }
  }

  if (input.apiKey) {
    if (!(await store.apiKeys.findByHash(sha256Hex(input.apiKey)))) {
      const taken = (await store.apiKeys.findActiveByName("bootstrap")).length > 0;
      await createIgnoringRace(apiKeys, {
        name: taken ? `bootstrap-${sha256Hex(input.apiKey).slice(0, 6)}` : "bootstrap",
        value: input.apiKey,
        createdBy: "DROVER_API_KEY",
      });
    }
  } else if ((await store.apiKeys.count()) === 0) {
    const created = await createIgnoringRace(apiKeys, { name: "default", createdBy: "first start" });
    result.generatedApiKey = created;
  }
  return result;
}

async function createIgnoringRace(apiKeys: ApiKeyService, input: Parameters<ApiKeyService["create"]>[0]): Promise<string | null> {
  try {
    return (await apiKeys.create(input)).key;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 409) return null;
    throw err;
  }
}
