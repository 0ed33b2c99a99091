/** PROBE (spec §5.14) and GOAWAY (spec §5.15). */
import { type Cursor, type Encoder, getMessage, putMessage } from "./primitives.ts";
import { requireEncodable, requireVersion } from "./setup.ts";
import type { LiteVersion } from "./version.ts";

/** PROBE (lite-03+): bitrate, and RTT from lite-04. */
export interface Probe {
	/** Bits per second, 0 = unknown. */
	bitrate: number;
	/** RTT in ms (lite-04+), 0 = unknown. */
	rttMs: number;
}

/** GOAWAY (lite-04+). */
export interface Goaway {
	/** New session URI, "" = just close. */
	uri: string;
}

/** Encode PROBE. */
export function encodeProbe(e: Encoder, m: Probe, version: LiteVersion): void {
	requireEncodable(version >= 3, "PROBE", version);
	putMessage(e, (b) => {
		b.varint(m.bitrate);
		if (version >= 4) b.varint(m.rttMs);
	});
}

/** Decode PROBE. */
export function decodeProbe(c: Cursor, version: LiteVersion): Probe {
	requireVersion(version >= 3, "PROBE", version);
	return getMessage(c, (b) => ({ bitrate: b.varint(), rttMs: version >= 4 ? b.varint() : 0 }));
}

/** Encode GOAWAY. */
export function encodeGoaway(e: Encoder, m: Goaway, version: LiteVersion): void {
	requireEncodable(version >= 4, "GOAWAY", version);
	putMessage(e, (b) => b.string(m.uri));
}

/** Decode GOAWAY. */
export function decodeGoaway(c: Cursor, version: LiteVersion): Goaway {
	requireVersion(version >= 4, "GOAWAY", version);
	return getMessage(c, (b) => ({ uri: b.string("uri") }));
}
