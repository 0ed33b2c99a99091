/**
 * Browser end-to-end of simulcast from the browser: the publish page's fake camera through
 * `<hang-publish renditions="640x360@1000,320x180@300">` to our relay. (a) The catalog, as any
 * viewer gets it (the relay's `/fetch` of its latest group), lists `video0` and `video1` with
 * those sizes and bitrates, a codec and a frame rate, in the CLI's shape (`audio2` after them).
 * (b) Keyframes fall on the same timestamps in both tracks: `hang subscribe` writes both to one
 * fMP4, where a keyframe is the first frame of a group, and ffprobe lists them. (c) A watch page
 * pinned to each rendition (`rendition` attribute) decodes frames of that rendition's size.
 * (d) A bad `renditions` value is reported, and nothing is published.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import type { BrowserContext, Page } from "playwright-core";
import { bin, Stack, waitFor, watchStats } from "./harness.ts";

/** What the tests read from `<hang-watch>`. */
interface WatchStats {
	framesDecoded: number;
	width: number | undefined;
	height: number | undefined;
	rendition: string | undefined;
}

/** What the tests read from `<hang-publish>`. */
interface PublishStats {
	status: string;
	error: string | undefined;
	framesEncoded: number;
	width: number;
	height: number;
}

/** The renditions published, as the attribute gives them and the catalog must list them. */
const RENDITIONS = "640x360@1000,320x180@300";
const EXPECTED = [
	{ name: "video0", width: 640, height: 360, bitrate: 1_000_000 },
	{ name: "video1", width: 320, height: 180, bitrate: 300_000 },
];
const PATH = "e2e-simulcast.hang";

let stack: Stack;
let publisherContext: BrowserContext;
let publisher: Page;
/** The publisher page's console. */
let publisherConsole: string[] = [];

before(async () => {
	stack = await Stack.start();
	const { context, console } = await stack.context();
	publisherContext = context;
	publisherConsole = console;
	await context.grantPermissions(["camera", "microphone"]);
	publisher = await context.newPage();
	await publisher.goto(`${stack.site}/publish?path=${PATH}&source=camera&autostart&renditions=${RENDITIONS}`);
	await stack.waitAnnounced(`anon/${PATH}`, true, () => console.join("\n"));
});

after(async () => {
	await publisherContext?.close();
	await stack?.stop();
});

function fail(err: unknown, console: string[] = []): never {
	throw new Error(
		`${String(err)}\n--- page console ---\n${console.slice(-30).join("\n")}\n--- publisher console ---\n${publisherConsole.slice(-30).join("\n")}\n--- relay ---\n${stack.relay.log.slice(-3000)}`,
		{ cause: err },
	);
}

async function publishStats(page: Page): Promise<PublishStats | undefined> {
	return page.evaluate(() => {
		const el = document.querySelector("hang-publish") as (HTMLElement & { stats?: unknown }) | null;
		return el?.stats ? ({ ...(el.stats as object) } as PublishStats) : undefined;
	});
}

/** The broadcast's catalog, the latest version, as the relay's HTTP fetch serves it. */
async function fetchCatalog(): Promise<Record<string, unknown> | undefined> {
	const response = await fetch(`http://127.0.0.1:${stack.port}/fetch/anon/${PATH}/catalog.json`);
	if (!response.ok) return undefined;
	return (await response.json()) as Record<string, unknown>;
}

