/** Audio publishing: `AudioData` → WebCodecs `AudioEncoder` (Opus) → one group per packet. */

import type { TrackProducer } from "@moqx/lite";
import type { AudioConfig } from "../catalog.ts";
import { encodeFrame } from "../container.ts";

/** Options of an {@link AudioPublisher}. */
export interface AudioPublisherOptions {
	/** Target bitrate in bit/s (default 64 000). */
	bitrate?: number | undefined;
	/** Media time (µs) now, on the broadcast's shared clock. */
	now: () => number;
	/** The catalog entry is known (after the first input). */
	onConfig: (config: AudioConfig) => void;
	/** A packet of `bytes` was written. */
	onChunk: (bytes: number) => void;
}

/** Encodes a stream of `AudioData` onto a track, each Opus packet its own group. */
export class AudioPublisher {
	#track: TrackProducer;
	#opts: AudioPublisherOptions;
	#encoder: AudioEncoder | undefined;
	#offset: number | undefined;
	#closed = false;
	/** Packets out of the encoder. */
	framesEncoded = 0;
	/** The catalog entry, once configured. */
	config: AudioConfig | undefined;

	/**
	 * @param track the media track
	 * @param options see {@link AudioPublisherOptions}
	 */
	constructor(track: TrackProducer, options: AudioPublisherOptions) {
		this.#track = track;
		this.#opts = options;
	}

	/** Read and encode `frames` until it ends or {@link AudioPublisher.close}. */
	async run(frames: ReadableStream<AudioData>): Promise<void> {
		const reader = frames.getReader();
		try {
			for (;;) {
				const { value: data, done } = await reader.read();
				if (done || this.#closed) {
					data?.close();
					return;
				}
				try {
					await this.#encode(data);
				} finally {
					data.close();
				}
			}
		} finally {
			reader.releaseLock();
			void frames.cancel().catch(() => {});
		}
	}

	async #encode(data: AudioData) {
		if (!this.#encoder) {
			const numberOfChannels = Math.min(2, data.numberOfChannels);
			const bitrate = this.#opts.bitrate ?? 64_000;
			const config: AudioEncoderConfig = {
				codec: "opus",
				sampleRate: data.sampleRate,
				numberOfChannels,
				bitrate,
			};
			const support = await AudioEncoder.isConfigSupported(config);
			if (!support.supported) throw new Error(`Opus encoding of ${data.sampleRate} Hz audio is not supported`);
			if (this.#closed) return;
			const encoder = new AudioEncoder({
				output: (chunk, metadata) => this.#output(chunk, metadata),
				error: (e) => console.warn("hang: audio encoder error", e),
			});
			encoder.configure(config);
			this.#encoder = encoder;
			this.config = {
				codec: "opus",
				sampleRate: data.sampleRate,
				numberOfChannels,
				bitrate,
				container: { kind: "legacy" },
			};
			this.#opts.onConfig(this.config);
		}
		if (this.#encoder.state !== "configured") return;
		this.#offset ??= this.#opts.now() - data.timestamp;
		this.#encoder.encode(data);
	}

	#output(chunk: EncodedAudioChunk, metadata?: EncodedAudioChunkMetadata) {
		if (this.#closed || this.#offset === undefined) return;
		const rate = metadata?.decoderConfig?.sampleRate;
		if (rate && this.config && rate !== this.config.sampleRate) {
			this.config = { ...this.config, sampleRate: rate };
			this.#opts.onConfig(this.config);
		}
		const data = new Uint8Array(chunk.byteLength);
		chunk.copyTo(data);
		const pts = Math.max(0, chunk.timestamp + this.#offset);
		const payload = encodeFrame(pts, data);
		this.#track.writeFrame(payload, pts);
		this.framesEncoded++;
		this.#opts.onChunk(payload.byteLength);
	}

	/** Stop encoding. */
	close(): void {
		this.#closed = true;
		if (this.#encoder && this.#encoder.state !== "closed") this.#encoder.close();
	}
}
