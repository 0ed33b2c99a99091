/** Video playback: WebCodecs `VideoDecoder` → jitter buffer of decoded frames → Canvas 2D. */

import { pickFrame } from "../buffer.ts";
import type { VideoConfig } from "../catalog.ts";
import { hexToBytes } from "../catalog.ts";
import type { MediaFrame } from "./reader.ts";

/** Most decoded frames held waiting for their time; older ones are dropped beyond it. */
const MAX_BUFFERED = 90;

/** The `VideoDecoderConfig` for a catalog rendition. */
export function videoDecoderConfig(config: VideoConfig): VideoDecoderConfig {
	const out: VideoDecoderConfig = { codec: config.codec, optimizeForLatency: config.optimizeForLatency ?? true };
	if (config.description) out.description = hexToBytes(config.description);
	if (config.codedWidth) out.codedWidth = config.codedWidth;
	if (config.codedHeight) out.codedHeight = config.codedHeight;
	if (config.displayAspectWidth && config.displayAspectHeight) {
		out.displayAspectWidth = config.displayAspectWidth;
		out.displayAspectHeight = config.displayAspectHeight;
	}
	return out;
}

/** Whether this browser can decode a rendition. */
export async function videoSupported(config: VideoConfig): Promise<boolean> {
	if (typeof VideoDecoder === "undefined") return false;
	try {
		return (await VideoDecoder.isConfigSupported(videoDecoderConfig(config))).supported === true;
	} catch {
		return false;
	}
}

/** Counters the renderer updates. */
export interface VideoCounters {
	/** A frame came out of the decoder. */
	decoded(): void;
	/** `n` frames were dropped. */
	dropped(n: number): void;
	/** A frame with media time `pts` was drawn. */
	rendered(pts: number, width: number, height: number): void;
}

/** Decodes a video track and draws each frame on a canvas when the playback clock reaches it. */
export class VideoRenderer {
	#config: VideoDecoderConfig;
	#canvas: HTMLCanvasElement;
	#ctx: CanvasRenderingContext2D | null;
	#counters: VideoCounters;
	#decoder: VideoDecoder | undefined;
	#waitKey = true;
	#frames: VideoFrame[] = [];
	#closed = false;
	/** Media time of the last frame drawn. */
	lastShownPts: number | undefined;

	/**
	 * @param config the catalog rendition
	 * @param canvas where to draw (resized to the video)
	 * @param counters stats hooks
	 */
	constructor(config: VideoConfig, canvas: HTMLCanvasElement, counters: VideoCounters) {
		this.#config = videoDecoderConfig(config);
		this.#canvas = canvas;
		this.#ctx = canvas.getContext("2d");
		this.#counters = counters;
	}

	#open(): VideoDecoder {
		const decoder = new VideoDecoder({
			output: (frame) => this.#output(frame),
			error: (e) => {
				console.warn("hang: video decoder error", e);
				if (this.#decoder === decoder) this.#decoder = undefined;
			},
		});
		decoder.configure(this.#config);
		this.#decoder = decoder;
		this.#waitKey = true;
		return decoder;
	}

	/**
	 * Decode a frame's samples (those before the first keyframe, or after a decoder error, are
	 * dropped). The first sample of a group's first frame is the keyframe (§12.4).
	 */
	decode(frame: MediaFrame): void {
		frame.samples.forEach((sample, i) => {
			this.#decodeSample(sample.timestamp, sample.payload, frame.keyframe && i === 0);
		});
	}

	#decodeSample(timestamp: number, data: Uint8Array, keyframe: boolean): void {
		if (this.#closed) return;
		const decoder = this.#decoder ?? this.#open();
		if (this.#waitKey && !keyframe) {
			this.#counters.dropped(1);
			return;
		}
		this.#waitKey = false;
		try {
			decoder.decode(new EncodedVideoChunk({ type: keyframe ? "key" : "delta", timestamp, data }));
		} catch (e) {
			console.warn("hang: video decode failed", e);
			this.#waitKey = true;
			this.#counters.dropped(1);
		}
	}

	#output(frame: VideoFrame) {
		if (this.#closed) {
			frame.close();
			return;
		}
		this.#counters.decoded();
		// Keep the buffer sorted by timestamp (decode order may differ from presentation order).
		let i = this.#frames.length;
		while (i > 0 && (this.#frames[i - 1]?.timestamp ?? 0) > frame.timestamp) i--;
		this.#frames.splice(i, 0, frame);
		while (this.#frames.length > MAX_BUFFERED) {
			this.#frames.shift()?.close();
			this.#counters.dropped(1);
		}
	}

	/** Media time of the oldest decoded frame waiting, if any. */
	get oldest(): number | undefined {
		return this.#frames[0]?.timestamp;
	}

	/** Media time of the newest decoded frame waiting, if any. */
	get newest(): number | undefined {
		return this.#frames.at(-1)?.timestamp;
	}

	/** Whether a decoded frame is waiting. */
	get buffered(): number {
		return this.#frames.length;
	}

	/**
	 * Draw the newest frame due at media time `nowUs` (dropping older ones). Returns whether a
	 * frame was drawn.
	 */
	render(nowUs: number | undefined): boolean {
		if (nowUs === undefined || this.#frames.length === 0) return false;
		const index = pickFrame(
			this.#frames.map((f) => f.timestamp),
			nowUs,
		);
		if (index < 0) return false;
		const late = this.#frames.splice(0, index);
		for (const f of late) f.close();
		if (late.length > 0) this.#counters.dropped(late.length);
		const frame = this.#frames.shift();
		if (!frame) return false;
		const width = frame.displayWidth;
		const height = frame.displayHeight;
		if (this.#canvas.width !== width || this.#canvas.height !== height) {
			this.#canvas.width = width;
			this.#canvas.height = height;
		}
		this.#ctx?.drawImage(frame, 0, 0, width, height);
		this.lastShownPts = frame.timestamp;
		frame.close();
		this.#counters.rendered(this.lastShownPts, width, height);
		return true;
	}

	/** Stop decoding and release every frame. */
	close(): void {
		this.#closed = true;
		for (const f of this.#frames) f.close();
		this.#frames = [];
		if (this.#decoder && this.#decoder.state !== "closed") this.#decoder.close();
		this.#decoder = undefined;
	}
}