test("(a) the catalog lists each rendition with its size, bitrate, codec and frame rate", async () => {
	try {
		type Rendition = {
			codec?: string;
			codedWidth?: number;
			codedHeight?: number;
			bitrate?: number;
			framerate?: number;
		};
		type Section = { renditions?: Record<string, Rendition> };
		// The video section is published once every encoder has its first keyframe out.
		const catalog = await waitFor("a catalog with both video renditions and audio", 10000, async () => {
			const c = (await fetchCatalog()) as { video?: Section; audio?: Section } | undefined;
			const videos = Object.keys(c?.video?.renditions ?? {}).length;
			return c && videos >= EXPECTED.length && c.audio ? c : undefined;
		});
		process.stdout.write(`# catalog: ${JSON.stringify(catalog)}\n`);
		const video = catalog.video?.renditions ?? {};
		assert.deepEqual(
			Object.keys(video),
			EXPECTED.map((e) => e.name),
		);
		for (const { name, width, height, bitrate } of EXPECTED) {
			const r = video[name];
			assert.deepEqual([r?.codedWidth, r?.codedHeight, r?.bitrate], [width, height, bitrate], name);
			assert.match(r?.codec ?? "", /^(avc3\.|vp8$|vp09\.)/, name);
			assert.ok((r?.framerate ?? 0) > 0, `${name} framerate ${r?.framerate}`);
		}
		// Track names as the Rust publisher gives them: one counter over video, then audio.
		assert.deepEqual(Object.keys(catalog.audio?.renditions ?? {}), ["audio2"]);

		// The publisher's own view: live, no error, the first rendition's size.
		const stats = await waitFor("the publisher encoding", 5000, async () => {
			const s = await publishStats(publisher);
			return s && s.framesEncoded > 30 ? s : undefined;
		});
		assert.equal(stats.status, "live");
		assert.equal(stats.error, undefined);
		assert.deepEqual([stats.width, stats.height], [640, 360]);
		const captured = await publisher.evaluate(() => {
			const el = document.querySelector("hang-publish") as (HTMLElement & { stream?: MediaStream }) | null;
			const s = el?.stream?.getVideoTracks()[0]?.getSettings();
			return `${s?.width}x${s?.height}@${s?.frameRate}`;
		});
		process.stdout.write(`# captured ${captured}, publisher stats ${JSON.stringify(stats)}\n`);
	} catch (err) {
		fail(err);
	}
});

/** `ffprobe -show_entries entries` of stream `selector` (e.g. `v:0`) of `file`, as CSV lines. */
async function probe(file: string, selector: string, entries: string): Promise<string> {
	const args = ["-v", "error", "-select_streams", selector, "-show_entries", entries, "-of", "csv=p=0", file];
	const { stdout } = await promisify(execFile)("ffprobe", args);
	return stdout;
}

/** Every video packet of fMP4 stream `selector`: [pts in seconds (3 decimals), keyframe]. */
async function packets(file: string, selector: string): Promise<[string, boolean][]> {
	const stdout = await probe(file, selector, "packet=pts_time,flags");
	return stdout.split("\n").flatMap((line): [string, boolean][] => {
		const [pts, flags] = line.split(",");
		return pts && flags ? [[Number(pts).toFixed(3), flags.startsWith("K")]] : [];
	});
}

/** The coded size of stream `selector`: "WIDTH,HEIGHT". */
async function streamSize(file: string, selector: string): Promise<string> {
	return (await probe(file, selector, "stream=width,height")).trim();
}

