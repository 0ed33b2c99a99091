/**
 * Browser end-to-end with the GStreamer plugin as the publisher: gst-launch-1.0 runs
 * `videotestsrc ! x264enc ! h264parse ! hangsink` plus `audiotestsrc ! opusenc` into the same
 * hangsink (the plugin from MOQ_BIN_DIR, which `cargo build -p hang-gst` fills), through our
 * relay; the watch page plays it: >60 frames within 5 s, pixels, audio, latency from the
 * catalog clock that hangsink anchors.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { bin, canvasVariety, Proc, results, Stack, waitFor, watchStats } from "./harness.ts";

interface WatchStats {
	framesDecoded: number;
	audioFramesDecoded: number;
	latencyMs: number | undefined;
	latencyFromClock: boolean;
	videoCodec: string | undefined;
	audioCodec: string | undefined;
	width: number | undefined;
	height: number | undefined;
}

const GST_LAUNCH = "/usr/bin/gst-launch-1.0";

let stack: Stack;
let gst: Proc;

before(async () => {
	stack = await Stack.start();
	const plugin = join(bin, "libgsthang.so");
	if (!existsSync(plugin)) throw new Error(`${plugin} is missing: cargo build -p hang-gst`);
	// A directory holding only this plugin, and a registry of our own (nothing left in $HOME).
	const dir = stack.tempDir();
	mkdirSync(join(dir, "plugins"));
	copyFileSync(plugin, join(dir, "plugins", "libgsthang.so"));
	const url = stack.relayUrl;
	gst = new Proc(
		"gst-launch-1.0",
		GST_LAUNCH,
		[
			"-e",
			..."videotestsrc is-live=true pattern=colors horizontal-speed=4 ! video/x-raw,width=640,height=360,framerate=30/1".split(
				" ",
			),
			..."! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=1500 ! h264parse".split(" "),
			..."! hangsink name=sink broadcast=gst.hang".split(" "),
			`url=${url}`,
			..."audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! opusenc ! sink.".split(" "),
		],
		{ GST_PLUGIN_PATH: join(dir, "plugins"), GST_REGISTRY: join(dir, "registry.bin") },
	);
	await stack.waitAnnounced("anon/gst.hang", true, () => gst.log);
});

after(async () => {
	await gst?.kill("SIGINT");
	await stack?.stop();
});

test("the watch page plays a broadcast published by GStreamer's hangsink (H.264 + Opus)", async () => {
	const { context, console } = await stack.context();
	const page = await context.newPage();
	try {
		const start = Date.now();
		await page.goto(`${stack.site}/?path=gst.hang`);
		const played = await waitFor("more than 60 decoded frames", 5000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.framesDecoded > 60 ? s : undefined;
		});
		const elapsed = Date.now() - start;
		assert.equal(played.videoCodec?.slice(0, 4), "avc3");
		assert.deepEqual([played.width, played.height], [640, 360]);
		const variety = await canvasVariety(page);
		assert.ok(variety > 0.01, `canvas looks blank (colour variety ${variety})`);
		const audio = await waitFor("decoded audio", 5000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.audioFramesDecoded > 20 ? s : undefined;
		});
		assert.equal(audio.audioCodec, "opus");
		assert.ok(audio.latencyFromClock, "latency measured from hangsink's catalog clock");
		assert.ok(audio.latencyMs !== undefined && audio.latencyMs < 1000, `latency ${audio.latencyMs} ms`);
		process.stdout.write(
			`# hangsink → relay → watch page: ${played.framesDecoded} frames ${elapsed} ms after load; ` +
				`colour variety ${variety.toFixed(3)}; audio frames ${audio.audioFramesDecoded}; latency ${audio.latencyMs} ms\n`,
		);
		mkdirSync(results, { recursive: true });
		await page.screenshot({ path: join(results, "gstreamer-hangsink.png") });
	} catch (err) {
		throw new Error(
			`${String(err)}\n--- page console ---\n${console.slice(-40).join("\n")}\n--- gst-launch ---\n${gst.log.slice(-3000)}\n--- relay ---\n${stack.relay.log.slice(-3000)}`,
			{ cause: err },
		);
	} finally {
		await context.close();
	}
});
