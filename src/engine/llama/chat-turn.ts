// One assistant turn of a chat: free generation parsed into answer, reasoning and tool calls
// (tool_choice auto), or a call forced by grammar (tool_choice required or a named function).
import { randomBytes } from "node:crypto";
import type { LlamaGrammar, Token } from "node-llama-cpp";
import type { ToolDefinition } from "../../protocol/openai.js";
import { createChatOutputParser, type ChatOutputPart } from "./chat-output.js";
import type { FinishReason, GenerateRequest, LlamaInference } from "./inference.js";
import type { ToolFormat } from "./prompt.js";
import type { ResponseFormatGrammars } from "./response-format.js";

export type ChatFinishReason = FinishReason | "tool_calls";

/** What a turn emits as it goes; a tool call's arguments may come in several pieces. */
export type ChatTurnEvent =
  | { type: "content"; text: string }
  | { type: "reasoning"; text: string }
  | { type: "tool_call"; index: number; id: string; name: string; arguments: string }
  | { type: "tool_call_arguments"; index: number; arguments: string };

export interface ToolCallResult {
  id: string;
  name: string;
  arguments: string;
}

export interface ChatTurnResult {
  content: string;
  reasoning: string;
  toolCalls: ToolCallResult[];
  finishReason: ChatFinishReason | "abort";
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens reused from the slot's cached prefix (usage.prompt_tokens_details.cached_tokens). */
  cachedTokens: number;
}

export type Sampling = Omit<GenerateRequest, "prompt" | "signal" | "onText" | "specialTokens" | "conversation">;

export interface ChatTurnRequest {
  prompt: Token[];
  sampling: Sampling;
  format: ToolFormat;
  /** The tools the model may call (none: tool_choice none, or no tools). */
  tools: readonly ToolDefinition[];
  /** Force one call of one of these tools (tool_choice required: all; named: that one). */
  forced: readonly ToolDefinition[] | null;
  /** parallel_tool_calls: false keeps only the first call. */
  parallel: boolean;
  signal: AbortSignal;
  /** The chat the prompt belongs to (conversationKey), for slot choice. */
  conversation?: string;
  onEvent?: (event: ChatTurnEvent) => void;
}

export function newToolCallId(): string {
  return `call_${randomBytes(12).toString("hex")}`;
}

export class ChatTurns {
  constructor(
    private readonly inference: LlamaInference,
    private readonly grammars: ResponseFormatGrammars,
  ) {}

  run(req: ChatTurnRequest): Promise<ChatTurnResult> {
    return req.forced ? this.forced(req, req.forced) : this.free(req);
  }

  /** Free generation, parsed in the model family's format. */
  private async free(req: ChatTurnRequest): Promise<ChatTurnResult> {
    const parser = createChatOutputParser(req.format, { tools: req.tools });
    const acc = new TurnAccumulator(req);
    const result = await this.inference.generate({
      prompt: req.prompt,
      ...req.sampling,
      specialTokens: this.inference.chat.outputHasSpecialTokens,
      signal: req.signal,
      conversation: req.conversation,
      onText: (text) => acc.parts(parser.push(text)),
    });
    acc.parts(parser.end());
    return acc.finish(result.finishReason, result.promptTokens, result.completionTokens, result.cachedTokens);
  }

