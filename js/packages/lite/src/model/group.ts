/** Groups: an ordered run of frames, produced once and read by any number of readers. */
import type { Arrival } from "../coding/reader.ts";
import { ErrorCode, MoqError } from "../error.ts";
import { Notify, now } from "./util.ts";

/** One frame: the payload and (lite-05) its absolute timestamp in the track's timescale. */
export interface Frame {
	/** The frame's bytes (shared between readers, do not mutate). */
	payload: Uint8Array;
	/** lite-05 FRAME timestamp, absolute, in the track timescale; undefined on lite-02. */
	timestamp: number | undefined;
	/** When its bytes arrived from the network (frames read off a session's stream). */
	arrival?: Arrival;
}

/** Largest timestamp accepted, so that zigzag deltas stay below 2^53 on the wire. */
export const MAX_TIMESTAMP = 2 ** 52 - 1;

/** Shared state of a group inside a track: the frames written so far and how it ended. */
export class GroupState {
	/** The group sequence number. */
	readonly sequence: number;
	/** Frames written so far (append-only). */
	readonly frames: Frame[] = [];
	/** Monotonic ms of the last write (for max-latency retention). */
	lastActivity = now();
	#done = false;
	#error: Error | undefined;
	#notify = new Notify();

	/** An empty open group. */
	constructor(sequence: number) {
		this.sequence = sequence;
	}

	/** True once finished or aborted. */
	get done(): boolean {
		return this.#done || this.#error !== undefined;
	}

	/** Append a frame (ignored once done). */
	push(frame: Frame): void {
		if (this.done) throw new MoqError(ErrorCode.Closed, "group is closed");
		this.frames.push(frame);
		this.lastActivity = now();
		this.#notify.notify();
	}

	/** Clean end. */
	finish(): void {
		if (this.done) return;
		this.#done = true;
		this.lastActivity = now();
		this.#notify.notify();
	}

	/** Abnormal end: readers that have not reached the end see `err`. */
	abort(err: Error): void {
		if (this.#error) return;
		this.#error = err;
		this.#notify.notify();
	}

	/** Frame `index`, waiting for it; undefined past a clean end; throws if aborted. */
	async frameAt(index: number): Promise<Frame | undefined> {
		for (;;) {
			if (this.#error) throw this.#error;
			const frame = this.frames[index];
			if (frame) return frame;
			if (this.#done) return undefined;
			await this.#notify.wait();
		}
	}
}

/** Check a timestamp supplied by the application. */
export function checkTimestamp(timestamp: number): number {
	if (!Number.isSafeInteger(timestamp) || timestamp < 0 || timestamp > MAX_TIMESTAMP) {
		throw new RangeError(`timestamp must be an integer in [0, 2^52): ${timestamp}`);
	}
	return timestamp;
}

/** The writing end of a group. Created by {@link TrackProducer.appendGroup}. */
export class GroupProducer {
	/** The group sequence number (first group of a track = 0). */
	readonly sequence: number;
	readonly #state: GroupState;
	readonly #clock: () => number;

	/** @internal Wraps a group's state; `clock` supplies default timestamps. */
	constructor(state: GroupState, clock: () => number) {
		this.sequence = state.sequence;
		this.#state = state;
		this.#clock = clock;
	}

	/**
	 * Append a frame. `timestamp` is in the track's timescale (integer, 0 ≤ t < 2^52); when omitted
	 * the time since the track was created (in the track's timescale) is used.
	 */
	writeFrame(payload: Uint8Array, timestamp?: number): void {
		const ts = timestamp === undefined ? this.#clock() : checkTimestamp(timestamp);
		this.#state.push({ payload, timestamp: ts });
	}

	/** End the group cleanly (readers see the end after the last frame). */
	close(): void {
		this.#state.finish();
	}
}

/** Where a {@link GroupConsumer} gets its frames from (a wire stream or a local group). */
export interface FrameSource {
	/** The next frame, undefined at the end; rejects on reset. */
	next(): Promise<Frame | undefined>;
	/** The reader lost interest (STOP_SENDING code 0 on the wire). */
	cancel(): void;
}

/** The reading end of one group as received from the session. */
export class GroupConsumer {
	/** The group sequence number. */
	readonly sequence: number;
	readonly #source: FrameSource;
	#closed = false;

	/** @internal A consumer over `source`. */
	constructor(sequence: number, source: FrameSource) {
		this.sequence = sequence;
		this.#source = source;
	}

	/** Next frame, or undefined at the end of the group; rejects if the stream was reset. */
	async readFrame(): Promise<Frame | undefined> {
		if (this.#closed) return undefined;
		return this.#source.next();
	}

	/** Stop reading this group (STOP_SENDING code 0). Idempotent. */
	close(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#source.cancel();
	}
}

/** A {@link FrameSource} reading a local {@link GroupState} from its first frame. */
export class LocalFrameSource implements FrameSource {
	readonly #state: GroupState;
	#index = 0;
	#cancelled = false;

	/** Read `state` from frame 0. */
	constructor(state: GroupState) {
		this.#state = state;
	}

	/** The next frame of the group. */
	async next(): Promise<Frame | undefined> {
		if (this.#cancelled) return undefined;
		const frame = await this.#state.frameAt(this.#index);
		if (frame) this.#index++;
		return frame;
	}

	/** Stop reading. */
	cancel(): void {
		this.#cancelled = true;
	}
}
