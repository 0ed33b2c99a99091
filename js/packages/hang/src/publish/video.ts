/**
 * Video publishing: raw frames → WebCodecs `VideoEncoder` (H.264 Annex-B, VP8 fallback) → one
 * group per keyframe (a GoP) on a hang media track, legacy container.
 */

import type { GroupProducer, TrackProducer } from "@moqx/lite";
import type { VideoConfig } from "../catalog.ts";
import { encodeFrame } from "../container.ts";
import { avc3CodecFromAnnexB, baselineCodecFor, defaultBitrate } from "./h264.ts";

/** Options of a {@link VideoPublisher}. */
export interface VideoPublisherOptions {
	/** A keyframe (and a new group) at least this often, in ms. */
	keyframeIntervalMs: number;
	/** Target bitrate in bit/s; default from the resolution. */
	bitrate?: number | undefined;
	/** Expected frame rate (default: the track's, else 30). */
	framerate: number;
	/** Media time (µs) now, on the broadcast's shared clock. */
	now: () => number;
	/** The catalog entry changed (first keyframe, resolution change). */
	onConfig: (config: VideoConfig) => void;
	/** A chunk of `bytes` was written. */
	onChunk: (bytes: number) => void;
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

/** Encodes a stream of `VideoFrame`s onto a track. */
export class VideoPublisher {
	#track: TrackProducer;
	#opts: VideoPublisherOptions;
	#encoding: Encoding | undefined;
	#configuring: Promise<void> | undefined;
	#group: GroupProducer | undefined;
	#offset: number | undefined;
	#lastKey: number | undefined;
	#config: VideoConfig | undefined;
	#closed = false;
	/** Frames out of the encoder. */
	framesEncoded = 0;
	/** Frames dropped because the encoder fell behind. */
	framesSkipped = 0;
	/** Current coded size. */
	width = 0;
	/** Current coded size. */
	height = 0;

	/**
	 * @param track the media track
	 * @param options see {@link VideoPublisherOptions}
	 */
	constructor(track: TrackProducer, options: VideoPublisherOptions) {
		this.#track = track;
		this.#opts = options;
	}

	/** The catalog entry, once the first keyframe is out. */
	get config(): VideoConfig | undefined {
		return this.#config;
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
		if (!this.#encoding || this.#encoding.width !== width || this.#encoding.height !== height) {
			this.#configuring ??= this.#configure(width, height).finally(() => {
				this.#configuring = undefined;
			});
			await this.#configuring;
		}
		const encoding = this.#encoding;
		if (encoding?.encoder.state !== "configured") return;
		if (encoding.encoder.encodeQueueSize > 3) {
			this.framesSkipped++;
			return;
		}
		this.#offset ??= this.#opts.now() - frame.timestamp;
		const pts = frame.timestamp + this.#offset;
		const keyFrame = this.#lastKey === undefined || pts - this.#lastKey >= this.#opts.keyframeIntervalMs * 1000;
		if (keyFrame) this.#lastKey = pts;
		encoding.encoder.encode(frame, { keyFrame });
	}

	async #configure(width: number, height: number) {
		const framerate = this.#opts.framerate;
		const bitrate = this.#opts.bitrate ?? defaultBitrate(width, height, framerate);
		const config = await chooseConfig(width, height, framerate, bitrate);
		if (this.#closed) return;
		const previous = this.#encoding;
		if (previous && previous.encoder.state !== "closed") {
			await previous.encoder.flush().catch(() => {});
			previous.encoder.close();
		}
		const encoder = new VideoEncoder({
			output: (chunk) => this.#output(chunk),
			error: (e) => console.warn("hang: video encoder error", e),
		});
		encoder.configure(config);
		this.#encoding = { encoder, width, height, codec: config.codec, bitrate };
		this.#lastKey = undefined; // the next frame is a keyframe
		this.width = width;
		this.height = height;
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
			if (JSON.stringify(config) !== JSON.stringify(this.#config)) {
				this.#config = config;
				this.#opts.onConfig(config);
			}
			this.#group = this.#track.appendGroup();
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
