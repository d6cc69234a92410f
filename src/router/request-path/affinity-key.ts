// The affinity key of an inference request: what decides which node should serve it so that the
// engine there already holds its prompt's prefix in a slot (see node-selector.ts). Computed once at
// the router's edge from the body the route already parsed (for the Ollama routes: the OpenAI
// request they were translated into, which is the prompt as the engine will see it).
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

/**
 * Headers that name a session explicitly, read in this order. A client that sends one gets every
 * request of that session placed together, whatever its prompts hold.
 */
export const SESSION_HEADERS = ["x-session-id", "x-conversation-id"] as const;

/** Bytes of a completion prompt that make its key (about a system prompt's worth of tokens). */
export const COMPLETION_PREFIX_BYTES = 1024;

/** Longest session header value used (a longer one is cut; the key is a hash anyway). */
const MAX_SESSION_ID = 256;

type InferenceBody = Record<string, unknown>;

function sha256(parts: readonly string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex").slice(0, 32);
}

function sessionIdOf(headers: IncomingHttpHeaders): string | null {
  for (const name of SESSION_HEADERS) {
    const raw = headers[name];
    const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
    if (value) return value.slice(0, MAX_SESSION_ID);
  }
  return null;
}

/**
 * The part of a chat that every turn of the conversation repeats: the leading system/developer
 * messages, the first message after them (the conversation's opening turn) and the tools (chat
 * templates render them at the top of the prompt). Later turns only append, so every turn of one
 * conversation has the same key, and two conversations that share only a system prompt differ.
 */
function chatPrefix(body: InferenceBody): string[] {
  const messages = Array.isArray(body.messages) ? (body.messages as { role?: unknown; content?: unknown }[]) : [];
  const parts: string[] = [];
  for (const m of messages) {
    parts.push(String(m?.role), JSON.stringify(m?.content ?? null));
    if (m?.role !== "system" && m?.role !== "developer") break;
  }
  if (body.tools !== undefined && body.tools !== null) parts.push("tools", JSON.stringify(body.tools));
  return parts;
}

/** The first COMPLETION_PREFIX_BYTES bytes of the prompt (the first one of a batch). */
function completionPrefix(body: InferenceBody): string[] {
  const prompt = Array.isArray(body.prompt) ? body.prompt[0] : body.prompt;
  const text = typeof prompt === "string" ? prompt : JSON.stringify(prompt ?? null);
  const bytes = Buffer.from(text, "utf8");
  return ["prompt", bytes.length > COMPLETION_PREFIX_BYTES ? bytes.subarray(0, COMPLETION_PREFIX_BYTES).toString("latin1") : bytes.toString("latin1")];
}

/**
 * The key for `path` (the OpenAI path the node serves) and its parsed body, or null when placement
 * by prefix means nothing (embeddings hold no state between requests).
 */
export function affinityKeyOf(path: string, modelId: string, body: InferenceBody, headers: IncomingHttpHeaders): string | null {
  if (path === "/v1/embeddings") return null;
  const session = sessionIdOf(headers);
  if (session !== null) return sha256([modelId, "session", session]);
  if (path === "/v1/chat/completions") return sha256([modelId, "chat", ...chatPrefix(body)]);
  if (path === "/v1/completions") return sha256([modelId, "completion", ...completionPrefix(body)]);
  return null;
}
