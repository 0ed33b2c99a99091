/** SETUP (lite-05, spec §4), the compat CLIENT/SERVER_SETUP (lite-01/02, spec §1.6) and SESSION_INFO. */
import { DecodeError, ErrorCode, MoqError } from "../error.ts";
import {
	type Cursor,
	decodeUtf8,
	Encoder,
	encode,
	exactly,
	getMessage,
	MAX_MESSAGE_SIZE,
	MAX_PARAMETERS,
	MAX_STRING_SIZE,
	MAX_VERSIONS,
	putMessage,
	varintLength,
} from "./primitives.ts";
import type { LiteVersion } from "./version.ts";

/** SETUP parameter IDs (spec §4). */
export const SetupParam = {
	/** Probe level: 0 none, 1 report, 2 increase. */
	Probe: 0x1,
	/** Path (+query), URI-less bindings only. */
	Path: 0x2,
	/** Role: 0 both, 1 publisher, 2 subscriber. */
	Role: 0x3,
	/** Cost (absent = 1). */
	Cost: 0x4,
	/** Origin hop ID (0 = absent). */
	Origin: 0x5,
} as const;

/** The lite-05 SETUP message. Absent fields = parameter not sent. */
export interface Setup {
	/** 0x1 Probe level (unknown ≥ 2 read as 2). */
	probe?: number;
	/** 0x2 Path + query; empty ≡ absent. */
	path?: string;
	/** 0x3 Role (unknown read as 0, both). */
	role?: number;
	/** 0x4 Cost. */
	cost?: number;
	/** 0x5 Origin hop ID; 0 ≡ absent. */
	origin?: number;
}

function requireVersion(ok: boolean, what: string, version: LiteVersion): void {
	if (!ok)
		throw new DecodeError(`${what} does not exist in moq-lite-0${version}`, { code: ErrorCode.UnexpectedMessage });
}

function requireEncodable(ok: boolean, what: string, version: LiteVersion): void {
	if (!ok) throw new MoqError(ErrorCode.Unsupported, `${what} does not exist in moq-lite-0${version}`);
}

export { requireEncodable, requireVersion };

function putVarintParam(e: Encoder, id: number, v: number): void {
	e.varint(id).varint(varintLength(v)).varint(v);
}

/** Encode SETUP (parameters in ascending ID order). */
export function encodeSetup(e: Encoder, s: Setup, version: LiteVersion): void {
	requireEncodable(version >= 5, "SETUP", version);
	const path = s.path === "" ? undefined : s.path;
	const origin = s.origin === 0 ? undefined : s.origin;
	putMessage(e, (b) => {
		const count = [s.probe, path, s.role, s.cost, origin].filter((v) => v !== undefined).length;
		b.varint(count);
		if (s.probe !== undefined) putVarintParam(b, SetupParam.Probe, s.probe);
		if (path !== undefined) b.varint(SetupParam.Path).string(path);
		if (s.role !== undefined) putVarintParam(b, SetupParam.Role, s.role);
		if (s.cost !== undefined) putVarintParam(b, SetupParam.Cost, s.cost);
		if (origin !== undefined) putVarintParam(b, SetupParam.Origin, origin);
	});
}

function varintParam(c: Cursor): number {
	return exactly(c, (b) => b.varint(), "parameter");
}

/** Decode SETUP: unknown IDs ignored, duplicates invalid (spec §4). */
export function decodeSetup(c: Cursor, version: LiteVersion): Setup {
	requireVersion(version >= 5, "SETUP", version);
	return getMessage(c, (b) => {
		const count = b.bounded(MAX_PARAMETERS, "parameter count");
		const seen = new Set<number>();
		const s: Setup = {};
		for (let i = 0; i < count; i++) {
			const id = b.varint();
			const len = b.bounded(MAX_MESSAGE_SIZE, "parameter length");
			const value = b.sub(len);
			// spec: §4 duplicates are a protocol violation.
			if (seen.has(id)) throw new DecodeError(`duplicate SETUP parameter ${id}`, { code: ErrorCode.Duplicate });
			seen.add(id);
			switch (id) {
				case SetupParam.Probe:
					s.probe = Math.min(varintParam(value), 2);
					break;
				case SetupParam.Path: {
					if (len > MAX_STRING_SIZE) throw new DecodeError("path parameter too long");
					const path = decodeUtf8(value.bytes(len), "path");
					if (path !== "") s.path = path;
					break;
				}
				case SetupParam.Role: {
					const role = varintParam(value);
					s.role = role === 1 || role === 2 ? role : 0;
					break;
				}
				case SetupParam.Cost:
					s.cost = varintParam(value);
					break;
				case SetupParam.Origin: {
					const origin = varintParam(value);
					if (origin !== 0) s.origin = origin;
					break;
				}
				// spec: §4 unknown IDs are ignored.
			}
		}
		return s;
	});
}

/** Compat CLIENT_SETUP type byte. */
export const CLIENT_SETUP_COMPAT = 0x20;
/** Compat SERVER_SETUP type byte. */
export const SERVER_SETUP_COMPAT = 0x21;

/** A compat (IETF-style) parameter: even key → varint value, odd key → bytes. */
export interface CompatParam {
	/** Parameter key. */
	key: number;
	/** A number for even keys, bytes for odd keys. */
	value: number | Uint8Array;
}

