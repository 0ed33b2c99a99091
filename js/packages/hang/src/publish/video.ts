/**
 * Video publishing: raw frames → WebCodecs `VideoEncoder` (H.264 Annex-B, VP8 fallback) → one
 * group per keyframe (a GoP) on a hang media track, legacy container.
 *
 * Simulcast: one encoder per rendition, each on its own track, all fed the same captured frames.
 * The keyframe decision is made once per captured frame and forced on every encoder, so groups
 * start at the same timestamps on every track and a viewer can switch at any group boundary.
 */

import type { GroupProducer, TrackProducer } from "@moqx/lite";
import type { VideoConfig } from "../catalog.ts";
import { encodeFrame } from "../container.ts";
import { avc3CodecFromAnnexB, baselineCodecFor, defaultBitrate } from "./h264.ts";
import type { PublishRendition } from "./renditions.ts";

/** Frames queued in an encoder beyond which a captured frame is skipped. */
const MAX_ENCODE_QUEUE = 3;

/** Options of a {@link VideoPublisher}. */
export interface VideoPublisherOptions {
	/** A keyframe (and a new group) at least this often, in ms. */
	keyframeIntervalMs: number;
	/** Target bitrate in bit/s of a rendition that follows the captured size; default from the size. */
	bitrate?: number | undefined;
	/** Expected frame rate (default: the track's, else 30). */
	framerate: number;
	/** Media time (µs) now, on the broadcast's shared clock. */
	now: () => number;
	/**
	 * The catalog entries changed (first keyframes, resolution change), by track name. Called once
	 * every rendition has its entry, then on each change.
	 */
	onConfig: (configs: Record<string, VideoConfig>) => void;
	/** A chunk of `bytes` was written. */
	onChunk: (bytes: number) => void;
}

/** A track to encode onto. */
export interface VideoTarget {
	/** The track name (its key in the catalog). */
	name: string;
	/** The track. */
	track: TrackProducer;
	/**
	 * Fixed coded size and bitrate (simulcast); undefined: the captured size, at
	 * {@link VideoPublisherOptions.bitrate}.
	 */
	rendition?: PublishRendition | undefined;
}

interface Encoding {
	encoder: VideoEncoder;
	width: number;
	height: number;
	codec: string;
	bitrate: number;
}

async function chooseConfig(
	width: number,
	height: number,
	framerate: number,
	bitrate: number,
): Promise<VideoEncoderConfig> {
	const base = { width, height, framerate, bitrate, latencyMode: "realtime" as const };
	const candidates: VideoEncoderConfig[] = [
		{ ...base, codec: baselineCodecFor(width, height), avc: { format: "annexb" } },
		{ ...base, codec: "avc1.42e033", avc: { format: "annexb" } },
		{ ...base, codec: "vp8" },
		{ ...base, codec: "vp09.00.10.08" },
	];
	for (const config of candidates) {
		try {
			if ((await VideoEncoder.isConfigSupported(config)).supported) return config;
		} catch {
			// try the next one
		}
	}
	throw new Error(`no video encoder for ${width}x${height}`);
}

/**
 * `frame` cropped (centred, no copy) to the aspect ratio of `width`×`height`, so that the encoder's
 * scaling to that size does not stretch the picture; `frame` itself when the ratios already agree
 * within 1 %. The caller closes a frame it did not pass in.
 */
function cropToAspect(frame: VideoFrame, width: number, height: number): VideoFrame {
	const source = frame.visibleRect;
	if (!source) return frame;
	const ratio = (source.width * height) / (source.height * width);
	if (Math.abs(ratio - 1) < 0.01) return frame;
	// Even offsets and sides: 4:2:0 planes cannot be cut between chroma samples.
	const even = (n: number) => Math.floor(n / 2) * 2;
	const cropWidth = ratio > 1 ? even((source.height * width) / height) : source.width;
	const cropHeight = ratio > 1 ? source.height : even((source.width * height) / width);
	return new VideoFrame(frame, {
		visibleRect: {
			x: source.x + even((source.width - cropWidth) / 2),
			y: source.y + even((source.height - cropHeight) / 2),
			width: cropWidth,
			height: cropHeight,
		},
	});
}

/**
 * One rendition: a `VideoEncoder` and the track its chunks go to. A fixed rendition has one
 * encoder configured at its size, which scales every frame to it (WebCodecs in Chromium scales a
 * frame's visible rectangle to the configured size); otherwise the encoder follows the captured
 * size and is replaced when it changes.
 */
