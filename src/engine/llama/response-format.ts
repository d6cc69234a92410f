// response_format → a llama.cpp grammar that only lets the model sample valid JSON (or JSON that
// fits a schema). With a grammar even random-weight models answer parseable JSON.
import type { Llama, LlamaGrammar } from "node-llama-cpp";
import type { ResponseFormat } from "../../protocol/openai.js";
import { InvalidRequestError } from "./errors.js";

/** Keywords that restrict a JSON value; a schema with none of them accepts any value. */
const CONSTRAINING_KEYWORDS = ["type", "enum", "const", "oneOf", "anyOf", "allOf", "$ref", "properties", "items", "prefixItems"];

/** Compiled schema grammars kept per engine; clients tend to reuse a handful of schemas. */
const SCHEMA_CACHE_LIMIT = 64;

export class ResponseFormatGrammars {
  private json: Promise<LlamaGrammar> | undefined;
  private readonly schemas = new Map<string, Promise<LlamaGrammar>>();
  private readonly choices = new Map<string, Promise<LlamaGrammar>>();

  constructor(private readonly llama: Llama) {}

  /** The grammar for a response_format, or undefined for free text. */
  async grammarFor(format: ResponseFormat | null | undefined): Promise<LlamaGrammar | undefined> {
    if (!format || format.type === "text") return undefined;
    if (format.type === "json_object") return this.anyJson();
    const schema = format.json_schema.schema;
    // No schema, or `{}` (any value): any JSON object, as json_object.
    if (!schema || Object.keys(schema).length === 0) return this.anyJson();
    return this.forSchema(schema);
  }

  /** One of `names`, exactly (a forced tool call's function name). */
  forChoice(names: readonly string[]): Promise<LlamaGrammar> {
    const key = `choice:${names.join("\n")}`;
    let grammar = this.choices.get(key);
    if (!grammar) {
      grammar = this.llama.createGrammar({ grammar: `root ::= ${names.map((n) => JSON.stringify(n)).join(" | ")}` });
      this.choices.set(key, grammar);
      grammar.catch(() => this.choices.delete(key));
      if (this.choices.size > SCHEMA_CACHE_LIMIT) this.choices.delete(this.choices.keys().next().value!);
    }
    return grammar;
  }

  /** A JSON value fitting `schema` (a tool's parameters, or one of them); any JSON without a type. */
  forSchemaValue(schema: Record<string, unknown>, param = "tools"): Promise<LlamaGrammar> {
    // Only annotations (description, title, examples...): any JSON value fits.
    if (!CONSTRAINING_KEYWORDS.some((k) => k in schema)) return this.anyJson();
    return this.forSchema(schema, param);
  }

  private anyJson(): Promise<LlamaGrammar> {
    this.json ??= this.llama.getGrammarFor("json").catch((err: unknown) => {
      this.json = undefined;
      throw err;
    });
    return this.json;
  }

  private async forSchema(schema: Record<string, unknown>, param = "response_format"): Promise<LlamaGrammar> {
    const key = JSON.stringify(schema);
    let grammar = this.schemas.get(key);
    if (!grammar) {
      grammar = this.compile(normalizeSchema(schema) as Record<string, unknown>, param);
      this.schemas.set(key, grammar);
      grammar.catch(() => this.schemas.delete(key));
      if (this.schemas.size > SCHEMA_CACHE_LIMIT) this.schemas.delete(this.schemas.keys().next().value!);
    } else {
      // Most recently used last, so the oldest unused one is dropped first.
      this.schemas.delete(key);
      this.schemas.set(key, grammar);
    }
    return grammar;
  }

  private async compile(schema: Record<string, unknown>, param: string): Promise<LlamaGrammar> {
    const what = param === "response_format" ? "response_format.json_schema.schema" : "The tool's parameters schema";
    let grammar: LlamaGrammar;
    try {
      grammar = await this.llama.createGrammarForJsonSchema(schema as never);
    } catch (err) {
      throw new InvalidRequestError(`${what} is not supported: ${(err as Error).message}`, "invalid_schema", param);
    }
    // node-llama-cpp turns what it does not understand into `null`; refuse rather than answer null.
    if (/^root ::= null-rule\b/.test(grammar.grammar) && schema.type !== "null") {
      throw new InvalidRequestError(`${what} is not supported: use type, properties, items, enum, const, oneOf/anyOf or $ref/$defs.`, "invalid_schema", param);
    }
    return grammar;
  }
}

/** anyOf becomes oneOf (the generator knows only oneOf; for sampling they mean the same). */
function normalizeSchema(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalizeSchema);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === "anyOf" && !("oneOf" in value)) out.oneOf = normalizeSchema(v);
    else out[k] = normalizeSchema(v);
  }
  return out;
}