/** Compat CLIENT_SETUP (spec §1.6). */
export interface ClientSetupCompat {
	/** Offered version codes, most preferred first. */
	versions: number[];
	/** Parameters in wire order. */
	params: CompatParam[];
}

/** Compat SERVER_SETUP (spec §1.6). */
export interface ServerSetupCompat {
	/** The selected version code. */
	version: number;
	/** Parameters: lite style (id, bytes) when a lite version is selected, IETF style otherwise (varints re-encoded as bytes). */
	params: { id: number; value: Uint8Array }[];
}

function putCompat(e: Encoder, type: number, body: (b: Encoder) => void): void {
	const inner = new Encoder();
	body(inner);
	if (inner.length > 0xffff) throw new MoqError(ErrorCode.Encode, `compat SETUP of ${inner.length} bytes`);
	e.u8(type).u16(inner.length).bytes(inner.finish());
}

function getCompat<T>(c: Cursor, body: (b: Cursor) => T): T {
	const len = c.u16();
	return exactly(c.sub(len), body, "compat SETUP");
}

/** Encode CLIENT_SETUP including its 0x20 type byte. */
export function encodeClientSetupCompat(e: Encoder, m: ClientSetupCompat): void {
	putCompat(e, CLIENT_SETUP_COMPAT, (b) => {
		b.varint(m.versions.length);
		for (const v of m.versions) b.varint(v);
		b.varint(m.params.length);
		for (const p of m.params) {
			b.varint(p.key);
			if (typeof p.value === "number") {
				if (p.key % 2 !== 0) throw new RangeError(`varint compat parameter with odd key ${p.key}`);
				b.varint(p.value);
			} else {
				if (p.key % 2 !== 1) throw new RangeError(`bytes compat parameter with even key ${p.key}`);
				b.varint(p.value.length).bytes(p.value);
			}
		}
	});
}

/** Decode CLIENT_SETUP, starting after the 0x20 byte (read as the bidi stream type). */
export function decodeClientSetupCompat(c: Cursor): ClientSetupCompat {
	return getCompat(c, (b) => {
		const count = b.bounded(MAX_VERSIONS, "version count");
		const versions: number[] = [];
		for (let i = 0; i < count; i++) versions.push(b.varint());
		const n = b.bounded(MAX_PARAMETERS, "parameter count");
		const params: CompatParam[] = [];
		const seen = new Set<number>();
		for (let i = 0; i < n; i++) {
			const key = b.varint();
			const value = key % 2 === 0 ? b.varint() : b.sized(MAX_MESSAGE_SIZE, "parameter");
			if (seen.has(key)) throw new DecodeError(`duplicate compat parameter ${key}`, { code: ErrorCode.Duplicate });
			seen.add(key);
			params.push({ key, value });
		}
		return { versions, params };
	});
}

function isLiteCode(code: number): boolean {
	const n = code - 0xff0dad00;
	return n >= 1 && n <= 5;
}

/** Encode SERVER_SETUP including its 0x21 type byte. */
export function encodeServerSetupCompat(e: Encoder, m: ServerSetupCompat): void {
	putCompat(e, SERVER_SETUP_COMPAT, (b) => {
		b.varint(m.version);
		b.varint(m.params.length);
		const lite = isLiteCode(m.version);
		for (const p of m.params) {
			b.varint(p.id);
			if (lite || p.id % 2 === 1) b.varint(p.value.length).bytes(p.value);
			else b.bytes(p.value);
		}
	});
}

/** Decode SERVER_SETUP, expecting its 0x21 type byte first. */
export function decodeServerSetupCompat(c: Cursor): ServerSetupCompat {
	const type = c.u8();
	if (type !== SERVER_SETUP_COMPAT) throw new DecodeError(`expected SERVER_SETUP (0x21), got ${type}`);
	return getCompat(c, (b) => {
		const version = b.varint();
		const lite = isLiteCode(version);
		const n = b.bounded(MAX_PARAMETERS, "parameter count");
		const params: { id: number; value: Uint8Array }[] = [];
		const seen = new Set<number>();
		for (let i = 0; i < n; i++) {
			const id = b.varint();
			let value: Uint8Array;
			if (lite || id % 2 === 1) {
				value = b.sized(MAX_MESSAGE_SIZE, "parameter");
			} else {
				const v = b.varint();
				value = encode((e) => e.varint(v));
			}
			if (seen.has(id)) throw new DecodeError(`duplicate compat parameter ${id}`, { code: ErrorCode.Duplicate });
			seen.add(id);
			params.push({ id, value });
		}
		return { version, params };
	});
}

/** lite-01/02 SESSION_INFO on the compat stream. */
export interface SessionInfo {
	/** Estimated bitrate, 0 = unknown. */
	bitrate: number;
}

/** Encode SESSION_INFO. */
export function encodeSessionInfo(e: Encoder, m: SessionInfo): void {
	putMessage(e, (b) => b.varint(m.bitrate));
}

/** Decode SESSION_INFO. */
export function decodeSessionInfo(c: Cursor): SessionInfo {
	return getMessage(c, (b) => ({ bitrate: b.varint() }));
}
