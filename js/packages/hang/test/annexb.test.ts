import assert from "node:assert/strict";
import { test } from "node:test";
import { annexBNalUnits } from "../src/annexb.ts";

const units = (bytes: number[]) => annexBNalUnits(new Uint8Array(bytes)).map((u) => [...u]);

test("3- and 4-byte start codes", () => {
	assert.deepEqual(units([0, 0, 1, 9, 0x10]), [[9, 0x10]]);
	assert.deepEqual(units([0, 0, 0, 1, 9, 0x10]), [[9, 0x10]]);
	assert.deepEqual(units([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xaa, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88]), [
		[0x67, 0x42, 0xc0, 0x1e, 0xaa],
		[0x68, 0xce],
		[0x65, 0x88],
	]);
});

test("trailing zeros are not part of a unit", () => {
	assert.deepEqual(units([0, 0, 1, 0x67, 1, 0, 0, 0, 0, 0, 1, 0x68, 0, 0]), [[0x67, 1], [0x68]]);
	// Zeros inside a unit (emulation prevention keeps them from forming a start code) stay.
	assert.deepEqual(units([0, 0, 1, 0x65, 0, 0, 3, 1, 7]), [[0x65, 0, 0, 3, 1, 7]]);
});

test("empty input and no start code have no units", () => {
	assert.deepEqual(units([]), []);
	assert.deepEqual(units([0x65, 1, 2, 3]), []);
	assert.deepEqual(units([0, 0]), []);
	assert.deepEqual(units([0, 1, 0x65]), []);
	assert.deepEqual(units([0, 0, 0, 0]), []);
});

test("back-to-back start codes give no empty units", () => {
	assert.deepEqual(units([0, 0, 1, 0, 0, 1, 9, 1]), [[9, 1]]);
	assert.deepEqual(units([0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 9]), [[9]]);
	assert.deepEqual(units([0, 0, 1]), []);
	assert.deepEqual(units([0, 0, 1, 0, 0, 1]), []);
	assert.deepEqual(units([0, 0, 1, 9, 0, 0, 1]), [[9]]);
});

test("bytes before the first start code are skipped; units are views, not copies", () => {
	const data = new Uint8Array([0x42, 0x43, 0, 0, 1, 9]);
	const [unit] = annexBNalUnits(data);
	assert.deepEqual([...(unit ?? [])], [9]);
	assert.equal(unit?.buffer, data.buffer);
});
