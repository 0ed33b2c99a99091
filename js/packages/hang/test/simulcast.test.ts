/**
 * The video publisher's simulcast logic, with WebCodecs replaced by fakes: one encoder per
 * rendition at its size and bitrate, keyframes forced on the same frames in all, groups starting
 * at the same timestamps, one catalog update listing every rendition, frames skipped for all when
 * one encoder falls behind, and the centred crop to a rendition's aspect ratio.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import type { TrackProducer } from "@moqx/lite";
import type { VideoConfig } from "../src/catalog.ts";
import { decodeFrame } from "../src/container.ts";
import { VideoPublisher, type VideoTarget } from "../src/publish/video.ts";

type Rect = { x: number; y: number; width: number; height: number };

/** A `VideoFrame` stand-in: a size, a timestamp, a visible rectangle. */
class FakeFrame {
	readonly timestamp: number;
	readonly visibleRect: Rect;
	closed = false;
	constructor(source: FakeFrame | { width: number; height: number; timestamp: number }, init?: { visibleRect: Rect }) {
		this.timestamp = source.timestamp;
		this.visibleRect =
			init?.visibleRect ??
			(source instanceof FakeFrame ? source.visibleRect : { x: 0, y: 0, width: source.width, height: source.height });
	}
	get displayWidth(): number {
		return this.visibleRect.width;
	}
	get displayHeight(): number {
		return this.visibleRect.height;
	}
	close(): void {
		this.closed = true;
	}
}

/** An Annex-B access unit with an SPS (profile 42, constraints c0, level 1e), as a keyframe is. */
const KEY = new Uint8Array([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0, 0, 0, 1, 0x65, 0x88]);
const DELTA = new Uint8Array([0, 0, 0, 1, 0x41, 0x9a]);

/**
 * A `VideoEncoder` stand-in: records what it is asked, answers in order when drained (at once
 * unless `hold`), a keyframe when asked or at a timestamp in `ownKeys`.
 */
class FakeEncoder {
	static all: FakeEncoder[] = [];
	static ownKeys = new Set<number>();
	state = "unconfigured";
	config: VideoEncoderConfig | undefined;
	hold = false;
	encoded: { timestamp: number; keyFrame: boolean; rect: Rect }[] = [];
	#pending: { timestamp: number; key: boolean }[] = [];
	#output: (chunk: unknown) => void;

	static async isConfigSupported(config: VideoEncoderConfig) {
		return { supported: config.codec.startsWith("avc1.") };
	}

	constructor(init: { output: (chunk: unknown) => void }) {
		this.#output = init.output;
		FakeEncoder.all.push(this);
	}

	get encodeQueueSize(): number {
		return this.#pending.length;
	}

	configure(config: VideoEncoderConfig): void {
		this.config = config;
		this.state = "configured";
	}

	encode(frame: FakeFrame, options: { keyFrame: boolean }): void {
		this.encoded.push({ timestamp: frame.timestamp, keyFrame: options.keyFrame, rect: { ...frame.visibleRect } });
		this.#pending.push({
			timestamp: frame.timestamp,
			key: options.keyFrame || FakeEncoder.ownKeys.has(frame.timestamp),
		});
		if (!this.hold) this.drain();
	}

	drain(): void {
		for (const { timestamp, key } of this.#pending.splice(0)) {
			const data = key ? KEY : DELTA;
			this.#output({
				type: key ? "key" : "delta",
				timestamp,
				byteLength: data.byteLength,
				copyTo: (dest: Uint8Array) => dest.set(data),
			});
		}
	}

	async flush(): Promise<void> {
		this.drain();
	}

	close(): void {
		this.state = "closed";
	}
}

/** A track that records its groups: the media timestamps of each group's frames. */
function recordingTrack(): { track: TrackProducer; groups: number[][] } {
	const groups: number[][] = [];
	const track = {
		appendGroup() {
			const frames: number[] = [];
			groups.push(frames);
			return {
				writeFrame: (payload: Uint8Array) => frames.push(decodeFrame(payload).timestamp),
				close() {},
			};
		},
	};
	return { track: track as unknown as TrackProducer, groups };
}

