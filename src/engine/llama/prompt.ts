// Prompt construction: OpenAI chat messages through the model's own chat template, and raw
// completion prompts, to token arrays.
import { JinjaTemplateChatWrapper, resolveChatWrapper, type ChatHistoryItem, type ChatWrapper, type LlamaModel, type Token } from "node-llama-cpp";
import type { Logger } from "pino";
import { messageText, type ChatMessage } from "../../protocol/openai.js";

/**
 * Renders chat messages with the GGUF's `tokenizer.chat_template` (Jinja, rendered by
 * node-llama-cpp's JinjaTemplateChatWrapper: the template as the model author wrote it, as
 * llama.cpp's server does). Message text is kept as plain text, so a user writing "<|im_end|>"
 * gets those characters, not the control token. Models without a template (or with one the Jinja
 * engine cannot run) fall back to node-llama-cpp's detection of the model family.
 *
 * OpenAI roles map onto the three the templates know: system and developer → system, user and
 * tool → user, assistant → assistant. A new assistant turn is always opened at the end, as OpenAI
 * does even when the last message is from the assistant.
 */
export class ChatPromptBuilder {
  private readonly wrapper: ChatWrapper;

  constructor(private readonly model: LlamaModel, log: Logger) {
    const template = model.fileInfo.metadata?.tokenizer?.chat_template;
    let wrapper: ChatWrapper | undefined;
    if (typeof template === "string" && template.trim() !== "") {
      try {
        wrapper = new JinjaTemplateChatWrapper({
          template,
          tokenizer: model.tokenizer,
          joinAdjacentMessagesOfTheSameType: false,
          trimLeadingWhitespaceInResponses: false,
        });
        // Fail here, at start, rather than on the first request.
        wrapper.generateContextState({ chatHistory: [{ type: "user", text: "hi" }, { type: "model", response: [] }] });
      } catch (err) {
        log.warn({ err }, "chat template from the GGUF failed to render; using node-llama-cpp's detected chat format");
        wrapper = undefined;
      }
    }
    this.wrapper = wrapper ?? resolveChatWrapper(model, { warningLogs: false });
  }

  get name(): string {
    return this.wrapper.wrapperName;
  }

  /** Prompt tokens for a chat; throws on a template error (a client error: the messages). */
  tokens(messages: readonly ChatMessage[]): Token[] {
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
    const { contextText } = this.wrapper.generateContextState({ chatHistory: history });
    return withBos(this.model, contextText.tokenize(this.model.tokenizer));
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
