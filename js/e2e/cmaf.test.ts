/**
 * Browser end-to-end with the public reference publisher: `moq` 0.14.10 (`import fmp4`, installed by
 * scripts/install-peers.sh into $MOQ_PEERS_DIR, default ~/.cache/moq-interop) reads a live ffmpeg
 * fMP4 stream (testsrc2 + sine → H.264 + Opus, H.264 + AAC, VP9 + Opus, AV1 + Opus; 100 ms
 * fragments) and publishes it through our
 * relay with CMAF-container renditions; our watch page plays it: >60 video frames decoded
 * within 5 s of load, the canvas not blank, audio frames decoded.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
	canvasVariety,
	ReferenceRelay,
	type ReferenceVersion,
	results,
	Stack,
	waitFor,
	watchStats,
} from "./harness.ts";

const PEERS = process.env.MOQ_PEERS_DIR || join(homedir(), ".cache", "moq-interop");
const REFERENCE_MOQ = join(PEERS, "cli-0.14.10", "bin", "moq");

const H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"];
const VP9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-b:v", "1M"];
const AV1 = ["-c:v", "libsvtav1", "-preset", "12", "-b:v", "1M"];

/**
 * The cells, published in turn: ffmpeg video and audio encoders, the picture size, and the codec
 * strings the reference writes in the catalog (prefix for video). VP9 and AV1 are encoded small:
 * the machine runs the encoder, the reference publisher, the relay and Chromium at once.
 */
const CELLS = [
	{ path: "ref-h264-opus.hang", video: H264, size: [640, 360], codec: "avc1", audio: "libopus", audioCodec: "opus" },
	{ path: "ref-h264-aac.hang", video: H264, size: [640, 360], codec: "avc1", audio: "aac", audioCodec: "mp4a.40.2" },
	{ path: "ref-vp9-opus.hang", video: VP9, size: [320, 240], codec: "vp09", audio: "libopus", audioCodec: "opus" },
	{ path: "ref-av1-opus.hang", video: AV1, size: [320, 240], codec: "av01", audio: "libopus", audioCodec: "opus" },
];

interface WatchStats {
	framesDecoded: number;
	framesDropped: number;
	audioFramesDecoded: number;
	audioFramesLate: number;
	videoCodec: string | undefined;
	audioCodec: string | undefined;
	width: number | undefined;
	height: number | undefined;
}

/** ffmpeg piped into the reference `moq import fmp4`; both are killed by stop(). */
class ReferencePublisher {
	readonly ffmpeg: ChildProcess;
	readonly moq: ChildProcess;
	log = "";

	constructor(url: string, path: string, video: string[], size: number[], audioEncoder: string) {
		if (!existsSync(REFERENCE_MOQ)) throw new Error(`${REFERENCE_MOQ} is missing: run scripts/install-peers.sh`);
		const keep = (name: string) => (chunk: Buffer) => {
			this.log = `${this.log}[${name}] ${chunk.toString()}`.slice(-20_000);
		};
		this.ffmpeg = spawn(
			"ffmpeg",
			[
				...["-hide_banner", "-loglevel", "error", "-re"],
				...["-f", "lavfi", "-i", `testsrc2=size=${size.join("x")}:rate=30`],
				...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"],
				...[...video, "-g", "30", "-pix_fmt", "yuv420p"],
				...["-c:a", audioEncoder, "-b:a", "64k"],
				// A+V: 100 ms fragments (one per frame would repeat a tfdt, which the reference refuses).
				...["-f", "mp4", "-frag_duration", "100000", "-movflags", "cmaf+separate_moof+delay_moov+skip_trailer", "-"],
			],
			{ stdio: ["ignore", "pipe", "pipe"] },
		);
		this.moq = spawn(REFERENCE_MOQ, ["--connect", url, "import", "--broadcast", path, "fmp4"], {
			stdio: ["pipe", "pipe", "pipe"],
			env: { ...process.env, NO_COLOR: "1", MOQ_LOG_LEVEL: "warn" },
		});
		this.ffmpeg.stdout?.pipe(this.moq.stdin as NodeJS.WritableStream);
		this.moq.stdin?.on("error", () => {}); // EPIPE when moq exits first
		this.ffmpeg.stderr?.on("data", keep("ffmpeg"));
		this.moq.stdout?.on("data", keep("moq"));
		this.moq.stderr?.on("data", keep("moq"));
	}

	async stop(): Promise<void> {
		for (const child of [this.ffmpeg, this.moq]) {
			if (child.exitCode !== null || child.signalCode !== null) continue;
			const exited = new Promise((resolve) => child.once("exit", resolve));
			child.kill("SIGTERM");
			const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
			await exited;
			clearTimeout(timer);
		}
	}
}

let stack: Stack;
const publishers: ReferencePublisher[] = [];

