// Prompt construction: OpenAI chat messages (tool calls, tool results and earlier reasoning
// included) and tools through the model's own chat template, and raw completion prompts, to
// token arrays.
import { randomBytes } from "node:crypto";
import { Template } from "@huggingface/jinja";
import { resolveChatWrapper, type ChatHistoryItem, type ChatWrapper, type LlamaModel, type Token } from "node-llama-cpp";
import type { Logger } from "pino";
import { messageText, type ChatMessage, type ToolDefinition } from "../../protocol/openai.js";
import { InvalidRequestError } from "./errors.js";

/**
 * How a model family writes tool calls and reasoning (what the engine renders and parses):
 *  - harmony: gpt-oss. Reasoning on the analysis channel, calls on the commentary channel
 *    (`to=functions.NAME ... <|message|>{json}<|call|>`), the answer on the final channel.
 *  - qwen3-coder: `<tool_call>\n<function=NAME>\n<parameter=KEY>\nVALUE\n</parameter>\n...`.
 *  - hermes: `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>` (Qwen2.5/Qwen3,
 *    Hermes and most ChatML-family templates; the fallback for any other template).
 */
export type ToolFormat = "harmony" | "qwen3-coder" | "hermes";

export type ReasoningEffort = "low" | "medium" | "high";

export interface ChatPromptOptions {
  /** Function tools to show the model (already filtered by tool_choice); none when empty. */
  tools?: readonly ToolDefinition[];
  reasoningEffort?: ReasoningEffort;
}

/** Which format a chat template writes, from its text. */
export function toolFormatOf(template: string): ToolFormat {
  if (template.includes("<|channel|>")) return "harmony";
  if (template.includes("<function=") && template.includes("<parameter=")) return "qwen3-coder";
  return "hermes";
}

/**
 * Renders chat messages with the GGUF's `tokenizer.chat_template`, the Jinja template as the model
 * author wrote it, given OpenAI-shaped messages and tools as llama.cpp's server gives them
 * (assistant `tool_calls` with arguments as objects, `tool` messages, earlier reasoning as
 * `thinking` / `reasoning_content`). node-llama-cpp's chat wrappers are not used for this: its
 * Qwen wrapper writes a JSON `params` parameter rather than Qwen3-Coder's one element per
 * argument, and its chat history pairs every call with its result, which OpenAI's does not.
 *
 * Text that comes from the client (message content, reasoning, argument values, descriptions) is
 * tokenized as plain text, so a user writing "<|im_end|>" gets those characters, not the control
 * token; only the template's own text may hold special tokens. Models without a template (or with
 * one the Jinja engine cannot run) fall back to node-llama-cpp's detection of the model family,
 * without tools.
 *
 * Templates that know no tool role (plain ChatML) get developer → system and tool → user, and
 * the tools described in a system message. A new assistant turn is always opened at the end, as
 * OpenAI does even when the last message is from the assistant.
 */
export class ChatPromptBuilder {
  private readonly template: Template | undefined;
  private readonly wrapper: ChatWrapper | undefined;
  readonly toolFormat: ToolFormat;
  private readonly templateKnowsTools: boolean;

