/**
 * Bandwidth estimation for adaptive bitrate (`Abr`, `abr.ts`): what the viewer's link carries, from the
 * media bytes it delivers, and whether the player is falling behind. Pure (time is an argument),
 * so traces replay in tests.
 *
 * - **Throughput**: media bytes delivered per {@link EstimatorConfig.windowMs} window, smoothed by
 *   an exponentially weighted moving average (weight {@link EstimatorConfig.alpha} for the newest
 *   window, so about two windows of memory). Arrival times are when frames were read, which is
 *   when the link delivered them.
 * - **Behind**: a window of {@link EstimatorConfig.mediaWindowMs} (or three times the usual time
 *   between bursts of media, for long fragments) brought less than
 *   {@link EstimatorConfig.keepUp} of its length in media time (the shown rendition's newest
 *   timestamp advanced too little: a stall advances it not at all), or
 *   the newest video frame arrived later than the target latency plus about one group
 *   (its lateness past the fastest frame, see {@link PlaybackState.lateMs}), or groups were skipped
 *   since the last look (by the reader, or dropped by the relay as too old). Either means the link
 *   (or the decoder) does not keep up with the rendition.
 *
 * - **Bursts**: a publisher sends a keyframe, or the frames of one fMP4 fragment, at once, and a
 *   relay forwards them as fast as the link takes them. Frames whose bytes arrive back to back
 *   (pauses under {@link EstimatorConfig.runGapMs}) form a run, and the rate a run arrives at
 *   (bytes after its first chunk over the time to its last) is a sample of the link's capacity,
 *   above the stream's own rate when the link has room. Runs under
 *   {@link EstimatorConfig.minRunBytes} say too little and are left out.
 *
 * Delivered throughput cannot see spare capacity: a link that keeps up delivers the rendition's
 * bitrate, whatever it could carry above it, and only a saturated link delivers roughly its
 * capacity. So {@link BandwidthEstimator.estimate} is the throughput while it measures capacity
 * (the player was behind within {@link EstimatorConfig.saturatedMs}), and otherwise the median
 * burst sample of the last {@link EstimatorConfig.burstValidMs}. An estimate from elsewhere (e.g.
 * a relay PROBE, {@link BandwidthEstimator.setProbeEstimate}) caps the burst median while it is
 * recent; alone, it is the estimate. (A relay's PROBE is its congestion window over the round
 * trip, which over-promises on an app-limited flow.)
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
	/** The longest pause (ms) between two frames' bytes for both to count as one run. */
	runGapMs: number;
	/** Least bytes after a run's first chunk for it to count as a capacity sample. */
	minRunBytes: number;
	/** How long (ms) a burst sample counts towards the estimate. */
	burstValidMs: number;
	/** Length (ms) of the windows the media time received is measured over. */
	mediaWindowMs: number;
	/** The share of a window's length it must bring in media time for the player to keep up. */
	keepUp: number;
}

/**
 * Windows of 1 s averaged with weight 0.5 (≈ 2 s of memory); saturation and probes last 2 and
 * 5 s; runs join across pauses under 20 ms (a packet's time on a 0.5 Mbit/s link, less than a
 * frame interval), count from 5000 bytes, and their samples last 3 s; media time is measured over
 * 500 ms windows, of which it must bring 70 %.
 */
export const DEFAULT_ESTIMATOR_CONFIG: Readonly<EstimatorConfig> = Object.freeze({
	windowMs: 1000,
	alpha: 0.5,
	saturatedMs: 2000,
	probeValidMs: 5000,
	runGapMs: 20,
	minRunBytes: 5000,
	burstValidMs: 3000,
	mediaWindowMs: 500,
	keepUp: 0.7,
});