test("(b) keyframes fall on the same timestamps in both renditions (hang subscribe → fMP4 → ffprobe)", async () => {
	const file = join(stack.tempDir(), "simulcast.mp4");
	const out = openSync(file, "w");
	let log = "";
	let subscriber: ChildProcess | undefined;
	try {
		// `hang subscribe` writes every track of the broadcast to one fMP4; a frame is marked a
		// keyframe there when it starts a group.
		subscriber = spawn(join(bin, "hang"), ["subscribe", "--url", stack.relayUrl, "--name", PATH], {
			stdio: ["ignore", out, "pipe"],
			env: { ...process.env, NO_COLOR: "1" },
		});
		subscriber.stderr?.on("data", (chunk: Buffer) => {
			log = (log + chunk.toString()).slice(-5000);
		});
		const exited = new Promise<void>((resolve) => subscriber?.once("exit", () => resolve()));
		// Three keyframes (groups of 2 s) in the small rendition: the subscriber may join the two
		// tracks one group apart, so at least two are then common to both.
		const keys = await waitFor("three keyframes in each rendition", 20000, async () => {
			if (subscriber?.exitCode !== null) throw new Error(`hang subscribe exited early:\n${log}`);
			const big = (await packets(file, "v:0").catch(() => [])).filter(([, key]) => key).map(([pts]) => pts);
			const small = (await packets(file, "v:1").catch(() => [])).filter(([, key]) => key).map(([pts]) => pts);
			return big.length >= 3 && small.length >= 3 ? { big, small } : undefined;
		});
		subscriber.kill("SIGTERM");
		await exited;
		process.stdout.write(`# keyframes at ${JSON.stringify(keys.big)} and ${JSON.stringify(keys.small)}\n`);
		const sizes = [await streamSize(file, "v:0"), await streamSize(file, "v:1")].sort();
		assert.deepEqual(sizes, ["320,180", "640,360"]);
		const common = keys.big.filter((pts) => keys.small.includes(pts));
		assert.ok(common.length >= 2, `keyframes ${JSON.stringify(keys)}`);
		// From the first keyframe both have on, every keyframe of one is a keyframe of the other.
		const from = common[0] ?? "";
		const after = (list: string[]) => list.filter((pts) => Number(pts) >= Number(from));
		const [big, small] = [after(keys.big), after(keys.small)];
		const shorter = Math.min(big.length, small.length);
		assert.deepEqual(big.slice(0, shorter), small.slice(0, shorter));
		// One group per keyframe interval (2 s, the attribute's default), not extra ones.
		for (let i = 1; i < big.length; i++) {
			const gap = Number(big[i]) - Number(big[i - 1]);
			assert.ok(gap >= 1.99 && gap < 3, `keyframes ${big[i - 1]} and ${big[i]}`);
		}
	} catch (err) {
		fail(err, [log]);
	} finally {
		if (subscriber && subscriber.exitCode === null && subscriber.signalCode === null) subscriber.kill("SIGKILL");
		closeSync(out);
	}
});

test("(c) a watch page pinned to each rendition decodes frames of its size", async () => {
	for (const { name, width, height } of EXPECTED) {
		const { context, console } = await stack.context();
		const page = await context.newPage();
		try {
			// A page from the relay (one made up by the test would not count as local and could not
			// reach the relay), holding one player pinned to the rendition from the start.
			await page.goto(`${stack.site}/health`);
			await page.addScriptTag({ url: "/hang-elements.js", type: "module" });
			await page.evaluate(
				({ url, path, rendition }) => {
					const watch = document.createElement("hang-watch");
					for (const [key, value] of Object.entries({ url, path, rendition, latency: "200", muted: "" })) {
						watch.setAttribute(key, value);
					}
					document.body.append(watch);
				},
				{ url: stack.relayUrl, path: PATH, rendition: name },
			);
			const s = await waitFor(`30 frames of ${name}`, 10000, async () => {
				const s = await watchStats<WatchStats>(page);
				return s && s.framesDecoded > 30 && s.rendition === name ? s : undefined;
			});
			assert.deepEqual([s.width, s.height], [width, height], name);
			const canvas = await page.evaluate(() => {
				const c = document.querySelector("hang-watch")?.shadowRoot?.querySelector("canvas");
				return c ? [c.width, c.height] : undefined;
			});
			assert.deepEqual(canvas, [width, height], `${name} canvas`);
			process.stdout.write(`# pinned ${name}: ${JSON.stringify(s)}\n`);
		} catch (err) {
			fail(err, console);
		} finally {
			await context.close();
		}
	}
});

test("(d) a bad renditions value is reported and nothing is published", async () => {
	const { context, console } = await stack.context();
	const page = await context.newPage();
	try {
		await page.goto(`${stack.site}/publish?path=e2e-bad.hang&source=camera&autostart&renditions=640x360@fast`);
		const s = await waitFor("the publisher's error", 5000, async () => {
			const s = await publishStats(page);
			return s?.status === "error" ? s : undefined;
		});
		assert.equal(s.error, 'renditions: "640x360@fast": expected WIDTHxHEIGHT@KBPS, e.g. 640x360@1200');
		const announced = await (await fetch(`http://127.0.0.1:${stack.port}/announced`)).text();
		assert.ok(!announced.split("\n").includes("anon/e2e-bad.hang"), announced);
	} catch (err) {
		fail(err, console);
	} finally {
		await context.close();
	}
});
