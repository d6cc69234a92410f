#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/cli by `npm run build` (run by npm's prepare hook).
import { main } from "../dist/cli/main.js";
main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
