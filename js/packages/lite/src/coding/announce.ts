/**
 * Discovery messages (spec §5.1–§5.4): ANNOUNCE_REQUEST, ANNOUNCE_OK (05/06), ANNOUNCE_INIT (01/02),
 * ANNOUNCE (01..05) and the typed lite-06 ANNOUNCE_START / END / UPDATE.
 */
import { DecodeError, ErrorCode, MoqError } from "../error.ts";
import { normalizePath } from "./path.ts";
import {
	type Cursor,
	type Encoder,
	getMessage,
	MAX_ANNOUNCE_INIT,
	MAX_HOPS,
	putMessage,
	putTyped,
} from "./primitives.ts";
import { requireEncodable, requireVersion } from "./setup.ts";
import type { LiteVersion } from "./version.ts";

/** ANNOUNCE_REQUEST (a.k.a. ANNOUNCE_PLEASE): the first message on an Announce stream. */
export interface AnnounceRequest {
	/** Broadcast path prefix ("" = everything in scope). */
	prefix: string;
	/** lite-04/05 only: the subscriber's origin id to exclude, 0 = none (lite-06 names it in SETUP Origin). */
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
	requireEncodable(version <= 5, "ANNOUNCE", version);
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

/** Decode ANNOUNCE (lite-01..05; lite-06 has {@link AnnounceMessage} instead). */
export function decodeAnnounce(c: Cursor, version: LiteVersion): Announce {
	requireVersion(version <= 5, "ANNOUNCE", version);
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

/**
 * A lite-06 route cost: warm = what the path costs now, cold = the same path without any relay's
 * "I carry it already" discount. Each ≤ 2^62 − 1 (bigint: the saturated value is not a JS number);
 * larger values saturate when encoded.
 */
export interface RouteCost {
	/** The cost now. */
	warm: bigint;
	/** The cost with nothing cached along the path. */
	cold: bigint;
}

/**
 * A lite-06 announcement, typed (the type sits outside the length). The n-th START on a stream has
 * id n (from 0); END retires an id; UPDATE replaces the chain and cost of a live id.
 */
export type AnnounceMessage =
	/** 0x0: a new live path; takes the next id. */
	| { type: "start"; suffix: string; hops: number[]; cost: RouteCost }
	/** 0x1: the path of `id` is gone. */
	| { type: "end"; id: number }
	/** 0x2: a new route (chain and cost) for the live path of `id`. */
	| { type: "update"; id: number; hops: number[]; cost: RouteCost }
	/** A type this codec does not know, skipped by its length (takes no id). Decode only. */
	| { type: "unknown"; kind: number };

/** Announcement types (lite-06). */
export const AnnounceType = { Start: 0x0, End: 0x1, Update: 0x2 } as const;

function putHopsAndCost(b: Encoder, hops: number[], cost: RouteCost): void {
	if (hops.length > MAX_HOPS) throw new RangeError(`${hops.length} hops exceed ${MAX_HOPS}`);
	b.varint(hops.length);
	for (const hop of hops) b.varint(hop);
	b.varintBig(cost.warm).varintBig(cost.cold);
}

function getHopsAndCost(b: Cursor): { hops: number[]; cost: RouteCost } {
	const count = b.bounded(MAX_HOPS, "hop count");
	const hops: number[] = [];
	for (let i = 0; i < count; i++) hops.push(b.varint());
	return { hops, cost: { warm: b.varintBig(), cold: b.varintBig() } };
}

/** Encode a lite-06 announcement. */
export function encodeAnnounceMessage(e: Encoder, m: AnnounceMessage, version: LiteVersion): void {
	requireEncodable(version >= 6, "ANNOUNCE_START/END/UPDATE", version);
	switch (m.type) {
		case "start":
			putTyped(e, AnnounceType.Start, (b) => {
				b.string(m.suffix);
				putHopsAndCost(b, m.hops, m.cost);
			});
			return;
		case "end":
			putTyped(e, AnnounceType.End, (b) => b.varint(m.id));
			return;
		case "update":
			putTyped(e, AnnounceType.Update, (b) => {
				b.varint(m.id);
				putHopsAndCost(b, m.hops, m.cost);
			});
			return;
		case "unknown":
			// Never sent by a session; written empty so a round trip holds.
			putTyped(e, m.kind, () => {});
			return;
	}
}

/** Decode a lite-06 announcement; an unknown type is consumed whole and returned as "unknown". */
export function decodeAnnounceMessage(c: Cursor, version: LiteVersion): AnnounceMessage {
	requireVersion(version >= 6, "ANNOUNCE_START/END/UPDATE", version);
	const kind = c.varint();
	return getMessage(c, (b): AnnounceMessage => {
		switch (kind) {
			case AnnounceType.Start: {
				const suffix = normalizePath(b.string("suffix"));
				return { type: "start", suffix, ...getHopsAndCost(b) };
			}
			case AnnounceType.End:
				return { type: "end", id: b.varint() };
			case AnnounceType.Update: {
				const id = b.varint();
				return { type: "update", id, ...getHopsAndCost(b) };
			}
			default:
				// spec (lite-06): an unknown type is skipped by its length, the stream stays up.
				b.bytes(b.remaining);
				return { type: "unknown", kind };
		}
	});
}

/**
 * The implicit announce ids of one lite-06 Announce stream, receiver's view: the n-th START is id
 * n, END retires an id, ids are never reused. Pure state, driven by {@link AnnounceIds.apply}.
 */
export class AnnounceIds {
	#next = 0;
	readonly #live = new Map<number, string>();
	readonly #byPath = new Map<string, number>();

	/** Live ids. */
	get size(): number {
		return this.#live.size;
	}

	/**
	 * Apply a received announcement: the suffix it concerns and whether it is now live, or
	 * undefined for an unknown type (skipped). Throws a protocol violation for a START of a live
	 * suffix, or an END/UPDATE of an unknown or retired id.
	 */
	apply(m: AnnounceMessage): { suffix: string; active: boolean; hops: number[] } | undefined {
		switch (m.type) {
			case "start": {
				// spec (lite-06): one live announcement per suffix; a replacement is an UPDATE.
				if (this.#byPath.has(m.suffix)) throw violation(`ANNOUNCE_START for live path ${m.suffix}`);
				const id = this.#next++;
				this.#live.set(id, m.suffix);
				this.#byPath.set(m.suffix, id);
				return { suffix: m.suffix, active: true, hops: m.hops };
			}
			case "update": {
				const suffix = this.#live.get(m.id);
				if (suffix === undefined) throw violation(`ANNOUNCE_UPDATE for unknown id ${m.id}`);
				return { suffix, active: true, hops: m.hops };
			}
			case "end": {
				const suffix = this.#live.get(m.id);
				if (suffix === undefined) throw violation(`ANNOUNCE_END for unknown id ${m.id}`);
				this.#live.delete(m.id);
				this.#byPath.delete(suffix);
				return { suffix, active: false, hops: [] };
			}
			case "unknown":
				return undefined;
		}
	}
}

function violation(message: string): MoqError {
	return new MoqError(ErrorCode.ProtocolViolation, message);
}
