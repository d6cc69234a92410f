// SQLite for Kysely with every statement run on a worker thread. better-sqlite3 is synchronous:
// on the router's event loop, a history batch, a retention delete or a count over a week of
// requests would stall every request being proxied. Here the event loop only compiles SQL and
// posts it; the worker owns the connection. Like Kysely's own SQLite driver, one connection is
// shared behind a mutex, so a transaction holds it until it commits.
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
} from "kysely";

// Plain JavaScript run with `eval`, so the same code works from the compiled CLI and from tests
// running the TypeScript sources. It loads better-sqlite3 from the path resolved here.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driverPath);
let db = null;
try {
  db = new Database(workerData.path);
  for (const p of workerData.pragmas) db.pragma(p);
  parentPort.postMessage({ ready: true });
} catch (err) {
  parentPort.postMessage({ fatal: { message: err.message, code: err.code } });
}
// Prepared statements by SQL text, least recently used first. Bounded: each holds native memory
// until it is evicted and collected, and the history queries' filters make many texts.
const statements = new Map();
const MAX_STATEMENTS = workerData.maxStatements;
parentPort.on("message", (msg) => {
  if (msg.close) {
    if (db) db.close();
    parentPort.close();
    return;
  }
  if (msg.stats) {
    parentPort.postMessage({ id: msg.id, rows: [{ statements: statements.size }] });
    return;
  }
  try {
    let stmt = statements.get(msg.sql);
    if (stmt) {
      statements.delete(msg.sql);
    } else {
      stmt = db.prepare(msg.sql);
      if (statements.size >= MAX_STATEMENTS) statements.delete(statements.keys().next().value);
    }
    statements.set(msg.sql, stmt);
    if (stmt.reader) {
      parentPort.postMessage({ id: msg.id, rows: stmt.all(msg.params) });
    } else {
      const info = stmt.run(msg.params);
      parentPort.postMessage({ id: msg.id, rows: [], changes: info.changes, lastInsertRowid: info.lastInsertRowid });
    }
  } catch (err) {
    parentPort.postMessage({ id: msg.id, error: { message: err.message, code: err.code } });
  }
});
`;

interface WorkerReply {
  id?: number;
  ready?: boolean;
  fatal?: { message: string; code?: string };
  error?: { message: string; code?: string };
  rows?: unknown[];
  changes?: number;
  lastInsertRowid?: number | bigint;
}

export interface WorkerSqliteConfig {
  path: string;
  /** Run once on open, e.g. "journal_mode = WAL". */
  pragmas: string[];
  /** Prepared statements the worker keeps (default 64). */
  maxStatements?: number;
}

const DEFAULT_MAX_STATEMENTS = 64;

/** An error from SQLite, with its code (SQLITE_CONSTRAINT_UNIQUE, ...) kept. */
class SqliteWorkerError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

class WorkerConnection implements DatabaseConnection {
  private nextId = 1;
  private pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  private stopped: Error | null = null;

  constructor(private readonly worker: Worker) {
    worker.on("message", (msg: WorkerReply) => {
      if (msg.id === undefined) return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new SqliteWorkerError(msg.error.message, msg.error.code));
      else p.resolve(msg);
    });
    const fail = (err: Error) => {
      this.stopped = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", () => fail(new Error("the SQLite worker has stopped")));
  }

  private ask(msg: Record<string, unknown>): Promise<WorkerReply> {
    if (this.stopped) return Promise.reject(this.stopped);
    const id = this.nextId++;
    return new Promise<WorkerReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...msg });
    });
  }

  /** How many prepared statements the worker holds. */
  async cachedStatements(): Promise<number> {
    const reply = await this.ask({ stats: true });
    return (reply.rows![0] as { statements: number }).statements;
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const reply = await this.ask({ sql: compiled.sql, params: compiled.parameters });
    if (reply.changes === undefined) return { rows: (reply.rows ?? []) as R[] };
    return {
      rows: [],
      numAffectedRows: BigInt(reply.changes),
      insertId: reply.lastInsertRowid === undefined ? undefined : BigInt(reply.lastInsertRowid),
    };
  }

  // biome-ignore lint/correctness/useYield: Kysely's driver interface wants a generator; this one only refuses.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not supported by the SQLite worker");
  }
}

export class WorkerSqliteDriver implements Driver {
  private worker: Worker | null = null;
  private connection: WorkerConnection | null = null;
  private lock: Promise<void> | null = null;
  private unlock: (() => void) | null = null;

  constructor(private readonly config: WorkerSqliteConfig) {}

  async init(): Promise<void> {
    const driverPath = createRequire(import.meta.url).resolve("better-sqlite3");
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driverPath, path: this.config.path, pragmas: this.config.pragmas, maxStatements: this.config.maxStatements ?? DEFAULT_MAX_STATEMENTS },
    });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (msg: WorkerReply) => {
        if (msg.ready) resolve();
        else if (msg.fatal) reject(new SqliteWorkerError(`cannot open the SQLite database ${this.config.path}: ${msg.fatal.message}`, msg.fatal.code));
        else return;
        worker.off("message", onMessage);
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
    }).catch(async (err) => {
      await worker.terminate();
      throw err;
    });
    this.worker = worker;
    this.connection = new WorkerConnection(worker);
  }

  /** How many prepared statements the worker holds (0 before it started). */
  cachedStatements(): Promise<number> {
    return this.connection ? this.connection.cachedStatements() : Promise.resolve(0);
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    while (this.lock) await this.lock;
    this.lock = new Promise((resolve) => (this.unlock = resolve));
    return this.connection!;
  }

  async releaseConnection(): Promise<void> {
    const unlock = this.unlock;
    this.lock = null;
    this.unlock = null;
    unlock?.();
  }

  async beginTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw("begin"));
  }

  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw("commit"));
  }

  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw("rollback"));
  }

  async destroy(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    worker.postMessage({ close: true });
    const timer = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }
}

export class WorkerSqliteDialect implements Dialect {
  /** The driver Kysely created, for its statement count. */
  driver: WorkerSqliteDriver | null = null;

  constructor(private readonly config: WorkerSqliteConfig) {}

  createDriver(): Driver {
    this.driver = new WorkerSqliteDriver(this.config);
    return this.driver;
  }

  createQueryCompiler() {
    return new SqliteQueryCompiler();
  }

  createAdapter() {
    return new SqliteAdapter();
  }

  createIntrospector(db: Kysely<any>) {
    return new SqliteIntrospector(db);
  }
}
