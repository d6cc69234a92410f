import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CatalogError, loadCatalog, parseCatalog } from "../../src/catalog/load.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "drover-catalog-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const GOOD_YAML = `name: mine
models:
  - id: tiny
    sizeBytes: 1000
    memoryBytes: 2000
    tags: [code]
    source:
      gguf:
        url: http://127.0.0.1:9/tiny.gguf
        sha256: ${"a".repeat(64)}
      ollama: tiny:1b
`;

function errorOf(text: string): string {
  try {
    parseCatalog(text, "test.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(CatalogError);
    return (err as Error).message;
  }
  throw new Error("expected the catalog to be rejected");
}

describe("catalog loader", () => {
  it("has the four supported models in the default catalog, each with a GGUF URL and an Ollama tag", async () => {
    const catalog = await loadCatalog("default");
    expect(catalog.models.map((m) => m.id)).toEqual(["gpt-oss:20b", "gpt-oss:120b", "gpt-oss-safeguard:20b", "qwen3-coder:30b"]);
    for (const m of catalog.models) {
      expect(m.source.gguf?.url).toMatch(/^https:\/\/huggingface\.co\/.+\.gguf$/);
      expect(m.source.ollama).toBe(m.id);
      expect(m.memoryBytes).toBeGreaterThan(m.sizeBytes);
      expect(m.tags.length).toBeGreaterThan(0);
    }
    // Built-ins are copies: the router annotating one catalog never changes another.
    catalog.models[0]!.sha256 = "b".repeat(64);
    expect((await loadCatalog("default")).models[0]!.sha256).toBeUndefined();
  });

  it("reads YAML and JSON files", async () => {
    const yamlPath = join(dir, "c.yaml");
    await writeFile(yamlPath, GOOD_YAML);
    const fromYaml = await loadCatalog(yamlPath);
    expect(fromYaml).toMatchObject({ name: "mine", models: [{ id: "tiny", capabilities: ["chat", "completion"], source: { ollama: "tiny:1b" } }] });
    const jsonPath = join(dir, "c.json");
    await writeFile(jsonPath, JSON.stringify(fromYaml, null, 2));
    expect(await loadCatalog(jsonPath)).toEqual(fromYaml);
  });

  it("names the field and its line for invalid values and missing fields", () => {
    const wrongType = errorOf(GOOD_YAML.replace("sizeBytes: 1000", "sizeBytes: lots"));
    expect(wrongType).toMatch(/models\.0\.sizeBytes \(line 4\): .*number/);
    const missing = errorOf(GOOD_YAML.replace("    memoryBytes: 2000\n", ""));
    // A missing field points at the model it is missing from.
    expect(missing).toMatch(/models\.0\.memoryBytes \(line 3\)/);
    const badSha = errorOf(GOOD_YAML.replace("a".repeat(64), "xyz"));
    expect(badSha).toMatch(/models\.0\.source\.gguf\.sha256 \(line 10\)/);
    const unknown = errorOf(GOOD_YAML.replace("    tags: [code]\n", "    tags: [code]\n    colour: red\n"));
    expect(unknown).toMatch(/models\.0 \(line 3\): .*colour/);
    const noSource = errorOf("models:\n  - id: x\n    sizeBytes: 1\n    memoryBytes: 1\n    source: {}\n");
    expect(noSource).toMatch(/models\.0\.source \(line 5\): a model needs at least one source/);
  });

  it("reports JSON line numbers too", () => {
    const text = JSON.stringify(
      {
        models: [
          { id: "a", sizeBytes: 1, memoryBytes: 1, source: { ollama: "a" } },
          { id: "b", sizeBytes: -1, memoryBytes: 1, source: { ollama: "b" } },
        ],
      },
      null,
      2,
    );
    const line = text.split("\n").findIndex((l) => l.includes("-1")) + 1;
    expect(errorOf(text)).toContain(`models.1.sizeBytes (line ${line})`);
  });

  it("rejects syntax errors and duplicate ids with their line", () => {
    expect(errorOf("models:\n  - id: [unclosed\n")).toMatch(/line 3/);
    const dup = GOOD_YAML + GOOD_YAML.split("\n").slice(2).join("\n");
    expect(errorOf(dup)).toMatch(/line 12: model id "tiny" appears twice/);
  });

  it("explains an unreadable file", async () => {
    await expect(loadCatalog(join(dir, "nope.yaml"))).rejects.toThrow(/cannot read .*nope\.yaml.*"default", "demo" or a JSON\/YAML file/);
  });
});

describe("split models in a catalog", () => {
  const split = (parts: string) => `models:
  - id: big
    sizeBytes: 3000
    memoryBytes: 4000
    source:
      gguf:
        url: http://h/big-00001-of-00002.gguf
${parts}`;

  it("accepts every part listed with its sha256, the first being the url", () => {
    const c = parseCatalog(
      split(`        parts:
          - { url: http://h/big-00001-of-00002.gguf, sha256: ${"a".repeat(64)} }
          - { url: http://h/big-00002-of-00002.gguf, sha256: ${"b".repeat(64)} }
`),
      "t.yaml",
    );
    expect(c.models[0]!.source.gguf!.parts).toHaveLength(2);
  });

  it("refuses parts whose first is not the url, naming the line", () => {
    expect(
      errorOf(
        split(`        parts:
          - { url: http://h/other.gguf }
`),
      ),
    ).toMatch(/models\.0\.source\.gguf\.parts \(line 9\): parts\[0\]\.url must be the same as url/);
  });

  it("the default catalog's gpt-oss:120b is a three-part split model", async () => {
    const { partCount } = await import("../../src/catalog/split.js");
    const c = await loadCatalog("default");
    expect(partCount(c.models.find((m) => m.id === "gpt-oss:120b")!)).toBe(3);
    expect(partCount(c.models.find((m) => m.id === "gpt-oss:20b")!)).toBe(1);
  });
});
