/**
 * Pure scheduling logic of the player (no WebCodecs, no DOM), unit tested in Node:
 * the playback clock of the jitter buffer, the group-skip decision, frame picking, audio sample
 * alignment, reconnect backoff and a bitrate meter.
 *
 * Units: media time (pts) in microseconds, local time in milliseconds (`performance.now()`).
 */

/**
 * The jitter buffer's playback clock: maps media time to local time.
 *
 * The reference is the earliest arrival seen, `min(arrival − pts)`: the frame that came fastest
 * defines when media time happens locally; every frame is then played `latency` after that. A
 * frame arriving later than its slot is late (played at once or dropped); frames arriving early
 * wait in the buffer. The primary source (audio when the broadcast has audio, video otherwise)
 * drives the clock; secondary observations only anchor it when no primary one has come for
 * `fallbackMs` (e.g. audio is declared but silent), so audio and video follow one clock (A/V sync).
 */
export class PlaybackClock {
	/** Target latency in ms: how long after the earliest arrival a frame is played. */
	latencyMs: number;
	/** How long secondary observations wait for a primary one before anchoring the clock. */
	readonly fallbackMs: number;
	#primary: number | undefined;
	#secondary: number | undefined;
	#secondarySince: number | undefined;

	/**
	 * @param latencyMs target latency in ms
	 * @param fallbackMs see {@link PlaybackClock.fallbackMs}
	 */
	constructor(latencyMs: number, fallbackMs = 500) {
		this.latencyMs = latencyMs;
		this.fallbackMs = fallbackMs;
	}

	/** Record that the frame with media time `ptsUs` arrived at local time `nowMs`. */
	observe(ptsUs: number, nowMs: number, primary = true): void {
		const offset = nowMs * 1000 - ptsUs;
		if (primary) {
			this.#primary = this.#primary === undefined ? offset : Math.min(this.#primary, offset);
		} else {
			this.#secondary = this.#secondary === undefined ? offset : Math.min(this.#secondary, offset);
			this.#secondarySince ??= nowMs;
		}
	}

