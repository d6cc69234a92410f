// Validates response bodies against the schemas of OpenAI's published OpenAPI document
// (shared/openai-openapi.yaml beside the repository).
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
export const OPENAPI_PATH = process.env.DROVER_OPENAPI_PATH ?? resolve(here, "../../../shared/openai-openapi.yaml");

let ajv: InstanceType<typeof Ajv2020> | null = null;

/** Rewrites OpenAPI 3.0's `nullable: true` (still used in places) as JSON Schema's `anyOf [.., null]`. */
function convertNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convertNullable);
  if (!node || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = convertNullable(v);
  if (out.nullable === true) {
    delete out.nullable;
    return { anyOf: [out, { type: "null" }] };
  }
  delete out.nullable;
  return out;
}

function load(): InstanceType<typeof Ajv2020> {
  if (ajv) return ajv;
  const doc = parse(readFileSync(OPENAPI_PATH, "utf8")) as { components: { schemas: Record<string, unknown> } };
  // strict: false because the document uses OpenAPI keywords (x-oai-*, discriminator).
  ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema({ $id: "openai", components: { schemas: convertNullable(doc.components.schemas) } });
  return ajv;
}

/** Returns a list of problems (empty when `value` is valid against components.schemas[name]). */
export function schemaErrors(name: string, value: unknown): string[] {
  const validate = load().getSchema(`openai#/components/schemas/${name}`);
  if (!validate) throw new Error(`schema ${name} not found in ${OPENAPI_PATH}`);
  if (validate(value)) return [];
  return (validate.errors ?? []).map(
    (e: { instancePath: string; message?: string; params: unknown }) => `${e.instancePath || "(root)"} ${e.message} ${JSON.stringify(e.params)}`,
  );
}
