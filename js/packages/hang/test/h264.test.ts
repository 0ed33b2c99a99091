import assert from "node:assert/strict";
import { test } from "node:test";
import { avc3CodecFromAnnexB, baselineCodecFor, defaultBitrate } from "../src/publish/h264.ts";

test("the avc3 codec string of an Annex-B access unit", () => {
	const au = new Uint8Array([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xaa, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88]);
	assert.equal(avc3CodecFromAnnexB(au), "avc3.42c01e");
	assert.equal(avc3CodecFromAnnexB(new Uint8Array([0, 0, 1, 0x65, 0x88])), undefined);
});

test("baseline level by size and default bitrate", () => {
	assert.equal(baselineCodecFor(640, 360), "avc1.42e01e");
	assert.equal(baselineCodecFor(1280, 720), "avc1.42e01f");
	assert.equal(baselineCodecFor(1920, 1080), "avc1.42e028");
	assert.equal(baselineCodecFor(3840, 2160), "avc1.42e033");
	assert.equal(defaultBitrate(640, 480, 30), 737280);
	assert.equal(defaultBitrate(10, 10, 1), 200_000);
});