  /**
   * A call forced with grammars, step by step in the family's own syntax: the call's opening is
   * written into the prompt, the function name is sampled under a grammar of the allowed names
   * (when there is more than one) and the arguments under the grammar of the tool's JSON schema.
   * Qwen3-Coder writes one `<parameter=KEY>` element per property; each value is sampled as JSON
   * (a string property as a JSON string) and written into the transcript as the template would.
   */
  private async forced(req: ChatTurnRequest, candidates: readonly ToolDefinition[]): Promise<ChatTurnResult> {
    const acc = new TurnAccumulator(req);
    let transcript = FORCED_OPENING[req.format];
    let budget = req.sampling.maxTokens;
    let completionTokens = 0;
    // What the first step reused of the client's prompt (later steps only add the transcript).
    let cachedTokens: number | undefined;
    // One step: sample under `grammar` after the prompt and the transcript so far.
    const step = async (grammar: LlamaGrammar, onText?: (t: string) => void): Promise<{ text: string; finish: FinishReason | "abort" }> => {
      const prompt = [...req.prompt, ...this.inference.chat.templateTextTokens(transcript)];
      const r = await this.inference.generate({
        prompt,
        ...req.sampling,
        maxTokens: Math.max(1, budget),
        grammar,
        signal: req.signal,
        conversation: req.conversation,
        onText,
      });
      completionTokens += r.completionTokens;
      cachedTokens ??= Math.min(r.cachedTokens, req.prompt.length);
      budget -= r.completionTokens;
      return { text: r.text, finish: r.finishReason };
    };
    let args = "";
    let started: { id: string; name: string } | undefined;
    // Cut short (max_tokens or abort): a call already announced is returned as far as it got.
    const stopped = (finish: FinishReason | "abort") => {
      if (started) acc.calls.push({ ...started, arguments: args });
      return acc.finish(finish === "abort" ? "abort" : "length", req.prompt.length, completionTokens, cachedTokens ?? 0);
    };

    let tool = candidates[0]!;
    if (candidates.length > 1) {
      const names = await this.grammars.forChoice(candidates.map((t) => t.name));
      const r = await step(names);
      const chosen = candidates.find((t) => t.name === r.text);
      if (r.finish !== "stop" || !chosen) return stopped(r.finish === "abort" ? "abort" : "length");
      tool = chosen;
    }
    const id = newToolCallId();
    started = { id, name: tool.name };
    acc.emit({ type: "tool_call", index: 0, id, name: tool.name, arguments: "" });
    const argsPiece = (text: string) => {
      args += text;
      acc.emit({ type: "tool_call_arguments", index: 0, arguments: text });
    };
    const schema = objectSchema(tool.parameters);

    if (req.format === "qwen3-coder") {
      transcript += `${tool.name}>\n`;
      argsPiece("{");
      const props = Object.entries((schema.properties ?? {}) as Record<string, Record<string, unknown>>);
      for (const [i, [key, prop]] of props.entries()) {
        transcript += `<parameter=${key}>\n`;
        argsPiece(`${i > 0 ? ", " : ""}${JSON.stringify(key)}: `);
        const r = await step(await this.grammars.forSchemaValue(prop), argsPiece);
        if (r.finish !== "stop") return stopped(r.finish);
        const value: unknown = JSON.parse(r.text);
        transcript += `${typeof value === "string" ? value : JSON.stringify(value)}\n</parameter>\n`;
      }
      argsPiece("}");
    } else {
      transcript += FORCED_BEFORE_ARGUMENTS[req.format](tool.name);
      const r = await step(await this.grammars.forSchemaValue(schema), argsPiece);
      if (r.finish !== "stop") return stopped(r.finish);
    }
    acc.calls.push({ id, name: tool.name, arguments: args });
    return acc.finish("stop", req.prompt.length, completionTokens, cachedTokens ?? 0);
  }
}

/** What opens a call in each format, written after the prompt's opened assistant turn. */
const FORCED_OPENING: Record<ToolFormat, string> = {
  harmony: "<|channel|>commentary to=functions.",
  "qwen3-coder": "<tool_call>\n<function=",
  hermes: '<tool_call>\n{"name": "',
};

const FORCED_BEFORE_ARGUMENTS: Record<Exclude<ToolFormat, "qwen3-coder">, (name: string) => string> = {
  harmony: (name) => `${name} <|constrain|>json<|message|>`,
  hermes: (name) => `${name}", "arguments": `,
};

/** A tool's parameters as an object schema (a tool without parameters takes `{}`). */
function objectSchema(parameters: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!parameters || Object.keys(parameters).length === 0) return { type: "object", properties: {} };
  // Tools often leave out `type: "object"` beside their properties.
  if (!("type" in parameters) && "properties" in parameters) return { type: "object", ...parameters };
  return parameters;
}

/** Collects a turn's parts into the result and passes them on as events. */
class TurnAccumulator {
  content = "";
  reasoning = "";
  readonly calls: ToolCallResult[] = [];

  constructor(private readonly req: ChatTurnRequest) {}

  emit(event: ChatTurnEvent): void {
    this.req.onEvent?.(event);
  }

  parts(parts: readonly ChatOutputPart[]): void {
    for (const p of parts) {
      if (p.type === "content") {
        this.content += p.text;
        this.emit(p);
      } else if (p.type === "reasoning") {
        this.reasoning += p.text;
        this.emit(p);
      } else if (this.req.parallel || this.calls.length === 0) {
        const call = { id: newToolCallId(), name: p.name, arguments: p.arguments };
        this.emit({ type: "tool_call", index: this.calls.length, ...call });
        this.calls.push(call);
      }
    }
  }

  finish(finish: FinishReason | "abort", promptTokens: number, completionTokens: number, cachedTokens: number): ChatTurnResult {
    const finishReason = finish === "stop" && this.calls.length > 0 ? "tool_calls" : finish;
    return { content: this.content, reasoning: this.reasoning, toolCalls: this.calls, finishReason, promptTokens, completionTokens, cachedTokens };
  }
}
