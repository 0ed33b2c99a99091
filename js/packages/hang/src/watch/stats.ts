/** Playback statistics of a watcher, as exposed by `<hang-watch>.stats` and its `stats` event. */
export interface WatchStats {
	/** Connection / playback state. */
	status: WatchStatus;
	/** Video frames output by the decoder since the element started. */
	framesDecoded: number;
	/** Video frames dropped: skipped groups (never decoded) plus decoded frames too late to show. */
	framesDropped: number;
	/** Video frames drawn on the canvas. */
	framesRendered: number;
	/** Audio frames (AudioData) output by the decoder, counted even while muted. */
	audioFramesDecoded: number;
	/** Audio frames never decoded: skipped by the reader to stay live, or missing from the track. */
	audioFramesSkipped: number;
	/** Audio frames decoded too late to play (dropped; counted only while the output is running). */
	audioFramesLate: number;
	/**
	 * End-to-end latency in ms of the last frame shown: with a catalog `clock`, wall time now minus
	 * the wall time of the frame's capture; without one, how long after its earliest possible
	 * arrival it was shown. Undefined before the first frame.
	 */
	latencyMs: number | undefined;
	/** Whether `latencyMs` comes from the publisher's wall clock (catalog `clock`). */
	latencyFromClock: boolean;
	/** Media bytes received over the last 2 s, in kbit/s. */
	bitrateKbps: number;
	/** Waiting for data: nothing shown yet or playback ran past the newest frame. */
	buffering: boolean;
	/** Target latency in ms. */
	targetLatencyMs: number;
	/** Video size in pixels (0 before the first frame). */
	width: number;
	/** Video size in pixels. */
	height: number;
	/** Video codec in use. */
	videoCodec: string | undefined;
	/** Audio codec in use. */
	audioCodec: string | undefined;
	/** Times the watcher (re)connected to the relay. */
	connects: number;
	/** The moq-lite version of the current connection (e.g. "moq-lite-05"). */
	version: string | undefined;
	/** The transport of the current connection ("webtransport" or "websocket"). */
	transport: string | undefined;
	/** State of the audio output ("running" = audible unless muted; "suspended" until a user gesture). */
	audioState: AudioContextState | "none";
	/** Audio render quanta that found the buffer empty while playing. */
	audioUnderruns: number;
	/** Track name of the video rendition shown. */
	rendition: string | undefined;
	/**
	 * The bandwidth estimate adaptive bitrate decides on, in kbit/s; undefined while there is none
	 * (the link keeps up and no probe says more: see `BandwidthEstimator.estimate`).
	 */
	estimateKbps: number | undefined;
	/** Switches of video rendition made by adaptive bitrate (completed cut-overs). */
	abrSwitches: number;
}

/** Watcher state. */
export type WatchStatus = "idle" | "connecting" | "waiting" | "playing" | "offline" | "paused";

/** Fresh statistics. */
export function emptyStats(targetLatencyMs: number): WatchStats {
	return {
		status: "idle",
		framesDecoded: 0,
		framesDropped: 0,
		framesRendered: 0,
		audioFramesDecoded: 0,
		audioFramesSkipped: 0,
		audioFramesLate: 0,
		latencyMs: undefined,
		latencyFromClock: false,
		bitrateKbps: 0,
		buffering: true,
		targetLatencyMs,
		width: 0,
		height: 0,
		videoCodec: undefined,
		audioCodec: undefined,
		connects: 0,
		version: undefined,
		transport: undefined,
		audioState: "none",
		audioUnderruns: 0,
		rendition: undefined,
		estimateKbps: undefined,
		abrSwitches: 0,
	};
}
