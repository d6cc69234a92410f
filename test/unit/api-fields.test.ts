// docs/API-FIELDS.md, table-driven: every field documented as refused gets a 400 naming it (from the
// llama engine for /v1, from the router's Ollama translation for the Ollama routes), and every
// field the engine knows has a row in the document.
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ZodError } from "zod";
import { DEMO_CATALOG } from "../../src/catalog/builtin.js";
import { runLlamaEngine } from "../../src/engine/llama/main.js";
import { ENGINE_FIELDS } from "../../src/engine/llama/request-fields.js";
import { writeTinyModel } from "../../src/gguf/tiny-model.js";
import { OllamaChatRequest, OllamaEmbedRequest, OllamaGenerateRequest } from "../../src/protocol/ollama.js";
import { OllamaHttpError } from "../../src/router/dialects/ollama/ollama-http-error.js";
import { chatToOpenAi, embedToOpenAi, generateToOpenAi } from "../../src/router/dialects/ollama/request-translation.js";
import { REPO_ROOT } from "../support/fleet.js";

interface Row {
  fields: { name: string; only?: string }[];
  status: string;
  example: unknown;
}

/** The document's tables, by the `##`/`###` heading above them. */
function tables(): Map<string, Row[]> {
  const out = new Map<string, Row[]>();
  let heading = "";
  for (const line of readFileSync(join(REPO_ROOT, "docs/API-FIELDS.md"), "utf8").split("\n")) {
    const h = /^#{2,3} (.*)/.exec(line);
    if (h) {
      heading = h[1]!.trim();
      continue;
    }
    if (!line.startsWith("| `") && !line.startsWith("| content")) continue;
    const cells = line
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    // "`a`, `b` (generate)": the names in backticks, each with the route it is limited to, if any.
    const fields = [...cells[0]!.matchAll(/`([^`]+)`(?:\s*\((\w+)\))?/g)].map((m) => ({ name: m[1]!, only: m[2] }));
    const exampleCell = /^`(.*)`$/.exec(cells[2] ?? "")?.[1];
    const rows = out.get(heading) ?? [];
    rows.push({ fields, status: cells[1]!, example: exampleCell === undefined ? undefined : JSON.parse(exampleCell) });
    out.set(heading, rows);
  }
  return out;
}

const doc = tables();
const refused = (heading: string) =>
  (doc.get(heading) ?? [])
    .filter((r) => r.status.startsWith("refused") && r.example !== undefined)
    .flatMap((r) => r.fields.map((f) => ({ ...f, example: r.example })));

describe("docs/API-FIELDS.md", () => {
  it("has the tables the tests read", () => {
    for (const h of [
      "POST /v1/chat/completions",
      "POST /v1/completions",
      "POST /v1/embeddings",
      "Ollama: POST /api/chat and /api/generate",
      "Ollama: POST /api/embed and /api/embeddings",
      "Ollama options",
    ]) {
      expect(refused(h).length, h).toBeGreaterThan(0);
    }
  });

  it.each(Object.keys(ENGINE_FIELDS))("every field the engine knows on %s has a row", (route) => {
    const documented = new Set((doc.get(`POST ${route}`) ?? []).flatMap((r) => r.fields.map((f) => f.name)));
    for (const field of Object.keys(ENGINE_FIELDS[route as keyof typeof ENGINE_FIELDS])) expect(documented, field).toContain(field);
  });
});

describe("/v1 fields documented as refused: the llama engine answers 400 naming them", { timeout: 60_000 }, () => {
  let dir: string;
  let engine: { port: number; close(): Promise<void> };
  const model = "demo-chat";
  const base: Record<string, Record<string, unknown>> = {
    "/v1/chat/completions": { model, messages: [{ role: "user", content: "hi" }], max_tokens: 1 },
    "/v1/completions": { model, prompt: "hi", max_tokens: 1 },
    "/v1/embeddings": { model, input: "hi" },
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drover-fields-"));
    const path = join(dir, "m.gguf");
    await writeTinyModel(DEMO_CATALOG.models.find((m) => m.id === model)!.source.generate!, path);
    engine = await runLlamaEngine({
      modelPath: path,
      modelId: model,
      host: "127.0.0.1",
      port: 0,
      threads: 1,
      slots: 1,
      contextSize: 2048,
      handleSignals: false,
      logger: pino({ level: "silent" }),
    });
  }, 60_000);
  afterAll(async () => {
    await engine?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cases = Object.keys(base).flatMap((route) => refused(`POST ${route}`).map((f) => ({ route, ...f })));
  it.each(cases)("$route $name = $example", async ({ route, name, example }) => {
    const res = await fetch(`http://127.0.0.1:${engine.port}${route}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...base[route], [name]: example }),
    });
    const body = (await res.json()) as { error: { message: string; param: string | null } };
    expect(res.status).toBe(400);
    expect(body.error.param).toBe(name);
    // Without the field the same request is fine: the refusal is about this field.
    if (route !== "/v1/embeddings" || name !== "dimensions") {
      const ok = await fetch(`http://127.0.0.1:${engine.port}${route}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(base[route]),
      });
      expect(ok.status).toBe(200);
      await ok.arrayBuffer();
    }
  });
});

describe("Ollama fields documented as refused: the router answers 400 naming them", () => {
  const target = { modelId: "demo-chat", contextLength: 4096 };
  const chat = (extra: Record<string, unknown>) =>
    chatToOpenAi(OllamaChatRequest.parse({ model: "m", messages: [{ role: "user", content: "hi" }], ...extra }), target);
  const generate = (extra: Record<string, unknown>) => generateToOpenAi(OllamaGenerateRequest.parse({ model: "m", prompt: "hi", ...extra }), target);
  const embed = (extra: Record<string, unknown>) => embedToOpenAi(OllamaEmbedRequest.parse({ model: "m", input: "hi", ...extra }), target);

  /** The 400's message (OllamaHttpError, or the schema's error as the route words it). */
  function refusal(fn: () => unknown): string {
    try {
      fn();
    } catch (err) {
      if (err instanceof OllamaHttpError && err.statusCode === 400) return err.message;
      if (err instanceof ZodError) return err.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
      throw err;
    }
    throw new Error("accepted");
  }

  const routes = refused("Ollama: POST /api/chat and /api/generate").flatMap((f) =>
    (f.only ? [f.only] : ["chat", "generate"]).map((route) => ({ route, name: f.name, example: f.example })),
  );
  it.each(routes)("/api/$route $name = $example", ({ route, name, example }) => {
    const call = route === "chat" ? chat : generate;
    expect(refusal(() => call({ [name]: example }))).toContain(name);
    expect(() => call({})).not.toThrow();
  });

  it.each(refused("Ollama: POST /api/embed and /api/embeddings"))("/api/embed $name = $example", ({ name, example }) => {
    expect(refusal(() => embed({ [name]: example }))).toContain(name);
  });

  it.each(refused("Ollama options"))("options.$name = $example", ({ name, example }) => {
    expect(refusal(() => chat({ options: { [name]: example } }))).toContain(`options.${name}`);
    expect(refusal(() => embed({ options: { [name]: example } }))).toContain(`options.${name}`);
  });
});
