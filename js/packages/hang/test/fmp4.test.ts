/**
 * The fMP4 demuxer on real ffmpeg output (test/fixtures, made by test/fixtures/make.sh): each
 * fixture is one single-track CMAF file, split here as the reference publisher splits it: the
 * init segment (everything before the first `moof`) and one moq-lite frame per `moof`+`mdat`.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { bytesToHex } from "../src/catalog.ts";
import { base64ToBytes, Fmp4Error, parseFragment, parseInit, pickTrack } from "../src/fmp4.ts";
import { playableAudio, playableVideo } from "../src/watch/unpack.ts";

/** The init segment and the fragments of a fixture. */
function fixture(name: string): { init: Uint8Array; fragments: Uint8Array[] } {
	const file = new Uint8Array(readFileSync(new URL(`fixtures/${name}`, import.meta.url)));
	const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
	const tops: { type: string; start: number; end: number }[] = [];
	for (let o = 0; o < file.byteLength; ) {
		const size = v.getUint32(o);
		tops.push({ type: String.fromCharCode(...file.subarray(o + 4, o + 8)), start: o, end: o + size });
		o += size;
	}
	const firstMoof = tops.find((b) => b.type === "moof")?.start ?? file.byteLength;
	const fragments = tops
		.filter((b) => b.type === "moof")
		.map((moof) => {
			const mdat = tops.find((b) => b.start === moof.end && b.type === "mdat");
			return file.subarray(moof.start, mdat?.end ?? moof.end);
		});
	return { init: file.subarray(0, firstMoof), fragments };
}

const us = (units: number, timescale: number) => Math.round((units * 1_000_000) / timescale);

test("H.264 with B-frames: avcC, size, three samples of one fragment in decode order", () => {
	const { init, fragments } = fixture("h264.mp4");
	const track = pickTrack(parseInit(init), "vide");
	assert.equal(track.entry, "avc1");
	assert.equal(track.handler, "vide");
	assert.equal(track.timescale, 15360);
	assert.deepEqual([track.codedWidth, track.codedHeight], [96, 64]);
	assert.equal(track.description?.[0], 1, "avcC configurationVersion");
	assert.equal(fragments.length, 1);
	const samples = parseFragment(fragments[0] as Uint8Array, track);
	assert.deepEqual(
		samples.map((s) => [s.timestamp, s.duration, s.keyframe, s.payload.byteLength]),
		[
			[us(0, 15360), us(512, 15360), true, 3055],
			[us(1024, 15360), us(512, 15360), false, 536],
			[us(512, 15360), us(512, 15360), false, 212],
		],
	);
	// AVCC: each sample is whole length-prefixed NAL units.
	for (const { payload } of samples) {
		const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
		let o = 0;
		while (o < payload.byteLength) o += 4 + v.getUint32(o);
		assert.equal(o, payload.byteLength);
	}
});

test("H.265, AV1 and VP9: configuration boxes and sample times", () => {
	for (const [name, entry, box] of [
		["h265.mp4", "hvc1", 0x01],
		["av1.mp4", "av01", 0x81],
		["vp9.mp4", "vp09", undefined],
	] as const) {
		const { init, fragments } = fixture(name);
		const track = pickTrack(parseInit(init), "vide");
		assert.equal(track.entry, entry, name);
		assert.deepEqual([track.codedWidth, track.codedHeight], [96, 64], name);
		assert.equal(track.description?.[0], box, `${name} description`);
		const samples = fragments.flatMap((f) => parseFragment(f, track));
		assert.deepEqual(
			samples.map((s) => [s.timestamp, s.keyframe]),
			[
				[0, true],
				[us(512, 15360), false],
			],
			name,
		);
	}
});

test("AAC: the esds AudioSpecificConfig, four 1024-sample frames in one fragment", () => {
	const { init, fragments } = fixture("aac.mp4");
	const track = pickTrack(parseInit(init), "soun");
	assert.equal(track.entry, "mp4a");
	assert.deepEqual([track.sampleRate, track.numberOfChannels, track.timescale], [48000, 2, 48000]);
	assert.equal(bytesToHex(track.description ?? new Uint8Array()), "119056e500");
	const samples = fragments.flatMap((f) => parseFragment(f, track));
	assert.deepEqual(
		samples.map((s) => [s.timestamp, s.payload.byteLength, s.keyframe]),
		[
			[0, 86, true],
			[us(1024, 48000), 124, true],
			[us(2048, 48000), 93, true],
			[us(3072, 48000), 65, true],
		],
	);
});

