// Fetches the catalog from the router, retrying (backoff with jitter) until the router answers:
// the router may start after the node.
import type { Logger } from "pino";
import { request, type Dispatcher } from "undici";
import { Catalog } from "../protocol/catalog.js";
import { FLEET_PATHS } from "../protocol/http.js";
import { Backoff, sleep } from "../shared/backoff.js";
import type { RouterEndpoint } from "./router-endpoint.js";

export interface FetchCatalogOptions {
  router: RouterEndpoint;
  dispatcher: Dispatcher;
  logger: Logger;
  signal: AbortSignal;
  backoff?: Backoff;
}

/** Resolves with the validated catalog, or with undefined once `signal` aborts. */
export async function fetchCatalog(opts: FetchCatalogOptions): Promise<Catalog | undefined> {
  const backoff = opts.backoff ?? new Backoff({ initialMs: 500, maxMs: 10_000, jitter: 0.3 });
  const url = opts.router.resolve(FLEET_PATHS.catalog);
  let attempts = 0;
  while (!opts.signal.aborted) {
    attempts++;
    let problem: string;
    try {
      const res = await request(url, {
        dispatcher: opts.dispatcher,
        headers: opts.router.headers({ accept: "application/json" }),
        signal: opts.signal,
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      });
      if (res.statusCode === 200) {
        const parsed = Catalog.safeParse(await res.body.json());
        if (parsed.success) {
          opts.logger.info({ catalog: parsed.data.name, models: parsed.data.models.length }, "catalog received from router");
          return parsed.data;
        }
        problem = `invalid catalog from router: ${parsed.error.issues[0]?.message ?? "schema mismatch"}`;
      } else {
        await res.body.dump();
        problem =
          res.statusCode === 401 || res.statusCode === 403
            ? `router rejected the node token (HTTP ${res.statusCode}); check DROVER_NODE_TOKEN`
            : `router answered HTTP ${res.statusCode}`;
      }
    } catch (err) {
      if (opts.signal.aborted) break;
      problem = `router unreachable: ${(err as Error).message}`;
    }
    const wait = backoff.next();
    opts.logger[attempts === 1 ? "info" : "warn"]({ url, attempt: attempts, retryInMs: wait }, `cannot fetch catalog (${problem}); retrying`);
    await sleep(wait, opts.signal);
  }
  return undefined;
}
