/** Discovery messages (spec §5.1–§5.4): ANNOUNCE_REQUEST, ANNOUNCE_OK (05), ANNOUNCE_INIT (01/02), ANNOUNCE. */
import { DecodeError } from "../error.ts";
import { normalizePath } from "./path.ts";
import { type Cursor, type Encoder, getMessage, MAX_ANNOUNCE_INIT, MAX_HOPS, putMessage } from "./primitives.ts";
import { requireEncodable, requireVersion } from "./setup.ts";
import type { LiteVersion } from "./version.ts";

/** ANNOUNCE_REQUEST (a.k.a. ANNOUNCE_PLEASE): the first message on an Announce stream. */
export interface AnnounceRequest {
	/** Broadcast path prefix ("" = everything in scope). */
	prefix: string;
	/** lite-04/05 only: the subscriber's origin id to exclude, 0 = none. */
	excludeHop: number;
}

/** ANNOUNCE_OK (lite-05): the publisher's hop id and the size of the initial snapshot. */
export interface AnnounceOk {
	/** The responder's origin id (0 = unknown). */
	hopId: number;
	/** Number of ANNOUNCE messages that follow as the initial snapshot. */
	activeCount: number;
}

/** ANNOUNCE_INIT (lite-01/02): the initial set of live broadcasts. */
export interface AnnounceInit {
	/** Paths relative to the prefix. */
	suffixes: string[];
}

/** ANNOUNCE status: 0 ended, 1 active, 2 restart (lite-05 only). */
export type AnnounceStatus = 0 | 1 | 2;

/** ANNOUNCE (lite-01..05). */
export interface Announce {
	/** 0 ended, 1 active, 2 restart (lite-05). */
	status: AnnounceStatus;
	/** Path relative to the request prefix. */
	suffix: string;
	/** Hop ids (lite-04/05); on lite-03 only the count is on the wire (ids read as 0); empty on 01/02. */
	hops: number[];
}

function hasExcludeHop(version: LiteVersion): boolean {
	return version === 4 || version === 5;
}

/** Encode ANNOUNCE_REQUEST. */
export function encodeAnnounceRequest(e: Encoder, m: AnnounceRequest, version: LiteVersion): void {
	putMessage(e, (b) => {
		b.string(m.prefix);
		if (hasExcludeHop(version)) b.varint(m.excludeHop);
	});
}

/** Decode ANNOUNCE_REQUEST. */
export function decodeAnnounceRequest(c: Cursor, version: LiteVersion): AnnounceRequest {
	return getMessage(c, (b) => ({
		prefix: normalizePath(b.string("prefix")),
		excludeHop: hasExcludeHop(version) ? b.varint() : 0,
	}));
}

/** Encode ANNOUNCE_OK (lite-05). */
export function encodeAnnounceOk(e: Encoder, m: AnnounceOk, version: LiteVersion): void {
	requireEncodable(version >= 5, "ANNOUNCE_OK", version);
	putMessage(e, (b) => b.varint(m.hopId).varint(m.activeCount));
}

/** Decode ANNOUNCE_OK (lite-05). */
export function decodeAnnounceOk(c: Cursor, version: LiteVersion): AnnounceOk {
	requireVersion(version >= 5, "ANNOUNCE_OK", version);
	return getMessage(c, (b) => ({ hopId: b.varint(), activeCount: b.varint() }));
}

/** Encode ANNOUNCE_INIT (lite-01/02). */
export function encodeAnnounceInit(e: Encoder, m: AnnounceInit, version: LiteVersion): void {
	requireEncodable(version <= 2, "ANNOUNCE_INIT", version);
	putMessage(e, (b) => {
		b.varint(m.suffixes.length);
		for (const s of m.suffixes) b.string(s);
	});
}

/** Decode ANNOUNCE_INIT (lite-01/02). */
export function decodeAnnounceInit(c: Cursor, version: LiteVersion): AnnounceInit {
	requireVersion(version <= 2, "ANNOUNCE_INIT", version);
	return getMessage(c, (b) => {
		const count = b.bounded(MAX_ANNOUNCE_INIT, "announce count");
		const suffixes: string[] = [];
		for (let i = 0; i < count; i++) suffixes.push(normalizePath(b.string("suffix")));
		return { suffixes };
	});
}

/** Encode ANNOUNCE; a restart (2) is sent as active (1) before lite-05. */
export function encodeAnnounce(e: Encoder, m: Announce, version: LiteVersion): void {
	if (m.hops.length > MAX_HOPS) throw new RangeError(`${m.hops.length} hops exceed ${MAX_HOPS}`);
	const status = m.status === 2 && version < 5 ? 1 : m.status;
	putMessage(e, (b) => {
		b.u8(status);
		b.string(m.suffix);
		if (version === 3) b.varint(m.hops.length);
		if (version >= 4) {
			b.varint(m.hops.length);
			for (const hop of m.hops) b.varint(hop);
		}
	});
}

/** Decode ANNOUNCE. */
export function decodeAnnounce(c: Cursor, version: LiteVersion): Announce {
	return getMessage(c, (b) => {
		const status = b.u8();
		if (status > 2 || (status === 2 && version < 5)) throw new DecodeError(`invalid announce status ${status}`);
		const suffix = normalizePath(b.string("suffix"));
		const hops: number[] = [];
		if (version === 3) {
			const count = b.bounded(MAX_HOPS, "hop count");
			for (let i = 0; i < count; i++) hops.push(0);
		} else if (version >= 4) {
			const count = b.bounded(MAX_HOPS, "hop count");
			for (let i = 0; i < count; i++) hops.push(b.varint());
		}
		return { status: status as AnnounceStatus, suffix, hops };
	});
}
