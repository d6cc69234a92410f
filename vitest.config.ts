import { defineConfig } from "vitest/config";

// Files run one at a time: the e2e suites start real routers, nodes and llama.cpp engines, and
// this project is built and tested on 2-core machines.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ["default"],
  },
});
