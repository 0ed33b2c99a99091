/**
 * Browser end-to-end: the demo site served by the real relay, headless Chromium, the `hang` CLI's
 * test pattern as the source. (a) watch plays it: >60 frames within 5 s, canvas not blank,
 * publish-to-render latency reported; (b) the publish page's fake camera → relay → another page
 * watches it; (c) audio decodes; (d) the watch page recovers when the publisher restarts; (e) a
 * page navigated away from or closed ends its sessions at the relay at once; and the room page's
 * chat reaches another member.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { canvasVariety, results, Stack, waitFor, watchStats } from "./harness.ts";

interface WatchStats {
	version: string | undefined;
	framesDecoded: number;
	framesDropped: number;
	latencyMs: number | undefined;
	bitrateKbps: number;
	audioFramesDecoded: number;
}

let stack: Stack;

before(async () => {
	stack = await Stack.start();
	await stack.publishPattern("pattern.hang");
});

after(async () => {
	await stack?.stop();
});

/** IDs of the sessions the relay has logged as `session accepted` or `session closed`. */
function sessionIds(event: "accepted" | "closed"): Set<string> {
	return new Set(
		[...stack.relay.log.matchAll(new RegExp(`session ${event} id=(\\d+)`, "g"))].flatMap((m) => (m[1] ? [m[1]] : [])),
	);
}

function fail(console: string[], err: unknown): never {
	throw new Error(
		`${String(err)}\n--- page console ---\n${console.slice(-40).join("\n")}\n--- relay ---\n${stack.relay.log.slice(-3000)}`,
		{
			cause: err,
		},
	);
}

test("(a)+(c) the watch page plays the CLI's test pattern: frames, pixels, latency, audio", async () => {
	const { context, console } = await stack.context();
	const page = await context.newPage();
	try {
		const start = Date.now();
		await page.goto(`${stack.site}/?path=pattern.hang`);
		const played = await waitFor("more than 60 decoded frames", 5000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.framesDecoded > 60 ? s : undefined;
		});
		const elapsed = Date.now() - start;
		console.push(`info: ${played.framesDecoded} frames after ${elapsed} ms`);
		assert.ok(elapsed <= 5000 + 500, `took ${elapsed} ms`);

		const variety = await canvasVariety(page);
		assert.ok(variety > 0.01, `canvas looks blank (colour variety ${variety})`);

		const latency = await waitFor(
			"a latency reading",
			3000,
			async () => (await watchStats<WatchStats>(page))?.latencyMs,
		);
		assert.ok(latency > 0 && latency < 2000, `latency ${latency} ms`);
		process.stdout.write(`# publish-to-render latency: ${latency.toFixed(1)} ms\n`);

		// (c) Audio: Opus packets every 20 ms decode.
		const audio = await waitFor("decoded audio", 5000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.audioFramesDecoded > 50 ? s.audioFramesDecoded : undefined;
		});
		assert.ok(audio > 50);

		// The README's picture: the player with its stats overlay open.
		await page.evaluate(() =>
			(document.querySelector("hang-watch")?.shadowRoot?.querySelector(".info") as HTMLElement)?.click(),
		);
		await page.waitForTimeout(1200);
		mkdirSync(results, { recursive: true });
		await page.screenshot({ path: join(results, "watch.png") });
		const final = await watchStats<WatchStats>(page);
		process.stdout.write(`# watch stats: ${JSON.stringify(final)}\n`);
	} catch (err) {
		fail(console, err);
	} finally {
		await context.close();
	}
});