const globals = globalThis as unknown as Record<string, unknown>;
const saved = { VideoEncoder: globals.VideoEncoder, VideoFrame: globals.VideoFrame };

beforeEach(() => {
	FakeEncoder.all = [];
	FakeEncoder.ownKeys = new Set();
	globals.VideoEncoder = FakeEncoder;
	globals.VideoFrame = FakeFrame;
});

afterEach(() => {
	globals.VideoEncoder = saved.VideoEncoder;
	globals.VideoFrame = saved.VideoFrame;
});

/** `count` frames of `width`×`height`, 50 ms apart (20 fps) from timestamp 0 (µs). */
function frames(count: number, width = 640, height = 360): FakeFrame[] {
	return Array.from({ length: count }, (_, i) => new FakeFrame({ width, height, timestamp: i * 50_000 }));
}

/**
 * A stream that yields `list`, calling `before(i)` when frame `i` is asked for (no read-ahead: the
 * frame before it has been encoded).
 */
function stream(list: FakeFrame[], before: (i: number) => void = () => {}): ReadableStream<VideoFrame> {
	let i = 0;
	return new ReadableStream<VideoFrame>(
		{
			pull(controller) {
				before(i);
				const frame = list[i++];
				if (frame) controller.enqueue(frame as unknown as VideoFrame);
				else controller.close();
			},
		},
		{ highWaterMark: 0 },
	);
}

/** A publisher of these renditions (undefined: follow the captured size) onto recording tracks. */
function publisher(renditions: (VideoTarget["rendition"] | undefined)[]) {
	const recorded = renditions.map(() => recordingTrack());
	const catalogs: Record<string, VideoConfig>[] = [];
	const targets = renditions.map((rendition, i) => ({
		name: `video${i}`,
		track: recorded[i]?.track as TrackProducer,
		rendition,
	}));
	const video = new VideoPublisher(targets, {
		keyframeIntervalMs: 2000,
		framerate: 20,
		now: () => 5_000_000,
		onConfig: (configs) => catalogs.push(structuredClone(configs)),
		onChunk: () => {},
	});
	return { video, groups: recorded.map((r) => r.groups), catalogs };
}

const SIMULCAST = [
	{ width: 640, height: 360, bitrate: 1_000_000 },
	{ width: 320, height: 180, bitrate: 300_000 },
];

test("one encoder per rendition, keyframes forced on the same frames, groups at the same timestamps", async () => {
	const { video, groups, catalogs } = publisher(SIMULCAST);
	await video.run(stream(frames(130))); // 6.5 s

	assert.deepEqual(
		FakeEncoder.all.map((e) => [e.config?.width, e.config?.height, e.config?.bitrate, e.config?.framerate]),
		[
			[640, 360, 1_000_000, 20],
			[320, 180, 300_000, 20],
		],
	);
	const keys = FakeEncoder.all.map((e) => e.encoded.filter((f) => f.keyFrame).map((f) => f.timestamp));
	assert.deepEqual(keys[0], [0, 2_000_000, 4_000_000, 6_000_000]);
	assert.deepEqual(keys[1], keys[0]);
	// Media time = frame timestamp + (now at the first frame − its timestamp).
	const starts = groups.map((track) => track.map((g) => g[0]));
	assert.deepEqual(starts[0], [5_000_000, 7_000_000, 9_000_000, 11_000_000]);
	assert.deepEqual(starts[1], starts[0]);
	assert.deepEqual(
		groups.map((track) => track.map((g) => g.length)),
		[
			[40, 40, 40, 10],
			[40, 40, 40, 10],
		],
	);
	// One catalog update, once both encoders had their first keyframe out, listing both.
	assert.equal(catalogs.length, 1);
	assert.deepEqual(catalogs[0], {
		video0: {
			codec: "avc3.42c01e",
			codedWidth: 640,
			codedHeight: 360,
			bitrate: 1_000_000,
			framerate: 20,
			optimizeForLatency: true,
			container: { kind: "legacy" },
		},
		video1: {
			codec: "avc3.42c01e",
			codedWidth: 320,
			codedHeight: 180,
			bitrate: 300_000,
			framerate: 20,
			optimizeForLatency: true,
			container: { kind: "legacy" },
		},
	});
	assert.deepEqual([video.width, video.height, video.framesEncoded, video.framesSkipped], [640, 360, 130, 0]);
});

