/** Subscriptions (spec §5.7–§5.9): SUBSCRIBE, SUBSCRIBE_UPDATE and the per-version responses. */
import { DecodeError, ErrorCode, MoqError } from "../error.ts";
import { normalizePath } from "./path.ts";
import { type Cursor, type Encoder, getMessage, getPlusOne, putMessage, putPlusOne, putTyped } from "./primitives.ts";
import { requireEncodable, requireVersion } from "./setup.ts";
import type { LiteVersion } from "./version.ts";

/** SUBSCRIBE: the first message on a Subscribe stream. Fields after `priority` are lite-03+. */
export interface Subscribe {
	/** Unique per session and direction. */
	id: number;
	/** Broadcast path relative to the session root. */
	broadcast: string;
	/** Track name. */
	track: string;
	/** Subscriber priority 0..255, higher first. */
	priority: number;
	/** lite-03..05: true = oldest group first (not on the wire in lite-06: decoded as false). */
	ordered: boolean;
	/** lite-03+: max latency (lite-06: max age) in ms. */
	maxLatencyMs: number;
	/** lite-03+: first group wanted; undefined = latest (lite-06: newest the max age allows). */
	startGroup: number | undefined;
	/** lite-03+: last group wanted (inclusive); undefined = unbounded. */
	endGroup: number | undefined;
	/** lite-06: first frame wanted of `startGroup` (0 = all); absent before lite-06. */
	startFrame?: number;
	/** lite-06: last frame wanted of `endGroup` (inclusive), undefined = to its end; absent before lite-06. */
	endFrame?: number | undefined;
}

/** SUBSCRIBE_UPDATE (lite-03+): replaces the subscriber's preferences. */
export interface SubscribeUpdate {
	/** Subscriber priority 0..255. */
	priority: number;
	/** true = oldest group first. */
	ordered: boolean;
	/** Max latency in ms. */
	maxLatencyMs: number;
	/** First group wanted; undefined = latest. */
	startGroup: number | undefined;
	/** Last group wanted (inclusive); undefined = unbounded. */
	endGroup: number | undefined;
	/** lite-06: first frame of `startGroup` (0 = all); absent before lite-06. */
	startFrame?: number;
	/** lite-06: last frame of `endGroup` (inclusive); absent before lite-06. */
	endFrame?: number | undefined;
}

/** The fields SUBSCRIBE and SUBSCRIBE_UPDATE share after the priority. */
type Preferences = Omit<SubscribeUpdate, "priority">;

/**
 * lite-03..05: `Ordered (8), Max Latency (i), Group Start (+1), Group End (+1)`.
 * lite-06: `Max Age (i), Group Start (raw), Group End (+1), Frame Start (i), Frame End (+1)`: no
 * Ordered byte, and Group Start is the plain sequence, 0 = no floor (undefined and 0 write the same
 * bytes). A frame bound needs its group; frame bounds before lite-06 are local misuse.
 */
function putPreferences(b: Encoder, m: Preferences, version: LiteVersion): void {
	const startFrame = m.startFrame ?? 0;
	if (version < 6) {
		if (startFrame !== 0 || m.endFrame !== undefined)
			throw new MoqError(ErrorCode.Unsupported, `frame bounds do not exist in moq-lite-0${version}`);
		b.bool(m.ordered).varint(m.maxLatencyMs);
		putPlusOne(b, m.startGroup);
		putPlusOne(b, m.endGroup);
		return;
	}
	if ((startFrame !== 0 && m.startGroup === undefined) || (m.endFrame !== undefined && m.endGroup === undefined))
		throw new RangeError("a frame bound needs its group");
	b.varint(m.maxLatencyMs).varint(m.startGroup ?? 0);
	putPlusOne(b, m.endGroup);
	b.varint(startFrame);
	putPlusOne(b, m.endFrame);
}

function getPreferences(b: Cursor, version: LiteVersion): Preferences {
	if (version < 6) {
		return {
			ordered: b.bool("ordered"),
			maxLatencyMs: b.varint(),
			startGroup: getPlusOne(b),
			endGroup: getPlusOne(b),
		};
	}
	const maxLatencyMs = b.varint();
	const start = b.varint();
	const endGroup = getPlusOne(b);
	const startFrame = b.varint();
	const endFrame = getPlusOne(b);
	// spec (lite-06): a Frame End qualifies a Group End; without one there is nothing to count from.
	if (endFrame !== undefined && endGroup === undefined) throw new DecodeError("frame end without a group end");
	// Group Start 0 with Frame Start 0 is no floor; group 0 stays named when a frame offset qualifies it.
	const startGroup = start === 0 && startFrame === 0 ? undefined : start;
	return { ordered: false, maxLatencyMs, startGroup, endGroup, startFrame, endFrame };
}

