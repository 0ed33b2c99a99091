import assert from "node:assert/strict";
import { test } from "node:test";
import {
	ContainerError,
	decodeFrame,
	encodeFrame,
	MAX_VARINT,
	readVarint,
	varintLength,
	writeVarint,
} from "../src/container.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

test("spec vector §11.4: 1 000 000 µs + Annex-B bytes", () => {
	const wire = Uint8Array.from(Buffer.from("800f4240000000016588", "hex"));
	const { timestamp, payload } = decodeFrame(wire);
	assert.equal(timestamp, 1_000_000);
	assert.deepEqual([...payload], [0, 0, 0, 1, 0x65, 0x88]);
	assert.equal(hex(encodeFrame(timestamp, payload)), "800f4240000000016588");
});

test("RFC 9000 varint examples", () => {
	const cases: [string, number][] = [
		// 151 288 809 941 952 652 exceeds 2^53: JS numbers hold it rounded, as readVarint does.
		["c2197c5eff14e88c", Number(151288809941952652n)],
		["9d7f3e7d", 494878333],
		["7bbd", 15293],
		["25", 37],
		["4025", 37],
	];
	for (const [wire, value] of cases) {
		const [v, end] = readVarint(Uint8Array.from(Buffer.from(wire, "hex")));
		assert.equal(v, value, wire);
		assert.equal(end, wire.length / 2);
	}
	for (const [wire, value] of cases.slice(1, 4)) {
		const buf = new Uint8Array(varintLength(value));
		writeVarint(buf, 0, value);
		assert.equal(hex(buf), wire);
	}
});

test("round trip at every length boundary", () => {
	const values = [0, 1, 63, 64, 16383, 16384, 2 ** 30 - 1, 2 ** 30, 2 ** 32, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER];
	const payload = new Uint8Array([9, 8, 7]);
	for (const ts of values) {
		const wire = encodeFrame(ts, payload);
		assert.equal(wire.byteLength, varintLength(ts) + 3);
		const frame = decodeFrame(wire);
		assert.equal(frame.timestamp, ts);
		assert.deepEqual([...frame.payload], [9, 8, 7]);
	}
	assert.equal(decodeFrame(encodeFrame(5, new Uint8Array())).payload.byteLength, 0);
});

test("decodes from a subarray (non-zero byteOffset)", () => {
	const outer = new Uint8Array(10);
	outer.set(encodeFrame(70000, new Uint8Array([1, 2])), 3);
	const frame = decodeFrame(outer.subarray(3, 3 + 4 + 2));
	assert.equal(frame.timestamp, 70000);
	assert.deepEqual([...frame.payload], [1, 2]);
});

test("truncated frames and bad timestamps throw ContainerError", () => {
	assert.throws(() => decodeFrame(new Uint8Array()), ContainerError);
	assert.throws(() => decodeFrame(new Uint8Array([0x80, 0x0f])), ContainerError);
	assert.throws(() => decodeFrame(new Uint8Array([0xc0, 0, 0])), ContainerError);
	assert.throws(() => encodeFrame(-1, new Uint8Array()), ContainerError);
	assert.throws(() => encodeFrame(1.5, new Uint8Array()), ContainerError);
	assert.throws(() => encodeFrame(MAX_VARINT * 2, new Uint8Array()), ContainerError);
});
