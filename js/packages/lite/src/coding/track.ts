/** Track metadata and fetch (lite-05/06, spec §5.10–§5.11): TRACK, TRACK_INFO, FETCH. */
import { DecodeError, ErrorCode, MoqError } from "../error.ts";
import { normalizePath } from "./path.ts";
import { type Cursor, type Encoder, getMessage, getPlusOne, putMessage, putPlusOne } from "./primitives.ts";
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
	/** Publisher ordered flag (lite-05; not on the wire in lite-06: decoded as false). */
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
	/** lite-06: first frame wanted (0 = from the start); absent before lite-06. */
	startFrame?: number;
	/** lite-06: last frame wanted (inclusive), undefined = to the end; absent before lite-06. */
	endFrame?: number | undefined;
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
	putMessage(e, (b) => {
		b.u8(m.priority);
		if (version < 6) b.bool(m.ordered);
		b.varint(m.maxLatencyMs).varint(m.timescale);
	});
}

/** Decode TRACK_INFO; timescale 0 is a protocol violation. */
export function decodeTrackInfo(c: Cursor, version: LiteVersion): TrackInfo {
	requireVersion(version >= 5, "TRACK_INFO", version);
	return getMessage(c, (b) => {
		const priority = b.u8();
		const ordered = version < 6 ? b.bool("ordered") : false;
		const m = { priority, ordered, maxLatencyMs: b.varint(), timescale: b.varint() };
		// spec: §5.10 timescale 0 is a protocol violation.
		if (m.timescale === 0) throw new DecodeError("timescale 0", { code: ErrorCode.ProtocolViolation });
		return m;
	});
}

/** Encode FETCH. */
export function encodeFetch(e: Encoder, m: Fetch, version: LiteVersion): void {
	requireEncodable(version >= 5, "FETCH", version);
	const startFrame = m.startFrame ?? 0;
	if (version < 6 && (startFrame !== 0 || m.endFrame !== undefined))
		throw new MoqError(ErrorCode.Unsupported, `frame bounds do not exist in moq-lite-0${version}`);
	if (m.endFrame !== undefined && m.endFrame < startFrame) throw new RangeError("fetch frame end before its start");
	putMessage(e, (b) => {
		b.string(m.broadcast).string(m.track).u8(m.priority).varint(m.group);
		if (version >= 6) {
			b.varint(startFrame);
			putPlusOne(b, m.endFrame);
		}
	});
}

/** Decode FETCH. */
export function decodeFetch(c: Cursor, version: LiteVersion): Fetch {
	requireVersion(version >= 5, "FETCH", version);
	return getMessage(c, (b): Fetch => {
		const broadcast = normalizePath(b.string("broadcast"));
		const track = b.string("track");
		const priority = b.u8();
		const group = b.varint();
		if (version < 6) return { broadcast, track, priority, group };
		const startFrame = b.varint();
		const endFrame = getPlusOne(b);
		// spec (lite-06): a range that ends before it starts can never be served.
		if (endFrame !== undefined && endFrame < startFrame) throw new DecodeError("fetch frame end before its start");
		return { broadcast, track, priority, group, startFrame, endFrame };
	});
}
