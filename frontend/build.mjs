// Builds the browser bundle: src/main.ts (with htmx) -> static/frontend/build/app.js, and copies
// ECharts' minified dist beside it. Nothing is loaded from a CDN: every page uses these files.
//   npm run build            one production build
//   npm run build -- --watch rebuild on change (development)
import { copyFile, mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, "static", "frontend", "build");
const require = createRequire(import.meta.url);
const watch = process.argv.includes("--watch");

await mkdir(outDir, { recursive: true });

const echartsDist = path.join(path.dirname(require.resolve("echarts/package.json")), "dist", "echarts.min.js");
await copyFile(echartsDist, path.join(outDir, "echarts.min.js"));

const options = {
  entryPoints: [path.join(here, "src", "main.ts")],
  outfile: path.join(outDir, "app.js"),
  bundle: true,
  format: "iife",
  target: ["es2020"],
  minify: !watch,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "info",
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
