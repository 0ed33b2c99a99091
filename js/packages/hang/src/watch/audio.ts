/**
 * Audio playback: WebCodecs `AudioDecoder` → planar Float32 PCM → AudioWorklet ring buffer, each
 * chunk placed on the AudioContext timeline where the playback clock says its media time is due.
 * Audio and video follow the same {@link PlaybackClock}, which keeps them in sync.
 */

import type { PlaybackClock } from "../buffer.ts";
import { alignAudio } from "../buffer.ts";
import type { AudioConfig } from "../catalog.ts";
import { hexToBytes } from "../catalog.ts";
import { loadWorklet, WORKLET_NAME } from "./worklet.ts";

/** The `AudioDecoderConfig` for a catalog rendition. */
export function audioDecoderConfig(config: AudioConfig): AudioDecoderConfig {
	const out: AudioDecoderConfig = {
		codec: config.codec,
		sampleRate: config.sampleRate,
		numberOfChannels: config.numberOfChannels,
	};
	if (config.description) out.description = hexToBytes(config.description);
	return out;
}

/** Whether this browser can decode a rendition. */
export async function audioSupported(config: AudioConfig): Promise<boolean> {
	if (typeof AudioDecoder === "undefined") return false;
	try {
		return (await AudioDecoder.isConfigSupported(audioDecoderConfig(config))).supported === true;
	} catch {
		return false;
	}
}

/** Decodes an audio track and plays it through an AudioWorklet. */
export class AudioRenderer {
	#config: AudioConfig;
	#clock: PlaybackClock;
	#onDecoded: () => void;
	#onLate: () => void;
	#decoder: AudioDecoder | undefined;
	/** Decoders replaced after a gap, still flushing their last outputs. */
	#retired = new Set<AudioDecoder>();
	#context: AudioContext | undefined;
	#node: AudioWorkletNode | undefined;
	#gain: GainNode | undefined;
	#ready = false;
	#prevEnd: number | undefined;
	#muted = true;
	#volume = 1;
	#closed = false;
	/** Render quanta the worklet found empty while playing. */
	underruns = 0;

	/**
	 * @param config the catalog rendition
	 * @param clock the shared playback clock
	 * @param onDecoded called for every AudioData out of the decoder
	 * @param onLate called for every AudioData dropped because its time to play had passed
	 */
	constructor(config: AudioConfig, clock: PlaybackClock, onDecoded: () => void, onLate: () => void = () => {}) {
		this.#config = config;
		this.#clock = clock;
		this.#onDecoded = onDecoded;
		this.#onLate = onLate;
		this.#decoder = this.#open();
		void this.#setup();
	}

