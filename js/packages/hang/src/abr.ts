/**
 * Rendition choice for adaptive bitrate: which of a broadcast's video renditions (simulcast, with
 * aligned keyframes) a viewer's link carries, from a stream of bandwidth estimates. A pure state
 * machine (time is an argument), so recorded estimate traces replay in tests. The same rules as
 * `rs/hang/src/abr.rs`.
 *
 * Rules:
 * - **Fits**: a rendition fits an estimate when its bitrate is at most `downFraction` of it.
 * - **Down at once**: when the current rendition stops fitting, or the player reports it is
 *   behind (groups arriving late), switch to the best rendition that fits (the lowest if none
 *   does); when behind, at least one step down even if the estimate says the current one fits
 *   (the estimate is stale). One estimate is enough: a link that dropped must be left within
 *   about a group.
 * - **Up only when sustained**: the next rendition up must fit with the stricter `upFraction`
 *   for `upAfterMs` without a break, and not while behind; then move up one step. After a switch
 *   down, no switch up for `holdAfterDownMs` (the estimate that made us leave can come back for a
 *   moment).
 * - `upFraction < downFraction` is the hysteresis: an estimate between the two keeps the current
 *   rendition, so a steady link never flips between two renditions.
 * - **Failed attempts back off**: leaving a rendition within {@link PROBATION_MS} of moving up to
 *   it counts as a failed attempt, and each one doubles the hold before it is tried again (up to
 *   {@link MAX_HOLD_MS}); staying on it past the probation clears the count.
 *
 * @example
 * const abr = new Abr([{ name: "video0", bitrate: 3_000_000 }, { name: "video1", bitrate: 800_000 }], {}, 10_000_000);
 * abr.current.name; // "video0"
 * abr.update(1000, 2_000_000, false); // "video1": the link dropped to 2 Mbit/s
 */

/** A video rendition to choose from. */
export interface Rendition {
	/** Track name. */
	name: string;
	/** Bits per second (the catalog's `bitrate`, or a measured rate). */
	bitrate: number;
}

/** The thresholds of {@link Abr}. */
export interface AbrConfig {
	/** A rendition fits when its bitrate is at most this fraction of the estimate. */
	downFraction: number;
	/** The next rendition up must fit within this (smaller) fraction to be taken. */
	upFraction: number;
	/** How long (ms) the next rendition up must fit without a break. */
	upAfterMs: number;
	/** No switch up for this long (ms) after a switch down. */
	holdAfterDownMs: number;
}

/**
 * Down when a rendition needs more than 90 % of the estimate; up when the next one needs at most
 * 70 % of it for 4 s, and not within 8 s of a switch down.
 */
export const DEFAULT_ABR_CONFIG: Readonly<AbrConfig> = Object.freeze({
	downFraction: 0.9,
	upFraction: 0.7,
	upAfterMs: 4000,
	holdAfterDownMs: 8000,
});

/** How long (ms) a rendition moved up to must hold for the move to count as a success. */
export const PROBATION_MS = 10_000;

/** The longest hold (ms) after failed attempts at a rendition. */
export const MAX_HOLD_MS = 120_000;

/** Chooses among renditions; see the module documentation for the rules. */
export class Abr {
	/** The thresholds in use. */
	readonly config: Readonly<AbrConfig>;
	/** Sorted by bitrate, lowest first. */
	readonly #renditions: readonly Rendition[];
	#current = 0;
	/** Since when (ms) the next rendition up has fitted (`upFraction`) without a break. */
	#upSince: number | undefined;
	/** When (ms) we last switched down, and the hold it imposes before the next move up. */
	#lastDown: { at: number; holdMs: number } | undefined;
	/** When (ms) we moved up to the current rendition. */
	#upAt: number | undefined;
	/** Failed attempts at each rendition (by index). */
	#failures: number[];
	#switches = 0;