test("(b) the publish page's fake camera reaches a second page through the relay", async () => {
	const { context, console } = await stack.context();
	await context.grantPermissions(["camera", "microphone"]);
	const publisher = await context.newPage();
	const viewer = await context.newPage();
	try {
		await publisher.goto(`${stack.site}/publish?path=e2e-camera.hang&source=camera&autostart`);
		await stack.waitAnnounced("anon/e2e-camera.hang", true, () => console.join("\n"));
		await viewer.goto(`${stack.site}/?path=e2e-camera.hang`);
		const s = await waitFor("frames from the browser publisher", 15000, async () => {
			const s = await watchStats<WatchStats>(viewer);
			return s && s.framesDecoded > 30 ? s : undefined;
		});
		assert.ok(s.framesDecoded > 30);
		assert.ok((await canvasVariety(viewer)) > 0.001, "viewer canvas blank");
		process.stdout.write(`# browser→browser: ${JSON.stringify(s)}\n`);
		mkdirSync(results, { recursive: true });
		await viewer.screenshot({ path: join(results, "camera.png") });
	} catch (err) {
		fail(console, err);
	} finally {
		await context.close();
	}
});

test("(d) the watch page recovers when the publisher restarts", async () => {
	await stack.publishPattern("restart.hang");
	const { context, console } = await stack.context();
	const page = await context.newPage();
	try {
		await page.goto(`${stack.site}/?path=restart.hang`);
		await waitFor("first frames", 10000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.framesDecoded > 30 ? true : undefined;
		});
		await stack.unpublish("restart.hang");
		const before = (await watchStats<WatchStats>(page))?.framesDecoded ?? 0;
		await new Promise((resolve) => setTimeout(resolve, 1000));
		await stack.publishPattern("restart.hang");
		const restarted = Date.now();
		await waitFor("frames after the restart", 15000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.framesDecoded > before + 30 ? true : undefined;
		});
		process.stdout.write(`# recovered ${Date.now() - restarted} ms after the publisher restarted\n`);
	} catch (err) {
		fail(console, err);
	} finally {
		await context.close();
	}
});

test("(e) leaving or closing the watch page ends its sessions at the relay at once", async () => {
	const { context, console } = await stack.context();
	try {
		for (const leave of ["navigate", "close"] as const) {
			const page = await context.newPage();
			const before = sessionIds("accepted");
			await page.goto(`${stack.site}/?path=pattern.hang`);
			await waitFor("frames", 10000, async () => {
				const s = await watchStats<WatchStats>(page);
				return s && s.framesDecoded > 10 ? true : undefined;
			});
			// The page's sessions: those accepted while it loaded (no other client connects meanwhile).
			const opened = [...sessionIds("accepted")].filter((id) => !before.has(id));
			assert.ok(opened.length >= 1, "no session accepted");
			const left = Date.now();
			if (leave === "navigate") await page.goto("about:blank");
			else await page.close();
			await waitFor(`sessions ${opened.join(", ")} closed after ${leave}`, 3000, async () => {
				const closed = sessionIds("closed");
				return opened.every((id) => closed.has(id)) ? true : undefined;
			});
			process.stdout.write(`# ${leave}: ${opened.length} session(s) closed ${Date.now() - left} ms after\n`);
			if (leave === "navigate") await page.close();
		}
	} catch (err) {
		fail(console, err);
	} finally {
		await context.close();
	}
});

