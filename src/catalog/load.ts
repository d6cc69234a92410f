// Resolves `--catalog default|demo|FILE` to a validated catalog, with errors that name the field
// and the line it is on.
import { readFile } from "node:fs/promises";
import { LineCounter, parseDocument, type Document } from "yaml";
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
  // YAML is a superset of JSON, so one parser serves both; the line counter maps paths to lines.
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, lineCounter });
  if (doc.errors.length > 0) throw new CatalogError(`catalog ${source}: ${doc.errors[0]!.message.trim()}`);
  const raw: unknown = doc.toJS();
  const lineOf = (path: readonly PropertyKey[]) => lineOfPath(doc, lineCounter, path);
  const parsed = Catalog.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.slice(0, 5).map((i) => {
      const line = lineOf(i.path);
      return `  - ${i.path.map(String).join(".") || "(root)"}${line ? ` (line ${line})` : ""}: ${i.message}`;
    });
    throw new CatalogError(`catalog ${source} is invalid:\n${lines.join("\n")}`);
  }
  const ids = new Set<string>();
  parsed.data.models.forEach((m, index) => {
    if (ids.has(m.id)) {
      const line = lineOf(["models", index, "id"]);
      throw new CatalogError(`catalog ${source}${line ? ` line ${line}` : ""}: model id "${m.id}" appears twice`);
    }
    ids.add(m.id);
  });
  return parsed.data;
}

/** Line (1-based) of the value at `path`, or of its nearest existing parent (a missing field). */
function lineOfPath(doc: Document, lineCounter: LineCounter, path: readonly PropertyKey[]): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as unknown[], true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) return lineCounter.linePos(range[0]).line;
  }
  return undefined;
}
