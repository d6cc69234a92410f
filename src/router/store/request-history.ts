// The requests table: one row per inference request, newest first, filtered by model, node,
// status, key and time range. Filter values always travel as bound parameters.
import { CompiledQuery, type ExpressionBuilder, type Kysely, type Selectable } from "kysely";
import type { HistoryRecord } from "../../protocol/request-record.js";
import type { DatabaseKind } from "./database.js";
import type { Database, RequestsTable } from "./schema.js";

export interface HistoryFilter {
  model?: string;
  /** Matches the node's id or its name. */
  node?: string;
  keyName?: string;
  /** Inclusive status range, e.g. 400..499. */
  statusMin?: number;
  statusMax?: number;
  /** Epoch ms, inclusive. */
  from?: number;
  /** Epoch ms, exclusive. */
  to?: number;
}

/** Position after the last row of a page, for keyset paging (exports). */
export interface HistoryCursor {
  startedAt: number;
  id: string;
}

const LIST_COLUMNS = [
  "id",
  "request_id",
  "started_at",
  "api",
  "endpoint",
  "model",
  "stream",
  "client_ip",
  "key_name",
  "node_id",
  "node_name",
  "status",
  "error",
  "attempts",
  "queue_wait_ms",
  "first_byte_ms",
  "duration_ms",
  "prompt_tokens",
  "completion_tokens",
  "trace_id",
  "tool_calls",
  "routing",
  "affinity",
  "cached_tokens",
] as const;

type ListRow = Pick<Selectable<RequestsTable>, (typeof LIST_COLUMNS)[number]> & Partial<Pick<Selectable<RequestsTable>, "request_body" | "response_body">>;

function toRecord(row: ListRow): HistoryRecord {
  const rec: HistoryRecord = {
    id: row.id,
    requestId: row.request_id,
    startedAt: row.started_at,
    api: row.api as HistoryRecord["api"],
    endpoint: row.endpoint,
    model: row.model,
    stream: Boolean(row.stream),
    clientIp: row.client_ip,
    keyName: row.key_name,
    nodeId: row.node_id,
    nodeName: row.node_name,
    status: row.status,
    error: row.error,
    attempts: row.attempts,
    queueWaitMs: row.queue_wait_ms,
    firstByteMs: row.first_byte_ms,
    durationMs: row.duration_ms,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    toolCalls: row.tool_calls ?? null,
    traceId: row.trace_id,
    routing: row.routing === "prefix" || row.routing === "least-load" ? row.routing : null,
    affinity: row.affinity === "hit" || row.affinity === "miss" ? row.affinity : null,
    cachedTokens: row.cached_tokens ?? null,
  };
  if ("request_body" in row) rec.requestBody = row.request_body ?? null;
  if ("response_body" in row) rec.responseBody = row.response_body ?? null;
  return rec;
}

/** Insert columns, in the order `pushRow` writes their values. */
const INSERT_COLUMNS = [...LIST_COLUMNS, "request_body", "response_body"] as const;

function pushRow(out: unknown[], r: HistoryRecord): void {
  out.push(
    r.id,
    r.requestId,
    r.startedAt,
    r.api,
    r.endpoint,
    r.model,
    r.stream ? 1 : 0,
    r.clientIp,
    r.keyName,
    r.nodeId,
    r.nodeName,
    r.status,
    r.error,
    r.attempts,
    Math.round(r.queueWaitMs),
    r.firstByteMs === null ? null : Math.round(r.firstByteMs),
    Math.round(r.durationMs),
    r.promptTokens,
    r.completionTokens,
    r.traceId,
    r.toolCalls ?? null,
    r.routing ?? null,
    r.affinity ?? null,
    r.cachedTokens ?? null,
    r.requestBody ?? null,
    r.responseBody ?? null,
  );
}

function applyFilter(eb: ExpressionBuilder<Database, "requests">, f: HistoryFilter) {
  const conds = [];
  if (f.model !== undefined) conds.push(eb("model", "=", f.model));
  if (f.node !== undefined) conds.push(eb.or([eb("node_name", "=", f.node), eb("node_id", "=", f.node)]));
  if (f.keyName !== undefined) conds.push(eb("key_name", "=", f.keyName));
  if (f.statusMin !== undefined) conds.push(eb("status", ">=", f.statusMin));
  if (f.statusMax !== undefined) conds.push(eb("status", "<=", f.statusMax));
  if (f.from !== undefined) conds.push(eb("started_at", ">=", f.from));
  if (f.to !== undefined) conds.push(eb("started_at", "<", f.to));
  return eb.and(conds);
}

/**
 * PostgreSQL: row counts of the history's INSERT statements, largest first. A batch of any size is
 * written as a greedy sum of these (500 rows = 256 + 3 × 64 + 3 × 16 + 4), so the database sees at
 * most five distinct INSERT texts instead of one per batch size. 26 columns × 256 rows stays well
 * under the bound-parameter limits.
 */