test("the room page shows every member under the prefix and carries chat on its own track", async () => {
	const { context, console } = await stack.context();
	await context.grantPermissions(["camera", "microphone"]);
	const alice = await context.newPage();
	const bob = await context.newPage();
	try {
		await alice.goto(`${stack.site}/room?room=e2e&name=alice&source=camera&join`);
		await bob.goto(`${stack.site}/room?room=e2e&name=bob&source=none&join`);
		await stack.waitAnnounced("anon/room/e2e/alice.hang", true, () => console.join("\n"));
		await stack.waitAnnounced("anon/room/e2e/bob.hang", true, () => console.join("\n"));

		// Each sees the other as a tile; bob watches alice's camera.
		await bob.waitForSelector('.tile[data-path="room/e2e/alice.hang"] hang-watch', { timeout: 10000 });
		await alice.waitForSelector('.tile[data-path="room/e2e/bob.hang"]', { timeout: 10000 });
		await waitFor("bob decoding alice's camera", 15000, async () => {
			const frames = await bob.evaluate(() => {
				const el = document.querySelector('.tile[data-path="room/e2e/alice.hang"] hang-watch') as
					| (HTMLElement & { stats?: { framesDecoded: number } })
					| null;
				return el?.stats?.framesDecoded ?? 0;
			});
			return frames > 10 ? frames : undefined;
		});

		// Chat both ways.
		await alice.waitForSelector("#text:not([disabled])", { timeout: 10000 });
		await bob.waitForSelector("#text:not([disabled])", { timeout: 10000 });
		await alice.fill("#text", "hello from alice");
		await alice.press("#text", "Enter");
		await bob.waitForFunction(
			() => document.querySelector("#messages")?.textContent?.includes("hello from alice"),
			null,
			{
				timeout: 10000,
			},
		);
		await bob.fill("#text", "hi alice");
		await bob.press("#text", "Enter");
		await alice.waitForFunction(() => document.querySelector("#messages")?.textContent?.includes("hi alice"), null, {
			timeout: 10000,
		});
		const seen = await alice.evaluate(() => document.querySelector("#messages")?.textContent ?? "");
		assert.match(seen, /alice \(you\)hello from alice/);
		assert.match(seen, /bobhi alice/);
		mkdirSync(results, { recursive: true });
		await bob.screenshot({ path: join(results, "room.png") });
	} catch (err) {
		fail(console, err);
	} finally {
		await context.close();
	}
});

test("a plain page embeds the player with one script tag (hang-elements.js)", async () => {
	const { context, console } = await stack.context();
	const page = await context.newPage();
	try {
		await page.goto(`${stack.site}/embed`);
		const s = await waitFor("frames in the embedded player", 10000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.framesDecoded > 30 ? s : undefined;
		});
		assert.ok(s.framesDecoded > 30);
		assert.ok((await canvasVariety(page)) > 0.01, "embedded canvas blank");
	} catch (err) {
		fail(console, err);
	} finally {
		await context.close();
	}
});

test("the watch page plays over the lite-02 compat path too (versions=moq-lite-02)", async () => {
	const { context, console } = await stack.context();
	const page = await context.newPage();
	try {
		await page.goto(`${stack.site}/?path=pattern.hang&versions=moq-lite-02`);
		const s = await waitFor("frames over lite-02", 10000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.framesDecoded > 30 ? s : undefined;
		});
		assert.equal(s.version, "moq-lite-02");
		assert.ok((await canvasVariety(page)) > 0.01, "canvas blank over lite-02");
		// lite-02 has no FRAME timestamp; the legacy container's own timestamp still gives latency.
		assert.ok(s.latencyMs !== undefined && s.latencyMs > 0 && s.latencyMs < 2000, `latency ${s.latencyMs}`);
		// A browser publisher over lite-02 → relay → a lite-02 viewer.
		const publisher = await context.newPage();
		await context.grantPermissions(["camera", "microphone"]);
		await publisher.goto(`${stack.site}/publish?path=e2e-lite02.hang&source=camera&autostart&versions=moq-lite-02`);
		await stack.waitAnnounced("anon/e2e-lite02.hang", true, () => console.join("\n"));
		assert.equal(
			await publisher.evaluate(
				() =>
					(document.querySelector("hang-publish") as HTMLElement & { stats?: { version?: string } })?.stats?.version,
			),
			"moq-lite-02",
		);
		await page.goto(`${stack.site}/?path=e2e-lite02.hang&versions=moq-lite-02`);
		await waitFor("frames from a lite-02 browser publisher", 15000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.framesDecoded > 30 ? s : undefined;
		});
		await publisher.close();
		// And the default negotiates lite-06, the newest both speak.
		await page.goto(`${stack.site}/?path=pattern.hang`);
		const d = await waitFor("frames over the default version", 10000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.framesDecoded > 10 ? s : undefined;
		});
		assert.equal(d.version, "moq-lite-06");
	} catch (err) {
		fail(console, err);
	} finally {
		await context.close();
	}
});