	/** The anchor `min(arrival − pts)` in µs, or undefined before the clock can run. */
	reference(nowMs: number): number | undefined {
		if (this.#primary !== undefined) return this.#primary;
		if (this.#secondarySince !== undefined && nowMs - this.#secondarySince >= this.fallbackMs) return this.#secondary;
		return undefined;
	}

	/** The media time (µs) due for display at local time `nowMs`, or undefined if not anchored yet. */
	mediaTime(nowMs: number): number | undefined {
		const ref = this.reference(nowMs);
		return ref === undefined ? undefined : nowMs * 1000 - ref - this.latencyMs * 1000;
	}

	/** The local time (ms) at which media time `ptsUs` is due, or undefined if not anchored yet. */
	localTime(ptsUs: number, nowMs: number): number | undefined {
		const ref = this.reference(nowMs);
		return ref === undefined ? undefined : (ptsUs + ref) / 1000 + this.latencyMs;
	}

	/** Forget every observation (new publisher session, discontinuity). */
	reset(): void {
		this.#primary = undefined;
		this.#secondary = undefined;
		this.#secondarySince = undefined;
	}
}

/** What {@link shouldSkipGroup} decides on. */
export interface SkipInput {
	/** Media time (µs) of the last frame taken from the current group; undefined if none yet. */
	lastPts: number | undefined;
	/** Media time (µs) of the newer group's first frame (its keyframe). */
	nextKeyPts: number;
	/** Target latency in µs. */
	latencyUs: number;
	/** Media time the playback clock is at now (µs), if anchored. */
	playbackUs?: number | undefined;
}

/**
 * Whether to abandon the group being read for a newer group whose keyframe is here, while the
 * current group is not finished. Skip when we are behind:
 * - nothing of the current group has arrived yet (the newer group is strictly better), or
 * - the newer keyframe is at least the target latency past the last frame read (a stall), or
 * - the playback clock has already passed the newer keyframe (everything left of the current
 *   group would be late anyway).
 * At live pace the next keyframe is one frame past the last one read, and the group finishes.
 */
export function shouldSkipGroup(s: SkipInput): boolean {
	if (s.lastPts === undefined) return true;
	if (s.nextKeyPts - s.lastPts >= s.latencyUs) return true;
	if (s.playbackUs !== undefined && s.playbackUs >= s.nextKeyPts) return true;
	return false;
}

/** How many frames were never read when jumping from `lastPts` to a keyframe at `nextKeyPts`. */
export function skippedFrames(lastPts: number | undefined, nextKeyPts: number, frameDurationUs: number): number {
	if (lastPts === undefined || !(frameDurationUs > 0)) return 0;
	return Math.max(0, Math.round((nextKeyPts - lastPts) / frameDurationUs) - 1);
}

/**
 * Pick the frame to show from decoded frames sorted by timestamp: the newest one due at media
 * time `nowUs`. Returns its index (−1: none due; keep waiting) — every frame before it is late
 * and should be dropped.
 */
export function pickFrame(timestamps: readonly number[], nowUs: number): number {
	let pick = -1;
	for (let i = 0; i < timestamps.length; i++) {
		const ts = timestamps[i];
		if (ts === undefined || ts > nowUs) break;
		pick = i;
	}
	return pick;
}

/**
 * Where to write an audio chunk in the output's sample timeline: at `target`, unless it is within
 * `tolerance` samples of where the previous chunk ended (`prevEnd`), in which case it is glued to
 * it, so rounding and small jitter never leave gaps or overlaps (clicks).
 */
export function alignAudio(prevEnd: number | undefined, target: number, tolerance: number): number {
	if (prevEnd !== undefined && Math.abs(target - prevEnd) <= tolerance) return prevEnd;
	return Math.round(target);
}

/** Whether the player is waiting for data: nothing shown yet, or the clock ran past the last frame. */
export function isBuffering(s: {
	/** Media time of the last frame shown (µs), undefined if none. */
	lastShownPts: number | undefined;
	/** Media time of the playback clock now (µs), undefined if not anchored. */
	playbackUs: number | undefined;
	/** How long past the last frame counts as a stall (µs); e.g. a few frame durations. */
	stallUs: number;
	/** Whether a frame is ready to show. */
	ready: boolean;
}): boolean {
	if (s.ready) return false;
	if (s.lastShownPts === undefined || s.playbackUs === undefined) return true;
	return s.playbackUs - s.lastShownPts > s.stallUs;
}

/** End-to-end latency in ms from the catalog clock: wall time now − wall time of the frame. */
export function wallLatencyMs(clockWallUs: number, ptsUs: number, nowWallUs: number): number {
	return (nowWallUs - (clockWallUs + ptsUs)) / 1000;
}

/** Exponential reconnect backoff: `initialMs`, doubling up to `maxMs`; `reset()` after a success. */
export class Backoff {
	/** First delay in ms. */
	readonly initialMs: number;
	/** Largest delay in ms. */
	readonly maxMs: number;
	#next: number;

	/**
	 * @param initialMs first delay
	 * @param maxMs largest delay
	 */
	constructor(initialMs = 500, maxMs = 5000) {
		this.initialMs = initialMs;
		this.maxMs = maxMs;
		this.#next = initialMs;
	}

	/** The delay to wait now; the following one is doubled (capped). */
	next(): number {
		const delay = this.#next;
		this.#next = Math.min(this.maxMs, this.#next * 2);
		return delay;
	}

	/** Start again from `initialMs`. */
	reset(): void {
		this.#next = this.initialMs;
	}
}

/** Bytes per second over a sliding window, reported in kbit/s. */
export class RateMeter {
	/** Window length in ms. */
	readonly windowMs: number;
	#samples: { at: number; bytes: number }[] = [];

	/** @param windowMs window length in ms */
	constructor(windowMs = 2000) {
		this.windowMs = windowMs;
	}

	/** Count `bytes` received at local time `nowMs`. */
	add(bytes: number, nowMs: number): void {
		this.#samples.push({ at: nowMs, bytes });
		this.#trim(nowMs);
	}

	/** The rate in kbit/s over the window ending at `nowMs`. */
	kbps(nowMs: number): number {
		this.#trim(nowMs);
		let total = 0;
		for (const s of this.#samples) total += s.bytes;
		return (total * 8) / this.windowMs;
	}

	#trim(nowMs: number) {
		while (this.#samples.length > 0 && (this.#samples[0]?.at ?? nowMs) < nowMs - this.windowMs) this.#samples.shift();
	}
}
