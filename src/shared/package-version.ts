// The drover version the node reports at registration, read from the root package.json.
import { readFileSync } from "node:fs";

let cached: string | undefined;

/** src/node/ and dist/node/ both sit two levels below the repository root. */
export function droverVersion(): string {
  if (cached === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
      cached = typeof pkg.version === "string" ? pkg.version : "0.0.0";
    } catch {
      cached = "0.0.0";
    }
  }
  return cached;
}
