/** Stream type varints (spec §3). */

/** Bidirectional stream types (spec §3.1). */
export const BiStream = {
	/** lite-01/02 Session (historical). */
	Session: 0x0,
	/** ANNOUNCE_REQUEST → announcements. */
	Announce: 0x1,
	/** SUBSCRIBE → responses. */
	Subscribe: 0x2,
	/** FETCH → frames (lite-05). */
	Fetch: 0x3,
	/** PROBE reports (lite-03+). */
	Probe: 0x4,
	/** GOAWAY (lite-04+). */
	Goaway: 0x5,
	/** TRACK → TRACK_INFO (lite-05). */
	Track: 0x6,
	/** Compat CLIENT_SETUP (lite-01/02). */
	ClientCompat: 0x20,
} as const;

/** Unidirectional stream types (spec §3.2). */
export const UniStream = {
	/** GROUP header then FRAMEs. */
	Group: 0x0,
	/** SETUP (lite-05). */
	Setup: 0x1,
} as const;