before(async () => {
	stack = await Stack.start();
});

after(async () => {
	for (const p of publishers) await p.stop();
	await stack?.stop();
});

type Cell = (typeof CELLS)[number];

/**
 * Publish `cell` with the reference CLI to `publishUrl`, wait for `announced`, load the watch page
 * (through `relayUrl` when given: `?relay=`) and check it: >60 frames within 5 s, the picture,
 * audio, 3 s of steady playback.
 */
async function cmafCell(
	cell: Cell,
	name: string,
	publishUrl: string,
	announced: (publisher: ReferencePublisher) => Promise<void>,
	relayUrl?: string,
	relayLog: () => string = () => stack.relay.log,
): Promise<void> {
	const publisher = new ReferencePublisher(publishUrl, cell.path, cell.video, cell.size, cell.audio);
	publishers.push(publisher);
	await announced(publisher);
	const { context, console } = await stack.context();
	const page = await context.newPage();
	try {
		const start = Date.now();
		const relayParam = relayUrl ? `&relay=${encodeURIComponent(relayUrl)}` : "";
		await page.goto(`${stack.site}/?path=${cell.path}${relayParam}`);
		const played = await waitFor("more than 60 decoded frames", 5000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.framesDecoded > 60 ? s : undefined;
		});
		const elapsed = Date.now() - start;
		assert.equal(played.videoCodec?.slice(0, 4), cell.codec);
		const variety = await canvasVariety(page);
		assert.ok(variety > 0.01, `canvas looks blank (colour variety ${variety})`);
		const audioFrames = await waitFor("decoded audio", 5000, async () => {
			const s = await watchStats<WatchStats>(page);
			return s && s.audioFramesDecoded > 20 ? s.audioFramesDecoded : undefined;
		});
		// Steady state: what is decoded, dropped and late over the next 3 s.
		const s1 = await watchStats<WatchStats>(page);
		await page.waitForTimeout(3000);
		const final = await watchStats<WatchStats>(page);
		assert.ok(s1 && final);
		const steady = {
			framesDecoded: final.framesDecoded - s1.framesDecoded,
			framesDropped: final.framesDropped - s1.framesDropped,
			audioFramesDecoded: final.audioFramesDecoded - s1.audioFramesDecoded,
			audioFramesLate: final.audioFramesLate - s1.audioFramesLate,
		};
		assert.ok(steady.framesDecoded > 60, `only ${steady.framesDecoded} frames decoded in 3 s`);
		assert.ok(steady.audioFramesDecoded > 60, `only ${steady.audioFramesDecoded} audio frames decoded in 3 s`);
		assert.equal(final?.audioCodec, cell.audioCodec);
		assert.deepEqual([final?.width, final?.height], cell.size);
		process.stdout.write(
			`# ${name}: ${played.framesDecoded} frames decoded ${elapsed} ms after load; ` +
				`colour variety ${variety.toFixed(3)}; audio frames ${audioFrames}; next 3 s ${JSON.stringify(steady)}; ` +
				`stats ${JSON.stringify(final)}\n`,
		);
		mkdirSync(results, { recursive: true });
		await page.screenshot({ path: join(results, `cmaf-${name.replace(/[^a-z0-9.-]+/gi, "_")}.png`) });
	} catch (err) {
		throw new Error(
			`${String(err)}\n--- page console ---\n${console.slice(-40).join("\n")}\n--- publisher ---\n${publisher.log.slice(-3000)}\n--- relay ---\n${relayLog().slice(-3000)}`,
			{ cause: err },
		);
	} finally {
		await context.close();
		await publisher.stop();
	}
}

for (const cell of CELLS) {
	test(`the reference CLI's CMAF broadcast (${cell.codec} + ${cell.audioCodec}) plays through our relay`, async () => {
		await cmafCell(cell, `${cell.codec}-${cell.audioCodec}`, `http://127.0.0.1:${stack.port}/anon`, (publisher) =>
			stack.waitAnnounced(`anon/${cell.path}`, true, () => publisher.log),
		);
	});
}

// The same broadcast (H.264 + Opus) published to, and watched through, the reference relays.
for (const version of ["0.17.10", "0.10.25"] as const satisfies readonly ReferenceVersion[]) {
	test(`the reference CLI's CMAF broadcast (avc1 + opus) plays through reference moq-relay ${version}`, async () => {
		const cell = CELLS[0];
		assert.ok(cell);
		const relay = await ReferenceRelay.start(version);
		try {
			await cmafCell(
				cell,
				`avc1-opus-via-${version}`,
				relay.url,
				(publisher) => relay.waitAnnounced(cell.path, () => publisher.log),
				relay.url,
				() => relay.proc.log,
			);
		} finally {
			await relay.stop();
		}
	});
}
