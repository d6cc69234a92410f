// API keys for inference: created (shown once), checked on every inference request, revoked.
// Lookups are cached for a few seconds so the request path rarely waits for the database;
// last-used times are collected in memory and written in the background.
import type { Logger } from "pino";
import { HttpError } from "../http/http-errors.js";
import type { ApiKeyRecord, ApiKeysRepository } from "../store/api-keys.js";
import { isUniqueViolation } from "../store/errors.js";
import { displayPrefix, generateApiKey, sha256Hex } from "./tokens.js";

export type KeyCheck = { ok: true; key: ApiKeyRecord } | { ok: false; reason: "unknown" | "revoked" | "expired" };

export interface CreateKeyInput {
  name: string;
  models?: string[] | null;
  expiresAt?: number | null;
  createdBy?: string | null;
  /** An exact value (DROVER_API_KEY); generated when absent. */
  value?: string;
}

const NAME = /^[\p{L}\p{N} ._:@-]{1,64}$/u;

export function validateKeyName(name: unknown): string {
  if (typeof name !== "string" || !NAME.test(name) || name.trim() !== name) {
    throw new HttpError(
      400,
      "a key name is 1-64 letters, digits, spaces or . _ : @ - (no leading or trailing space)",
      "invalid_request_error",
      "invalid_key_name",
      "name",
    );
  }
  return name;
}

export interface ApiKeyServiceOptions {
  /** How long a looked-up key is trusted before asking the database again (revocations made by another router or the CLI take this long to apply here). */
  cacheTtlMs?: number;
  /** How often last-used times are written. */
  touchEveryMs?: number;
  /** How long an unknown key is remembered as unknown, so a flood of bad keys does not reach the database (default 3 s). */
  negativeTtlMs?: number;
}

/** Bound on remembered unknown keys (a flood of random keys cannot grow memory without end). */
const MAX_NEGATIVE = 50_000;

export class ApiKeyService {
  private cache = new Map<string, { key: ApiKeyRecord; at: number }>();
  /** Hashes of presented keys the database did not know, and when it said so. */
  private unknown = new Map<string, number>();
  private readonly negativeTtlMs: number;
  private used = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private readonly cacheTtlMs: number;
  private readonly touchEveryMs: number;

  constructor(
    private readonly repo: ApiKeysRepository,
    private readonly logger?: Logger,
    opts: ApiKeyServiceOptions = {},
  ) {
    this.cacheTtlMs = opts.cacheTtlMs ?? 5_000;
    this.touchEveryMs = opts.touchEveryMs ?? 5_000;
    this.negativeTtlMs = opts.negativeTtlMs ?? 3_000;
  }

  /** Starts writing last-used times in the background. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flushUsage(), this.touchEveryMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flushUsage();
  }

  async create(input: CreateKeyInput): Promise<{ key: string; record: ApiKeyRecord }> {
    const name = validateKeyName(input.name);
    const models = input.models ?? null;
    if (models !== null && (!Array.isArray(models) || models.length === 0 || models.some((m) => typeof m !== "string" || m.length === 0))) {
      throw new HttpError(400, "models must be a non-empty list of model ids (or absent for every model)", "invalid_request_error", "invalid_models", "models");
    }
    const expiresAt = input.expiresAt ?? null;
    if (expiresAt !== null && (!Number.isFinite(expiresAt) || expiresAt <= Date.now())) {
      throw new HttpError(400, "expiresAt must be a time in the future", "invalid_request_error", "invalid_expiry", "expiresAt");
    }
    if ((await this.repo.findActiveByName(name)).length > 0) {
      throw new HttpError(409, `an active key named "${name}" exists; revoke it or pick another name`, "invalid_request_error", "key_name_taken", "name");
    }
    const key = input.value ?? generateApiKey();
    try {
      this.unknown.delete(sha256Hex(key));
      const record = await this.repo.create({
        name,
        prefix: displayPrefix(key),
        keyHash: sha256Hex(key),
        models: models ? [...new Set(models)] : null,
        expiresAt,
        createdBy: input.createdBy ?? null,
      });
      return { key, record };
    } catch (err) {
      if (isUniqueViolation(err)) throw new HttpError(409, "this key already exists", "invalid_request_error", "key_exists");
      throw err;
    }
  }

  /** Checks a presented key. Never throws for a bad key; an unreachable database is a 503 unless the key is cached. */
  async check(presented: string, now = Date.now()): Promise<KeyCheck> {
    const hash = sha256Hex(presented);
    const unknownAt = this.unknown.get(hash);
    if (unknownAt !== undefined) {
      if (now - unknownAt < this.negativeTtlMs) return { ok: false, reason: "unknown" };
      this.unknown.delete(hash);
    }
    const cached = this.cache.get(hash);
    let key: ApiKeyRecord | null;
    if (cached && now - cached.at < this.cacheTtlMs) key = cached.key;
    else {
      try {
        key = await this.repo.findByHash(hash);
      } catch (err) {
        // The database is unreachable: a key seen before keeps working on its last known state.
        if (cached) return this.verdict(cached.key, now);
        this.logger?.warn({ err: (err as Error).message }, "cannot check an API key: database unavailable");
        throw new HttpError(503, "the router cannot reach its database to check the API key; try again shortly", "server_error", "auth_unavailable");
      }
      // Keys that exist are cached; unknown ones only briefly (a key created on another router
      // works within negativeTtlMs; one created here at once).
      if (key) this.cache.set(hash, { key, at: now });
      else {
        this.cache.delete(hash);
        this.unknown.set(hash, now);
        if (this.unknown.size > MAX_NEGATIVE) this.unknown.delete(this.unknown.keys().next().value!);
      }
      if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value!);
    }
    if (!key) return { ok: false, reason: "unknown" };
    return this.verdict(key, now);
  }

  private verdict(key: ApiKeyRecord, now: number): KeyCheck {
    if (key.revokedAt !== null) return { ok: false, reason: "revoked" };
    if (key.expiresAt !== null && key.expiresAt <= now) return { ok: false, reason: "expired" };
    this.used.set(key.id, now);
    return { ok: true, key };
  }

  async list(): Promise<ApiKeyRecord[]> {
    return this.repo.list();
  }

  /** Revokes by id, or by name among active keys. */
  async revoke(ref: string): Promise<ApiKeyRecord> {
    let target = await this.repo.findById(ref);
    if (!target) {
      const byName = await this.repo.findActiveByName(ref);
      target = byName[0] ?? null;
    }
    if (!target) throw new HttpError(404, `no key with id or name "${ref}"`, "not_found_error", "key_not_found");
    // Revoking a revoked key changes nothing and is not an error.
    await this.repo.revoke(target.id);
    this.forget(target.id);
    return (await this.repo.findById(target.id)) ?? target;
  }

  private forget(id: string): void {
    for (const [hash, entry] of this.cache) if (entry.key.id === id) this.cache.delete(hash);
  }

  async flushUsage(): Promise<void> {
    if (this.used.size === 0) return;
    const batch = this.used;
    this.used = new Map();
    try {
      await this.repo.touch(batch);
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message }, "could not record API key last-used times");
    }
  }
}

/** What an admin sees of a key: never the key itself. */
export function keyView(k: ApiKeyRecord, now = Date.now()) {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    models: k.models,
    createdAt: iso(k.createdAt),
    createdBy: k.createdBy,
    expiresAt: iso(k.expiresAt),
    lastUsedAt: iso(k.lastUsedAt),
    revokedAt: iso(k.revokedAt),
    state: k.revokedAt !== null ? "revoked" : k.expiresAt !== null && k.expiresAt <= now ? "expired" : "active",
  };
}
