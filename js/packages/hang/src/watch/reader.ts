/**
 * Reads a media track's groups in sequence (decode) order, skipping to a newer group's keyframe
 * when the reader falls behind ({@link shouldSkipGroup}). Groups arrive concurrently (a newer group
 * may open while an older one is still being read): the reader keeps the current group and peeks
 * the first frame of every newer one.
 *
 * Groups written together may arrive newest first: each audio frame is its own group, and the
 * five of a 100 ms fMP4 fragment are written at once, so their streams race. When the group next
 * in sequence is missing but a newer one is here, the reader waits for it up to
 * {@link REORDER_WINDOW_US} (wall time, or media time of the newer groups that arrived) before
 * going on without it. A group older than one already started is useless (its frames would come
 * after newer ones) and is closed.
 *
 * Written against structural interfaces (the subset of `@moqx/lite`'s `TrackConsumer` and
 * `GroupConsumer` it uses) so it can be tested without a network.
 */

import { shouldSkipGroup, skippedFrames } from "../buffer.ts";
import type { FrameArrival } from "../estimate.ts";
import type { Sample, Unpack } from "./unpack.ts";
import { unpackLegacy } from "./unpack.ts";

/** The part of a moq-lite frame the reader uses. */
export interface FrameLike {
	/** The frame bytes (a legacy or CMAF container frame). */
	payload: Uint8Array;
	/** When its bytes arrived from the network, if known. */
	arrival?: FrameArrival;
}

/** The part of `@moqx/lite`'s `GroupConsumer` the reader uses. */
export interface GroupLike {
	/** Group sequence number. */
	readonly sequence: number;
	/** Next frame, undefined at the end; rejects if reset. */
	readFrame(): Promise<FrameLike | undefined>;
	/** Stop reading. */
	close(): void;
}

/** The part of `@moqx/lite`'s `TrackConsumer` the reader uses. */
export interface TrackLike {
	/** Next group in arrival order, undefined at the end of the track. */
	nextGroup(): Promise<GroupLike | undefined>;
}

/** A frame returned by {@link GroupReader.read}. */
export interface MediaFrame {
	/** Presentation time in µs of its first sample (the previous frame's for a frame without any). */
	timestamp: number;
	/** The codec payload of its first sample (empty for a frame without any). */
	payload: Uint8Array;
	/**
	 * Its samples in decode order: one for the legacy container, those of the fragment for CMAF;
	 * none when the frame could not be unpacked.
	 */
	samples: Sample[];
	/** First frame of its group: its first sample is a keyframe. */
	keyframe: boolean;
	/** Sequence of the group it came from. */
	group: number;
	/** Size of the moq-lite frame in bytes (for bitrate). */
	size: number;
	/** When its bytes arrived from the network, if known (for the capacity estimate). */
	arrival?: FrameArrival;
}

/** Options of a {@link GroupReader}. */
export interface GroupReaderOptions {
	/** Target latency in µs (read each time a decision is made, so it can change). */
	latencyUs: () => number;
	/** The playback clock's media time now (µs), if anchored. */
	playbackUs?: () => number | undefined;
	/** Expected frame duration in µs, to count skipped frames (default 1/30 s). */
	frameDurationUs?: () => number;
	/** Called with the number of frames skipped (never read) each time a group is abandoned. */
	onSkip?: (frames: number) => void;
	/** Frame to samples (default: the legacy container). */
	unpack?: Unpack;
	/** Called when a frame cannot be unpacked (it is returned without samples). */
	onInvalid?: (error: unknown) => void;
}

/**
 * How long the reader waits for a group missing in the sequence while a newer one is here, before
 * going on without it: 100 ms of wall time, or newer groups that far (media time) past the oldest
 * one that arrived. Groups written together arrive within moments of each other.
 */
export const REORDER_WINDOW_US = 100_000;

type Next = { kind: "frame"; frame: FrameLike | undefined } | { kind: "error"; error: unknown };

interface Entry {
	group: GroupLike;
	/** The outstanding readFrame(), one at a time. */
	next: Promise<Next> | undefined;
	/** A frame read ahead (the first frame of a pending group). */
	peeked: MediaFrame | undefined;
	/** The group ended (or failed) before its first frame. */
	done: boolean;
	index: number;
}

type Event =
	| { kind: "group"; group: GroupLike | undefined }
	| { kind: "groupError"; error: unknown }
	| { kind: "current"; entry: Entry; next: Next }
	| { kind: "pending"; entry: Entry; next: Next }
	| { kind: "reorder"; sequence: number };