test("a keyframe an encoder makes on its own stays inside the group: groups stay aligned", async () => {
	FakeEncoder.ownKeys.add(500_000);
	const { video, groups } = publisher(SIMULCAST);
	await video.run(stream(frames(50)));
	assert.deepEqual(
		groups.map((track) => track.map((g) => g.length)),
		[
			[40, 10],
			[40, 10],
		],
	);
});

test("an encoder that falls behind holds back every rendition; the keyframe comes on the next frame", async () => {
	const { video, groups } = publisher(SIMULCAST);
	const slow = () => FakeEncoder.all[1] as FakeEncoder;
	// Frames 36..39 queue up in the small rendition's encoder; 40..42 (40 due as the 2 s
	// keyframe) find it behind and are skipped by both; 43 is then the keyframe in both.
	await video.run(
		stream(frames(60), (i) => {
			if (i === 36) slow().hold = true;
			if (i === 43) {
				slow().hold = false;
				slow().drain();
			}
		}),
	);
	assert.equal(video.framesSkipped, 3);
	const encoded = FakeEncoder.all.map((e) => e.encoded.map((f) => f.timestamp));
	assert.deepEqual(encoded[1], encoded[0]);
	assert.equal(encoded[0]?.length, 57);
	assert.ok(!encoded[0]?.includes(40 * 50_000));
	const keys = FakeEncoder.all.map((e) => e.encoded.filter((f) => f.keyFrame).map((f) => f.timestamp));
	assert.deepEqual(keys, [
		[0, 43 * 50_000],
		[0, 43 * 50_000],
	]);
	assert.deepEqual(
		groups.map((track) => track.map((g) => g[0])),
		[
			[5_000_000, 7_150_000],
			[5_000_000, 7_150_000],
		],
	);
});

test("a frame of another aspect ratio is cropped, centred, to the rendition's; the same one is not", async () => {
	const { video } = publisher([
		{ width: 320, height: 180, bitrate: 300_000 },
		{ width: 240, height: 240, bitrate: 200_000 },
		{ width: 640, height: 480, bitrate: 800_000 },
	]);
	await video.run(stream(frames(2, 640, 480)));
	const rects = FakeEncoder.all.map((e) => e.encoded[0]?.rect);
	assert.deepEqual(rects, [
		{ x: 0, y: 60, width: 640, height: 360 },
		{ x: 80, y: 0, width: 480, height: 480 },
		{ x: 0, y: 0, width: 640, height: 480 },
	]);
});

test("without renditions: one encoder at the captured size, every keyframe starts a group (as before)", async () => {
	FakeEncoder.ownKeys.add(500_000);
	const { video, groups, catalogs } = publisher([undefined]);
	const list = [...frames(20, 1280, 720), ...frames(30, 641, 480).slice(20)];
	await video.run(stream(list));
	// 1280x720 at the default bitrate; then 640x480 (even) from frame 20, a new encoder and a keyframe.
	assert.deepEqual(
		FakeEncoder.all.map((e) => [e.config?.width, e.config?.height, e.config?.bitrate]),
		[
			[1280, 720, 1_474_560],
			[640, 480, 491_520],
		],
	);
	assert.deepEqual(
		groups[0]?.map((g) => g.length),
		[10, 10, 10],
	);
	assert.deepEqual(
		catalogs.map((c) => [c.video0?.codedWidth, c.video0?.codedHeight]),
		[
			[1280, 720],
			[640, 480],
		],
	);
});
