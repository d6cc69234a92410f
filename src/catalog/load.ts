// Resolves `--catalog default|demo|FILE` to a validated catalog, with errors that name the field.
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { Catalog } from "../protocol/catalog.js";
import { DEFAULT_CATALOG, DEMO_CATALOG } from "./builtin.js";

export class CatalogError extends Error {}

export async function loadCatalog(spec: string): Promise<Catalog> {
  if (spec === "default") return structuredClone(DEFAULT_CATALOG);
  if (spec === "demo") return structuredClone(DEMO_CATALOG);
  let text: string;
  try {
    text = await readFile(spec, "utf8");
  } catch (err) {
    throw new CatalogError(`catalog: cannot read ${spec}: ${(err as Error).message} (use "default", "demo" or a JSON/YAML file)`);
  }
  return parseCatalog(text, spec);
}

export function parseCatalog(text: string, source: string): Catalog {
  let raw: unknown;
  try {
    // YAML is a superset of JSON, so one parser serves both.
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new CatalogError(`catalog ${source}: ${(err as Error).message}`);
  }
  const parsed = Catalog.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.slice(0, 5).map((i) => `  - ${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new CatalogError(`catalog ${source} is invalid:\n${lines.join("\n")}`);
  }
  const ids = new Set<string>();
  for (const m of parsed.data.models) {
    if (ids.has(m.id)) throw new CatalogError(`catalog ${source}: model id "${m.id}" appears twice`);
    ids.add(m.id);
  }
  return parsed.data;
}
