/**
 * Wire primitives (spec §2): QUIC varints, raw bytes, strings, zigzag, length-prefixed messages.
 *
 * Decoding works on a {@link Cursor} over bytes already received. Running out of bytes throws a
 * {@link DecodeError} with `short = true` ("need more"); every other failure is a DecodeError with
 * `short = false` ("invalid"). Nothing else is ever thrown by a decoder. Every length and count read
 * from the wire is checked against a `MAX_*` constant before anything is allocated.
 */
import { DecodeError, ErrorCode, MoqError } from "../error.ts";

/** Largest control message body (Length field) accepted or sent: 64 KiB. */
export const MAX_MESSAGE_SIZE = 64 * 1024;
/** Largest string (path, track name, URI) accepted. */
export const MAX_STRING_SIZE = 8 * 1024;
/** Largest frame payload accepted or sent: 16 MiB. */
export const MAX_FRAME_SIZE = 16 * 1024 * 1024;
/** Most segments in a broadcast path (spec §2). */
export const MAX_PATH_SEGMENTS = 32;
/** Most hop IDs in a hop list (spec §2). */
export const MAX_HOPS = 32;
/** Most SETUP parameters (spec §2). */
export const MAX_PARAMETERS = 64;
/** Most versions in a compat CLIENT_SETUP. */
export const MAX_VERSIONS = 64;
/** Most suffixes in an ANNOUNCE_INIT. */
export const MAX_ANNOUNCE_INIT = 4096;
/** Largest varint value this implementation represents (JS numbers are exact up to 2^53 − 1). */
export const MAX_VARINT = Number.MAX_SAFE_INTEGER;
/** Largest QUIC varint (2^62 − 1), as a bigint: lite-06 route costs saturate here. */
export const MAX_VARINT_BIG = (1n << 62n) - 1n;
/** Largest magnitude of a zigzag-encoded value so its varint stays ≤ {@link MAX_VARINT}. */
export const MAX_ZIGZAG = 2 ** 52 - 1;

/** The shared "need more bytes" error (cheap: thrown on every partial read). */
const SHORT = new DecodeError("need more bytes", { short: true });

