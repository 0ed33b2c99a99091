/** The shared byte vectors (moq-lite-vectors.json): decode, encode, and every truncation = "need more". */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { DecodeError, Wire } from "../src/index.ts";
import { hex, toHex } from "./helpers.ts";

interface Case {
	message: string;
	version: string;
	fields: Record<string, unknown>;
	hex: string;
}

const file = new URL("../../../../testdata/moq-lite-vectors.json", import.meta.url);
const cases = (JSON.parse(readFileSync(file, "utf8")) as { cases: Case[] }).cases;

type Codec = { encode: (e: Wire.Encoder) => void; decode: (c: Wire.Cursor) => unknown; value: unknown };

const opt = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : (v as number));
const num = (v: unknown): number => v as number;
const str = (v: unknown): string => v as string;

/** Map a vector case onto our codec functions and the value we expect them to produce. */
function codec(c: Case): Codec {
	const v = Number(c.version.replace("DRAFT_", "")) as Wire.LiteVersion;
	const f = c.fields;
	switch (c.message) {
		case "SUBSCRIBE": {
			const value: Wire.Subscribe = {
				id: num(f.subscribe_id),
				broadcast: str(f.broadcast),
				track: str(f.track),
				priority: num(f.priority),
				ordered: (f.ordered as boolean | undefined) ?? false,
				maxLatencyMs: (f.max_latency_ms as number | undefined) ?? 0,
				startGroup: opt(f.start_group),
				endGroup: opt(f.end_group),
			};
			return { value, encode: (e) => Wire.encodeSubscribe(e, value, v), decode: (r) => Wire.decodeSubscribe(r, v) };
		}
		case "ANNOUNCE_REQUEST": {
			const value: Wire.AnnounceRequest = {
				prefix: str(f.prefix),
				excludeHop: (f.exclude_hop as number | undefined) ?? 0,
			};
			return {
				value,
				encode: (e) => Wire.encodeAnnounceRequest(e, value, v),
				decode: (r) => Wire.decodeAnnounceRequest(r, v),
			};
		}
		case "GROUP": {
			const value: Wire.GroupHeader = { subscribeId: num(f.subscribe_id), sequence: num(f.sequence) };
			return { value, encode: (e) => Wire.encodeGroup(e, value, v), decode: (r) => Wire.decodeGroup(r, v) };
		}
		case "SUBSCRIBE_UPDATE": {
			const value: Wire.SubscribeUpdate = {
				priority: num(f.priority),
				ordered: f.ordered as boolean,
				maxLatencyMs: num(f.max_latency_ms),
				startGroup: opt(f.start_group),
				endGroup: opt(f.end_group),
			};
			return {
				value,
				encode: (e) => Wire.encodeSubscribeUpdate(e, value, v),
				decode: (r) => Wire.decodeSubscribeUpdate(r, v),
			};
		}
		case "ANNOUNCE(active)":
		case "ANNOUNCE(ended)": {
			const hops =
				f.hop_count !== undefined
					? new Array<number>(num(f.hop_count)).fill(0)
					: ((f.hops as number[] | undefined) ?? []);
			const value: Wire.Announce = { status: c.message === "ANNOUNCE(active)" ? 1 : 0, suffix: str(f.suffix), hops };
			return { value, encode: (e) => Wire.encodeAnnounce(e, value, v), decode: (r) => Wire.decodeAnnounce(r, v) };
		}
		case "ANNOUNCE_OK": {
			const value: Wire.AnnounceOk = { hopId: num(f.hop_id), activeCount: num(f.active_count) };
			return { value, encode: (e) => Wire.encodeAnnounceOk(e, value, v), decode: (r) => Wire.decodeAnnounceOk(r, v) };
		}
		case "SUBSCRIBE_START":
		case "SUBSCRIBE_END": {
			const value: Wire.SubscribeResponse = {
				type: c.message === "SUBSCRIBE_START" ? "start" : "end",
				group: num(f.group),
			};
			return {
				value,
				encode: (e) => Wire.encodeSubscribeResponse(e, value, v),
				decode: (r) => Wire.decodeSubscribeResponse(r, v),
			};
		}
		case "TRACK": {
			const value: Wire.Track = { broadcast: str(f.broadcast), track: str(f.track) };
			return { value, encode: (e) => Wire.encodeTrack(e, value, v), decode: (r) => Wire.decodeTrack(r, v) };
		}
		case "TRACK_INFO": {
			const value: Wire.TrackInfo = {
				priority: num(f.priority),
				ordered: f.ordered as boolean,
				maxLatencyMs: num(f.max_latency_ms),
				timescale: num(f.timescale),
			};
			return { value, encode: (e) => Wire.encodeTrackInfo(e, value, v), decode: (r) => Wire.decodeTrackInfo(r, v) };
		}
		case "FETCH": {
			const value: Wire.Fetch = {
				broadcast: str(f.broadcast),
				track: str(f.track),
				priority: num(f.priority),
				group: num(f.group),
			};
			return { value, encode: (e) => Wire.encodeFetch(e, value, v), decode: (r) => Wire.decodeFetch(r, v) };
		}
		case "PROBE": {
			const value: Wire.Probe = { bitrate: num(f.bitrate), rttMs: num(f.rtt_ms) };
			return { value, encode: (e) => Wire.encodeProbe(e, value, v), decode: (r) => Wire.decodeProbe(r, v) };
		}
	}
	throw new Error(`no codec for ${c.message}`);
}

describe("moq-lite-vectors.json", () => {
	it("has 37 cases over lite-02..05", () => {
		assert.equal(cases.length, 37);
		assert.deepEqual([...new Set(cases.map((c) => c.version))].sort(), [
			"DRAFT_02",
			"DRAFT_03",
			"DRAFT_04",
			"DRAFT_05",
		]);
	});

	for (const c of cases) {
		const name = `${c.message} ${c.version} ${c.hex}`;
		describe(name, () => {
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

			it("every truncation is 'need more'", () => {
				for (let n = 0; n < bytes.length; n++) {
					let result: unknown;
					try {
						result = Wire.tryDecode(bytes.subarray(0, n), decode);
					} catch (err) {
						assert.fail(`prefix of ${n} bytes threw ${err instanceof DecodeError ? err.message : String(err)}`);
					}
					assert.equal(result, undefined, `prefix of ${n} bytes must need more`);
				}
			});
		});
	}
});
