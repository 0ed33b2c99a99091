/**
 * Browser end-to-end with a simulcast broadcast (`hang publish --test-pattern --renditions
 * 640x360@1200,320x180@300`): the watch page plays it and reports the rendition it shows; pinning
 * the other rendition with the `rendition` attribute switches to it while playing, with no gap in
 * decoded frames, and back.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Stack, waitFor, watchStats } from "./harness.ts";

interface WatchStats {
	framesDecoded: number;
	width: number | undefined;
	height: number | undefined;
	rendition: string | undefined;
	abrSwitches: number;
}

let stack: Stack;

before(async () => {
	stack = await Stack.start();
	await stack.publishPattern("simulcast.hang", ["--renditions", "640x360@1200,320x180@300"]);
});

after(async () => {
	await stack?.stop();
});

test("the watch page plays a simulcast broadcast and switches rendition when one is pinned", async () => {
	const { context, console } = await stack.context();
	const page = await context.newPage();
	try {
		await page.goto(`${stack.site}/?path=simulcast.hang`);
		const first = await waitFor("more than 60 decoded frames and a rendition", 5000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.framesDecoded > 60 && s.rendition ? s : undefined;
		});
		// The test pattern's catalog: video0 is 640x360, video1 320x180.
		const sizes: Record<string, [number, number]> = { video0: [640, 360], video1: [320, 180] };
		const shown = first.rendition ?? "";
		assert.ok(shown in sizes, `rendition ${shown}`);
		const other = shown === "video0" ? "video1" : "video0";
		const before = first.framesDecoded;

		await page.evaluate((name) => document.querySelector("hang-watch")?.setAttribute("rendition", name), other);
		const switched = await waitFor(`the switch to ${other}`, 8000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.rendition === other && s.width === sizes[other]?.[0] ? s : undefined;
		});
		assert.deepEqual([switched.width, switched.height], sizes[other]);
		// Playback went on through the switch: frames kept being decoded at the stream's rate.
		const steady = await waitFor("30 more frames after the switch", 3000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.framesDecoded >= switched.framesDecoded + 30 ? s : undefined;
		});
		assert.ok(steady.framesDecoded > before);

		await page.evaluate((name) => document.querySelector("hang-watch")?.setAttribute("rendition", name), shown);
		await waitFor(`the switch back to ${shown}`, 8000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.rendition === shown && s.width === sizes[shown]?.[0] ? s : undefined;
		});
		process.stdout.write(
			`# simulcast: started on ${shown} (${first.width}x${first.height}), pinned ${other} → ${switched.width}x${switched.height}, back to ${shown}; ${steady.framesDecoded} frames\n`,
		);
	} catch (err) {
		throw new Error(`${String(err)}\n--- page console ---\n${console.slice(-40).join("\n")}`, { cause: err });
	} finally {
		await context.close();
	}
});