/** True for the "need more bytes" error. */
export function isShort(err: unknown): boolean {
	return err instanceof DecodeError && err.short;
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** A read position over a byte range. Methods throw DecodeError only. */
export class Cursor {
	readonly #buf: Uint8Array;
	#pos: number;
	readonly #end: number;

	/** A cursor over `buf[pos..end)`. */
	constructor(buf: Uint8Array, pos = 0, end = buf.length) {
		this.#buf = buf;
		this.#pos = pos;
		this.#end = end;
	}

	/** Bytes left. */
	get remaining(): number {
		return this.#end - this.#pos;
	}

	/** Bytes consumed from the start of the underlying buffer. */
	get position(): number {
		return this.#pos;
	}

	/** One raw byte. */
	u8(): number {
		if (this.#pos >= this.#end) throw SHORT;
		return this.#buf[this.#pos++] as number;
	}

	/** A big-endian u16 (compat SETUP framing). */
	u16(): number {
		if (this.remaining < 2) throw SHORT;
		const v = ((this.#buf[this.#pos] as number) << 8) | (this.#buf[this.#pos + 1] as number);
		this.#pos += 2;
		return v;
	}

	/** A bool byte: 0 or 1, anything else is invalid. */
	bool(what: string): boolean {
		const v = this.u8();
		if (v > 1) throw new DecodeError(`invalid ${what}: ${v}`);
		return v === 1;
	}

	/**
	 * A QUIC varint (RFC 9000 §16), accepting non-minimal forms. Values above 2^53 − 1 are rejected
	 * (code 11, bounds exceeded) since JS numbers cannot hold them exactly.
	 */
	varint(): number {
		if (this.#pos >= this.#end) throw SHORT;
		const first = this.#buf[this.#pos] as number;
		const len = 1 << (first >> 6);
		if (this.remaining < len) throw SHORT;
		const b = this.#buf;
		const p = this.#pos;
		let v: number;
		switch (len) {
			case 1:
				v = first;
				break;
			case 2:
				v = ((first & 0x3f) << 8) | (b[p + 1] as number);
				break;
			case 4:
				v = ((first & 0x3f) << 24) + ((b[p + 1] as number) << 16) + ((b[p + 2] as number) << 8) + (b[p + 3] as number);
				break;
			default: {
				const hi =
					(first & 0x3f) * 2 ** 24 + ((b[p + 1] as number) << 16) + ((b[p + 2] as number) << 8) + (b[p + 3] as number);
				const lo =
					(b[p + 4] as number) * 2 ** 24 +
					((b[p + 5] as number) << 16) +
					((b[p + 6] as number) << 8) +
					(b[p + 7] as number);
				if (hi >= 2 ** 21) throw new DecodeError("varint exceeds 2^53", { code: ErrorCode.BoundsExceeded });
				v = hi * 2 ** 32 + lo;
			}
		}
		this.#pos += len;
		return v;
	}

	/**
	 * A QUIC varint as a bigint, exact over the whole range up to 2^62 − 1 (lite-06 route costs,
	 * whose saturated value 2^62 − 1 does not fit a JS number).
	 */
	varintBig(): bigint {
		if (this.#pos >= this.#end) throw SHORT;
		const first = this.#buf[this.#pos] as number;
		const len = 1 << (first >> 6);
		if (this.remaining < len) throw SHORT;
		let v = BigInt(first & 0x3f);
		for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(this.#buf[this.#pos + i] as number);
		this.#pos += len;
		return v;
	}

	/** A varint checked against `max` ("too large" otherwise). */
	bounded(max: number, what: string): number {
		const v = this.varint();
		if (v > max) throw new DecodeError(`${what} ${v} exceeds ${max}`, { code: ErrorCode.BoundsExceeded });
		return v;
	}

	/** Exactly `n` bytes, copied (the caller may keep them). */
	bytes(n: number): Uint8Array {
		if (this.remaining < n) throw SHORT;
		const out = this.#buf.slice(this.#pos, this.#pos + n);
		this.#pos += n;
		return out;
	}

	/** A varint length (≤ `max`, checked before buffering) then that many bytes. */
	sized(max: number, what: string): Uint8Array {
		return this.bytes(this.bounded(max, `${what} length`));
	}

	/** A string: varint length (≤ {@link MAX_STRING_SIZE}) + UTF-8. */
	string(what = "string"): string {
		return decodeUtf8(this.sized(MAX_STRING_SIZE, what), what);
	}

	/** The next `n` bytes as a cursor of their own (for length-delimited bodies). */
	sub(n: number): Cursor {
		if (this.remaining < n) throw SHORT;
		const c = new Cursor(this.#buf, this.#pos, this.#pos + n);
		this.#pos += n;
		return c;
	}
}

/** Strict UTF-8 decode; invalid sequences are a DecodeError. */
export function decodeUtf8(bytes: Uint8Array, what = "string"): string {
	try {
		return utf8Decoder.decode(bytes);
	} catch {
		throw new DecodeError(`${what} is not valid UTF-8`);
	}
}

/** A growable output buffer. Encoders throw RangeError/MoqError(18) only on local misuse. */
export class Encoder {
	#buf = new Uint8Array(64);
	#len = 0;

	/** Bytes written so far. */
	get length(): number {
		return this.#len;
	}

	#reserve(n: number): void {
		if (this.#len + n <= this.#buf.length) return;
		let cap = this.#buf.length * 2;
		while (cap < this.#len + n) cap *= 2;
		const next = new Uint8Array(cap);
		next.set(this.#buf.subarray(0, this.#len));
		this.#buf = next;
	}

	/** One raw byte (0..255). */
	u8(v: number): this {
		if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError(`u8 out of range: ${v}`);
		this.#reserve(1);
		this.#buf[this.#len++] = v;
		return this;
	}

	/** A big-endian u16. */
	u16(v: number): this {
		if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`u16 out of range: ${v}`);
		this.#reserve(2);
		this.#buf[this.#len++] = v >> 8;
		this.#buf[this.#len++] = v & 0xff;
		return this;
	}

	/** A bool byte. */
	bool(v: boolean): this {
		return this.u8(v ? 1 : 0);
	}

	/** A varint in its minimal form (0 ≤ v ≤ 2^53 − 1). */
	varint(v: number): this {
		if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
		const n = varintLength(v);
		this.#reserve(n);
		const b = this.#buf;
		let p = this.#len;
		if (n === 1) {
			b[p] = v;
		} else if (n === 2) {
			b[p++] = 0x40 | (v >> 8);
			b[p] = v & 0xff;
		} else if (n === 4) {
			b[p++] = 0x80 | (v >>> 24);
			b[p++] = (v >>> 16) & 0xff;
			b[p++] = (v >>> 8) & 0xff;
			b[p] = v & 0xff;
		} else {
			const hi = Math.floor(v / 2 ** 32);
			const lo = v >>> 0;
			b[p++] = 0xc0 | (hi >>> 24);
			b[p++] = (hi >>> 16) & 0xff;
			b[p++] = (hi >>> 8) & 0xff;
			b[p++] = hi & 0xff;
			b[p++] = lo >>> 24;
			b[p++] = (lo >>> 16) & 0xff;
			b[p++] = (lo >>> 8) & 0xff;
			b[p] = lo & 0xff;
		}
		this.#len += n;
		return this;
	}

	/** A bigint varint in its minimal form; values above 2^62 − 1 saturate (lite-06 route costs). */
	varintBig(v: bigint): this {
		if (v < 0n) throw new RangeError(`varint out of range: ${v}`);
		const clamped = v > MAX_VARINT_BIG ? MAX_VARINT_BIG : v;
		if (clamped <= BigInt(Number.MAX_SAFE_INTEGER)) return this.varint(Number(clamped));
		this.#reserve(8);
		for (let i = 7; i >= 0; i--) {
			const byte = Number((clamped >> BigInt(i * 8)) & 0xffn);
			this.#buf[this.#len++] = i === 7 ? 0xc0 | byte : byte;
		}
		return this;
	}

	/** Raw bytes. */
	bytes(v: Uint8Array): this {
		this.#reserve(v.length);
		this.#buf.set(v, this.#len);
		this.#len += v.length;
		return this;
	}

	/** A string: varint length + UTF-8 (≤ {@link MAX_STRING_SIZE} bytes). */
	string(s: string): this {
		const bytes = utf8Encoder.encode(s);
		if (bytes.length > MAX_STRING_SIZE) throw new MoqError(ErrorCode.Encode, `string of ${bytes.length} bytes`);
		return this.varint(bytes.length).bytes(bytes);
	}

	/** A copy of the bytes written. */
	finish(): Uint8Array {
		return this.#buf.slice(0, this.#len);
	}
}

/** Bytes taken by the minimal varint encoding of `v`. */
export function varintLength(v: number): 1 | 2 | 4 | 8 {
	if (v < 0x40) return 1;
	if (v < 0x4000) return 2;
	if (v < 0x40000000) return 4;
	return 8;
}

/** Map a signed integer to an unsigned one (spec §2): −1→1, 1→2, −2→3. |v| ≤ {@link MAX_ZIGZAG}. */
export function zigzagEncode(v: number): number {
	if (!Number.isSafeInteger(v) || Math.abs(v) > MAX_ZIGZAG) throw new RangeError(`zigzag out of range: ${v}`);
	return v >= 0 ? v * 2 : -v * 2 - 1;
}

/** The inverse of {@link zigzagEncode}. */
export function zigzagDecode(u: number): number {
	return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
}

/** Write `Length (i)` + whatever `body` writes (spec §2 message framing). */
export function putMessage(e: Encoder, body: (b: Encoder) => void): void {
	const inner = new Encoder();
	body(inner);
	if (inner.length > MAX_MESSAGE_SIZE) throw new MoqError(ErrorCode.Encode, `message of ${inner.length} bytes`);
	e.varint(inner.length).bytes(inner.finish());
}

/** Write `Type (i)` + `Length (i)` + body (typed messages, spec §2). */
export function putTyped(e: Encoder, type: number, body: (b: Encoder) => void): void {
	e.varint(type);
	putMessage(e, body);
}

/**
 * Read `Length (i)` (checked against {@link MAX_MESSAGE_SIZE} at once), then decode exactly that
 * many bytes with `body`. "Need more" until the whole body is buffered; inside the body, running
 * short or leaving bytes over is invalid.
 */
export function getMessage<T>(c: Cursor, body: (b: Cursor) => T): T {
	const len = c.bounded(MAX_MESSAGE_SIZE, "message length");
	return exactly(c.sub(len), body, "message");
}

/** Decode all of `b` with `body`: shortfalls and leftovers are invalid. */
export function exactly<T>(b: Cursor, body: (b: Cursor) => T, what: string): T {
	let value: T;
	try {
		value = body(b);
	} catch (err) {
		if (isShort(err)) throw new DecodeError(`${what} body is truncated`);
		throw err;
	}
	if (b.remaining !== 0) throw new DecodeError(`${what} has ${b.remaining} bytes left over`);
	return value;
}

/** Read an optional group in the "+1" encoding (0 = absent). */
export function getPlusOne(c: Cursor): number | undefined {
	const v = c.varint();
	return v === 0 ? undefined : v - 1;
}

/** Write an optional group in the "+1" encoding. */
export function putPlusOne(e: Encoder, v: number | undefined): void {
	e.varint(v === undefined ? 0 : v + 1);
}

/** Result of {@link tryDecode}: the value and the bytes it took, or undefined = need more bytes. */
export type Decoded<T> = { value: T; size: number } | undefined;

/**
 * Run `fn` over `bytes`: the value and how many bytes it consumed, `undefined` if more bytes are
 * needed, or a thrown {@link DecodeError} if the bytes are invalid.
 */
export function tryDecode<T>(bytes: Uint8Array, fn: (c: Cursor) => T): Decoded<T> {
	const c = new Cursor(bytes);
	try {
		const value = fn(c);
		return { value, size: c.position };
	} catch (err) {
		if (isShort(err)) return undefined;
		if (err instanceof DecodeError) throw err;
		// Defensive: a decoder bug must still surface as a DecodeError.
		throw new DecodeError(`decoder failed: ${String(err)}`);
	}
}

/** Encode with `fn` into a fresh byte array. */
export function encode(fn: (e: Encoder) => void): Uint8Array {
	const e = new Encoder();
	fn(e);
	return e.finish();
}