test("Opus: dOps becomes the OpusHead WebCodecs takes", () => {
	const { init, fragments } = fixture("opus.mp4");
	const track = pickTrack(parseInit(init), "soun");
	assert.equal(track.entry, "Opus");
	// "OpusHead", version 1, 1 channel, pre-skip 312, 48 000 Hz, gain 0, family 0 (as the reference's catalog).
	assert.equal(bytesToHex(track.description ?? new Uint8Array()), "4f707573486561640101380180bb0000000000");
	assert.deepEqual([track.sampleRate, track.numberOfChannels], [48000, 1]);
	const samples = fragments.flatMap((f) => parseFragment(f, track));
	assert.deepEqual(
		samples.map((s) => [s.timestamp, s.duration, s.payload.byteLength]),
		[
			[0, 20_000, 89],
			[20_000, 20_000, 62],
			[40_000, 20_000, 62],
			[60_000, 6_500, 54], // the last frame trimmed to the 60 ms asked for
		],
	);
});

test("a fragment of another track yields no samples", () => {
	const { init } = fixture("h264.mp4");
	const track = { ...pickTrack(parseInit(init), "vide"), trackId: 99 };
	assert.deepEqual(parseFragment(fixture("h264.mp4").fragments[0] as Uint8Array, track), []);
});

test("cut at every offset: an init or fragment either parses or throws Fmp4Error", () => {
	for (const name of ["h264.mp4", "opus.mp4", "aac.mp4"]) {
		const { init, fragments } = fixture(name);
		const track = parseInit(init).tracks[0];
		assert.ok(track);
		for (let cut = 0; cut < init.byteLength; cut++) {
			assert.throws(() => parseInit(init.subarray(0, cut)), Fmp4Error, `${name} init cut at ${cut}`);
		}
		const fragment = fragments[0] as Uint8Array;
		for (let cut = 0; cut < fragment.byteLength; cut++) {
			assert.throws(() => parseFragment(fragment.subarray(0, cut), track), Fmp4Error, `${name} fragment cut at ${cut}`);
		}
	}
});

test("absolute data offsets and hostile counts are refused", () => {
	const { init, fragments } = fixture("h264.mp4");
	const track = pickTrack(parseInit(init), "vide");
	const fragment = (fragments[0] as Uint8Array).slice();
	const v = new DataView(fragment.buffer);
	// moof(8) mfhd(16) traf(8) tfhd: version/flags at 32.
	assert.equal(String.fromCharCode(...fragment.subarray(36, 40)), "tfhd");
	const flags = v.getUint32(40);
	v.setUint32(40, flags | 0x01);
	assert.throws(() => parseFragment(fragment, track), /absolute data offsets/);
	v.setUint32(40, flags);
	const trun = fragment.findIndex((_, i) => String.fromCharCode(...fragment.subarray(i, i + 4)) === "trun");
	v.setUint32(trun + 8, 0xffff_ffff); // sample_count
	assert.throws(() => parseFragment(fragment, track), Fmp4Error);
});

test("the catalog's cmaf container: the init's description wins, sizes fill in", () => {
	const h264 = fixture("h264.mp4");
	const base64 = Buffer.from(h264.init).toString("base64");
	assert.deepEqual(base64ToBytes(base64), h264.init);
	const video = playableVideo({ codec: "avc1.64000b", description: "00", container: { kind: "cmaf", init: base64 } });
	assert.equal(video.config.description?.slice(0, 2), "01");
	assert.deepEqual([video.config.codedWidth, video.config.codedHeight], [96, 64]);
	assert.equal(video.unpack(h264.fragments[0] as Uint8Array).length, 3);

	const vp9 = fixture("vp9.mp4");
	const vp9Config = playableVideo({
		codec: "vp09.00.10.08",
		container: { kind: "cmaf", init: Buffer.from(vp9.init).toString("base64") },
	});
	assert.equal(vp9Config.config.description, undefined, "VP9 takes no description");

	const opus = fixture("opus.mp4");
	const audio = playableAudio({
		codec: "opus",
		sampleRate: 48000,
		numberOfChannels: 1,
		container: { kind: "cmaf", init: Buffer.from(opus.init).toString("base64") },
	});
	assert.ok(audio.config.description?.startsWith("4f707573"));
	assert.equal(audio.unpack(opus.fragments[1] as Uint8Array)[0]?.timestamp, 20_000);

	// Legacy renditions pass through; a cmaf one with a bad init throws (the player skips it).
	const legacy = playableVideo({ codec: "vp8" });
	assert.deepEqual(legacy.unpack(Uint8Array.of(0x05, 0xaa))[0]?.timestamp, 5);
	assert.throws(() => playableVideo({ codec: "vp8", container: { kind: "cmaf", init: "AAAACGZyZWU=" } }), Fmp4Error);
	assert.throws(() => playableVideo({ codec: "vp8", container: { kind: "cmaf", init: "%%" } }), Fmp4Error);
});
