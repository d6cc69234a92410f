// Builds the dashboard into dist/dashboard, served by the router at /dashboard. Everything is
// bundled (no CDN), so the dashboard works on a network without internet.
import { defineConfig } from "vite";

const here = decodeURIComponent(new URL(".", import.meta.url).pathname);

export default defineConfig({
  root: here,
  base: "/dashboard/",
  // JSX through Vite's own transform (Oxc): no Babel, no framework plugin.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: `${here}../../dist/dashboard`,
    emptyOutDir: true,
    target: "es2022",
    sourcemap: true,
    chunkSizeWarningLimit: 400,
  },
  logLevel: "warn",
});