export const INSERT_ROW_LADDER = [256, 64, 16, 4, 1] as const;

/**
 * SQLite: one statement for every batch, whatever its size: the rows travel as one JSON array bound
 * to one parameter and are unpacked by json_each. One text means one prepared statement in the
 * worker (one per batch size used to fill its cache with statements of up to a megabyte of native
 * memory each), and one message to the worker per batch instead of begin, inserts and commit
 * (each message a thread wake-up on the router's busy cores). A single statement is atomic, so no
 * transaction is needed. `where true` keeps SQLite from reading `on conflict` as a join's `on`.
 */
const SQLITE_INSERT = `insert into requests (${INSERT_COLUMNS.join(",")}) select ${INSERT_COLUMNS.map((_, i) => `value->>${i}`).join(",")} from json_each(?) where true on conflict (id) do nothing`;

export class RequestHistoryRepository {
  /** INSERT text per ladder step (PostgreSQL): history batches are the hottest write, so their SQL is written once. */
  private insertSql = new Map<number, string>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly kind: DatabaseKind,
  ) {}

  private insertText(rows: number): string {
    let text = this.insertSql.get(rows);
    if (!text) {
      let n = 0;
      const tuples = Array.from({ length: rows }, () => `(${INSERT_COLUMNS.map(() => `$${++n}`).join(",")})`);
      // A client may reuse an x-request-id, but record ids are ours and unique; a batch written
      // again after an unclear failure must not fail on the rows that made it.
      text = `insert into requests (${INSERT_COLUMNS.join(",")}) values ${tuples.join(",")} on conflict (id) do nothing`;
      this.insertSql.set(rows, text);
    }
    return text;
  }

  async insertMany(records: readonly HistoryRecord[]): Promise<void> {
    if (records.length === 0) return;
    if (this.kind === "sqlite") {
      const rows = records.map((r) => {
        const row: unknown[] = [];
        pushRow(row, r);
        return row;
      });
      await this.db.executeQuery(CompiledQuery.raw(SQLITE_INSERT, [JSON.stringify(rows)]));
      return;
    }
    await this.db.transaction().execute(async (tx) => {
      let i = 0;
      for (const rows of INSERT_ROW_LADDER) {
        for (; records.length - i >= rows; i += rows) {
          const params: unknown[] = [];
          for (let j = i; j < i + rows; j++) pushRow(params, records[j]!);
          await tx.executeQuery(CompiledQuery.raw(this.insertText(rows), params));
        }
      }
    });
  }

  /** Whether the database answers at all (tells a bad row from a database that is down). */
  async ping(): Promise<void> {
    await this.db.executeQuery(CompiledQuery.raw("select 1", []));
  }

  /** Newest first. `after` continues from a previous page (keyset), `offset` skips rows. */
  async list(filter: HistoryFilter, page: { limit: number; offset?: number; after?: HistoryCursor }): Promise<HistoryRecord[]> {
    let q = this.db
      .selectFrom("requests")
      .select(LIST_COLUMNS)
      .where((eb) => applyFilter(eb, filter));
    if (page.after) {
      const { startedAt, id } = page.after;
      q = q.where((eb) => eb.or([eb("started_at", "<", startedAt), eb.and([eb("started_at", "=", startedAt), eb("id", "<", id)])]));
    }
    q = q.orderBy("started_at", "desc").orderBy("id", "desc").limit(page.limit);
    if (page.offset) q = q.offset(page.offset);
    return (await q.execute()).map(toRecord);
  }

  async count(filter: HistoryFilter): Promise<number> {
    const r = await this.db
      .selectFrom("requests")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .where((eb) => applyFilter(eb, filter))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** One record with its bodies, by record id or else by the request's x-request-id (newest). */
  async get(id: string): Promise<HistoryRecord | null> {
    const byId = await this.db.selectFrom("requests").selectAll().where("id", "=", id).executeTakeFirst();
    if (byId) return toRecord(byId);
    const byRequestId = await this.db.selectFrom("requests").selectAll().where("request_id", "=", id).orderBy("started_at", "desc").limit(1).executeTakeFirst();
    return byRequestId ? toRecord(byRequestId) : null;
  }

  /**
   * Retention: deletes records that started before `cutoff`, in chunks, so a busy week's worth
   * never becomes one huge transaction holding the write lock.
   */
  async deleteOlderThan(cutoff: number, chunk = 5000): Promise<number> {
    let total = 0;
    for (;;) {
      const r = await this.db
        .deleteFrom("requests")
        .where("id", "in", (eb) => eb.selectFrom("requests").select("id").where("started_at", "<", cutoff).limit(chunk))
        .executeTakeFirst();
      const n = Number(r.numDeletedRows);
      total += n;
      if (n < chunk) return total;
    }
  }
}
