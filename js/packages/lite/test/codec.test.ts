/** Codec: spec §11 byte examples, varint edges, limits, seeded round-trips, garbage, the stream Reader. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DecodeError, ErrorCode, Wire } from "../src/index.ts";
import { chunked, hex, rng, toHex } from "./helpers.ts";

type V = Wire.LiteVersion;

/** Decode all of `bytes` with `fn`, asserting it consumes everything. */
function decodeAll<T>(bytes: Uint8Array, fn: (c: Wire.Cursor) => T): T {
	const d = Wire.tryDecode(bytes, fn);
	assert.ok(d, "needs more bytes");
	assert.equal(d.size, bytes.length, "must consume everything");
	return d.value;
}

/** Assert `fn` rejects `bytes` as invalid (not "need more"), optionally with `code`. */
function invalid(bytes: Uint8Array, fn: (c: Wire.Cursor) => unknown, code?: number): void {
	assert.throws(
		() => Wire.tryDecode(bytes, fn),
		(err: unknown) => err instanceof DecodeError && !err.short && (code === undefined || err.code === code),
	);
}

/** Every strict prefix needs more. */
function allPrefixesShort(bytes: Uint8Array, fn: (c: Wire.Cursor) => unknown): void {
	for (let n = 0; n < bytes.length; n++)
		assert.equal(Wire.tryDecode(bytes.subarray(0, n), fn), undefined, `prefix ${n}`);
}

/** Stream type varint then one message. */
function typed<T>(type: number, fn: (c: Wire.Cursor) => T): (c: Wire.Cursor) => [number, T] {
	return (c) => {
		const t = c.varint();
		assert.equal(t, type, "stream type");
		return [t, fn(c)];
	};
}

describe("varint (RFC 9000 §16)", () => {
	const cases: [number, string][] = [
		[0, "00"],
		[37, "25"],
		[63, "3f"],
		[64, "4040"],
		[15293, "7bbd"],
		[16383, "7fff"],
		[16384, "80004000"],
		[494878333, "9d7f3e7d"],
		[2 ** 30 - 1, "bfffffff"],
		[2 ** 30, "c000000040000000"],
		[2 ** 32, "c000000100000000"],
		[Number.MAX_SAFE_INTEGER, "c01fffffffffffff"],
	];
	for (const [value, bytes] of cases) {
		it(`${value} ⇄ ${bytes}`, () => {
			assert.equal(toHex(Wire.encode((e) => e.varint(value))), bytes);
			assert.equal(
				decodeAll(hex(bytes), (c) => c.varint()),
				value,
			);
			allPrefixesShort(hex(bytes), (c) => c.varint());
		});
	}
	it("accepts non-minimal forms", () => {
		for (const b of ["4025", "80000025", "c000000000000025"])
			assert.equal(
				decodeAll(hex(b), (c) => c.varint()),
				37,
			);
	});
	it("rejects values above 2^53 − 1 with code 11 (RFC example 151288809941952652)", () => {
		invalid(hex("c2197c5eff14e88c"), (c) => c.varint(), ErrorCode.BoundsExceeded);
		invalid(hex("c020000000000000"), (c) => c.varint(), ErrorCode.BoundsExceeded);
	});
	it("refuses to encode negative, fractional or unsafe numbers", () => {
		for (const v of [-1, 1.5, 2 ** 53, Number.NaN]) assert.throws(() => Wire.encode((e) => e.varint(v)), RangeError);
	});
	it("zigzag maps signed to unsigned (spec §2)", () => {
		const pairs: [number, number][] = [
			[0, 0],
			[-1, 1],
			[1, 2],
			[-2, 3],
			[1_000_000, 2_000_000],
			[33_333, 66_666],
			[-(2 ** 52 - 1), 2 ** 53 - 3],
		];
		for (const [s, u] of pairs) {
			assert.equal(Wire.zigzagEncode(s), u);
			assert.equal(Wire.zigzagDecode(u), s);
		}
	});
});