/** The wait for a group missing in the sequence (see {@link REORDER_WINDOW_US}). */
interface Gap {
	/** The missing group's sequence. */
	sequence: number;
	timer: ReturnType<typeof setTimeout>;
	/** Resolves when the window has passed. */
	expired: Promise<Event>;
	/** The window has passed: go on without the missing group. */
	over: boolean;
}

/** See the module documentation. */
export class GroupReader {
	#track: TrackLike;
	#options: GroupReaderOptions;
	#current: Entry | undefined;
	#pending: Entry[] = [];
	#nextGroup: Promise<Event> | undefined;
	#trackDone = false;
	#lastPts: number | undefined;
	/** Sequence of the last group started (or passed over): it and older groups are useless. */
	#floor: number | undefined;
	/** Waiting for the group after {@link GroupReader.#floor} while a newer one is here. */
	#gap: Gap | undefined;
	#closed = false;

	/**
	 * @param track the subscribed track
	 * @param options latency target and hooks
	 */
	constructor(track: TrackLike, options: GroupReaderOptions) {
		this.#track = track;
		this.#options = options;
	}

	#pull(entry: Entry): Promise<Next> {
		entry.next ??= entry.group.readFrame().then(
			(frame): Next => ({ kind: "frame", frame }),
			(error): Next => ({ kind: "error", error }),
		);
		return entry.next;
	}

	#toFrame(entry: Entry, frame: FrameLike): MediaFrame {
		let samples: Sample[];
		try {
			samples = (this.#options.unpack ?? unpackLegacy)(frame.payload);
		} catch (e) {
			this.#options.onInvalid?.(e);
			samples = [];
		}
		const first = samples[0];
		const out = {
			timestamp: first?.timestamp ?? this.#lastPts ?? 0,
			payload: first?.payload ?? new Uint8Array(),
			samples,
			keyframe: entry.index === 0,
			group: entry.group.sequence,
			size: frame.payload.byteLength,
			arrival: frame.arrival,
		};
		entry.index++;
		return out;
	}

	/** Abandon the current group (and older pending ones) for `entry`, whose first frame is peeked. */
	#switchTo(entry: Entry) {
		const peeked = entry.peeked;
		if (peeked) {
			const duration = this.#options.frameDurationUs?.() ?? 1_000_000 / 30;
			const skipped = skippedFrames(this.#lastPts, peeked.timestamp, duration);
			if (skipped > 0) this.#options.onSkip?.(skipped);
		}
		this.#current?.group.close();
		this.#pending = this.#pending.filter((p) => {
			if (p.group.sequence < entry.group.sequence) {
				p.group.close();
				return false;
			}
			return p !== entry;
		});
		this.#current = entry;
		this.#advance(entry.group.sequence);
	}

	/** `sequence` was started or passed over: the next one is expected now. */
	#advance(sequence: number) {
		this.#floor = sequence;
		if (this.#gap) clearTimeout(this.#gap.timer);
		this.#gap = undefined;
	}

	/**
	 * Whether the oldest pending group may be taken now: it is the next in sequence (or the first
	 * group), or the groups missing before it are given up: the track ended, the reorder window
	 * passed (wall time, or a newer group's keyframe that far past its own), or the playback clock
	 * reached it. Starts the window's timer when there is a gap to wait for.
	 */
	#headReady(head: Entry): boolean {
		const floor = this.#floor;
		if (floor === undefined || head.group.sequence <= floor + 1 || this.#trackDone) return true;
		if (this.#gap?.sequence === floor + 1 && this.#gap.over) return true;
		const key = head.peeked?.timestamp;
		if (key !== undefined) {
			const edge = this.#pending.findLast((p) => p.peeked)?.peeked?.timestamp;
			if (edge !== undefined && edge >= key + REORDER_WINDOW_US) return true;
			const playback = this.#options.playbackUs?.();
			if (playback !== undefined && playback >= key) return true;
		}
		if (this.#gap?.sequence !== floor + 1) {
			if (this.#gap) clearTimeout(this.#gap.timer);
			const sequence = floor + 1;
			let timer: ReturnType<typeof setTimeout> | undefined;
			const expired = new Promise<Event>((resolve) => {
				timer = setTimeout(() => resolve({ kind: "reorder", sequence }), REORDER_WINDOW_US / 1000);
			});
			this.#gap = { sequence, timer: timer as ReturnType<typeof setTimeout>, expired, over: false };
		}
		return false;
	}

	#shouldSkip(nextKeyPts: number): boolean {
		return shouldSkipGroup({
			lastPts: this.#lastPts,
			nextKeyPts,
			latencyUs: this.#options.latencyUs(),
			playbackUs: this.#options.playbackUs?.(),
		});
	}

	/**
	 * The next frame in decode order, or undefined when the track ended. Rejects if the track
	 * failed. Not reentrant: await each call before the next.
	 */
	async read(): Promise<MediaFrame | undefined> {
		for (;;) {
			if (this.#closed) return undefined;
			// A current group that has a frame read ahead (it was promoted from pending).
			if (this.#current?.peeked) {
				const frame = this.#current.peeked;
				this.#current.peeked = undefined;
				this.#lastPts = lastPts(frame);
				return frame;
			}
			// The newest group whose keyframe is here: jump to it when behind.
			const newest = this.#pending.findLast((p) => p.peeked);
			if (newest?.peeked && this.#current) {
				if (this.#shouldSkip(newest.peeked.timestamp)) {
					this.#switchTo(newest);
					continue;
				}
			}
			// No current group: continue with the oldest pending one once it is next in sequence (or
			// the missing ones are given up), or with a newer one when behind.
			if (!this.#current) {
				const head = this.#pending[0];
				if (head && (head.peeked || head.done) && this.#headReady(head)) {
					if (head.peeked) this.#switchTo(head);
					else {
						// It ended (or was reset) before its first frame: pass it over.
						this.#pending.shift();
						this.#advance(head.group.sequence);
					}
					continue;
				}
				if (newest?.peeked && this.#shouldSkip(newest.peeked.timestamp)) {
					this.#switchTo(newest);
					continue;
				}
				if (this.#trackDone && this.#pending.length === 0) return undefined;
			}
			const gap = !this.#current && this.#pending.length > 0 ? this.#gap : undefined;

			const events: Promise<Event>[] = [];
			if (!this.#trackDone) {
				this.#nextGroup ??= this.#track.nextGroup().then(
					(group): Event => ({ kind: "group", group }),
					(error): Event => ({ kind: "groupError", error }),
				);
				events.push(this.#nextGroup);
			}
			const current = this.#current;
			if (current) events.push(this.#pull(current).then((next): Event => ({ kind: "current", entry: current, next })));
			for (const p of this.#pending) {
				if (!p.peeked && !p.done)
					events.push(this.#pull(p).then((next): Event => ({ kind: "pending", entry: p, next })));
			}
			if (gap && !gap.over) events.push(gap.expired);
			if (events.length === 0) return undefined;
			const event = await Promise.race(events);
			if (this.#closed) return undefined;

			switch (event.kind) {
				case "group": {
					this.#nextGroup = undefined;
					const group = event.group;
					if (!group) {
						this.#trackDone = true;
						break;
					}
					if (this.#floor !== undefined && group.sequence <= this.#floor) {
						group.close(); // a straggler older than what is being played
						break;
					}
					this.#pending.push({ group, next: undefined, peeked: undefined, done: false, index: 0 });
					this.#pending.sort((a, b) => a.group.sequence - b.group.sequence);
					break;
				}
				case "groupError":
					this.#nextGroup = undefined;
					throw event.error;
				case "current": {
					if (event.entry !== this.#current) break;
					event.entry.next = undefined;
					const next = event.next;
					if (next.kind === "error" || next.frame === undefined) {
						// The group ended (or was reset): continue with the next one.
						this.#current.group.close();
						this.#current = undefined;
						break;
					}
					const frame = this.#toFrame(event.entry, next.frame);
					this.#lastPts = lastPts(frame);
					return frame;
				}
				case "pending": {
					const entry = event.entry;
					entry.next = undefined;
					if (!this.#pending.includes(entry)) break;
					const next = event.next;
					if (next.kind === "error" || next.frame === undefined) {
						// Kept until its turn, so the reader knows it is not missing.
						entry.done = true;
						entry.group.close();
						break;
					}
					entry.peeked = this.#toFrame(entry, next.frame);
					// Decided at the top of the loop.
					break;
				}
				case "reorder":
					if (this.#gap?.sequence === event.sequence) this.#gap.over = true;
					break;
			}
		}
	}

	/** Stop: close every group being read. */
	close(): void {
		this.#closed = true;
		if (this.#gap) clearTimeout(this.#gap.timer);
		this.#gap = undefined;
		this.#current?.group.close();
		for (const p of this.#pending) p.group.close();
		this.#current = undefined;
		this.#pending = [];
	}
}

/** Presentation time of a frame's last sample: a fragment's samples all arrive with it. */
function lastPts(frame: MediaFrame): number {
	return frame.samples.reduce((max, s) => Math.max(max, s.timestamp), frame.timestamp);
}
