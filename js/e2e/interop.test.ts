/**
 * The browser against the reference relays (issue 21): our watch page, served by our relay, plays
 * through a reference `moq-relay` (`?relay=`) what our `hang publish --test-pattern` (H.264 + Opus)
 * publishes there, and a broadcast from our publish page (Chromium's fake camera and microphone)
 * through reference 0.17.10. Each cell: more than 60 frames decoded within 5 s of loading the page,
 * a canvas that shows the picture (colour variety as in browser.test.ts), audio decoded, and never a "RequiredExtension" in the console.
 * The frame count at 5 s is printed (`# cell ...`). Needs the peers of scripts/install-peers.sh
 * (MOQ_PEERS_DIR) and MOQ_BIN_DIR with moq-relay and hang.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
	bin,
	canvasVariety,
	Proc,
	ReferenceRelay,
	type ReferenceVersion,
	Stack,
	waitFor,
	watchStats,
} from "./harness.ts";

/** What the cells read from <hang-watch>. */
interface WatchStats {
	version: string | undefined;
	framesDecoded: number;
	audioFramesDecoded: number;
}

/** The page load to measurement window, and the frames it must hold. */
const WINDOW_MS = 5000;
const MIN_FRAMES = 60;

let stack: Stack;
const relays = new Map<ReferenceVersion, ReferenceRelay>();
const publishers: Proc[] = [];

before(async () => {
	stack = await Stack.start();
	for (const version of ["0.17.10", "0.10.25"] as const) {
		const relay = await ReferenceRelay.start(version);
		relays.set(version, relay);
		const publisher = new Proc(`hang → ${version}`, join(bin, "hang"), [
			"publish",
			"--url",
			relay.url,
			"--name",
			"pattern.hang",
			"--test-pattern",
		]);
		publishers.push(publisher);
		await relay.waitAnnounced("pattern.hang", () => publisher.log);
	}
});

after(async () => {
	await stack?.stop();
	for (const publisher of publishers) await publisher.kill();
	for (const relay of relays.values()) await relay.stop();
});

function relay(version: ReferenceVersion): ReferenceRelay {
	const r = relays.get(version);
	assert.ok(r, `relay ${version} not started`);
	return r;
}

/**
 * Load the watch page for `path` through `relayUrl` and check the cell: frames decoded 5 s after
 * the load started, the picture, audio; print the figures under `name`.
 */
async function watchCell(
	name: string,
	relayUrl: string,
	path: string,
	minVariety: number,
	extraLog: () => string,
): Promise<void> {
	const { context, console } = await stack.context();
	const page = await context.newPage();
	try {
		const start = Date.now();
		await page.goto(`${stack.site}/?path=${encodeURIComponent(path)}&relay=${encodeURIComponent(relayUrl)}`);
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
		assert.ok(frames > MIN_FRAMES, `${frames} frames decoded in the first 5 s`);
		const variety = await canvasVariety(page);
		assert.ok(variety > minVariety, `canvas looks blank (colour variety ${variety})`);
		const audio = await waitFor("decoded audio", 5000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.audioFramesDecoded > 50 ? s.audioFramesDecoded : undefined;
		});
		process.stdout.write(`# cell ${name}: audio ${audio} frames decoded, canvas variety ${variety.toFixed(3)}\n`);
		const misread = console.find((line) => line.includes("RequiredExtension"));
		assert.equal(misread, undefined, "a reset stream read as a missing extension");
	} catch (err) {
		throw new Error(
			`${String(err)}\n--- page console ---\n${console.slice(-30).join("\n")}\n${extraLog().slice(-4000)}`,
			{ cause: err },
		);
	} finally {
		await context.close();
	}
}

for (const version of ["0.17.10", "0.10.25"] as const) {
	test(`watch page × reference moq-relay ${version} × hang publish --test-pattern`, async () => {
		const r = relay(version);
		await watchCell(
			`watch×relay-${version}×hang-pattern`,
			r.url,
			"pattern.hang",
			0.01,
			() => `--- relay ---\n${r.proc.log}`,
		);
	});
}

test("publish page (fake camera+mic) → reference moq-relay 0.17.10 → watch page", async () => {
	const r = relay("0.17.10");
	const { context, console } = await stack.context();
	await context.grantPermissions(["camera", "microphone"]);
	const publisher = await context.newPage();
	try {
		const path = "e2e-camera.hang";
		await publisher.goto(
			`${stack.site}/publish?path=${path}&source=camera&autostart&relay=${encodeURIComponent(r.url)}`,
		);
		await r.waitAnnounced(path, () => console.join("\n"));
		await watchCell(
			"publish-page×relay-0.17.10×watch",
			r.url,
			path,
			0.001, // the fake camera's picture is mostly flat colour (browser.test.ts (b) uses the same bound)
			() => `--- publish page ---\n${console.slice(-20).join("\n")}\n--- relay ---\n${r.proc.log}`,
		);
	} finally {
		await context.close();
	}
});