describe("spec §11 byte examples", () => {
	it("§11.1 client SETUP with Probe, Path, Role, Origin", () => {
		const bytes = hex("01 19 04 01 01 01 02 0d 2f 61 6e 6f 6e 3f 6a 77 74 3d 61 62 63 03 01 02 05 01 2a");
		const setup: Wire.Setup = { probe: 1, path: "/anon?jwt=abc", role: 2, origin: 42 };
		assert.deepEqual(
			decodeAll(
				bytes,
				typed(1, (c) => Wire.decodeSetup(c, 5)),
			),
			[Wire.UniStream.Setup, setup],
		);
		assert.equal(
			toHex(
				Wire.encode((e) => {
					e.varint(Wire.UniStream.Setup);
					Wire.encodeSetup(e, setup, 5);
				}),
			),
			toHex(bytes),
		);
		allPrefixesShort(
			bytes,
			typed(1, (c) => Wire.decodeSetup(c, 5)),
		);
	});
	it("§11.1 server SETUP and the empty SETUP", () => {
		const server = hex("01 08 02 01 01 01 05 02 70 39");
		assert.deepEqual(
			decodeAll(
				server,
				typed(1, (c) => Wire.decodeSetup(c, 5)),
			)[1],
			{ probe: 1, origin: 12345 },
		);
		assert.equal(
			toHex(Wire.encode((e) => Wire.encodeSetup(e, { probe: 1, origin: 12345 }, 5))),
			"0802010101050270" + "39",
		);
		assert.deepEqual(
			decodeAll(
				hex("01 01 00"),
				typed(1, (c) => Wire.decodeSetup(c, 5)),
			)[1],
			{},
		);
		assert.equal(toHex(Wire.encode((e) => Wire.encodeSetup(e, {}, 5))), "0100");
	});
	it("SETUP: unknown ids ignored, duplicates and >64 params rejected", () => {
		assert.deepEqual(
			decodeAll(hex("07 02 09 01 ff 01 01 00"), (c) => Wire.decodeSetup(c, 5)),
			{ probe: 0 },
		);
		invalid(hex("07 02 01 01 01 01 01 02"), (c) => Wire.decodeSetup(c, 5), ErrorCode.Duplicate);
		invalid(hex("02 40 41"), (c) => Wire.decodeSetup(c, 5), ErrorCode.BoundsExceeded);
		invalid(hex("01 00"), (c) => Wire.decodeSetup(c, 4));
	});
	it("§11.2 discovery", () => {
		assert.deepEqual(
			decodeAll(
				hex("01 06 04 61 6e 6f 6e 2a"),
				typed(1, (c) => Wire.decodeAnnounceRequest(c, 5)),
			),
			[1, { prefix: "anon", excludeHop: 42 }],
		);
		assert.deepEqual(
			decodeAll(
				hex("01 05 04 61 6e 6f 6e"),
				typed(1, (c) => Wire.decodeAnnounceRequest(c, 3)),
			),
			[1, { prefix: "anon", excludeHop: 0 }],
		);
		assert.deepEqual(
			decodeAll(hex("03 70 39 01"), (c) => Wire.decodeAnnounceOk(c, 5)),
			{ hopId: 12345, activeCount: 1 },
		);
		assert.deepEqual(
			decodeAll(hex("07 01 03 62 62 62 01 07"), (c) => Wire.decodeAnnounce(c, 5)),
			{
				status: 1,
				suffix: "bbb",
				hops: [7],
			},
		);
		assert.deepEqual(
			decodeAll(hex("06 00 03 62 62 62 00"), (c) => Wire.decodeAnnounce(c, 5)),
			{
				status: 0,
				suffix: "bbb",
				hops: [],
			},
		);
		assert.equal(Wire.joinPath("anon", "bbb"), "anon/bbb");
	});
	it("§11.3 TRACK, TRACK_INFO, SUBSCRIBE and responses", () => {
		assert.deepEqual(
			decodeAll(
				hex("06 0f 08 61 6e 6f 6e 2f 62 62 62 05 76 69 64 65 6f"),
				typed(6, (c) => Wire.decodeTrack(c, 5)),
			),
			[6, { broadcast: "anon/bbb", track: "video" }],
		);
		const info = { priority: 0, ordered: false, maxLatencyMs: 30000, timescale: 1_000_000 };
		assert.deepEqual(
			decodeAll(hex("0a 00 00 80 00 75 30 80 0f 42 40"), (c) => Wire.decodeTrackInfo(c, 5)),
			info,
		);
		assert.equal(
			toHex(
				Wire.encode((e) =>
					Wire.encodeTrackInfo(e, { priority: 0, ordered: false, maxLatencyMs: 5000, timescale: 1000 }, 5),
				),
			),
			"060000538843e8",
		);
		const sub = hex("02 15 00 08 61 6e 6f 6e 2f 62 62 62 05 76 69 64 65 6f 3c 00 00 00 00");
		const value: Wire.Subscribe = {
			id: 0,
			broadcast: "anon/bbb",
			track: "video",
			priority: 60,
			ordered: false,
			maxLatencyMs: 0,
			startGroup: undefined,
			endGroup: undefined,
		};
		assert.deepEqual(
			decodeAll(
				sub,
				typed(2, (c) => Wire.decodeSubscribe(c, 5)),
			),
			[2, value],
		);
		const sub02 = hex("02 11 00 08 61 6e 6f 6e 2f 62 62 62 05 76 69 64 65 6f 3c");
		assert.deepEqual(
			decodeAll(
				sub02,
				typed(2, (c) => Wire.decodeSubscribe(c, 2)),
			),
			[2, value],
		);
		assert.equal(toHex(Wire.encode((e) => Wire.encodeSubscribe(e, value, 2))), toHex(sub02.subarray(1)));
		const resp = (b: string, v: V) => decodeAll(hex(b), (c) => Wire.decodeSubscribeResponse(c, v));
		assert.deepEqual(resp("00 01 05", 5), { type: "start", group: 5 });
		assert.deepEqual(resp("01 01 09", 5), { type: "end", group: 9 });
		assert.deepEqual(resp("02 03 06 07 00", 5), { type: "drop", start: 6, end: 7, errorCode: 0 });
		assert.deepEqual(resp("00 05 3c 00 00 00 00", 3), {
			type: "ok",
			priority: 60,
			ordered: false,
			maxLatencyMs: 0,
			startGroup: undefined,
			endGroup: undefined,
		});
		assert.deepEqual(resp("00", 2), { type: "ok-legacy", priority: 0 });
		assert.deepEqual(resp("01 07", 1), { type: "ok-legacy", priority: 7 });
		assert.equal(
			toHex(Wire.encode((e) => Wire.encodeSubscribeResponse(e, { type: "ok-legacy", priority: 0 }, 2))),
			"00",
		);
		assert.deepEqual(
			decodeAll(hex("06 50 00 41 f4 0b 00"), (c) => Wire.decodeSubscribeUpdate(c, 5)),
			{
				priority: 80,
				ordered: false,
				maxLatencyMs: 500,
				startGroup: 10,
				endGroup: undefined,
			},
		);
	});
	it("TRACK_INFO with timescale 0 is a protocol violation", () => {
		invalid(hex("04 00 00 00 00"), (c) => Wire.decodeTrackInfo(c, 5), ErrorCode.ProtocolViolation);
	});

	const groupStream = hex(
		"00 02 00 05 80 1e 84 80 0a 80 0f 42 40 00 00 00 01 65 88 80 01 04 6a 0a 80 0f c4 75 00 00 00 01 41 9a",
	);
	it("§11.4 GROUP + FRAMEs with zigzag timestamp deltas", () => {
		const d = decodeAll(groupStream, (c) => {
			const type = c.varint();
			const group = Wire.decodeGroup(c, 5);
			const frames: Wire.FrameMessage[] = [];
			while (c.remaining > 0) frames.push(Wire.decodeFrame(c, 5));
			return { type, group, frames };
		});
		assert.equal(d.type, Wire.UniStream.Group);
		assert.deepEqual(d.group, { subscribeId: 0, sequence: 5 });
		assert.deepEqual(
			d.frames.map((f) => f.timestampDelta),
			[1_000_000, 33_333],
		);
		assert.equal(toHex(d.frames[0]?.payload ?? new Uint8Array()), "800f4240000000016588");
		const encoded = Wire.encode((e) => {
			e.varint(0);
			Wire.encodeGroup(e, { subscribeId: 0, sequence: 5 }, 5);
			for (const f of d.frames) Wire.encodeFrame(e, f, 5);
		});
		assert.equal(toHex(encoded), toHex(groupStream));
		// lite-04 form of frame 1: no transport timestamp.
		const f4 = decodeAll(hex("0a 80 0f 42 40 00 00 00 01 65 88"), (c) => Wire.decodeFrame(c, 4));
		assert.equal(f4.timestampDelta, 0);
		assert.equal(f4.payload.length, 10);
	});
	it("§11.4 through a Reader fed one byte at a time: absolute timestamps", async () => {
		const reader = new Wire.Reader(chunked(groupStream, 1));
		assert.equal(await reader.decode((c) => c.varint()), 0);
		assert.deepEqual(await reader.decode((c) => Wire.decodeGroup(c, 5)), { subscribeId: 0, sequence: 5 });
		let ts = 0;
		const stamps: number[] = [];
		for (;;) {
			const f = await reader.decodeMaybe((c) => Wire.decodeFrame(c, 5));
			if (!f) break;
			ts += f.timestampDelta;
			stamps.push(ts);
		}
		assert.deepEqual(stamps, [1_000_000, 1_033_333]);
	});
	it("§11.5 FETCH, PROBE, GOAWAY, DATAGRAM", () => {
		assert.deepEqual(
			decodeAll(
				hex("03 11 08 61 6e 6f 6e 2f 62 62 62 05 76 69 64 65 6f 3c 05"),
				typed(3, (c) => Wire.decodeFetch(c, 5)),
			),
			[3, { broadcast: "anon/bbb", track: "video", priority: 60, group: 5 }],
		);
		assert.deepEqual(
			decodeAll(hex("05 80 26 25 a0 28"), (c) => Wire.decodeProbe(c, 5)),
			{ bitrate: 2_500_000, rttMs: 40 },
		);
		assert.deepEqual(
			decodeAll(
				hex("05 01 00"),
				typed(5, (c) => Wire.decodeGoaway(c, 5)),
			),
			[5, { uri: "" }],
		);
		const dg = hex("00 07 80 00 bb 80 6f 70 75 73");
		const datagram = { subscribeId: 0, sequence: 7, timestamp: 48000, payload: new TextEncoder().encode("opus") };
		assert.deepEqual(Wire.decodeDatagram(new Wire.Cursor(dg), 5), datagram);
		assert.equal(toHex(Wire.encode((e) => Wire.encodeDatagram(e, datagram, 5))), toHex(dg));
	});
	it("§11.5 compat CLIENT_SETUP / SERVER_SETUP", () => {
		const client = hex("20 00 1a 03 c0 00 00 00 ff 0d ad 02 c0 00 00 00 ff 0d ad 01 c0 00 00 00 ff 00 00 0e 00");
		const value = { versions: [0xff0dad02, 0xff0dad01, 0xff00000e], params: [] };
		assert.deepEqual(
			decodeAll(client, (c) => [c.varint(), Wire.decodeClientSetupCompat(c)]),
			[0x20, value],
		);
		assert.equal(toHex(Wire.encode((e) => Wire.encodeClientSetupCompat(e, value))), toHex(client));
		const server = hex("21 00 09 c0 00 00 00 ff 0d ad 02 00");
		assert.deepEqual(decodeAll(server, Wire.decodeServerSetupCompat), { version: 0xff0dad02, params: [] });
		assert.equal(
			toHex(Wire.encode((e) => Wire.encodeServerSetupCompat(e, { version: 0xff0dad02, params: [] }))),
			toHex(server),
		);
		allPrefixesShort(client, (c) => [c.varint(), Wire.decodeClientSetupCompat(c)]);
		allPrefixesShort(server, Wire.decodeServerSetupCompat);
	});
	it("appendix A: the Rust client's CLIENT_SETUP with MaxRequestId and Implementation", () => {
		const bytes = hex(
			"20 00 30 03 c0 00 00 00 ff 0d ad 02 c0 00 00 00 ff 0d ad 01 c0 00 00 00 ff 00 00 0e 02 02 c0 00 00 00 ff ff ff ff 07 0b 6d 6f 71 2d 6c 69 74 65 2d 72 73",
		);
		const d = decodeAll(bytes, (c) => [c.varint(), Wire.decodeClientSetupCompat(c)] as const);
		assert.deepEqual(d[1].params[0], { key: 2, value: 4294967295 });
		assert.equal(new TextDecoder().decode(d[1].params[1]?.value as Uint8Array), "moq-lite-rs");
		assert.equal(toHex(Wire.encode((e) => Wire.encodeClientSetupCompat(e, d[1]))), toHex(bytes));
	});
	it("appendix A: a lite-02 group stream (type, GROUP, frame 'abc', empty frame)", () => {
		const d = decodeAll(hex("00 02 05 07 03 61 62 63 00"), (c) => {
			c.varint();
			return [Wire.decodeGroup(c, 2), Wire.decodeFrame(c, 2), Wire.decodeFrame(c, 2)] as const;
		});
		assert.deepEqual(d[0], { subscribeId: 5, sequence: 7 });
		assert.equal(new TextDecoder().decode(d[1].payload), "abc");
		assert.equal(d[2].payload.length, 0);
	});
});

