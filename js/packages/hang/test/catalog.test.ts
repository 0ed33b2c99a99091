import assert from "node:assert/strict";
import { test } from "node:test";
import {
	audioRenditions,
	bytesToHex,
	CatalogError,
	catalogClock,
	hexToBytes,
	parseCatalog,
	serializeCatalog,
	setCatalogClock,
	videoRenditions,
	wallNowUs,
} from "../src/catalog.ts";

/** The spec's example (§12.2), as the reference publishes Big Buck Bunny. */
const BBB = `{"video":{"renditions":{"video0":{"codec":"avc1.64001f","description":"0164001fffe1","codedWidth":1280,
 "codedHeight":720,"container":{"kind":"legacy"}}}},
 "audio":{"renditions":{"audio1":{"codec":"mp4a.40.2","sampleRate":44100,"numberOfChannels":2,
 "bitrate":283637,"container":{"kind":"legacy"}}}}}`;

test("parses the spec example and round-trips it", () => {
	const catalog = parseCatalog(new TextEncoder().encode(BBB));
	const video = catalog.video?.renditions.video0;
	assert.equal(video?.codec, "avc1.64001f");
	assert.equal(video?.codedWidth, 1280);
	assert.equal(video?.codedHeight, 720);
	assert.deepEqual(hexToBytes(video?.description ?? ""), new Uint8Array([0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1]));
	const audio = catalog.audio?.renditions.audio1;
	assert.deepEqual([audio?.sampleRate, audio?.numberOfChannels, audio?.bitrate], [44100, 2, 283637]);
	const again = JSON.parse(new TextDecoder().decode(serializeCatalog(catalog)));
	assert.deepEqual(again, JSON.parse(BBB));
});

test("parses what the Rust test pattern publishes", () => {
	const json = {
		video: { renditions: { video0: { codec: "avc3.42c01e", codedWidth: 640, codedHeight: 360, framerate: 30.0 } } },
		audio: { renditions: { audio1: { codec: "opus", sampleRate: 48000, numberOfChannels: 1, bitrate: 64000 } } },
		clock: { wall: 217972857457756, timescale: 1000000 },
	};
	const catalog = parseCatalog(JSON.stringify(json));
	assert.deepEqual(
		videoRenditions(catalog).map(([n]) => n),
		["video0"],
	);
	assert.deepEqual(
		audioRenditions(catalog).map(([n]) => n),
		["audio1"],
	);
	assert.equal(catalogClock(catalog), 217972857457756);
});

test("unknown keys survive a round trip at every level", () => {
	const json = {
		video: {
			renditions: {
				v: {
					codec: "vp8",
					container: { kind: "legacy" },
					futureField: [1, 2],
					timeline: { track: "v.timeline.z", timescale: 1000, x: 1 },
				},
			},
			priority: 1,
			display: { width: 1, height: 2, z: true },
		},
		audio: { renditions: { a: { codec: "opus", sampleRate: 48000, numberOfChannels: 2, extra: "x" } }, y: null },
		user: { name: "alice" },
		chat: { track: "chat" },
	};
	const catalog = parseCatalog(JSON.stringify(json));
	assert.deepEqual(JSON.parse(new TextDecoder().decode(serializeCatalog(catalog))), json);
});

test("renditions with unknown container kinds are skipped, the rest kept", () => {
	const catalog = parseCatalog(
		JSON.stringify({
			video: {
				renditions: {
					a: { codec: "vp8", container: { kind: "future" } },
					b: { codec: "vp8" },
					c: { codec: "vp8", container: { kind: "cmaf", init: "AAAA" } },
					d: { codec: "vp8", container: { kind: "cmaf" } },
					e: { codec: "vp8", container: { kind: "cmaf", init: 3 } },
				},
			},
		}),
	);
	// A cmaf rendition is playable with its init; without one it is skipped like an unknown kind.
	assert.deepEqual(
		videoRenditions(catalog).map(([n]) => n),
		["b", "c"],
	);
	assert.ok(catalog.video?.renditions.a, "kept in the document");
});

test("missing renditions map is tolerated", () => {
	const catalog = parseCatalog(`{"video":{},"audio":{"renditions":{}}}`);
	assert.deepEqual(videoRenditions(catalog), []);
	assert.deepEqual(catalog.video?.renditions, {});
});

test("bad catalogs are rejected with CatalogError", () => {
	const bad = [
		"not json",
		"{",
		"[]",
		"null",
		"42",
		`{"video":[]}`,
		`{"video":{"renditions":[]}}`,
		`{"video":{"renditions":{"v":{}}}}`,
		`{"video":{"renditions":{"v":{"codec":1}}}}`,
		`{"video":{"renditions":{"v":{"codec":"vp8","codedWidth":"640"}}}}`,
		`{"video":{"renditions":{"v":{"codec":"vp8","description":"xyz"}}}}`,
		`{"video":{"renditions":{"v":{"codec":"vp8","container":"legacy"}}}}`,
		`{"audio":{"renditions":{"a":{"codec":"opus","numberOfChannels":2}}}}`,
		`{"audio":{"renditions":{"a":{"codec":"opus","sampleRate":48000}}}}`,
		`{"clock":{"wall":"now"}}`,
	];
	for (const json of bad) assert.throws(() => parseCatalog(json), CatalogError, json);
	assert.throws(() => parseCatalog("x".repeat(1024 * 1024 + 1)), CatalogError);
});

test("clock: the reference's millisecond form and our microsecond form", () => {
	assert.equal(catalogClock(parseCatalog(`{"clock":{"wall":217972857457,"timescale":1000}}`)), 217972857457000);
	assert.equal(catalogClock(parseCatalog(`{"clock":{"wall":5}}`)), 5, "default timescale is µs");
	assert.equal(catalogClock(parseCatalog(`{"clock":{"wall":5,"timescale":0}}`)), undefined);
	assert.equal(catalogClock(parseCatalog(`{}`)), undefined);
	const catalog = {};
	setCatalogClock(catalog, 123.4);
	assert.deepEqual(catalog, { clock: { wall: 123, timescale: 1000000 } });
});

test("wall clock origin is 2020-01-01", () => {
	assert.equal(wallNowUs(Date.UTC(2020, 0, 1)), 0);
	assert.equal(wallNowUs(Date.UTC(2020, 0, 1, 0, 0, 1)), 1_000_000);
	assert.ok(wallNowUs() > 217_972_857_457_756);
});

test("hex helpers", () => {
	assert.equal(bytesToHex(new Uint8Array([0, 1, 0xab, 0xff])), "0001abff");
	assert.deepEqual(hexToBytes("0001ABff"), new Uint8Array([0, 1, 0xab, 0xff]));
	assert.throws(() => hexToBytes("abc"));
	assert.throws(() => hexToBytes("zz"));
});