/** When a frame's bytes arrived (`@moqx/lite`'s `Arrival`): ms timestamps and sizes. */
export interface FrameArrival {
	/** When its first bytes were read. */
	firstMs: number;
	/** When its last bytes were read. */
	lastMs: number;
	/** Bytes read at `firstMs`. */
	firstBytes: number;
	/** Its size. */
	bytes: number;
}

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
	/** The run of back-to-back frames being measured. */
	#run: { firstMs: number; lastMs: number; bytes: number } | undefined;
	/** Burst samples (bits per second) and when their runs ended, oldest first. */
	#bursts: { bps: number; at: number }[] = [];
	/** The newest media timestamp (µs) received, and what it was when the window began (ms). */
	#mediaEdge: number | undefined;
	#mediaWindow: { start: number; edge: number | undefined } | undefined;
	#mediaBehind = false;
	/** When the media edge last moved (ms), and the typical time between moves (moving average). */
	#edgeMovedAt: number | undefined;
	#edgeGapMs: number | undefined;

	/** @param config each knob defaults to {@link DEFAULT_ESTIMATOR_CONFIG} */
	constructor(config: Partial<EstimatorConfig> = {}) {
		this.config = { ...DEFAULT_ESTIMATOR_CONFIG, ...config };
	}

	/** Count `bytes` of media delivered at local time `nowMs`. */
	add(bytes: number, nowMs: number): void {
		this.#roll(nowMs);
		this.#windowBytes += bytes;
	}

	/**
	 * A video frame of the rendition shown arrived as `arrival` says: it joins the current run,
	 * or ends it (a sample, if the run tells enough) and starts the next.
	 */
	addArrival(arrival: FrameArrival): void {
		const run = this.#run;
		if (run && arrival.firstMs - run.lastMs <= this.config.runGapMs) {
			run.lastMs = Math.max(run.lastMs, arrival.lastMs);
			run.bytes += arrival.bytes;
			return;
		}
		if (run) this.#closeRun(run);
		this.#run = { firstMs: arrival.firstMs, lastMs: arrival.lastMs, bytes: arrival.bytes - arrival.firstBytes };
	}

	/** The median burst sample of the last {@link EstimatorConfig.burstValidMs} at `nowMs`, in bits per second. */
	burst(nowMs: number): number | undefined {
		const valid = this.#bursts.filter((b) => nowMs - b.at <= this.config.burstValidMs).map((b) => b.bps);
		if (valid.length === 0) return undefined;
		valid.sort((a, b) => a - b);
		return valid[Math.floor(valid.length / 2)];
	}

	#closeRun(run: { firstMs: number; lastMs: number; bytes: number }) {
		const ms = run.lastMs - run.firstMs;
		if (run.bytes < this.config.minRunBytes || ms < 1) return;
		this.#bursts.push({ bps: (run.bytes * 8 * 1000) / ms, at: run.lastMs });
		const oldest = run.lastMs - this.config.burstValidMs;
		while (this.#bursts.length > 0 && (this.#bursts[0]?.at ?? oldest) < oldest) this.#bursts.shift();
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

	/** A video frame of the rendition shown, with media time `timestampUs`, arrived at `nowMs`. */
	addMedia(timestampUs: number, nowMs: number): void {
		if (this.#mediaEdge === undefined || timestampUs > this.#mediaEdge) {
			// Media comes in bursts (a fragment at a time): a window must span a few of them.
			if (this.#edgeMovedAt !== undefined && nowMs - this.#edgeMovedAt > 1) {
				const gap = nowMs - this.#edgeMovedAt;
				this.#edgeGapMs = this.#edgeGapMs === undefined ? gap : 0.9 * this.#edgeGapMs + 0.1 * gap;
			}
			this.#edgeMovedAt = nowMs;
			this.#mediaEdge = timestampUs;
		}
		this.#rollMedia(nowMs);
	}

	/** Close the media window if it ended by `nowMs`: did it bring enough media time? */
	#rollMedia(nowMs: number) {
		const window = this.#mediaWindow;
		if (!window) {
			this.#mediaWindow = { start: nowMs, edge: this.#mediaEdge };
			return;
		}
		const wallMs = nowMs - window.start;
		if (wallMs < Math.max(this.config.mediaWindowMs, 3 * (this.#edgeGapMs ?? 0))) return;
		// Before the first frame there is nothing to keep up with, and before the second burst the
		// window's length may not span one (unless the media stopped for long).
		const learned =
			this.#edgeGapMs !== undefined || (this.#edgeMovedAt !== undefined && nowMs - this.#edgeMovedAt >= 2000);
		if (window.edge !== undefined && this.#mediaEdge !== undefined && learned) {
			const mediaMs = (this.#mediaEdge - window.edge) / 1000;
			this.#mediaBehind = mediaMs < this.config.keepUp * wallMs;
		}
		this.#mediaWindow = { start: nowMs, edge: this.#mediaEdge };
	}

	/**
	 * Whether the player is behind at `nowMs` (see the module documentation); remembered as a sign
	 * that the link is saturated. Call it regularly, before {@link BandwidthEstimator.estimate}.
	 */
	behind(nowMs: number, state: PlaybackState): boolean {
		this.#rollMedia(nowMs);
		const skipped = state.skippedGroups > this.#skipped;
		this.#skipped = state.skippedGroups;
		const late = state.lateMs !== undefined && state.lateMs > state.targetLatencyMs + state.groupMs;
		if (!skipped && !late && !this.#mediaBehind) return false;
		this.#lastBehind = nowMs;
		return true;
	}

	/**
	 * The link capacity in bits per second this estimator can vouch for at `nowMs`, for
	 * `Abr.update`: the throughput while the link is saturated; else the burst median, capped by
	 * a recent probe; else the probe alone; else none.
	 */
	estimate(nowMs: number): number | undefined {
		const throughput = this.throughput(nowMs);
		if (this.#lastBehind !== undefined && nowMs - this.#lastBehind <= this.config.saturatedMs) return throughput;
		const probe = this.#probe && nowMs - this.#probe.at <= this.config.probeValidMs ? this.#probe.bps : undefined;
		const burst = this.burst(nowMs);
		if (burst !== undefined && probe !== undefined) return Math.min(burst, probe);
		return burst ?? probe;
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
