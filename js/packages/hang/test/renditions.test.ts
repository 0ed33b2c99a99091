import assert from "node:assert/strict";
import { test } from "node:test";
import { checkRenditions, MAX_RENDITIONS, parseRenditions, RenditionError } from "../src/publish/renditions.ts";

test("parses the CLI's syntax, in order, kbit/s to bit/s", () => {
	assert.deepEqual(parseRenditions("640x360@1200,320x180@300"), [
		{ width: 640, height: 360, bitrate: 1_200_000 },
		{ width: 320, height: 180, bitrate: 300_000 },
	]);
	// One rendition; spaces around items; a size without bitrate takes the default for the size.
	assert.deepEqual(parseRenditions("1280x720@2500"), [{ width: 1280, height: 720, bitrate: 2_500_000 }]);
	assert.deepEqual(parseRenditions(" 320x180@300 , 160x90 "), [
		{ width: 320, height: 180, bitrate: 300_000 },
		{ width: 160, height: 90, bitrate: undefined },
	]);
});

test("accepts the limits themselves", () => {
	assert.deepEqual(parseRenditions("16x16@1,4096x4096@100000"), [
		{ width: 16, height: 16, bitrate: 1000 },
		{ width: 4096, height: 4096, bitrate: 100_000_000 },
	]);
	const eight = Array.from({ length: MAX_RENDITIONS }, (_, i) => `${320 + 2 * i}x180@300`).join(",");
	assert.equal(parseRenditions(eight).length, MAX_RENDITIONS);
});

test("refuses bad syntax, naming the item", () => {
	for (const bad of [
		"640",
		"640x",
		"x360",
		"640x360@",
		"640x360@abc",
		"640x360@1.5",
		"640x360@-5",
		"640X360@300",
		"640x360x2@300",
		"640x360@300@2",
		"640 x 360@300",
		"640x360@1200,",
		"640x360@1200,,320x180@300",
	]) {
		assert.throws(() => parseRenditions(bad), RenditionError, bad);
	}
	assert.throws(
		() => parseRenditions("640x360@1200,320x180@fast"),
		(e: Error) => e.message === '"320x180@fast": expected WIDTHxHEIGHT@KBPS, e.g. 640x360@1200',
	);
	assert.throws(() => parseRenditions(""), /no renditions: expected WIDTHxHEIGHT@KBPS/);
	assert.throws(() => parseRenditions("  "), /no renditions/);
});

test("refuses sizes, bitrates and counts out of bounds", () => {
	const cases: [string, RegExp][] = [
		["8x8@100", /"8x8@100": sides must be 16 to 4096 pixels/],
		["640x14@100", /sides must be 16 to 4096 pixels/],
		["4098x2304@100", /sides must be 16 to 4096 pixels/],
		["641x360@100", /"641x360@100": sides must be even \(4:2:0\)/],
		["640x360@0", /"640x360@0": bitrate must be 1 to 100000 kbit\/s/],
		["640x360@100001", /bitrate must be 1 to 100000 kbit\/s/],
		["640x360@1200000000", /bitrate must be 1 to 100000 kbit\/s/],
		["99999999999999999999999x360@100", /sides must be 16 to 4096 pixels/],
	];
	for (const [text, message] of cases) assert.throws(() => parseRenditions(text), message, text);
	const nine = Array.from({ length: MAX_RENDITIONS + 1 }, () => "320x180@300").join(",");
	assert.throws(() => parseRenditions(nine), /at most 8 renditions, got 9/);
});

test("checks lists built in code with the same limits", () => {
	checkRenditions([{ width: 640, height: 360, bitrate: 1_500 }]);
	assert.throws(() => checkRenditions([]), /no renditions/);
	assert.throws(() => checkRenditions([{ width: 640.5, height: 360, bitrate: undefined }]), /"640.5x360": sides/);
	assert.throws(() => checkRenditions([{ width: 640, height: 360, bitrate: 500 }]), /bitrate must be/);
	assert.throws(() => checkRenditions([{ width: 640, height: 360, bitrate: Number.NaN }]), /bitrate must be/);
});
