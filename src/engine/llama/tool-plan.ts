// What a chat request asks of tools and reasoning, checked and reduced to what the engine does:
// which tools the template shows, which calls the parser accepts, whether a call is forced.
import type { ChatCompletionRequest, ToolDefinition } from "../../protocol/openai.js";
import { InvalidRequestError } from "./errors.js";
import type { ReasoningEffort } from "./prompt.js";

export interface ToolPlan {
  /** Tools rendered into the prompt. */
  shown: ToolDefinition[];
  /** Tools whose calls are read from the output (none with tool_choice none). */
  parsed: ToolDefinition[];
  /** tool_choice required (all tools) or a named function (that one): one call, under a grammar. */
  forced: ToolDefinition[] | null;
  parallel: boolean;
  reasoningEffort: ReasoningEffort | undefined;
  /** false with OpenRouter's reasoning.exclude (or reasoning.enabled false): reasoning is not returned. */
  showReasoning: boolean;
}

export function toolPlan(body: ChatCompletionRequest): ToolPlan {
  const tools: ToolDefinition[] = (body.tools ?? []).map((t, i) => {
    if (t.type !== "function" || !("function" in t)) {
      throw new InvalidRequestError(
        `tools.${i}.type: only function tools are supported by this engine (got ${JSON.stringify(t.type)}).`,
        "unsupported_parameter",
        `tools.${i}.type`,
      );
    }
    return t.function as ToolDefinition;
  });
  const names = new Set<string>();
  tools.forEach((t, i) => {
    if (names.has(t.name)) throw new InvalidRequestError(`tools.${i}.function.name: ${t.name} is defined twice.`, null, `tools.${i}.function.name`);
    names.add(t.name);
  });

  const choice = body.tool_choice ?? "auto";
  let forced: ToolDefinition[] | null = null;
  let parsed = tools;
  if (choice === "none") parsed = [];
  else if (choice === "required") forced = tools;
  else if (typeof choice === "object") {
    const name = choice.type === "function" ? (choice as { function?: { name?: string } }).function?.name : undefined;
    if (name === undefined) {
      throw new InvalidRequestError(
        `tool_choice: only "none", "auto", "required" or a function ({"type":"function","function":{"name":...}}) are supported by this engine.`,
        "unsupported_parameter",
        "tool_choice",
      );
    }
    const tool = tools.find((t) => t.name === name);
    if (!tool) throw new InvalidRequestError(`tool_choice: no tool named ${JSON.stringify(name)} in tools.`, null, "tool_choice");
    forced = [tool];
  }
  if (forced && forced.length === 0) throw new InvalidRequestError('tool_choice "required" needs at least one tool in tools.', null, "tool_choice");
  if (forced && body.response_format && body.response_format.type !== "text") {
    throw new InvalidRequestError(
      "response_format cannot be combined with a forced tool call (tool_choice required or named): the call's arguments follow the tool's schema.",
      "unsupported_parameter",
      "response_format",
    );
  }
  return {
    shown: choice === "none" ? [] : tools,
    parsed,
    forced,
    parallel: body.parallel_tool_calls !== false,
    reasoningEffort: effortOf(body.reasoning_effort ?? body.reasoning?.effort ?? undefined),
    showReasoning: body.reasoning?.exclude !== true && body.reasoning?.enabled !== false,
  };
}

/** OpenAI's efforts onto gpt-oss's three. */
function effortOf(effort: string | undefined): ReasoningEffort | undefined {
  switch (effort) {
    case undefined:
      return undefined;
    case "none":
    case "minimal":
    case "low":
      return "low";
    case "medium":
      return "medium";
    default:
      return "high";
  }
}