	/**
	 * @param renditions to choose from (at least one; an empty list gets a placeholder that never
	 *   switches); the order does not matter
	 * @param config thresholds, each defaulting to {@link DEFAULT_ABR_CONFIG}
	 * @param initialEstimate bits per second: start with the best rendition that fits it; without
	 *   one, with the lowest
	 */
	constructor(renditions: readonly Rendition[], config: Partial<AbrConfig> = {}, initialEstimate?: number) {
		this.config = { ...DEFAULT_ABR_CONFIG, ...config };
		const sorted = [...renditions].sort((a, b) => a.bitrate - b.bitrate);
		this.#renditions = sorted.length > 0 ? sorted : [{ name: "", bitrate: 0 }];
		this.#failures = this.#renditions.map(() => 0);
		if (initialEstimate !== undefined) this.#current = this.#bestFit(initialEstimate);
	}

	/** The rendition chosen now. */
	get current(): Rendition {
		return this.#at(this.#current);
	}

	/** Switches made so far by {@link Abr.update} (not counting {@link Abr.pin}). */
	get switches(): number {
		return this.#switches;
	}

	/** The renditions, lowest bitrate first. */
	get renditions(): readonly Rendition[] {
		return this.#renditions;
	}

	/** Pin the choice to rendition `name` (if known), as a manual selection does. Returns whether it is known. */
	pin(name: string): boolean {
		const index = this.#renditions.findIndex((r) => r.name === name);
		if (index < 0) return false;
		this.#current = index;
		this.#upSince = undefined;
		return true;
	}

	/**
	 * Feed the estimate (bits per second, undefined when there is none yet) at local time `nowMs`,
	 * and whether the player is behind (late or skipped groups). Returns the name of the rendition
	 * to switch to, if the choice changed.
	 */
	update(nowMs: number, estimateBps: number | undefined, behind: boolean): string | undefined {
		if (estimateBps === undefined) return undefined;
		// A rendition held past its probation was a success: its failures are forgiven.
		if (this.#upAt !== undefined && nowMs - this.#upAt >= PROBATION_MS) {
			this.#failures[this.#current] = 0;
			this.#upAt = undefined;
		}
		const fits = (bitrate: number, fraction: number) => bitrate <= fraction * estimateBps;

		// Down at once.
		const current = this.#at(this.#current);
		if (this.#current > 0 && (behind || !fits(current.bitrate, this.config.downFraction))) {
			const best = this.#bestFit(estimateBps);
			// Late with an estimate that says it fits: the estimate is stale; one step down at least.
			return this.#switch(behind ? Math.min(best, this.#current - 1) : best, nowMs);
		}

		// Up when the next rendition has fitted, with margin, for long enough.
		const next = this.#current + 1;
		const up = this.#renditions[next];
		const held = this.#lastDown !== undefined && nowMs - this.#lastDown.at < this.#lastDown.holdMs;
		if (up && !behind && !held && fits(up.bitrate, this.config.upFraction)) {
			this.#upSince ??= nowMs;
			if (Math.max(0, nowMs - this.#upSince) >= this.config.upAfterMs) return this.#switch(next, nowMs);
		} else {
			this.#upSince = undefined;
		}
		return undefined;
	}

	/** The index of the best rendition that fits `estimate` (`downFraction`), or the lowest. */
	#bestFit(estimate: number): number {
		const index = this.#renditions.findLastIndex((r) => r.bitrate <= this.config.downFraction * estimate);
		return Math.max(0, index);
	}

	#switch(target: number, nowMs: number): string | undefined {
		if (target === this.#current) return undefined;
		if (target < this.#current) {
			// Leaving a rendition soon after moving up to it: a failed attempt, held longer.
			if (this.#upAt !== undefined && nowMs - this.#upAt < PROBATION_MS) {
				this.#failures[this.#current] = (this.#failures[this.#current] ?? 0) + 1;
			}
			const failures = Math.max(0, ...this.#failures.slice(this.#current));
			const holdMs = Math.min(
				this.config.holdAfterDownMs * 2 ** Math.min(failures, 8),
				Math.max(MAX_HOLD_MS, this.config.holdAfterDownMs),
			);
			this.#lastDown = { at: nowMs, holdMs };
			this.#upAt = undefined;
		} else {
			this.#upAt = nowMs;
		}
		this.#current = target;
		this.#upSince = undefined;
		this.#switches++;
		return this.#at(target).name;
	}

	/** The rendition at `index`; `#current` and the indices derived from it are always in range. */
	#at(index: number): Rendition {
		const rendition = this.#renditions[index];
		if (!rendition) throw new Error(`abr: no rendition ${index}`);
		return rendition;
	}
}
