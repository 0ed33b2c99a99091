/**
 * moq-lite-06 in the browser (issue 21): our watch page, offering `moq-lite-06` first by default,
 * plays `hang publish --test-pattern` (H.264 + Opus) through our relay and through reference
 * `moq-relay` 0.17.10, and settles on moq-lite-06 with both. Each cell: the page's session speaks
 * moq-lite-06, more than 60 frames decoded within 5 s of loading the page, a canvas that shows the
 * picture (colour variety), audio decoded. A third cell pins `versions=moq-lite-05` against 0.17.10
 * (which offers 06 too) and must get 05. The frame count at 5 s is printed (`# cell ...`).
 * Needs MOQ_BIN_DIR with moq-relay and hang (lite-06 builds) and the reference relay of
 * scripts/install-peers.sh (MOQ_PEERS_DIR).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { bin, canvasVariety, Proc, ReferenceRelay, Stack, waitFor, watchStats } from "./harness.ts";

/** What the cells read from <hang-watch>. */
interface WatchStats {
	version: string | undefined;
	framesDecoded: number;
	audioFramesDecoded: number;
}

/** The page load to measurement window, and the frames it must hold. */
const WINDOW_MS = 5000;
const MIN_FRAMES = 60;
/** The test pattern's picture is busy: the bound interop.test.ts uses for it. */
const MIN_VARIETY = 0.01;

let stack: Stack;
let reference: ReferenceRelay;
let referencePublisher: Proc;

before(async () => {
	stack = await Stack.start();
	await stack.publishPattern("pattern06.hang");
	reference = await ReferenceRelay.start("0.17.10");
	referencePublisher = new Proc("hang → 0.17.10", join(bin, "hang"), [
		"publish",
		"--url",
		reference.url,
		"--name",
		"pattern06.hang",
		"--test-pattern",
	]);
	await reference.waitAnnounced("pattern06.hang", () => referencePublisher.log);
});

after(async () => {
	await stack?.stop();
	await referencePublisher?.kill();
	await reference?.stop();
});

/**
 * Load the watch page (`query` appended) and check the cell: the version, frames decoded 5 s after
 * the load started, the picture, audio; print the figures under `name`.
 */
async function watchCell(name: string, query: string, version: string, extraLog: () => string): Promise<void> {
	const { context, console } = await stack.context();
	const page = await context.newPage();
	try {
		const start = Date.now();
		await page.goto(`${stack.site}/?path=pattern06.hang${query}`);
		let at5s: WatchStats | undefined;
		for (;;) {
			const s = await watchStats<WatchStats>(page);
			if (Date.now() - start >= WINDOW_MS) {
				at5s = s;
				break;
			}
			await page.waitForTimeout(100);
		}
		const frames = at5s?.framesDecoded ?? 0;
		process.stdout.write(`# cell ${name}: ${frames} frames decoded in the first 5 s (${at5s?.version})\n`);
		assert.equal(at5s?.version, version);
		assert.ok(frames > MIN_FRAMES, `${frames} frames decoded in the first 5 s`);
		const variety = await canvasVariety(page);
		assert.ok(variety > MIN_VARIETY, `canvas looks blank (colour variety ${variety})`);
		const audio = await waitFor("decoded audio", 5000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.audioFramesDecoded > 50 ? s.audioFramesDecoded : undefined;
		});
		process.stdout.write(`# cell ${name}: audio ${audio} frames decoded, canvas variety ${variety.toFixed(3)}\n`);
	} catch (err) {
		throw new Error(
			`${String(err)}\n--- page console ---\n${console.slice(-30).join("\n")}\n${extraLog().slice(-4000)}`,
			{ cause: err },
		);
	} finally {
		await context.close();
	}
}

test("watch page × our relay × hang publish --test-pattern, moq-lite-06", async () => {
	await watchCell("lite06×our-relay×hang-pattern", "", "moq-lite-06", () => `--- relay ---\n${stack.relay.log}`);
});

test("watch page × reference moq-relay 0.17.10 × hang publish --test-pattern, moq-lite-06", async () => {
	await watchCell(
		"lite06×relay-0.17.10×hang-pattern",
		`&relay=${encodeURIComponent(reference.url)}`,
		"moq-lite-06",
		() => `--- relay ---\n${reference.proc.log}`,
	);
});

test("versions=moq-lite-05 still pins 05 against reference moq-relay 0.17.10 (which offers 06)", async () => {
	await watchCell(
		"lite05-pinned×relay-0.17.10×hang-pattern",
		`&relay=${encodeURIComponent(reference.url)}&versions=moq-lite-05`,
		"moq-lite-05",
		() => `--- relay ---\n${reference.proc.log}`,
	);
});
