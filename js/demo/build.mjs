// Build the demo site into demo/dist: one ES module bundle per page (esbuild), plus the HTML and CSS.
//   node demo/build.mjs            (npm run build)
//   node demo/build.mjs --watch    rebuild on change
import { copyFile, mkdir, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const dist = join(here, "dist");
await mkdir(dist, { recursive: true });

const pages = ["watch", "publish", "room"];
const options = {
	entryPoints: [
		...pages.map((page) => ({ in: join(src, `${page}.ts`), out: page })),
		// The components alone, for your own pages: <script type="module" src="/hang-elements.js">.
		{ in: join(here, "..", "packages", "hang", "src", "element.ts"), out: "hang-elements" },
	],
	outdir: dist,
	bundle: true,
	format: "esm",
	target: "chrome120",
	sourcemap: true,
	minify: !process.argv.includes("--watch"),
	logLevel: "warning",
};

for (const file of await readdir(src)) {
	if (file.endsWith(".html") || file.endsWith(".css")) await copyFile(join(src, file), join(dist, file));
}

if (process.argv.includes("--watch")) {
	const context = await esbuild.context(options);
	await context.watch();
	console.log(`watching ${src} → ${dist}`);
} else {
	await esbuild.build(options);
	console.log(`built ${pages.length} pages and hang-elements.js into ${dist}`);
}
