// The router's persistent state in one object: the database and one repository per table.
import { ApiKeysRepository } from "./api-keys.js";
import { openDatabase, type DatabaseKind, type OpenDatabaseOptions } from "./database.js";
import { NodesRepository } from "./nodes.js";
import { RequestHistoryRepository } from "./request-history.js";
import { ResponsesRepository } from "./responses.js";
import { RoutersRepository } from "./routers.js";
import { SessionsRepository } from "./sessions.js";
import { UsersRepository } from "./users.js";

export interface RouterStore {
  kind: DatabaseKind;
  location: string;
  users: UsersRepository;
  apiKeys: ApiKeysRepository;
  sessions: SessionsRepository;
  nodes: NodesRepository;
  requests: RequestHistoryRepository;
  responses: ResponsesRepository;
  routers: RoutersRepository;
  close(): Promise<void>;
}

export async function openStore(opts: OpenDatabaseOptions): Promise<RouterStore> {
  const { db, kind, location, close } = await openDatabase(opts);
  return {
    kind,
    location,
    users: new UsersRepository(db),
    apiKeys: new ApiKeysRepository(db),
    sessions: new SessionsRepository(db),
    nodes: new NodesRepository(db),
    requests: new RequestHistoryRepository(db, kind),
    responses: new ResponsesRepository(db),
    routers: new RoutersRepository(db),
    close,
  };
}
