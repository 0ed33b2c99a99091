/**
 * moq-lite-06 as moq-relay 0.17.10 speaks it: the reference encoder's byte vectors
 * (testdata/moq-lite-06-vectors.json) decode to their fields, re-encode byte for byte, and every
 * truncation is "need more"; plus the lite-06 rules the vectors do not show (invalid bounds,
 * unknown announcement types, announce ids).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { DecodeError, ErrorCode, MoqError, Wire } from "../src/index.ts";
import { hex, rng, toHex } from "./helpers.ts";

interface Case {
	message: string;
	version: string;
	fields: Record<string, unknown>;
	hex: string;
}

const file = new URL("../../../../testdata/moq-lite-06-vectors.json", import.meta.url);
// Route costs reach 2^62 − 1, beyond a JS number: quote long integers so they parse exactly.
const text = readFileSync(file, "utf8").replace(/([:[,]\s*)(\d{16,})/g, '$1"$2"');
const cases = (JSON.parse(text) as { cases: Case[] }).cases;

const V6 = Wire.Lite.V06;
const opt = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : (v as number));
const num = (v: unknown): number => v as number;
const str = (v: unknown): string => v as string;
const cost = (f: Record<string, unknown>): Wire.RouteCost => ({
	warm: BigInt(f.cost_warm as string | number),
	cold: BigInt(f.cost_cold as string | number),
});

type Codec = { encode: (e: Wire.Encoder) => void; decode: (c: Wire.Cursor) => unknown; value: unknown };

/** Map a vector case onto our codec functions and the value they must produce. */
function codec(c: Case): Codec {
	const f = c.fields;
	switch (c.message) {
		case "SETUP": {
			const value: Wire.Setup = {};
			if (f.cost !== undefined) value.cost = num(f.cost);
			if (f.hop !== undefined) value.origin = num(f.hop);
			return { value, encode: (e) => Wire.encodeSetup(e, value, V6), decode: (r) => Wire.decodeSetup(r, V6) };
		}
		case "ANNOUNCE_REQUEST": {
			const value: Wire.AnnounceRequest = { prefix: str(f.prefix), excludeHop: 0 };
			return {
				value,
				encode: (e) => Wire.encodeAnnounceRequest(e, value, V6),
				decode: (r) => Wire.decodeAnnounceRequest(r, V6),
			};
		}
		case "ANNOUNCE_OK": {
			const value: Wire.AnnounceOk = { hopId: num(f.hop_id), activeCount: num(f.active_count) };
			return {
				value,
				encode: (e) => Wire.encodeAnnounceOk(e, value, V6),
				decode: (r) => Wire.decodeAnnounceOk(r, V6),
			};
		}
		case "ANNOUNCE_START":
		case "ANNOUNCE_END":
		case "ANNOUNCE_UPDATE": {
			const hops = (f.hops as number[] | undefined) ?? [];
			const value: Wire.AnnounceMessage =
				c.message === "ANNOUNCE_START"
					? { type: "start", suffix: str(f.suffix), hops, cost: cost(f) }
					: c.message === "ANNOUNCE_END"
						? { type: "end", id: num(f.id) }
						: { type: "update", id: num(f.id), hops, cost: cost(f) };
			return {
				value,
				encode: (e) => Wire.encodeAnnounceMessage(e, value, V6),
				decode: (r) => Wire.decodeAnnounceMessage(r, V6),
			};
		}
		case "SUBSCRIBE": {
			const value: Wire.Subscribe = {
				id: num(f.subscribe_id),
				broadcast: str(f.broadcast),
				track: str(f.track),
				priority: num(f.priority),
				ordered: false,
				maxLatencyMs: num(f.max_age_ms),
				startGroup: opt(f.start_group),
				endGroup: opt(f.end_group),
				startFrame: num(f.start_frame),
				endFrame: opt(f.end_frame),
			};
			return { value, encode: (e) => Wire.encodeSubscribe(e, value, V6), decode: (r) => Wire.decodeSubscribe(r, V6) };
		}
		case "SUBSCRIBE_UPDATE": {
			const value: Wire.SubscribeUpdate = {
				priority: num(f.priority),
				ordered: false,
				maxLatencyMs: num(f.max_age_ms),
				startGroup: opt(f.start_group),
				endGroup: opt(f.end_group),
				startFrame: num(f.start_frame),
				endFrame: opt(f.end_frame),
			};
			return {
				value,
				encode: (e) => Wire.encodeSubscribeUpdate(e, value, V6),
				decode: (r) => Wire.decodeSubscribeUpdate(r, V6),
			};
		}
		case "SUBSCRIBE_START":
		case "SUBSCRIBE_END":
		case "SUBSCRIBE_DROP": {
			const value: Wire.SubscribeResponse =
				c.message === "SUBSCRIBE_DROP"
					? { type: "drop", start: num(f.start), end: num(f.end), errorCode: num(f.error_code) }
					: { type: c.message === "SUBSCRIBE_START" ? "start" : "end", group: num(f.group) };
			return {
				value,
				encode: (e) => Wire.encodeSubscribeResponse(e, value, V6),
				decode: (r) => Wire.decodeSubscribeResponse(r, V6),
			};
		}
		case "TRACK": {
			const value: Wire.Track = { broadcast: str(f.broadcast), track: str(f.track) };
			return { value, encode: (e) => Wire.encodeTrack(e, value, V6), decode: (r) => Wire.decodeTrack(r, V6) };
		}
		case "TRACK_INFO": {
			const value: Wire.TrackInfo = {
				priority: num(f.priority),
				ordered: false,
				maxLatencyMs: num(f.max_age_ms),
				timescale: num(f.timescale),
			};
			return {
				value,
				encode: (e) => Wire.encodeTrackInfo(e, value, V6),
				decode: (r) => Wire.decodeTrackInfo(r, V6),
			};
		}
		case "FETCH": {
			const value: Wire.Fetch = {
				broadcast: str(f.broadcast),
				track: str(f.track),
				priority: num(f.priority),
				group: num(f.group),
				startFrame: num(f.start_frame),
				endFrame: opt(f.end_frame),
			};
			return { value, encode: (e) => Wire.encodeFetch(e, value, V6), decode: (r) => Wire.decodeFetch(r, V6) };
		}
		case "GROUP": {
			const value: Wire.GroupHeader = {
				subscribeId: num(f.subscribe_id),
				sequence: num(f.sequence),
				frameStart: num(f.frame_start),
			};
			return { value, encode: (e) => Wire.encodeGroup(e, value, V6), decode: (r) => Wire.decodeGroup(r, V6) };
		}
		case "PROBE": {
			const value: Wire.Probe = { bitrate: num(f.bitrate), rttMs: num(f.rtt_ms) };
			return { value, encode: (e) => Wire.encodeProbe(e, value, V6), decode: (r) => Wire.decodeProbe(r, V6) };
		}
		case "GOAWAY": {
			const value: Wire.Goaway = { uri: str(f.uri) };
			return { value, encode: (e) => Wire.encodeGoaway(e, value, V6), decode: (r) => Wire.decodeGoaway(r, V6) };
		}
	}
	throw new Error(`no codec for ${c.message}`);
}