describe("limits and invalid input", () => {
	it("a message length above 64 KiB is invalid as soon as the length is read", () => {
		invalid(hex("80 01 00 01"), (c) => Wire.decodeTrack(c, 5), ErrorCode.BoundsExceeded);
	});
	it("a frame above 16 MiB is rejected (27) before its payload arrives", () => {
		invalid(hex("00 81 00 00 01"), (c) => Wire.decodeFrame(c, 5), ErrorCode.FrameTooLarge);
	});
	it("leftover bytes and short bodies inside a message are invalid", () => {
		invalid(hex("03 00 05 ff"), (c) => Wire.decodeGroup(c, 5));
		invalid(hex("01 00"), (c) => Wire.decodeGroup(c, 5));
	});
	it("paths: normalised, at most 32 segments, segment-aware prefixes", () => {
		assert.equal(Wire.normalizePath("//a//b/"), "a/b");
		const long = Array.from({ length: 33 }, () => "x").join("/");
		assert.throws(() => Wire.normalizePath(long), DecodeError);
		invalid(
			Wire.encode((e) => Wire.encodeTrack(e, { broadcast: long, track: "t" }, 5)),
			(c) => Wire.decodeTrack(c, 5),
		);
		assert.equal(Wire.stripPrefix("demo", "demo2"), undefined);
		assert.equal(Wire.stripPrefix("demo", "demo/x"), "x");
		assert.equal(Wire.stripPrefix("demo", "demo"), "");
		assert.equal(Wire.stripPrefix("", "a/b"), "a/b");
	});
	it("more than 32 hops is invalid", () => {
		const hops = Array.from({ length: 33 }, (_, i) => i);
		const bytes = Wire.encode((e) =>
			Wire.putMessage(e, (b) => {
				b.u8(1).string("x").varint(33);
				for (const h of hops) b.varint(h);
			}),
		);
		invalid(bytes, (c) => Wire.decodeAnnounce(c, 5), ErrorCode.BoundsExceeded);
	});
	it("invalid UTF-8, bad bools, bad status, wrong version", () => {
		invalid(hex("04 02 c3 28 00"), (c) => Wire.decodeTrack(c, 5));
		invalid(hex("04 00 02 00 00"), (c) => Wire.decodeTrackInfo(c, 5));
		invalid(hex("03 02 01 78"), (c) => Wire.decodeAnnounce(c, 4));
		invalid(hex("02 00 00"), (c) => Wire.decodeTrack(c, 2));
		invalid(hex("00 01 00"), (c) => Wire.decodeSubscribeResponse(c, 3));
	});
});

