// The registration gate: before a node is routable the router itself asks the node's
// GET /v1/models, so a node that the router cannot reach, or whose models are all still
// loading, is listed as initializing and never receives traffic.
// The answer to the registrant never says how the probe failed (refused, timed out, some HTTP
// status, not JSON): anyone holding the node token could otherwise map hosts and ports the router
// can reach. The detail goes to the router's log (`detail`).
import { request } from "undici";
import { routerAuthHeaders } from "../../protocol/node-auth.js";
import { NodeModelList, type ModelStatus } from "../../protocol/node-api.js";

export type GateResult = { ok: true; models: ModelStatus[] } | { ok: false; reason: string; detail?: string; models?: ModelStatus[] };

const UNREACHABLE =
  "the router could not read a drover model list from the node's apiUrl (GET /v1/models); check that the URL is reachable from the router and that the node token matches";
/** A drover node's model list is small; anything much larger is not one. */
const MAX_LIST_BYTES = 4 * 1024 * 1024;

export async function probeNode(apiUrl: string, timeoutMs: number, nodeToken: string | null, nodeId: string): Promise<GateResult> {
  let body: unknown;
  try {
    const res = await request(new URL("/v1/models", apiUrl), {
      method: "GET",
      headers: routerAuthHeaders(nodeToken, nodeId),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return { ok: false, reason: UNREACHABLE, detail: `GET /v1/models answered ${res.statusCode}` };
    }
    const text = await res.body.text();
    if (text.length > MAX_LIST_BYTES) return { ok: false, reason: UNREACHABLE, detail: "model list too large" };
    body = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: UNREACHABLE, detail: (err as Error).message };
  }
  const parsed = NodeModelList.safeParse(body);
  if (!parsed.success) return { ok: false, reason: UNREACHABLE, detail: "not a drover model list" };
  const models = parsed.data.data.map((m) => m.drover);
  if (!models.some((m) => m.state === "ready")) {
    return { ok: false, reason: "no model is ready on the node yet", models };
  }
  return { ok: true, models };
}