function allPrefixesShort(bytes: Uint8Array, decode: (c: Wire.Cursor) => unknown): void {
	for (let n = 0; n < bytes.length; n++) {
		let result: unknown;
		try {
			result = Wire.tryDecode(bytes.subarray(0, n), decode);
		} catch (err) {
			assert.fail(`prefix of ${n} bytes threw ${err instanceof DecodeError ? err.message : String(err)}`);
		}
		assert.equal(result, undefined, `prefix of ${n} bytes must need more`);
	}
}

function invalid(bytes: string, decode: (c: Wire.Cursor) => unknown): DecodeError {
	try {
		Wire.tryDecode(hex(bytes), decode);
	} catch (err) {
		assert.ok(err instanceof DecodeError, `threw ${String(err)}`);
		assert.equal(err.short, false);
		return err;
	}
	assert.fail(`${bytes} must be invalid`);
}

describe("moq-lite-06-vectors.json", () => {
	it("has 32 DRAFT_06 cases", () => {
		assert.equal(cases.length, 32);
		assert.deepEqual([...new Set(cases.map((c) => c.version))], ["DRAFT_06"]);
	});

	for (const c of cases) {
		describe(`${c.message} ${c.hex}`, () => {
			const { value, encode, decode } = codec(c);
			const bytes = hex(c.hex);

			it("decodes to the fields", () => {
				const decoded = Wire.tryDecode(bytes, decode);
				assert.ok(decoded, "complete input must decode");
				assert.equal(decoded.size, bytes.length, "must consume the whole message");
				assert.deepEqual(decoded.value, value);
			});

			it("encodes to the bytes", () => {
				assert.equal(toHex(Wire.encode(encode)), c.hex);
			});

			it("every truncation is 'need more'", () => allPrefixesShort(bytes, decode));
		});
	}
});

