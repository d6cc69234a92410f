// The router's tables as Kysely sees them. Times are epoch milliseconds (bigint in PostgreSQL,
// integer in SQLite); booleans are 0/1 so both databases store them alike.

export interface UsersTable {
  id: string;
  username: string;
  password_hash: string;
  role: "admin" | "viewer";
  created_at: number;
  updated_at: number;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  /** The first characters of the key, shown in lists so an operator can tell keys apart. */
  prefix: string;
  /** sha256 of the whole key (keys are random, so a fast hash is enough). */
  key_hash: string;
  /** JSON array of model ids the key may use; null = every model. */
  models: string | null;
  expires_at: number | null;
  created_at: number;
  created_by: string | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface SessionsTable {
  /** sha256 of the session token; the token itself lives only in the client's cookie. */
  id: string;
  user_id: string;
  created_at: number;
  expires_at: number;
}

export interface NodesTable {
  id: string;
  name: string;
  api_url: string;
  first_seen: number;
  last_registered: number;
  /** sha256 of the node's secret: the id is bound to the node that first registered it (0002). */
  secret_hash: string | null;
  /** Operator settings for the dashboard (a display name, tags as a JSON array, notes). */
  display_name: string | null;
  tags: string | null;
  notes: string | null;
}

export interface RequestsTable {
  id: string;
  request_id: string;
  started_at: number;
  api: string;
  endpoint: string;
  model: string;
  stream: number;
  client_ip: string;
  key_name: string | null;
  node_id: string | null;
  node_name: string | null;
  status: number;
  error: string | null;
  attempts: number;
  queue_wait_ms: number;
  first_byte_ms: number | null;
  duration_ms: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  /** Added by migration 0002_request_tool_calls. */
  tool_calls: number | null;
  trace_id: string | null;
  request_body: string | null;
  response_body: string | null;
  /** Added by 0002_affinity; null in older rows. */
  routing: string | null;
  affinity: string | null;
  cached_tokens: number | null;
}

export interface ResponsesTable {
  /** resp_…, as handed to the client. */
  id: string;
  created_at: number;
  /** The API key that made it: only that key reads, continues or deletes it. */
  key_id: string | null;
  model: string;
  /** JSON array of the conversation's input items up to this turn (instructions excluded). */
  context: string;
  /** JSON of the Response object as the client got it. */
  response: string;
}

/** Routers sharing the database (0006_routers): one row per running router, deleted when it stops. */
export interface RoutersTable {
  /** Random per start of a router process. */
  id: string;
  /** The URL nodes use to reach this router directly (not the load balancer's). */
  url: string;
  started_at: number;
  last_seen: number;
}

export interface Database {
  users: UsersTable;
  api_keys: ApiKeysTable;
  sessions: SessionsTable;
  nodes: NodesTable;
  requests: RequestsTable;
  responses: ResponsesTable;
  routers: RoutersTable;
}
