// Every request field the llama engine knows, route by route: implemented, harmless (accepted,
// nothing to do), or refused (a 400 naming the field). A field nobody knows is refused too, as
// OpenAI does: no field is silently ignored. docs/API-FIELDS.md holds the same table for people;
// test/unit/api-fields.test.ts checks the documented refusals against this code.
import { InvalidRequestError } from "./errors.js";

/** Why a value of the field is refused, or undefined when it is accepted. */
type Rule = (value: unknown) => string | undefined;

const ok: Rule = () => undefined;
const absent =
  (why: string): Rule =>
  (v) =>
    v == null ? undefined : why;
const unless =
  (accepted: (v: unknown) => boolean, why: string): Rule =>
  (v) =>
    v == null || accepted(v) ? undefined : why;

/** Fields accepted on every generation route; their values are checked by the zod schemas. */
const GENERATION: Record<string, Rule> = {
  model: ok,
  stream: ok,
  stream_options: ok,
  max_tokens: ok,
  temperature: ok,
  top_p: ok,
  seed: ok,
  stop: ok,
  response_format: ok,
  presence_penalty: ok,
  frequency_penalty: ok,
  logit_bias: ok,
  // llama.cpp's server extensions, which its clients send.
  top_k: ok,
  min_p: ok,
  repeat_penalty: ok,
  // Harmless: labels for the caller's own bookkeeping, with no effect on the answer.
  user: ok,
  metadata: ok,
  store: ok,
  service_tier: ok,
  prompt_cache_key: ok,
  // The engine reuses cached prompt prefixes per slot by itself; the caller's cache hints change nothing.
  prompt_cache_retention: ok,
  prompt_cache_options: ok,
  safety_identifier: ok,
  n: unless((v) => v === 1, "Only n = 1 is supported by this engine."),
  logprobs: unless((v) => v === false, "logprobs are not supported by this engine."),
};

const CHAT: Record<string, Rule> = {
  ...GENERATION,
  messages: ok,
  max_completion_tokens: ok,
  tools: ok,
  tool_choice: ok,
  parallel_tool_calls: ok,
  reasoning_effort: ok,
  reasoning: ok,
  top_logprobs: absent("top_logprobs needs logprobs, which this engine does not support."),
  modalities: unless((v) => Array.isArray(v) && v.every((m) => m === "text"), "Only text output is supported by this engine."),
  audio: absent("Audio output is not supported by this engine."),
  prediction: absent("Predicted outputs are not supported by this engine."),
  web_search_options: absent("Web search is not supported by this engine."),
  verbosity: absent("verbosity is not supported by this engine."),
  moderation: absent("moderation is not supported by this engine."),
  functions: absent("functions (deprecated) is not supported: send tools instead."),
  function_call: absent("function_call (deprecated) is not supported: send tool_choice instead."),
};

const COMPLETION: Record<string, Rule> = {
  ...GENERATION,
  prompt: ok,
  best_of: unless((v) => v === 1, "Only best_of = 1 is supported by this engine."),
  echo: unless((v) => v === false, "echo is not supported by this engine."),
  suffix: absent("suffix (fill-in-the-middle) is not supported by this engine."),
  logprobs: absent("logprobs are not supported by this engine."),
};

const EMBEDDING: Record<string, Rule> = {
  model: ok,
  input: ok,
  encoding_format: ok,
  user: ok,
  dimensions: absent("dimensions is not supported: this engine returns the model's full embedding."),
};

export const ENGINE_FIELDS = {
  "/v1/chat/completions": CHAT,
  "/v1/completions": COMPLETION,
  "/v1/embeddings": EMBEDDING,
} as const;

/** Throws a 400 naming the first field that is unknown or refused with its value. */
export function checkFields(route: keyof typeof ENGINE_FIELDS, body: Record<string, unknown>): void {
  const rules: Record<string, Rule> = ENGINE_FIELDS[route];
  for (const [field, value] of Object.entries(body)) {
    const rule = Object.hasOwn(rules, field) ? rules[field] : undefined;
    if (!rule) throw new InvalidRequestError(`Unrecognized request argument supplied: ${field}`, "unsupported_parameter", field);
    const why = rule(value);
    if (why) throw new InvalidRequestError(why, "unsupported_parameter", field);
  }
}

/** Content parts a chat message may hold here: text only (these models read no images, audio or files). */
export function checkContentParts(messages: readonly { content?: unknown }[]): void {
  messages.forEach((m, i) => {
    if (!Array.isArray(m.content)) return;
    m.content.forEach((part: { type?: unknown }, j) => {
      if (part.type !== "text") {
        throw new InvalidRequestError(
          `messages.${i}.content.${j}: content parts of type ${JSON.stringify(part.type)} are not supported by this engine (text only).`,
          "unsupported_content",
          `messages.${i}.content.${j}.type`,
        );
      }
    });
  });
}