describe("lite-06 rules beyond the vectors", () => {
	it("identifiers: ALPN moq-lite-06, SETUP code 0xff0dad06", () => {
		assert.equal(Wire.versionAlpn(V6), "moq-lite-06");
		assert.equal(Wire.versionFromAlpn("moq-lite-06"), 6);
		assert.equal(Wire.versionFromAlpn("moq-lite-06-wip"), undefined);
		assert.equal(Wire.versionFromCode(0xff0dad06), 6);
	});

	it("an unknown announcement type is skipped by its length", () => {
		const d = Wire.tryDecode(hex("0703aabbcc"), (c) => Wire.decodeAnnounceMessage(c, V6));
		assert.deepEqual(d, { value: { type: "unknown", kind: 7 }, size: 5 });
	});

	it("the 05 ANNOUNCE and the 06 typed announcements are each refused in the other version", () => {
		invalid("00080362626201070101", (c) => Wire.decodeAnnounceMessage(c, 5));
		invalid("06010362626200", (c) => Wire.decodeAnnounce(c, V6));
		assert.throws(() => Wire.encode((e) => Wire.encodeAnnounce(e, { status: 1, suffix: "a", hops: [] }, V6)), MoqError);
	});

	it("costs above 2^62 − 1 saturate when encoded", () => {
		const m: Wire.AnnounceMessage = { type: "end", id: 0 };
		assert.equal(toHex(Wire.encode((e) => Wire.encodeAnnounceMessage(e, m, V6))), "010100");
		const big: Wire.AnnounceMessage = { type: "start", suffix: "", hops: [1], cost: { warm: 1n << 70n, cold: 3n } };
		const bytes = Wire.encode((e) => Wire.encodeAnnounceMessage(e, big, V6));
		const d = Wire.tryDecode(bytes, (c) => Wire.decodeAnnounceMessage(c, V6));
		assert.deepEqual(d?.value, { ...big, cost: { warm: Wire.MAX_VARINT_BIG, cold: 3n } });
	});

	it("more than 32 hops is invalid", () => {
		const body = `00${"21"}${"01".repeat(33)}0000`;
		const len = (body.length / 2).toString(16).padStart(2, "0");
		invalid(`00${len}${body}`, (c) => Wire.decodeAnnounceMessage(c, V6));
	});

	it("SUBSCRIBE: a frame end without its group end is invalid", () => {
		// id 0, "a", "v", priority 0, max age 0, start 0, end none, frame start 0, frame end 2 (+1 = 3).
		invalid("0a00016101760000000003", (c) => Wire.decodeSubscribe(c, V6));
		assert.throws(
			() =>
				Wire.encode((e) =>
					Wire.encodeSubscribeUpdate(
						e,
						{
							priority: 0,
							ordered: false,
							maxLatencyMs: 0,
							startGroup: undefined,
							endGroup: undefined,
							endFrame: 2,
						},
						V6,
					),
				),
			RangeError,
		);
	});

	it("FETCH: a frame end before its start is invalid", () => {
		// "a", "v", priority 0, group 5, frame start 4, frame end 2 (+1 = 3).
		invalid("08016101760005 0403", (c) => Wire.decodeFetch(c, V6));
	});

	it("frame bounds do not exist before lite-06", () => {
		const fetch: Wire.Fetch = { broadcast: "a", track: "v", priority: 0, group: 1, startFrame: 2 };
		assert.throws(() => Wire.encode((e) => Wire.encodeFetch(e, fetch, 5)), MoqError);
		assert.throws(
			() => Wire.encode((e) => Wire.encodeGroup(e, { subscribeId: 0, sequence: 0, frameStart: 1 }, 5)),
			MoqError,
		);
	});

	it("announce ids: n-th START = id n; END/UPDATE of an unknown or retired id is a protocol violation", () => {
		const ids = new Wire.AnnounceIds();
		const c = { warm: 0n, cold: 0n };
		assert.deepEqual(ids.apply({ type: "start", suffix: "a", hops: [], cost: c }), {
			suffix: "a",
			active: true,
			hops: [],
		});
		assert.deepEqual(ids.apply({ type: "start", suffix: "b", hops: [3], cost: c }), {
			suffix: "b",
			active: true,
			hops: [3],
		});
		assert.deepEqual(ids.apply({ type: "update", id: 1, hops: [4], cost: c }), {
			suffix: "b",
			active: true,
			hops: [4],
		});
		assert.deepEqual(ids.apply({ type: "end", id: 0 }), { suffix: "a", active: false, hops: [] });
		assert.equal(ids.apply({ type: "unknown", kind: 9 }), undefined);
		const violation = (m: Wire.AnnounceMessage) =>
			assert.throws(
				() => ids.apply(m),
				(err: unknown) => err instanceof MoqError && err.code === ErrorCode.ProtocolViolation,
			);
		violation({ type: "end", id: 0 }); // retired
		violation({ type: "update", id: 0, hops: [], cost: c }); // retired
		violation({ type: "end", id: 2 }); // never started
		violation({ type: "start", suffix: "b", hops: [], cost: c }); // live path
		// A path that ended may start again, with a fresh id (2; ids are never reused).
		ids.apply({ type: "start", suffix: "a", hops: [], cost: c });
		assert.deepEqual(ids.apply({ type: "end", id: 2 }), { suffix: "a", active: false, hops: [] });
	});

	it("seeded round-trips of SUBSCRIBE, SUBSCRIBE_UPDATE, FETCH, GROUP and announcements", () => {
		const r = rng(0x606);
		const int = (max: number) => Math.floor(r() * max);
		const big = () => [int(64), int(16384), int(2 ** 30), int(2 ** 53 - 1)][int(4)] ?? 0;
		const maybe = () => (r() < 0.5 ? undefined : big());
		for (let round = 0; round < 300; round++) {
			const startGroup = maybe();
			const endGroup = maybe();
			// Group Start 0 with Frame Start 0 is "no floor": it decodes as undefined.
			const startFrame = startGroup === undefined ? 0 : int(3) === 0 ? 0 : big();
			const norm = startGroup === 0 && startFrame === 0 ? undefined : startGroup;
			const endFrame = endGroup === undefined ? undefined : maybe();
			const prefs = { ordered: false, maxLatencyMs: big(), startGroup, endGroup, startFrame, endFrame };
			const sub: Wire.Subscribe = { id: big(), broadcast: "a/b", track: "t", priority: int(256), ...prefs };
			const upd: Wire.SubscribeUpdate = { priority: int(256), ...prefs };
			const frameA = big();
			const frameB = maybe();
			const fetch: Wire.Fetch = {
				broadcast: "x",
				track: "y",
				priority: int(256),
				group: big(),
				startFrame: frameB === undefined ? frameA : Math.min(frameA, frameB),
				endFrame: frameB === undefined ? undefined : Math.max(frameA, frameB),
			};
			const group: Wire.GroupHeader = { subscribeId: big(), sequence: big(), frameStart: big() };
			const cost = { warm: BigInt(big()) * BigInt(int(512) + 1), cold: BigInt(big()) };
			const hops = Array.from({ length: int(5) }, big);
			const messages: [unknown, unknown, (e: Wire.Encoder) => void, (c: Wire.Cursor) => unknown][] = [
				[
					sub,
					{ ...sub, startGroup: norm },
					(e) => Wire.encodeSubscribe(e, sub, V6),
					(c) => Wire.decodeSubscribe(c, V6),
				],
				[
					upd,
					{ ...upd, startGroup: norm },
					(e) => Wire.encodeSubscribeUpdate(e, upd, V6),
					(c) => Wire.decodeSubscribeUpdate(c, V6),
				],
				[fetch, fetch, (e) => Wire.encodeFetch(e, fetch, V6), (c) => Wire.decodeFetch(c, V6)],
				[group, group, (e) => Wire.encodeGroup(e, group, V6), (c) => Wire.decodeGroup(c, V6)],
			];
			for (const m of [
				{ type: "start", suffix: "s/t", hops, cost },
				{ type: "update", id: big(), hops, cost },
				{ type: "end", id: big() },
			] as Wire.AnnounceMessage[]) {
				messages.push([m, m, (e) => Wire.encodeAnnounceMessage(e, m, V6), (c) => Wire.decodeAnnounceMessage(c, V6)]);
			}
			for (const [, expected, enc, dec] of messages) {
				const bytes = Wire.encode(enc);
				const d = Wire.tryDecode(bytes, dec);
				assert.ok(d);
				assert.equal(d.size, bytes.length);
				assert.deepEqual(d.value, expected);
				if (round < 20) allPrefixesShort(bytes, dec);
			}
		}
	});
});
