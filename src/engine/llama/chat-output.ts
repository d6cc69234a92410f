// Parsing what a chat model generates into OpenAI's parts: answer text, reasoning, tool calls.
// Each model family has its own output format (see ToolFormat in prompt.ts); every parser is
// incremental (text arrives token by token and parts leave as soon as they are certain) and
// total: whatever it cannot read as a call or reasoning ends up as answer text, never an error.
import type { ToolDefinition } from "../../protocol/openai.js";
import type { ToolFormat } from "./prompt.js";

export type ChatOutputPart = { type: "content"; text: string } | { type: "reasoning"; text: string } | { type: "tool_call"; name: string; arguments: string };

export interface ChatOutputParser {
  /** Text as generated (special tokens included for Harmony); returns the parts now certain. */
  push(text: string): ChatOutputPart[];
  /** End of generation: everything still held back. */
  end(): ChatOutputPart[];
}

export interface ChatOutputOptions {
  /** The tools of the request; calls are recognised only when there are some. */
  tools: readonly ToolDefinition[];
}

export function createChatOutputParser(format: ToolFormat, opts: ChatOutputOptions): ChatOutputParser {
  switch (format) {
    case "harmony":
      return new HarmonyParser(opts);
    case "qwen3-coder":
      return new TaggedCallParser(opts, parseQwenXmlCall);
    default:
      return new TaggedCallParser(opts, parseHermesCall);
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of one of `markers`. */
function heldSuffix(text: string, markers: readonly string[]): number {
  let best = 0;
  for (const m of markers) {
    for (let k = Math.min(m.length - 1, text.length); k > best; k--) {
      if (text.endsWith(m.slice(0, k))) {
        best = k;
        break;
      }
    }
  }
  return best;
}

// --- Harmony (gpt-oss) ----------------------------------------------------------------------

const H_START = "<|start|>";
const H_CHANNEL = "<|channel|>";
const H_MESSAGE = "<|message|>";
const H_END_MARKERS = ["<|end|>", "<|call|>", "<|return|>"] as const;
/** A header longer than this without <|message|> is not a header: the model wrote plain text. */
const H_HEADER_MAX = 256;

interface HarmonyHeader {
  channel: string;
  recipient: string | null;
}

/**
 * Harmony: `[<|start|>assistant]<|channel|>analysis<|message|>...<|end|>` for reasoning,
 * `<|channel|>commentary to=functions.NAME [<|constrain|>json]<|message|>{args}<|call|>` for a
 * call (the recipient may also stand before the channel), `<|channel|>final<|message|>...` for the
 * answer. The prompt ends with `<|start|>assistant`, so the first message has no start marker.
 * Output that does not begin like a header is taken as answer text (a model that ignores the
 * format, such as the random-weight demo).
 */
class HarmonyParser implements ChatOutputParser {
  private state: "header" | "body" | "text" = "header";
  private buf = "";
  private header: HarmonyHeader = { channel: "", recipient: null };
  private body = "";
  private readonly toolNames: Set<string>;

  constructor(opts: ChatOutputOptions) {
    this.toolNames = new Set(opts.tools.map((t) => t.name));
  }

  push(text: string): ChatOutputPart[] {
    this.buf += text;
    const out: ChatOutputPart[] = [];
    for (;;) {
      if (this.state === "text") {
        if (this.buf) out.push({ type: "content", text: this.buf });
        this.buf = "";
        return out;
      }
      if (this.state === "header") {
        const i = this.buf.indexOf(H_MESSAGE);
        if (i === -1) {
          if (!this.couldBeHeader(this.buf)) this.state = "text";
          else return out;
          continue;
        }
        this.header = parseHarmonyHeader(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + H_MESSAGE.length);
        this.body = "";
        this.state = "body";
        continue;
      }
      // body: up to an end marker (or the start of another message, if the model skipped one)
      let end = -1;
      let markerLength = 0;
      for (const m of [...H_END_MARKERS, H_START]) {
        const j = this.buf.indexOf(m);
        if (j !== -1 && (end === -1 || j < end)) {
          end = j;
          markerLength = m === H_START ? 0 : m.length;
        }
      }
      if (end === -1) {
        const keep = heldSuffix(this.buf, [...H_END_MARKERS, H_START]);
        this.bodyText(this.buf.slice(0, this.buf.length - keep), out);
        this.buf = this.buf.slice(this.buf.length - keep);
        return out;
      }
      this.bodyText(this.buf.slice(0, end), out);
      this.finishMessage(out);
      this.buf = this.buf.slice(end + markerLength);
      this.state = "header";
    }
  }

  end(): ChatOutputPart[] {
    const out = this.push("");
    if (this.state === "body") {
      this.bodyText(this.buf, out);
      this.finishMessage(out);
    } else if (this.buf) {
      // A header that never reached <|message|>: it was text after all.
      out.push({ type: "content", text: this.buf });
    }
    this.buf = "";
    this.state = "header";
    return out;
  }

  /** Whether `text` can still become a message header. */
  private couldBeHeader(text: string): boolean {
    if (text.length > H_HEADER_MAX) return false;
    if (H_START.startsWith(text)) return true;
    const t = text.startsWith(H_START) ? text.slice(H_START.length) : text;
    if (t === "") return true;
    const starts = [H_CHANNEL, " to=", "to=", "assistant", "<|constrain|>"];
    return starts.some((s) => t.startsWith(s) || s.startsWith(t));
  }

  private isCall(): boolean {
    return this.header.recipient?.startsWith("functions.") === true;
  }

  private bodyText(text: string, out: ChatOutputPart[]): void {
    if (!text) return;
    if (this.isCall()) {
      this.body += text;
      return;
    }
    // Analysis is reasoning; final and commentary preambles are for the user.
    out.push({ type: this.header.channel === "analysis" ? "reasoning" : "content", text });
  }

  private finishMessage(out: ChatOutputPart[]): void {
    if (!this.isCall()) return;
    const name = this.header.recipient!.slice("functions.".length);
    const args = jsonObjectText(this.body);
    if (args !== undefined && this.toolNames.has(name)) out.push({ type: "tool_call", name, arguments: args });
    // A call the parser cannot read stays visible as text rather than vanishing.
    else out.push({ type: "content", text: this.body });
    this.body = "";
  }
}

function parseHarmonyHeader(text: string): HarmonyHeader {
  const channel = /<\|channel\|>\s*([A-Za-z]+)/.exec(text)?.[1] ?? "";
  const recipient = /(?:^|\s|>)to=([^\s<]+)/.exec(text)?.[1] ?? null;
  return { channel, recipient };
}

/** `text` if it is one JSON object (the arguments of a call), else undefined. */
function jsonObjectText(text: string): string | undefined {
  const t = text.trim();
  try {
    const v: unknown = JSON.parse(t);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? t : undefined;
  } catch {
    return undefined;
  }
}

// --- <tool_call> blocks (Qwen3-Coder XML, Hermes JSON) ----------------------------------------

const OPEN = "<tool_call>";
const CLOSE = "</tool_call>";

type CallBodyParser = (body: string, tools: readonly ToolDefinition[]) => { name: string; arguments: string } | undefined;

/**
 * Text with `<tool_call>...</tool_call>` blocks. Text outside blocks is answer text (whitespace
 * between calls is dropped); a block that does not parse, or is cut off, is answer text too.
 */
class TaggedCallParser implements ChatOutputParser {
  private buf = "";
  private inCall = false;
  private sawCall = false;

  constructor(
    private readonly opts: ChatOutputOptions,
    private readonly parseBody: CallBodyParser,
  ) {}

  push(text: string): ChatOutputPart[] {
    this.buf += text;
    const out: ChatOutputPart[] = [];
    if (this.opts.tools.length === 0) {
      if (this.buf) out.push({ type: "content", text: this.buf });
      this.buf = "";
      return out;
    }
    for (;;) {
      if (!this.inCall) {
        const i = this.buf.indexOf(OPEN);
        if (i === -1) {
          const keep = heldSuffix(this.buf, [OPEN]);
          this.text(this.buf.slice(0, this.buf.length - keep), out);
          this.buf = this.buf.slice(this.buf.length - keep);
          return out;
        }
        this.text(this.buf.slice(0, i), out);
        this.buf = this.buf.slice(i + OPEN.length);
        this.inCall = true;
        continue;
      }
      const j = this.buf.indexOf(CLOSE);
      if (j === -1) return out;
      this.call(this.buf.slice(0, j), out);
      this.buf = this.buf.slice(j + CLOSE.length);
      this.inCall = false;
    }
  }

  end(): ChatOutputPart[] {
    const out = this.push("");
    // A model may end right after </function> (its end-of-turn token stands for </tool_call>).
    if (this.inCall) this.call(this.buf, out, true);
    else this.text(this.buf, out);
    this.buf = "";
    this.inCall = false;
    return out;
  }

  private text(text: string, out: ChatOutputPart[]): void {
    if (!text || (this.sawCall && text.trim() === "")) return;
    out.push({ type: "content", text });
  }

  private call(body: string, out: ChatOutputPart[], unclosed = false): void {
    const call = this.parseBody(body, this.opts.tools);
    if (call && this.opts.tools.some((t) => t.name === call.name)) {
      this.sawCall = true;
      out.push({ type: "tool_call", ...call });
    } else {
      out.push({ type: "content", text: OPEN + body + (unclosed ? "" : CLOSE) });
    }
  }
}

/** `<function=NAME>\n<parameter=KEY>\nVALUE\n</parameter>...\n</function>` → name and JSON arguments. */
export function parseQwenXmlCall(body: string, tools: readonly ToolDefinition[]): { name: string; arguments: string } | undefined {
  const m = /^\s*<function=([^>\n]+)>([\s\S]*?)<\/function>\s*$/.exec(body);
  if (!m) return undefined;
  const name = m[1]!.trim();
  const properties = (tools.find((t) => t.name === name)?.parameters?.properties ?? {}) as Record<string, { type?: unknown } | undefined>;
  const args: Record<string, unknown> = {};
  let rest = m[2]!;
  const param = /^\s*<parameter=([^>\n]+)>\n?([\s\S]*?)\n?<\/parameter>/;
  for (let p = param.exec(rest); p; p = param.exec(rest)) {
    const key = p[1]!.trim();
    args[key] = qwenParameterValue(p[2]!, properties[key]?.type);
    rest = rest.slice(p[0].length);
  }
  if (rest.trim() !== "") return undefined;
  return { name, arguments: JSON.stringify(args) };
}

/** A parameter's text as its schema type: strings as written, anything else as JSON if it parses. */
function qwenParameterValue(text: string, type: unknown): unknown {
  if (type === "string" || (Array.isArray(type) && type.length === 1 && type[0] === "string")) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `{"name": NAME, "arguments": {...}}` → name and JSON arguments. */
export function parseHermesCall(body: string): { name: string; arguments: string } | undefined {
  try {
    const v = JSON.parse(body.trim()) as { name?: unknown; arguments?: unknown; parameters?: unknown };
    const args = v.arguments ?? v.parameters ?? {};
    if (typeof v.name !== "string" || args === null || typeof args !== "object" || Array.isArray(args)) return undefined;
    return { name: v.name, arguments: JSON.stringify(args) };
  } catch {
    return undefined;
  }
}
