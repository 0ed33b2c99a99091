/** Track metadata and fetch (lite-05, spec §5.10–§5.11): TRACK, TRACK_INFO, FETCH. */
import { DecodeError, ErrorCode } from "../error.ts";
import { normalizePath } from "./path.ts";
import { type Cursor, type Encoder, getMessage, putMessage } from "./primitives.ts";
import { requireEncodable, requireVersion } from "./setup.ts";
import type { LiteVersion } from "./version.ts";

/** TRACK: the first message on a Track stream (lite-05). */
export interface Track {
	/** Broadcast path relative to the session root. */
	broadcast: string;
	/** Track name. */
	track: string;
}

/** TRACK_INFO: the publisher's immutable track properties (lite-05). */
export interface TrackInfo {
	/** Publisher priority 0..255. */
	priority: number;
	/** Publisher ordered flag. */
	ordered: boolean;
	/** Publisher max latency / retention in ms. */
	maxLatencyMs: number;
	/** Timestamp units per second, never 0. */
	timescale: number;
}

/** FETCH: one group of a track, as bare FRAMEs (lite-05). */
export interface Fetch {
	/** Broadcast path. */
	broadcast: string;
	/** Track name. */
	track: string;
	/** Subscriber priority 0..255. */
	priority: number;
	/** Group sequence. */
	group: number;
}

/** Encode TRACK. */
export function encodeTrack(e: Encoder, m: Track, version: LiteVersion): void {
	requireEncodable(version >= 5, "TRACK", version);
	putMessage(e, (b) => b.string(m.broadcast).string(m.track));
}

/** Decode TRACK. */
export function decodeTrack(c: Cursor, version: LiteVersion): Track {
	requireVersion(version >= 5, "TRACK", version);
	return getMessage(c, (b) => ({ broadcast: normalizePath(b.string("broadcast")), track: b.string("track") }));
}

/** Encode TRACK_INFO. */
export function encodeTrackInfo(e: Encoder, m: TrackInfo, version: LiteVersion): void {
	requireEncodable(version >= 5, "TRACK_INFO", version);
	if (m.timescale === 0) throw new RangeError("timescale must not be 0");
	putMessage(e, (b) => b.u8(m.priority).bool(m.ordered).varint(m.maxLatencyMs).varint(m.timescale));
}

/** Decode TRACK_INFO; timescale 0 is a protocol violation. */
export function decodeTrackInfo(c: Cursor, version: LiteVersion): TrackInfo {
	requireVersion(version >= 5, "TRACK_INFO", version);
	return getMessage(c, (b) => {
		const m = { priority: b.u8(), ordered: b.bool("ordered"), maxLatencyMs: b.varint(), timescale: b.varint() };
		// spec: §5.10 timescale 0 is a protocol violation.
		if (m.timescale === 0) throw new DecodeError("timescale 0", { code: ErrorCode.ProtocolViolation });
		return m;
	});
}

/** Encode FETCH. */
export function encodeFetch(e: Encoder, m: Fetch, version: LiteVersion): void {
	requireEncodable(version >= 5, "FETCH", version);
	putMessage(e, (b) => b.string(m.broadcast).string(m.track).u8(m.priority).varint(m.group));
}

/** Decode FETCH. */
export function decodeFetch(c: Cursor, version: LiteVersion): Fetch {
	requireVersion(version >= 5, "FETCH", version);
	return getMessage(c, (b) => ({
		broadcast: normalizePath(b.string("broadcast")),
		track: b.string("track"),
		priority: b.u8(),
		group: b.varint(),
	}));
}
