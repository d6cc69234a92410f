// The demo models' chat templates (assets/chat-templates/) are llama.cpp's own copies, byte for
// byte, from the source bundle node-llama-cpp installs.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/fleet.js";

const BUNDLE = join(REPO_ROOT, "node_modules/node-llama-cpp/llama/gitRelease.bundle");
const dir = mkdtempSync(join(tmpdir(), "drover-bundle-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("vendored chat templates", () => {
  it.each(["openai-gpt-oss-120b.jinja", "Qwen3-Coder.jinja"])(
    "%s is llama.cpp's copy",
    (file) => {
      execFileSync("git", ["init", "-q", dir]);
      execFileSync("git", ["-C", dir, "fetch", "-q", BUNDLE]);
      const upstream = execFileSync("git", ["-C", dir, "show", `FETCH_HEAD:models/templates/${file}`], { maxBuffer: 1 << 24 }).toString("utf8");
      expect(readFileSync(join(REPO_ROOT, "assets/chat-templates", file), "utf8")).toBe(upstream);
    },
    60_000,
  );
});