/** Random values per message and version, for round-trips. */
function randomCases(
	r: () => number,
): { name: string; v: V; value: unknown; enc: (e: Wire.Encoder) => void; dec: (c: Wire.Cursor) => unknown }[] {
	const int = (max: number) => Math.floor(r() * max);
	const big = () => [int(64), int(16384), int(2 ** 30), int(2 ** 53)][int(4)] ?? 0;
	const chars = Array.from("abcé/😀x-");
	const str = () => Array.from({ length: int(12) }, () => chars[int(chars.length)]).join("");
	const path = () =>
		Array.from({ length: int(4) }, () => str().replace(/\//g, "") || "s")
			.join("/")
			.replace(/\/+/g, "/");
	const opt = () => (r() < 0.5 ? undefined : big() - 1 < 0 ? 0 : Math.min(big(), 2 ** 53 - 2));
	const out: ReturnType<typeof randomCases> = [];
	for (const v of [1, 2, 3, 4, 5] as V[]) {
		const sub: Wire.Subscribe = {
			id: big(),
			broadcast: Wire.normalizePath(path()),
			track: str(),
			priority: int(256),
			ordered: v >= 3 ? r() < 0.5 : false,
			maxLatencyMs: v >= 3 ? big() : 0,
			startGroup: v >= 3 ? opt() : undefined,
			endGroup: v >= 3 ? opt() : undefined,
		};
		out.push({
			name: "SUBSCRIBE",
			v,
			value: sub,
			enc: (e) => Wire.encodeSubscribe(e, sub, v),
			dec: (c) => Wire.decodeSubscribe(c, v),
		});
		const req = { prefix: Wire.normalizePath(path()), excludeHop: v === 4 || v === 5 ? big() : 0 };
		out.push({
			name: "ANNOUNCE_REQUEST",
			v,
			value: req,
			enc: (e) => Wire.encodeAnnounceRequest(e, req, v),
			dec: (c) => Wire.decodeAnnounceRequest(c, v),
		});
		const hops = v >= 4 ? Array.from({ length: int(5) }, big) : v === 3 ? new Array<number>(int(5)).fill(0) : [];
		const ann: Wire.Announce = {
			status: (v >= 5 ? int(3) : int(2)) as Wire.AnnounceStatus,
			suffix: Wire.normalizePath(path()),
			hops,
		};
		out.push({
			name: "ANNOUNCE",
			v,
			value: ann,
			enc: (e) => Wire.encodeAnnounce(e, ann, v),
			dec: (c) => Wire.decodeAnnounce(c, v),
		});
		const group = { subscribeId: big(), sequence: big() };
		out.push({
			name: "GROUP",
			v,
			value: group,
			enc: (e) => Wire.encodeGroup(e, group, v),
			dec: (c) => Wire.decodeGroup(c, v),
		});
		const payload = Uint8Array.from({ length: int(40) }, () => int(256));
		const frame = { timestampDelta: v >= 5 ? int(2 ** 40) - 2 ** 39 : 0, payload };
		out.push({
			name: "FRAME",
			v,
			value: frame,
			enc: (e) => Wire.encodeFrame(e, frame, v),
			dec: (c) => Wire.decodeFrame(c, v),
		});
		let resp: Wire.SubscribeResponse;
		if (v <= 2) resp = { type: "ok-legacy", priority: v === 1 ? int(256) : 0 };
		else if (v <= 4)
			resp =
				r() < 0.5
					? {
							type: "ok",
							priority: int(256),
							ordered: r() < 0.5,
							maxLatencyMs: big(),
							startGroup: opt(),
							endGroup: opt(),
						}
					: { type: "drop", start: big(), end: big(), errorCode: int(64) };
		else
			resp = [
				{ type: "start", group: big() } as const,
				{ type: "end", group: big() } as const,
				{ type: "drop", start: big(), end: big(), errorCode: int(64) } as const,
			][int(3)] ?? { type: "end", group: 0 };
		out.push({
			name: "SUBSCRIBE_RESPONSE",
			v,
			value: resp,
			enc: (e) => Wire.encodeSubscribeResponse(e, resp, v),
			dec: (c) => Wire.decodeSubscribeResponse(c, v),
		});
		if (v >= 3) {
			const upd: Wire.SubscribeUpdate = {
				priority: int(256),
				ordered: r() < 0.5,
				maxLatencyMs: big(),
				startGroup: opt(),
				endGroup: opt(),
			};
			out.push({
				name: "SUBSCRIBE_UPDATE",
				v,
				value: upd,
				enc: (e) => Wire.encodeSubscribeUpdate(e, upd, v),
				dec: (c) => Wire.decodeSubscribeUpdate(c, v),
			});
			const probe = { bitrate: big(), rttMs: v >= 4 ? big() : 0 };
			out.push({
				name: "PROBE",
				v,
				value: probe,
				enc: (e) => Wire.encodeProbe(e, probe, v),
				dec: (c) => Wire.decodeProbe(c, v),
			});
		}
		if (v <= 2) {
			const init = { suffixes: Array.from({ length: int(4) }, () => Wire.normalizePath(path())) };
			out.push({
				name: "ANNOUNCE_INIT",
				v,
				value: init,
				enc: (e) => Wire.encodeAnnounceInit(e, init, v),
				dec: (c) => Wire.decodeAnnounceInit(c, v),
			});
		}
		if (v >= 5) {
			const ok = { hopId: big(), activeCount: big() };
			out.push({
				name: "ANNOUNCE_OK",
				v,
				value: ok,
				enc: (e) => Wire.encodeAnnounceOk(e, ok, v),
				dec: (c) => Wire.decodeAnnounceOk(c, v),
			});
			const track = { broadcast: Wire.normalizePath(path()), track: str() };
			out.push({
				name: "TRACK",
				v,
				value: track,
				enc: (e) => Wire.encodeTrack(e, track, v),
				dec: (c) => Wire.decodeTrack(c, v),
			});
			const info = { priority: int(256), ordered: r() < 0.5, maxLatencyMs: big(), timescale: big() + 1 };
			out.push({
				name: "TRACK_INFO",
				v,
				value: info,
				enc: (e) => Wire.encodeTrackInfo(e, info, v),
				dec: (c) => Wire.decodeTrackInfo(c, v),
			});
			const fetch = { broadcast: Wire.normalizePath(path()), track: str(), priority: int(256), group: big() };
			out.push({
				name: "FETCH",
				v,
				value: fetch,
				enc: (e) => Wire.encodeFetch(e, fetch, v),
				dec: (c) => Wire.decodeFetch(c, v),
			});
			const setup: Wire.Setup = {};
			if (r() < 0.5) setup.probe = int(3);
			if (r() < 0.5) setup.path = `/${str()}` || "/x";
			if (r() < 0.5) setup.role = int(3);
			if (r() < 0.5) setup.cost = big();
			if (r() < 0.5) setup.origin = big() || 1;
			out.push({
				name: "SETUP",
				v,
				value: setup,
				enc: (e) => Wire.encodeSetup(e, setup, v),
				dec: (c) => Wire.decodeSetup(c, v),
			});
		}
	}
	return out;
}

describe("seeded round-trips", () => {
	it("decode(encode(v)) == v and every prefix needs more, 200 rounds per message and version", () => {
		const r = rng(0x5eed);
		let checked = 0;
		for (let round = 0; round < 200; round++) {
			for (const c of randomCases(r)) {
				const bytes = Wire.encode(c.enc);
				const d = Wire.tryDecode(bytes, c.dec);
				assert.ok(d, `${c.name} lite-0${c.v}: complete input must decode`);
				assert.equal(d.size, bytes.length, `${c.name} lite-0${c.v} size`);
				assert.deepEqual(d.value, c.value, `${c.name} lite-0${c.v} round ${round}`);
				if (round < 20) allPrefixesShort(bytes, c.dec);
				checked++;
			}
		}
		assert.ok(checked > 5000);
	});
});

describe("garbage input", () => {
	it("never throws anything but DecodeError (seeded)", () => {
		const r = rng(42);
		const decoders: ((c: Wire.Cursor) => unknown)[] = [];
		for (const v of [1, 2, 3, 4, 5, 6] as V[]) {
			decoders.push(
				(c) => Wire.decodeAnnounceMessage(c, v),
				(c) => Wire.decodeSubscribe(c, v),
				(c) => Wire.decodeSubscribeUpdate(c, v),
				(c) => Wire.decodeSubscribeResponse(c, v),
				(c) => Wire.decodeAnnounceRequest(c, v),
				(c) => Wire.decodeAnnounceOk(c, v),
				(c) => Wire.decodeAnnounceInit(c, v),
				(c) => Wire.decodeAnnounce(c, v),
				(c) => Wire.decodeTrack(c, v),
				(c) => Wire.decodeTrackInfo(c, v),
				(c) => Wire.decodeFetch(c, v),
				(c) => Wire.decodeProbe(c, v),
				(c) => Wire.decodeGoaway(c, v),
				(c) => Wire.decodeGroup(c, v),
				(c) => Wire.decodeFrame(c, v),
				(c) => Wire.decodeSetup(c, v),
				(c) => Wire.decodeDatagram(c, v),
			);
		}
		decoders.push(Wire.decodeClientSetupCompat, Wire.decodeServerSetupCompat, Wire.decodeSessionInfo);
		let invalidCount = 0;
		for (let i = 0; i < 3000; i++) {
			const len = Math.floor(r() * 48);
			const bytes = Uint8Array.from({ length: len }, () => Math.floor(r() * 256));
			// Bias some inputs towards small plausible lengths so bodies get parsed.
			if (len > 1 && r() < 0.5) bytes[0] = Math.min(len - 1, 0x3f);
			for (const dec of decoders) {
				try {
					Wire.tryDecode(bytes, dec);
				} catch (err) {
					assert.ok(err instanceof DecodeError, `threw ${String(err)}`);
					invalidCount++;
				}
			}
		}
		assert.ok(invalidCount > 0, "some garbage must be rejected");
	});
});

describe("Reader", () => {
	it("clean end at a message boundary = undefined; end inside a message = DecodeError", async () => {
		const ok = new Wire.Reader(chunked(hex("02 00 05"), 2));
		assert.deepEqual(await ok.decodeMaybe((c) => Wire.decodeGroup(c, 5)), { subscribeId: 0, sequence: 5 });
		assert.equal(await ok.decodeMaybe((c) => Wire.decodeGroup(c, 5)), undefined);
		const cut = new Wire.Reader(chunked(hex("02 00"), 1));
		await assert.rejects(
			cut.decodeMaybe((c) => Wire.decodeGroup(c, 5)),
			DecodeError,
		);
		const frame = new Wire.Reader(chunked(hex("00 05 61 62"), 3));
		await assert.rejects(
			frame.decodeMaybe((c) => Wire.decodeFrame(c, 5), ErrorCode.WrongSize),
			(e: unknown) => e instanceof DecodeError && e.code === 14,
		);
	});
	it("reassembles a large frame from many chunks", async () => {
		const payload = Uint8Array.from({ length: 300_000 }, (_, i) => i & 0xff);
		const bytes = Wire.encode((e) => Wire.encodeFrame(e, { timestampDelta: -5, payload }, 5));
		const reader = new Wire.Reader(chunked(bytes, 1000));
		const f = await reader.decode((c) => Wire.decodeFrame(c, 5));
		assert.equal(f.timestampDelta, -5);
		assert.deepEqual(f.payload, payload);
		assert.equal(await reader.done(), true);
	});
	it("an invalid message fails without waiting for the rest of the stream", async () => {
		const stream = new ReadableStream<Uint8Array>({
			start(c) {
				c.enqueue(hex("80 01 00 01")); // length 65537 > 64 KiB; the stream then stays open
			},
		});
		const reader = new Wire.Reader(stream);
		await assert.rejects(
			reader.decode((c) => Wire.decodeTrack(c, 5)),
			(e: unknown) => e instanceof DecodeError && !e.short,
		);
	});
});