/** Publisher → subscriber messages on a Subscribe stream; which ones exist depends on the version. */
export type SubscribeResponse =
	/** lite-01 (priority on the wire) / lite-02 (empty body). */
	| { type: "ok-legacy"; priority: number }
	/** lite-03/04 typed 0x0. */
	| {
			type: "ok";
			priority: number;
			ordered: boolean;
			maxLatencyMs: number;
			startGroup: number | undefined;
			endGroup: number | undefined;
	  }
	/** lite-05 typed 0x0 (SUBSCRIBE_OK / SUBSCRIBE_START): the first group that will be delivered. */
	| { type: "start"; group: number }
	/** lite-05 typed 0x1: the first group that will never come (exclusive end). */
	| { type: "end"; group: number }
	/** lite-03/04 typed 0x1, lite-05 typed 0x2: groups [start, end] will not come. */
	| { type: "drop"; start: number; end: number; errorCode: number };

/** Encode SUBSCRIBE. */
export function encodeSubscribe(e: Encoder, m: Subscribe, version: LiteVersion): void {
	putMessage(e, (b) => {
		b.varint(m.id).string(m.broadcast).string(m.track).u8(m.priority);
		if (version >= 3) putPreferences(b, m, version);
	});
}

/** Decode SUBSCRIBE. */
export function decodeSubscribe(c: Cursor, version: LiteVersion): Subscribe {
	return getMessage(c, (b) => {
		const id = b.varint();
		const broadcast = normalizePath(b.string("broadcast"));
		const track = b.string("track");
		const priority = b.u8();
		if (version < 3) {
			return {
				id,
				broadcast,
				track,
				priority,
				ordered: false,
				maxLatencyMs: 0,
				startGroup: undefined,
				endGroup: undefined,
			};
		}
		return { id, broadcast, track, priority, ...getPreferences(b, version) };
	});
}

/** Encode SUBSCRIBE_UPDATE (lite-03+). */
export function encodeSubscribeUpdate(e: Encoder, m: SubscribeUpdate, version: LiteVersion): void {
	requireEncodable(version >= 3, "SUBSCRIBE_UPDATE", version);
	putMessage(e, (b) => {
		b.u8(m.priority);
		putPreferences(b, m, version);
	});
}

/** Decode SUBSCRIBE_UPDATE (lite-03+). */
export function decodeSubscribeUpdate(c: Cursor, version: LiteVersion): SubscribeUpdate {
	requireVersion(version >= 3, "SUBSCRIBE_UPDATE", version);
	return getMessage(c, (b) => ({ priority: b.u8(), ...getPreferences(b, version) }));
}

function allowed(m: SubscribeResponse, version: LiteVersion): boolean {
	switch (m.type) {
		case "ok-legacy":
			return version <= 2;
		case "ok":
			return version === 3 || version === 4;
		case "start":
		case "end":
			return version >= 5;
		case "drop":
			return version >= 3;
	}
}

/** Encode a subscribe response valid for `version`. */
export function encodeSubscribeResponse(e: Encoder, m: SubscribeResponse, version: LiteVersion): void {
	requireEncodable(allowed(m, version), `subscribe response ${m.type}`, version);
	switch (m.type) {
		case "ok-legacy":
			putMessage(e, (b) => {
				if (version === 1) b.u8(m.priority);
			});
			return;
		case "ok":
			putTyped(e, 0x0, (b) => {
				b.u8(m.priority).bool(m.ordered).varint(m.maxLatencyMs);
				putPlusOne(b, m.startGroup);
				putPlusOne(b, m.endGroup);
			});
			return;
		case "start":
			putTyped(e, 0x0, (b) => b.varint(m.group));
			return;
		case "end":
			putTyped(e, 0x1, (b) => b.varint(m.group));
			return;
		case "drop":
			putTyped(e, version >= 5 ? 0x2 : 0x1, (b) => b.varint(m.start).varint(m.end).varint(m.errorCode));
			return;
	}
}

function getDrop(b: Cursor): SubscribeResponse {
	return { type: "drop", start: b.varint(), end: b.varint(), errorCode: b.varint() };
}

/** Decode a subscribe response for `version`. */
export function decodeSubscribeResponse(c: Cursor, version: LiteVersion): SubscribeResponse {
	if (version === 1) return getMessage(c, (b) => ({ type: "ok-legacy", priority: b.u8() }));
	if (version === 2) return getMessage(c, () => ({ type: "ok-legacy", priority: 0 }));
	const type = c.varint();
	if (version === 3 || version === 4) {
		if (type === 0x0) {
			return getMessage(c, (b) => ({
				type: "ok",
				priority: b.u8(),
				ordered: b.bool("ordered"),
				maxLatencyMs: b.varint(),
				startGroup: getPlusOne(b),
				endGroup: getPlusOne(b),
			}));
		}
		if (type === 0x1) return getMessage(c, getDrop);
	} else {
		if (type === 0x0) return getMessage(c, (b) => ({ type: "start", group: b.varint() }));
		if (type === 0x1) return getMessage(c, (b) => ({ type: "end", group: b.varint() }));
		if (type === 0x2) return getMessage(c, getDrop);
	}
	throw new DecodeError(`invalid subscribe response type ${type}`);
}
