// The registration gate: before a node is routable the router itself asks the node's
// GET /v1/models, so a node that the router cannot reach, or whose models are all still
// loading, is listed as initializing and never receives traffic.
import { request } from "undici";
import { NodeModelList, type ModelStatus } from "../protocol/node-api.js";

export type GateResult = { ok: true; models: ModelStatus[] } | { ok: false; reason: string; models?: ModelStatus[] };

export async function probeNode(apiUrl: string, timeoutMs: number): Promise<GateResult> {
  let body: unknown;
  try {
    const res = await request(new URL("/v1/models", apiUrl), { method: "GET", headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return { ok: false, reason: `the node's GET /v1/models answered ${res.statusCode}` };
    }
    body = await res.body.json();
  } catch (err) {
    return { ok: false, reason: `the router cannot reach the node at ${apiUrl}: ${(err as Error).message}` };
  }
  const parsed = NodeModelList.safeParse(body);
  if (!parsed.success) return { ok: false, reason: "the node's GET /v1/models is not a drover model list" };
  const models = parsed.data.data.map((m) => m.drover);
  if (!models.some((m) => m.state === "ready")) {
    return { ok: false, reason: "no model is ready on the node yet", models };
  }
  return { ok: true, models };
}