  constructor(
    private readonly model: LlamaModel,
    log: Logger,
  ) {
    const text = model.fileInfo.metadata?.tokenizer?.chat_template;
    let template: Template | undefined;
    if (typeof text === "string" && text.trim() !== "") {
      try {
        template = new Template(text);
        // Fail here, at start, rather than on the first request.
        template.render(this.variables([{ role: "user", content: "hi" }], {}));
      } catch (err) {
        log.warn({ err }, "chat template from the GGUF failed to render; using node-llama-cpp's detected chat format (no tools)");
        template = undefined;
      }
    }
    this.template = template;
    this.wrapper = template ? undefined : resolveChatWrapper(model, { warningLogs: false });
    this.toolFormat = typeof text === "string" ? toolFormatOf(text) : "hermes";
    this.templateKnowsTools = typeof text === "string" && /\btools\b/.test(text) && /["']tool["']/.test(text);
  }

  get name(): string {
    return this.template ? "Jinja" : this.wrapper!.wrapperName;
  }

  /** Whether the model input needs special-token text kept when decoding output (Harmony's channels). */
  get outputHasSpecialTokens(): boolean {
    return this.toolFormat === "harmony";
  }

  /** Prompt tokens for a chat; throws on a template error (a client error: the messages). */
  tokens(messages: readonly ChatMessage[], opts: ChatPromptOptions = {}): Token[] {
    if (!this.template) return this.wrapperTokens(messages);
    const sentinels = new Sentinels();
    const rendered = this.template.render(this.variables(this.templateMessages(messages, opts, sentinels), opts, sentinels));
    const tokens: Token[] = [];
    for (const part of sentinels.split(rendered)) {
      if (part.text) tokens.push(...(part.special ? this.model.tokenize(part.text, true) : this.plainTokens(part.text)));
    }
    return withBos(this.model, tokens);
  }

  /**
   * Client text as plain tokens. llama.cpp parses "user-defined" tokens even in plain text, and
   * it makes gpt-oss's message markers user-defined; those are cut in two so they stay text.
   */
  private plainTokens(text: string): Token[] {
    const guarded = this.toolFormat === "harmony" ? HARMONY_MARKERS : [];
    const out: Token[] = [];
    let rest = text;
    for (;;) {
      let at = -1;
      let marker = "";
      for (const m of guarded) {
        const i = rest.indexOf(m);
        if (i !== -1 && (at === -1 || i < at)) [at, marker] = [i, m];
      }
      if (at === -1) break;
      if (at > 0) out.push(...this.model.tokenize(rest.slice(0, at), false));
      out.push(...this.model.tokenize(marker.slice(0, 2), false), ...this.model.tokenize(marker.slice(2), false));
      rest = rest.slice(at + marker.length);
    }
    if (rest) out.push(...this.model.tokenize(rest, false));
    return out;
  }

  /** Tokens of template text appended to a prompt (special tokens parsed), for forced tool calls. */
  templateTextTokens(text: string): Token[] {
    return this.model.tokenize(text, true);
  }

  private variables(messages: unknown[], opts: ChatPromptOptions, sentinels?: Sentinels): Record<string, unknown> {
    const tokens = this.model.tokens;
    const tools =
      opts.tools && opts.tools.length > 0 && this.templateKnowsTools
        ? opts.tools.map((t) => {
            // Templates concatenate the description unguarded (gpt-oss's does): "" rather than undefined.
            const tool = { ...t, description: t.description ?? "" };
            return { type: "function", function: sentinels ? sentinels.describe(tool) : tool };
          })
        : undefined;
    return {
      messages,
      ...(tools ? { tools } : {}),
      add_generation_prompt: true,
      bos_token: tokens.bosString ?? "",
      eos_token: tokens.eosString ?? "",
      // gpt-oss's template reads reasoning_effort (default medium).
      ...(opts.reasoningEffort ? { reasoning_effort: opts.reasoningEffort } : {}),
    };
  }

  private templateMessages(messages: readonly ChatMessage[], opts: ChatPromptOptions, s: Sentinels): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const plain = !this.templateKnowsTools;
    if (plain && opts.tools && opts.tools.length > 0) out.push({ role: "system", content: s.wrap(hermesToolsText(opts.tools)) });
    messages.forEach((m, i) => {
      const text = s.wrap(messageText(m.content));
      switch (m.role) {
        case "system":
        case "developer":
          out.push({ role: "system", content: text });
          return;
        case "user":
          out.push({ role: "user", content: text });
          return;
        case "tool":
          if (plain) out.push({ role: "user", content: text });
          else out.push({ role: "tool", content: text, ...(m.tool_call_id ? { tool_call_id: m.tool_call_id } : {}) });
          return;
        case "assistant": {
          const reasoning = m.reasoning_content ?? m.reasoning ?? m.thinking;
          const calls = (m.tool_calls ?? []).map((c, j) => ({
            id: c.id,
            type: "function",
            function: {
              name: c.function.name,
              arguments: s.wrapDeep(parseArguments(c.function.arguments, `messages.${i}.tool_calls.${j}.function.arguments`)),
            },
          }));
          if (plain && calls.length > 0) {
            const callText = calls.map(
              (c) => `<tool_call>\n${JSON.stringify({ name: c.function.name, arguments: s.unwrapDeep(c.function.arguments) })}\n</tool_call>`,
            );
            out.push({ role: "assistant", content: s.wrap([messageText(m.content), ...callText].filter(Boolean).join("\n")) });
            return;
          }
          out.push({
            role: "assistant",
            content: text,
            ...(calls.length > 0 ? { tool_calls: calls } : {}),
            ...(typeof reasoning === "string" && reasoning !== "" ? { thinking: s.wrap(reasoning), reasoning_content: s.wrap(reasoning) } : {}),
          });
          return;
        }
      }
    });
    return out;
  }

