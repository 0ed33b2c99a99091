/**
 * Bandwidth estimation for adaptive bitrate (`Abr`, `abr.ts`): what the viewer's link carries, from the
 * media bytes it delivers, and whether the player is falling behind. Pure (time is an argument),
 * so traces replay in tests.
 *
 * - **Throughput**: media bytes delivered per {@link EstimatorConfig.windowMs} window, smoothed by
 *   an exponentially weighted moving average (weight {@link EstimatorConfig.alpha} for the newest
 *   window, so about two windows of memory). Arrival times are when frames were read, which is
 *   when the link delivered them.
 * - **Behind**: the newest video frame arrived later than the target latency plus about one group
 *   (its lateness past the fastest frame, see {@link PlaybackState.lateMs}), or groups were skipped
 *   since the last look (by the reader, or dropped by the relay as too old). Either means the link
 *   (or the decoder) does not keep up with the rendition.
 *
 * Delivered throughput cannot see spare capacity: a link that keeps up delivers the rendition's
 * bitrate, whatever it could carry above it, and only a saturated link delivers roughly its
 * capacity. Fed to `Abr` as is, the rate of a link that keeps up would sit at the current
 * bitrate, below the 1 / `downFraction` margin a rendition needs to stay, and every rendition
 * would be left for the lowest. So {@link BandwidthEstimator.estimate} vouches for the throughput
 * only while it measures capacity (the player was behind within
 * {@link EstimatorConfig.saturatedMs}) and gives no estimate otherwise. Switching up therefore
 * relies on an estimate above the current bitrate from elsewhere, e.g. a relay PROBE: hand it to
 * {@link BandwidthEstimator.setProbeEstimate}; while it is recent the estimate is the larger of
 * the probe and the throughput.
 */

/** The knobs of a {@link BandwidthEstimator}. */
export interface EstimatorConfig {
	/** Length in ms of the windows bytes are counted over. */
	windowMs: number;
	/** Weight of the newest window in the moving average (0..1]. */
	alpha: number;
	/** How long (ms) after the player was last behind the throughput still counts as the capacity. */
	saturatedMs: number;
	/** How long (ms) a probe estimate stays valid. */
	probeValidMs: number;
}

/** Windows of 1 s averaged with weight 0.5 (≈ 2 s of memory); saturation and probes last 2 and 5 s. */
export const DEFAULT_ESTIMATOR_CONFIG: Readonly<EstimatorConfig> = Object.freeze({
	windowMs: 1000,
	alpha: 0.5,
	saturatedMs: 2000,
	probeValidMs: 5000,
});

/** What {@link BandwidthEstimator.behind} decides on. */
export interface PlaybackState {
	/**
	 * How late (ms) the newest video frame arrived past the fastest one, relative to their media
	 * times: `(arrival − pts) − min(arrival − pts)`. A frame is played the target latency after the
	 * fastest one's slot, so lateness beyond the target is latency beyond the target. Undefined
	 * when unknown.
	 */
	lateMs: number | undefined;
	/** The target latency in ms. */
	targetLatencyMs: number;
	/** The duration of a group (keyframe interval) in ms. */
	groupMs: number;
	/** Groups skipped so far (a counter that only grows; a smaller value restarts the count). */
	skippedGroups: number;
}

/** See the module documentation. */
export class BandwidthEstimator {
	/** The knobs in use. */
	readonly config: Readonly<EstimatorConfig>;
	#windowStart: number | undefined;
	#windowBytes = 0;
	/** Bits per second, after the first window. */
	#average: number | undefined;
	#probe: { bps: number; at: number } | undefined;
	#lastBehind: number | undefined;
	#skipped = 0;

	/** @param config each knob defaults to {@link DEFAULT_ESTIMATOR_CONFIG} */
	constructor(config: Partial<EstimatorConfig> = {}) {
		this.config = { ...DEFAULT_ESTIMATOR_CONFIG, ...config };
	}

	/** Count `bytes` of media delivered at local time `nowMs`. */
	add(bytes: number, nowMs: number): void {
		this.#roll(nowMs);
		this.#windowBytes += bytes;
	}

	/** Delivered throughput in bits per second (moving average), undefined before a window has passed. */
	throughput(nowMs: number): number | undefined {
		this.#roll(nowMs);
		return this.#average;
	}

	/**
	 * An estimate of the link's capacity from elsewhere (e.g. a relay PROBE), in bits per second,
	 * at local time `nowMs`. See the module documentation.
	 */
	setProbeEstimate(bps: number, nowMs: number): void {
		this.#probe = { bps, at: nowMs };
	}

	/**
	 * Whether the player is behind at `nowMs` (see the module documentation); remembered as a sign
	 * that the link is saturated. Call it regularly, before {@link BandwidthEstimator.estimate}.
	 */
	behind(nowMs: number, state: PlaybackState): boolean {
		const skipped = state.skippedGroups > this.#skipped;
		this.#skipped = state.skippedGroups;
		const late = state.lateMs !== undefined && state.lateMs > state.targetLatencyMs + state.groupMs;
		if (!skipped && !late) return false;
		this.#lastBehind = nowMs;
		return true;
	}

	/**
	 * The link capacity in bits per second this estimator can vouch for at `nowMs`, for
	 * `Abr.update`: the larger of a recent probe and the throughput; else the throughput while
	 * the link is saturated; else none (the throughput is only a lower bound then).
	 */
	estimate(nowMs: number): number | undefined {
		const throughput = this.throughput(nowMs);
		const probe = this.#probe;
		if (probe && nowMs - probe.at <= this.config.probeValidMs) return Math.max(probe.bps, throughput ?? 0);
		if (this.#lastBehind !== undefined && nowMs - this.#lastBehind <= this.config.saturatedMs) return throughput;
		return undefined;
	}

	/** Close the windows that ended by `nowMs` into the average (empty ones count as zero). */
	#roll(nowMs: number) {
		const { windowMs, alpha } = this.config;
		if (this.#windowStart === undefined) {
			this.#windowStart = nowMs;
			return;
		}
		const ended = Math.floor((nowMs - this.#windowStart) / windowMs);
		if (ended <= 0) return;
		const rate = (this.#windowBytes * 8 * 1000) / windowMs;
		const average = this.#average === undefined ? rate : alpha * rate + (1 - alpha) * this.#average;
		this.#average = average * (1 - alpha) ** (ended - 1);
		this.#windowBytes = 0;
		this.#windowStart += ended * windowMs;
	}
}