	#open(): AudioDecoder {
		const decoder = new AudioDecoder({
			output: (data) => this.#output(data),
			error: (e) => {
				console.warn("hang: audio decoder error", e);
				if (this.#decoder === decoder) this.#decoder = undefined;
			},
		});
		decoder.configure(audioDecoderConfig(this.#config));
		return decoder;
	}

	async #setup() {
		try {
			const context = new AudioContext({ sampleRate: this.#config.sampleRate, latencyHint: "interactive" });
			this.#context = context;
			await loadWorklet(context);
			if (this.#closed) return;
			const node = new AudioWorkletNode(context, WORKLET_NAME, {
				numberOfInputs: 0,
				numberOfOutputs: 1,
				outputChannelCount: [this.#config.numberOfChannels],
			});
			node.port.onmessage = (e: MessageEvent<{ type: string; underruns?: number }>) => {
				if (e.data.type === "status") this.underruns = e.data.underruns ?? 0;
			};
			const gain = new GainNode(context, { gain: this.#muted ? 0 : this.#volume });
			node.connect(gain).connect(context.destination);
			this.#node = node;
			this.#gain = gain;
			this.#ready = true;
			if (!this.#muted) void context.resume();
		} catch (e) {
			console.warn("hang: audio output unavailable", e);
		}
	}

	/** The AudioContext state ("running" once audible output is possible). */
	get state(): AudioContextState | "none" {
		return this.#context?.state ?? "none";
	}

	/** Mute or unmute (unmuting resumes a suspended AudioContext; call it from a user gesture). */
	setMuted(muted: boolean): void {
		this.#muted = muted;
		this.#applyGain();
		if (!muted && this.#context?.state === "suspended") void this.#context.resume();
	}

	/** Volume 0..1. */
	setVolume(volume: number): void {
		this.#volume = volume;
		this.#applyGain();
	}

	#applyGain() {
		if (this.#gain && this.#context) {
			this.#gain.gain.setTargetAtTime(this.#muted ? 0 : this.#volume, this.#context.currentTime, 0.01);
		}
	}

	/**
	 * Decode a frame (media time in µs). `discontinuity`: frames before this one are missing
	 * (skipped or lost), so it is decoded by a new decoder. An `AudioDecoder` (Chromium's, at least)
	 * stamps its outputs from its first input's timestamp plus the samples it has decoded since,
	 * ignoring the input timestamps after that: after a gap, every later output would be stamped
	 * early by the gap's length, and played early or dropped as late.
	 */
	decode(timestamp: number, payload: Uint8Array, discontinuity = false): void {
		if (this.#closed) return;
		if (discontinuity && this.#decoder) {
			this.#retire(this.#decoder);
			this.#decoder = undefined;
		}
		const decoder = this.#decoder ?? this.#open();
		this.#decoder = decoder;
		try {
			decoder.decode(new EncodedAudioChunk({ type: "key", timestamp, data: payload }));
		} catch (e) {
			console.warn("hang: audio decode failed", e);
		}
	}

	/** Let a replaced decoder output what it has (correctly stamped: before the gap), then close it. */
	#retire(decoder: AudioDecoder) {
		if (decoder.state !== "configured") {
			if (decoder.state !== "closed") decoder.close();
			return;
		}
		this.#retired.add(decoder);
		const close = () => {
			this.#retired.delete(decoder);
			if (decoder.state !== "closed") decoder.close();
		};
		decoder.flush().then(close, close);
	}

	#output(data: AudioData) {
		try {
			if (this.#closed) return;
			this.#onDecoded();
			const context = this.#context;
			const node = this.#node;
			if (!this.#ready || !context || !node || context.state !== "running") {
				this.#prevEnd = undefined;
				return;
			}
			const now = performance.now();
			const due = this.#clock.localTime(data.timestamp, now);
			if (due === undefined) return;
			const rate = context.sampleRate;
			// Map local time to the context's timeline.
			const stamp = context.getOutputTimestamp();
			const base =
				stamp.performanceTime && stamp.contextTime !== undefined
					? stamp.contextTime + (due - stamp.performanceTime) / 1000
					: context.currentTime + (due - now) / 1000;
			const resample = rate / data.sampleRate;
			const frames = Math.round(data.numberOfFrames * resample);
			const start = alignAudio(this.#prevEnd, base * rate, rate * 0.02);
			if (start + frames <= context.currentTime * rate) {
				this.#prevEnd = undefined;
				this.#onLate();
				return;
			}
			const channels: Float32Array[] = [];
			for (let c = 0; c < data.numberOfChannels; c++) {
				const plane = new Float32Array(data.numberOfFrames);
				data.copyTo(plane, { planeIndex: c, format: "f32-planar" });
				channels.push(resample === 1 ? plane : resampleLinear(plane, frames));
			}
			this.#prevEnd = start + frames;
			node.port.postMessage(
				{ type: "data", start, channels },
				channels.map((c) => c.buffer as ArrayBuffer),
			);
		} finally {
			data.close();
		}
	}

	/** Stop decoding and playing. */
	close(): void {
		this.#closed = true;
		if (this.#decoder && this.#decoder.state !== "closed") this.#decoder.close();
		this.#decoder = undefined;
		for (const decoder of this.#retired) if (decoder.state !== "closed") decoder.close();
		this.#retired.clear();
		this.#node?.disconnect();
		void this.#context?.close().catch(() => {});
	}
}

/** Linear resampling of one channel to `frames` samples (only when the context rate differs). */
function resampleLinear(input: Float32Array, frames: number): Float32Array {
	const out = new Float32Array(frames);
	const step = input.length / frames;
	for (let i = 0; i < frames; i++) {
		const x = i * step;
		const j = Math.floor(x);
		const a = input[j] ?? 0;
		const b = input[j + 1] ?? a;
		out[i] = a + (b - a) * (x - j);
	}
	return out;
}