  private wrapperTokens(messages: readonly ChatMessage[]): Token[] {
    const history: ChatHistoryItem[] = messages.map((m): ChatHistoryItem => {
      const text = messageText(m.content);
      switch (m.role) {
        case "system":
        case "developer":
          return { type: "system", text };
        case "assistant":
          return { type: "model", response: text === "" ? [] : [text] };
        default:
          return { type: "user", text };
      }
    });
    history.push({ type: "model", response: [] });
    const { contextText } = this.wrapper!.generateContextState({ chatHistory: history });
    return withBos(this.model, contextText.tokenize(this.model.tokenizer));
  }
}

/** Harmony's markers that llama.cpp tokenizes as tokens even in plain text (see llama-vocab.cpp). */
const HARMONY_MARKERS = ["<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>"] as const;

/** Tools described for templates that have no tool support of their own (Hermes' wording). */
function hermesToolsText(tools: readonly ToolDefinition[]): string {
  return (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
    tools.map((t) => JSON.stringify({ type: "function", function: t })).join("\n") +
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
    '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
  );
}

/** An assistant message's tool call arguments (a JSON string) as the object templates iterate. */
function parseArguments(args: string, param: string): unknown {
  try {
    const value: unknown = JSON.parse(args);
    if (value !== null && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {
    // answered below
  }
  throw new InvalidRequestError(`${param} must be a JSON object encoded as a string.`, null, param);
}

/**
 * Client text stands in the template's input as unguessable placeholders; after rendering, the
 * output is split on them so that only template text is tokenized with special tokens. A
 * placeholder inside a JSON string (the template applied `tojson`) gets the JSON-escaped text.
 */
class Sentinels {
  private readonly nonce = randomBytes(6).toString("hex");
  private readonly values: string[] = [];
  private readonly pattern = new RegExp(`("?)DRVTXT${this.nonce}N(\\d+)X("?)`, "g");

  wrap(text: string): string {
    // Whitespace cannot hold a special token; templates test it with `| trim | length`.
    if (text.trim() === "") return text;
    this.values.push(text);
    return `DRVTXT${this.nonce}N${this.values.length - 1}X`;
  }

  /** Every string value (not key) of a JSON value. */
  wrapDeep(value: unknown): unknown {
    if (typeof value === "string") return this.wrap(value);
    if (Array.isArray(value)) return value.map((v) => this.wrapDeep(v));
    if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.wrapDeep(v)]));
    return value;
  }

  unwrapDeep(value: unknown): unknown {
    if (typeof value === "string") return value.replace(this.pattern, (_m, q1: string, i: string, q2: string) => q1 + this.values[Number(i)]! + q2);
    if (Array.isArray(value)) return value.map((v) => this.unwrapDeep(v));
    if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.unwrapDeep(v)]));
    return value;
  }

  /** A tool with its descriptions (at any depth of its schema) as placeholders. */
  describe(tool: ToolDefinition): ToolDefinition {
    const walk = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(walk);
      if (v === null || typeof v !== "object") return v;
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === "description" && typeof x === "string" ? this.wrap(x) : walk(x)]));
    };
    return walk(tool) as ToolDefinition;
  }

  split(rendered: string): { text: string; special: boolean }[] {
    const parts: { text: string; special: boolean }[] = [];
    let last = 0;
    for (const m of rendered.matchAll(this.pattern)) {
      const [whole, q1, index, q2] = m;
      const value = this.values[Number(index)]!;
      const quoted = q1 === '"' && q2 === '"';
      parts.push({ text: rendered.slice(last, m.index) + (quoted ? '"' : q1!), special: true });
      parts.push({ text: quoted ? JSON.stringify(value).slice(1, -1) : value, special: false });
      parts.push({ text: quoted ? '"' : q2!, special: true });
      last = m.index + whole.length;
    }
    parts.push({ text: rendered.slice(last), special: true });
    return parts;
  }
}

/**
 * Tokens of a raw completion prompt. Special-token text in it ("<|im_start|>") is parsed, as
 * llama.cpp's server does: a raw prompt is the caller's full control over the model input.
 */
export function completionPromptTokens(model: LlamaModel, prompt: string): Token[] {
  const tokens = withBos(model, model.tokenize(prompt, true));
  // An empty prompt is valid for OpenAI; generation needs one token to start from.
  if (tokens.length === 0 && model.tokens.bos != null) return [model.tokens.bos];
  return tokens;
}

/** Prepends BOS when the GGUF asks for it (add_bos_token) and the text did not already start with it. */
function withBos(model: LlamaModel, tokens: Token[]): Token[] {
  const bos = model.tokens.bos;
  if (model.tokens.shouldPrependBosToken && bos != null && tokens[0] !== bos) return [bos, ...tokens];
  return tokens;
}
