// The router API calls the dashboard makes, one function each.
import { apiUrl, json, text } from "./client";
import type { HistoryRow, LiveRequestEvent } from "../../protocol/request-record";
import type { ApiKey, FleetNode, Me, MetricSample, RequestRecord, Role, User } from "./types";

// ---- session ----

export async function login(username: string, password: string): Promise<void> {
  await json("/api/auth/login", { method: "POST", body: { username, password }, quiet401: true });
}

export async function logout(): Promise<void> {
  await json("/api/auth/logout", { method: "POST", quiet401: true });
}

/** The logged-in user, or null without a valid session. */
export async function whoAmI(): Promise<Me | null> {
  try {
    const body = await json<{ user?: Me } & Partial<Me>>("/api/auth/me", { quiet401: true });
    const me = body.user ?? body;
    return me.username && me.role ? { username: me.username, role: me.role } : null;
  } catch (err) {
    if ((err as { status?: number }).status === 401) return null;
    throw err;
  }
}

// ---- nodes ----

export interface NodeSettings {
  displayName?: string | null;
  tags?: string[];
  notes?: string | null;
}

export function updateNode(id: string, settings: NodeSettings): Promise<FleetNode> {
  return json(`/api/nodes/${encodeURIComponent(id)}`, { method: "PATCH", body: settings });
}

export function deleteNode(id: string): Promise<void> {
  return json(`/api/nodes/${encodeURIComponent(id)}`, { method: "DELETE" });
}

export function disconnectNode(id: string): Promise<void> {
  return json(`/api/nodes/${encodeURIComponent(id)}/disconnect`, { method: "POST" });
}

export async function nodeMetrics(id: string, since?: number): Promise<MetricSample[]> {
  const body = await json<{ samples: MetricSample[] }>(`/api/nodes/${encodeURIComponent(id)}/metrics`, { query: { since } });
  return body.samples;
}

/** The node's last `tail` log lines (JSON lines, as the node writes them). */
export function nodeLogs(id: string, tail: number, signal?: AbortSignal): Promise<string> {
  return text(`/api/nodes/${encodeURIComponent(id)}/logs`, { query: { tail }, signal });
}

// ---- request history ----

export interface RequestFilters {
  model?: string;
  node?: string;
  status?: string;
  key?: string;
  /** Epoch ms. */
  from?: number;
  to?: number;
}

export interface RequestPage {
  requests: RequestRecord[];
  total: number | null;
}

export async function requestHistory(filters: RequestFilters, limit: number, offset: number, signal?: AbortSignal): Promise<RequestPage> {
  const body = await json<{ requests?: HistoryRow[]; items?: HistoryRow[]; total?: number } | HistoryRow[]>("/api/requests", {
    query: { ...filtersQuery(filters), limit, offset },
    signal,
  });
  if (Array.isArray(body)) return { requests: body.map(normalize), total: null };
  return { requests: (body.requests ?? body.items ?? []).map(normalize), total: body.total ?? null };
}

export async function requestDetail(id: string): Promise<RequestRecord> {
  return normalize(await json<HistoryRow>(`/api/requests/${encodeURIComponent(id)}`));
}

/** History rows name the model `model` and give ISO times; live events say `modelId` and epoch ms. */
export function normalize(r: HistoryRow | LiveRequestEvent): RequestRecord {
  if (!("model" in r)) return r;
  const { model, startedAt, ...rest } = r;
  return { ...rest, modelId: model, startedAt: Date.parse(startedAt) };
}

export function exportUrl(filters: RequestFilters, format: "csv" | "json"): string {
  return apiUrl("/api/requests/export", { ...filtersQuery(filters), format });
}

function filtersQuery(f: RequestFilters): Record<string, string | number | undefined> {
  return {
    model: f.model,
    node: f.node,
    status: f.status,
    key: f.key,
    from: f.from === undefined ? undefined : new Date(f.from).toISOString(),
    to: f.to === undefined ? undefined : new Date(f.to).toISOString(),
  };
}

// ---- users ----

export async function listUsers(): Promise<User[]> {
  const body = await json<{ users: User[] } | User[]>("/api/users");
  return Array.isArray(body) ? body : body.users;
}

export function createUser(username: string, password: string, role: Role): Promise<User> {
  return json("/api/users", { method: "POST", body: { username, password, role } });
}

export function updateUser(username: string, change: { role?: Role; password?: string }): Promise<User> {
  return json(`/api/users/${encodeURIComponent(username)}`, { method: "PATCH", body: change });
}

export function deleteUser(username: string): Promise<void> {
  return json(`/api/users/${encodeURIComponent(username)}`, { method: "DELETE" });
}

// ---- API keys ----

export async function listKeys(): Promise<ApiKey[]> {
  const body = await json<{ keys: ApiKey[] } | ApiKey[]>("/api/keys");
  return Array.isArray(body) ? body : body.keys;
}

/** The key's secret comes back only here, once. */
export function createKey(input: { name: string; models: string[] | null; expiresAt: number | null }): Promise<ApiKey & { key: string }> {
  return json("/api/keys", { method: "POST", body: input });
}

export function revokeKey(id: string): Promise<void> {
  return json(`/api/keys/${encodeURIComponent(id)}`, { method: "DELETE" });
}