class RenditionEncoder {
	readonly name: string;
	/** The catalog entry, once the first keyframe is out. */
	config: VideoConfig | undefined;
	/** Chunks written. */
	framesEncoded = 0;
	#track: TrackProducer;
	#fixed: PublishRendition | undefined;
	#opts: VideoPublisherOptions;
	#onConfig: () => void;
	#encoding: Encoding | undefined;
	#configuring: Promise<void> | undefined;
	#group: GroupProducer | undefined;
	/** Media time minus frame timestamp (µs), set with the first frame encoded. */
	#offset: number | undefined;
	/**
	 * Fixed renditions: the timestamp of a keyframe asked for and not yet out. Only such a
	 * keyframe starts a group, so that groups stay aligned across renditions; one the encoder
	 * adds on its own stays inside the current group.
	 */
	#keyAsked: number | undefined;
	#closed = false;

	constructor(target: VideoTarget, options: VideoPublisherOptions, onConfig: () => void) {
		this.name = target.name;
		this.#track = target.track;
		this.#fixed = target.rendition;
		this.#opts = options;
		this.#onConfig = onConfig;
	}

	/** Current coded size (0 before the encoder is configured). */
	get width(): number {
		return this.#encoding?.width ?? 0;
	}

	/** Current coded size (0 before the encoder is configured). */
	get height(): number {
		return this.#encoding?.height ?? 0;
	}

	/** Whether the encoder takes frames. */
	get ready(): boolean {
		return this.#encoding?.encoder.state === "configured";
	}

	/** Whether the encoder has fallen behind (a frame now would only queue). */
	get busy(): boolean {
		return (this.#encoding?.encoder.encodeQueueSize ?? 0) > MAX_ENCODE_QUEUE;
	}

	/**
	 * Make the encoder ready for a frame of this (even) captured size. Resolves true when it was
	 * (re)configured: its next frame must be a keyframe.
	 */
	async prepare(capturedWidth: number, capturedHeight: number): Promise<boolean> {
		const width = this.#fixed?.width ?? capturedWidth;
		const height = this.#fixed?.height ?? capturedHeight;
		if (this.#encoding?.width === width && this.#encoding.height === height) return false;
		this.#configuring ??= this.#configure(width, height).finally(() => {
			this.#configuring = undefined;
		});
		await this.#configuring;
		return true;
	}

	/** Encode `frame`, stamped `offset` µs later on the media clock. */
	encode(frame: VideoFrame, keyFrame: boolean, offset: number): void {
		const encoding = this.#encoding;
		if (!encoding) return;
		this.#offset ??= offset;
		if (keyFrame) this.#keyAsked = frame.timestamp;
		if (!this.#fixed) {
			encoding.encoder.encode(frame, { keyFrame });
			return;
		}
		const cropped = cropToAspect(frame, encoding.width, encoding.height);
		try {
			encoding.encoder.encode(cropped, { keyFrame });
		} finally {
			if (cropped !== frame) cropped.close();
		}
	}

