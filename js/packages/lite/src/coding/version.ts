/** moq-lite versions as the codec sees them (spec §1.1). Encoders/decoders take one of these. */

/** The lite draft number: 1..6 = moq-lite-01..06. */
export type LiteVersion = 1 | 2 | 3 | 4 | 5 | 6;

/** Named lite versions. */
export const Lite = {
	/** moq-lite-01 (compat SETUP, code 0xff0dad01). */
	V01: 1,
	/** moq-lite-02 (compat SETUP, code 0xff0dad02). */
	V02: 2,
	/** moq-lite-03 (ALPN). */
	V03: 3,
	/** moq-lite-04 (ALPN). */
	V04: 4,
	/** moq-lite-05 (ALPN + SETUP stream). */
	V05: 5,
	/** moq-lite-06 (ALPN + SETUP stream; typed announcements, frame bounds), as moq-relay 0.17.10 speaks it. */
	V06: 6,
} as const satisfies Record<string, LiteVersion>;

/** The SETUP version code: 0xff0dad00 + draft. */
export function versionCode(v: LiteVersion): number {
	return 0xff0dad00 + v;
}

/** The lite version for a SETUP version code, if it is one. */
export function versionFromCode(code: number): LiteVersion | undefined {
	const n = code - 0xff0dad00;
	return n >= 1 && n <= 6 ? (n as LiteVersion) : undefined;
}

/** The ALPN / WebTransport protocol string (01/02 share "moql"). */
export function versionAlpn(v: LiteVersion): string {
	return v <= 2 ? "moql" : `moq-lite-0${v}`;
}

/** The version fixed by an ALPN / WT protocol string; undefined for "moql"/none (compat path). */
export function versionFromAlpn(alpn: string | undefined): LiteVersion | undefined {
	switch (alpn) {
		case "moq-lite-03":
			return 3;
		case "moq-lite-04":
			return 4;
		case "moq-lite-05":
			return 5;
		case "moq-lite-06":
			return 6;
		default:
			return undefined;
	}
}
