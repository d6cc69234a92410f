// The router's persistent side, assembled: the database, bootstrap secrets, the auth services
// and hook, the node identities, the request history recorder, and the routes over them
// (login, users, API keys, history).
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Catalog } from "../protocol/catalog.js";
import { ApiKeyService } from "./auth/api-keys.js";
import { bootstrapSecrets, type BootstrapResult } from "./auth/bootstrap.js";
import { LoginRateLimiter } from "./auth/login-rate-limit.js";
import { installRouteAuth } from "./auth/route-auth.js";
import { SESSION_TTL_MS, SessionService } from "./auth/sessions.js";
import { UserAccounts } from "./auth/user-accounts.js";
import { HistoryRecorder } from "./history/history-recorder.js";
import type { NodeRegistry } from "./fleet/node-registry.js";
import type { RequestEvents } from "./request-path/request-events.js";
import { registerAuthRoutes } from "./routes/auth-routes.js";
import { registerHistoryRoutes } from "./routes/history-routes.js";
import { registerKeyRoutes } from "./routes/key-routes.js";
import { registerUserRoutes } from "./routes/user-routes.js";
import { openStore, type RouterStore } from "./store/router-store.js";

const NODE_SYNC_MS = 10_000;
const SWEEP_EVERY_MS = 10 * 60_000;
/** Stored responses outlive a history that is off (0 days): previous_response_id still works for a week. */
const DEFAULT_RETENTION_DAYS = 7;

export interface PersistenceOptions {
  dataDir: string;
  databaseUrl?: string | null;
  /** DROVER_ADMIN_PASSWORD: the first admin's password. */
  adminPassword?: string;
  /** DROVER_API_KEY: an inference key with exactly this value. */
  apiKey?: string;
  /** Days of request history kept; 0 = record none. */
  historyRetentionDays: number;
  logger: Logger;
}

export interface Persistence {
  store: RouterStore;
  apiKeys: ApiKeyService;
  sessions: SessionService;
  accounts: UserAccounts;
  recorder: HistoryRecorder | null;
  bootstrap: BootstrapResult;
  /** Lists known nodes in the registry and keeps their identities saved. */
  trackNodes(registry: NodeRegistry): Promise<void>;
  /** The auth hook and the routes for login, users, keys and history (before any other route). */
  install(app: FastifyInstance, deps: { catalog: Catalog; nodeToken: string | null }): void;
  /** Records every finished request in the history. */
  record(events: RequestEvents): void;
  close(): Promise<void>;
}

export async function openPersistence(opts: PersistenceOptions): Promise<Persistence> {
  const log = opts.logger;
  const store = await openStore({ dataDir: opts.dataDir, databaseUrl: opts.databaseUrl });
  log.info({ database: store.kind, location: store.location }, "database ready");
  const apiKeys = new ApiKeyService(store.apiKeys, log);
  const sessions = new SessionService(store.sessions);
  const accounts = new UserAccounts(store.users, store.sessions);
  const bootstrap = await bootstrapSecrets(store, accounts, apiKeys, { adminPassword: opts.adminPassword, apiKey: opts.apiKey });
  if (bootstrap.createdAdmin) log.info({ user: bootstrap.createdAdmin }, "created the first admin user");
  apiKeys.start();
  const recorder = opts.historyRetentionDays > 0 ? new HistoryRecorder(store.requests, log, { retentionMs: opts.historyRetentionDays * 86_400_000 }) : null;
  recorder?.start();
  const responsesRetentionMs = (opts.historyRetentionDays > 0 ? opts.historyRetentionDays : DEFAULT_RETENTION_DAYS) * 86_400_000;
  const sweepResponses = () =>
    store.responses.deleteOlderThan(Date.now() - responsesRetentionMs).then(
      (deleted) => deleted > 0 && log.info({ deleted }, "stored responses: removed those past retention"),
      (err: Error) => log.warn({ err: err.message }, "stored responses retention sweep failed"),
    );
  void sweepResponses();
  const responsesSweep = setInterval(() => void sweepResponses(), SWEEP_EVERY_MS);
  responsesSweep.unref();
  let nodeSync: NodeJS.Timeout | null = null;

  return {
    store,
    apiKeys,
    sessions,
    accounts,
    recorder,
    bootstrap,
    async trackNodes(registry) {
      registry.restore(await store.nodes.list());
      registry.onIdentity((node) => {
        store.nodes.save(node).catch((err: Error) => log.warn({ err: err.message, nodeId: node.id }, "could not save the node in the database"));
      });
      // Routers sharing a database list the nodes the others have seen (offline here until
      // they register with this router too).
      nodeSync = setInterval(() => {
        store.nodes.list().then(
          (known) => registry.restore(known),
          () => {},
        );
      }, NODE_SYNC_MS);
      nodeSync.unref();
    },
    install(app, deps) {
      installRouteAuth(app, { apiKeys, sessions, nodeToken: deps.nodeToken });
      registerAuthRoutes(app, { accounts, sessions, limiter: new LoginRateLimiter(), sessionTtlMs: SESSION_TTL_MS });
      registerUserRoutes(app, { accounts });
      registerKeyRoutes(app, { apiKeys, catalog: deps.catalog });
      registerHistoryRoutes(app, { requests: store.requests, recorder });
    },
    record(events) {
      recorder?.attach(events);
    },
    async close() {
      if (nodeSync) clearInterval(nodeSync);
      clearInterval(responsesSweep);
      await recorder?.close().catch((err: Error) => log.warn({ err: err.message }, "could not write the last request history"));
      await apiKeys.close();
      await store.close();
    },
  };
}
