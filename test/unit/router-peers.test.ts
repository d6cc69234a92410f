// Routers finding each other through the shared database (src/router/fleet/router-peers.ts): each
// records its advertised URL and refreshes it; each lists the live ones (itself included); one
// that leaves deletes its row and the others stop listing it; one that stops refreshing (killed)
// drops out of the lists after 3 intervals. Two RouterPeers over one real store (SQLite here; the
// repository runs on both databases in router-store.test.ts).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RouterPeers } from "../../src/router/fleet/router-peers.js";
import { openStore, type RouterStore } from "../../src/router/store/router-store.js";
import { captureLogger } from "../fixtures/capture-logger.js";
import { waitFor } from "../fixtures/fake-router.js";

let store: RouterStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

async function peers(refreshMs: number) {
  store = await openStore({ dataDir: mkdtempSync(join(tmpdir(), "drover-peers-")) });
  const log = captureLogger();
  const make = (url: string) => new RouterPeers({ url, repository: store!.routers, refreshMs, logger: log.logger });
  return { make, log, store };
}

describe("router peers", () => {
  it("routers sharing the database list each other; a leaving router is no longer listed", async () => {
    const { make, log } = await peers(200);
    const a = make("http://10.0.0.1:8080/");
    const b = make("http://10.0.0.2:8080");
    await a.start();
    expect(a.urls()).toEqual(["http://10.0.0.1:8080"]);
    await b.start();
    expect(b.urls()).toEqual(["http://10.0.0.1:8080", "http://10.0.0.2:8080"]);
    await waitFor(() => a.urls().length === 2, 5_000, "a to list b");
    expect(log.find("a router joined the fleet").length).toBeGreaterThan(0);

    await b.leave();
    expect(b.urls()).toEqual(["http://10.0.0.1:8080"]);
    await waitFor(() => a.urls().length === 1, 5_000, "a to stop listing b");
    expect(a.urls()).toEqual(["http://10.0.0.1:8080"]);
    await a.leave();
    expect(await store!.routers.listLive(0)).toEqual([]);
  });

  it("a router that stops refreshing its row (killed) drops out of the others' lists", async () => {
    // Listed while fresh (3 intervals: 3 s, room for a late timer on a busy machine), then not.
    const { make, store } = await peers(1_000);
    const a = make("http://10.0.0.1:8080");
    await a.start();
    // A row nobody refreshes, as a SIGKILLed router leaves behind.
    await store.routers.upsert({ id: "killed", url: "http://10.0.0.9:8080", startedAt: Date.now() });
    await waitFor(() => a.urls().includes("http://10.0.0.9:8080"), 5_000, "the row listed while fresh");
    await waitFor(() => !a.urls().includes("http://10.0.0.9:8080"), 10_000, "the stale row no longer listed");
    expect(a.urls()).toEqual(["http://10.0.0.1:8080"]);
    await a.leave();
  });
});