	async #configure(width: number, height: number) {
		const framerate = this.#opts.framerate;
		const bitrate =
			(this.#fixed ? this.#fixed.bitrate : this.#opts.bitrate) ?? defaultBitrate(width, height, framerate);
		const config = await chooseConfig(width, height, framerate, bitrate);
		if (this.#closed) return;
		const previous = this.#encoding;
		if (previous && previous.encoder.state !== "closed") {
			await previous.encoder.flush().catch(() => {});
			previous.encoder.close();
		}
		const encoder = new VideoEncoder({
			output: (chunk) => this.#output(chunk),
			error: (e) => console.warn(`hang: video encoder error (${this.name})`, e),
		});
		encoder.configure(config);
		this.#encoding = { encoder, width, height, codec: config.codec, bitrate };
	}

	#output(chunk: EncodedVideoChunk) {
		if (this.#closed || this.#offset === undefined) return;
		const encoding = this.#encoding;
		if (!encoding) return;
		const data = new Uint8Array(chunk.byteLength);
		chunk.copyTo(data);
		const pts = chunk.timestamp + this.#offset;
		if (chunk.type === "key") {
			const codec = encoding.codec.startsWith("avc1.") ? (avc3CodecFromAnnexB(data) ?? encoding.codec) : encoding.codec;
			const config: VideoConfig = {
				codec,
				codedWidth: encoding.width,
				codedHeight: encoding.height,
				bitrate: encoding.bitrate,
				framerate: this.#opts.framerate,
				optimizeForLatency: true,
				container: { kind: "legacy" },
			};
			if (JSON.stringify(config) !== JSON.stringify(this.config)) {
				this.config = config;
				this.#onConfig();
			}
			// An encoder that drops the frame it was asked to make a keyframe makes the next one.
			const asked = this.#keyAsked !== undefined && chunk.timestamp >= this.#keyAsked;
			if (!this.#fixed || asked || !this.#group) {
				this.#keyAsked = undefined;
				this.#group = this.#track.appendGroup();
			}
		}
		if (!this.#group) return; // never write deltas before the first keyframe
		const payload = encodeFrame(Math.max(0, pts), data);
		this.#group.writeFrame(payload, Math.max(0, pts));
		this.framesEncoded++;
		this.#opts.onChunk(payload.byteLength);
	}

	/** Stop encoding and close the current group. */
	close(): void {
		this.#closed = true;
		const encoder = this.#encoding?.encoder;
		if (encoder && encoder.state !== "closed") encoder.close();
		this.#group?.close();
		this.#group = undefined;
	}
}

/** Encodes a stream of `VideoFrame`s onto one track per rendition. */
export class VideoPublisher {
	#renditions: RenditionEncoder[];
	#opts: VideoPublisherOptions;
	#offset: number | undefined;
	#lastKey: number | undefined;
	#closed = false;
	/** Captured frames dropped (for every rendition) because an encoder fell behind. */
	framesSkipped = 0;

	/**
	 * @param targets the tracks, one per rendition (at least one), in catalog order
	 * @param options see {@link VideoPublisherOptions}
	 */
	constructor(targets: VideoTarget[], options: VideoPublisherOptions) {
		if (targets.length === 0) throw new Error("no video track to publish");
		this.#opts = options;
		this.#renditions = targets.map((target) => new RenditionEncoder(target, options, () => this.#configChanged()));
	}

	/** The first rendition's catalog entry, once its first keyframe is out. */
	get config(): VideoConfig | undefined {
		return this.#first.config;
	}

	/** Frames out of the first rendition's encoder. */
	get framesEncoded(): number {
		return this.#first.framesEncoded;
	}

	/** The first rendition's coded size. */
	get width(): number {
		return this.#first.width;
	}

	/** The first rendition's coded size. */
	get height(): number {
		return this.#first.height;
	}

	get #first(): RenditionEncoder {
		// The constructor refuses an empty list.
		return this.#renditions[0] as RenditionEncoder;
	}

	/** Read and encode `frames` until it ends or {@link VideoPublisher.close}. */
	async run(frames: ReadableStream<VideoFrame>): Promise<void> {
		const reader = frames.getReader();
		try {
			for (;;) {
				const { value: frame, done } = await reader.read();
				if (done || this.#closed) {
					frame?.close();
					return;
				}
				try {
					await this.#encode(frame);
				} finally {
					frame.close();
				}
			}
		} finally {
			reader.releaseLock();
			void frames.cancel().catch(() => {});
		}
	}

	async #encode(frame: VideoFrame) {
		// Even dimensions (4:2:0).
		const width = frame.displayWidth & ~1;
		const height = frame.displayHeight & ~1;
		if (width === 0 || height === 0) return;
		let reconfigured = false;
		for (const rendition of this.#renditions) {
			if (await rendition.prepare(width, height)) reconfigured = true;
		}
		if (reconfigured) this.#lastKey = undefined; // the next frame is a keyframe
		if (this.#closed || !this.#renditions.every((r) => r.ready)) return;
		// Every rendition encodes the same frames, so one that falls behind holds back all of them.
		if (this.#renditions.some((r) => r.busy)) {
			this.framesSkipped++;
			return;
		}
		this.#offset ??= this.#opts.now() - frame.timestamp;
		const pts = frame.timestamp + this.#offset;
		const keyFrame = this.#lastKey === undefined || pts - this.#lastKey >= this.#opts.keyframeIntervalMs * 1000;
		if (keyFrame) this.#lastKey = pts;
		for (const rendition of this.#renditions) rendition.encode(frame, keyFrame, this.#offset);
	}

	/** Publish the catalog entries once every rendition has one. */
	#configChanged() {
		const configs: Record<string, VideoConfig> = {};
		for (const rendition of this.#renditions) {
			if (!rendition.config) return;
			configs[rendition.name] = rendition.config;
		}
		this.#opts.onConfig(configs);
	}

	/** Stop encoding and close the current groups. */
	close(): void {
		this.#closed = true;
		for (const rendition of this.#renditions) rendition.close();
	}
}
