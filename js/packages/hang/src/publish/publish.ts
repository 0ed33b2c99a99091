/**
 * The publisher: captures camera, screen and/or microphone, encodes with WebCodecs and serves a
 * hang broadcast (catalog + media tracks) on a relay, reconnecting with backoff.
 */

import type { TrackProducer, TransportChoice, Version } from "@moqx/lite";
import { BroadcastProducer, Connection } from "@moqx/lite";
import { Backoff, RateMeter } from "../buffer.ts";
import type { AudioConfig, Catalog, VideoConfig } from "../catalog.ts";
import {
	CATALOG_TRACK,
	MEDIA_MAX_LATENCY_MS,
	MEDIA_TIMESCALE,
	PRIORITY,
	serializeCatalog,
	setCatalogClock,
	wallNowUs,
} from "../catalog.ts";
import { AudioPublisher } from "./audio.ts";
import { audioFrames, canCaptureAudio, videoFrames } from "./capture.ts";
import { checkRenditions, type PublishRendition } from "./renditions.ts";
import { VideoPublisher, type VideoTarget } from "./video.ts";

/** What to capture video from. */
export type PublishSource = "camera" | "screen" | "none";

/** Options of a {@link Publish}. */
export interface PublishOptions {
	/** Relay URL, e.g. `http://localhost:4443/anon`. */
	url: string | URL;
	/** Broadcast path relative to the URL, e.g. `alice.hang`. */
	path: string;
	/** Video source (default camera). */
	source?: PublishSource;
	/** Capture the microphone (default true; with `screen`, the shared tab's audio when offered). */
	audio?: boolean;
	/** A keyframe, hence a new group, at least every this many ms (default 2000). */
	keyframeIntervalMs?: number;
	/** Video bitrate in bit/s (default from the resolution); not used with {@link PublishOptions.renditions}. */
	videoBitrate?: number;
	/**
	 * Simulcast: one video track per rendition (`video0`, `video1`, ... in this order), each encoded
	 * at its own size and bitrate from the same captured frames, with keyframes on the same frames.
	 * Default (undefined or empty): one rendition at the captured size.
	 */
	renditions?: PublishRendition[];
	/** Audio bitrate in bit/s (default 64 000). */
	audioBitrate?: number;
	/** Capture size and rate hints (default 1280x720 at 30 fps; with renditions, the largest one's size). */
	width?: number;
	/** See {@link PublishOptions.width}. */
	height?: number;
	/** See {@link PublishOptions.width}. */
	framerate?: number;
	/** Use this stream instead of capturing one (`source` and `audio` are then ignored). */
	stream?: MediaStream;
	/** moq-lite versions to offer, most preferred first (default: the client's, lite-05 then lite-02). */
	versions?: Version[];
	/** The transport: "auto" (default: WebTransport, WebSocket as fallback), "webtransport" or "websocket". */
	transport?: TransportChoice;
}

/** Publisher state. */
export type PublishStatus = "idle" | "capturing" | "connecting" | "live" | "offline" | "error" | "closed";

/** Statistics of a publisher, as exposed by `<hang-publish>.stats`. */
export interface PublishStats {
	/** State. */
	status: PublishStatus;
	/** Video frames out of the encoder (of the first rendition, with renditions). */
	framesEncoded: number;
	/** Video frames dropped because the encoder fell behind. */
	framesSkipped: number;
	/** Audio packets out of the encoder. */
	audioFramesEncoded: number;
	/** Media bytes written over the last 2 s, in kbit/s. */
	bitrateKbps: number;
	/** Coded video size (of the first rendition, with renditions). */
	width: number;
	/** Coded video size (of the first rendition, with renditions). */
	height: number;
	/** Video codec (catalog string; of the first rendition, with renditions). */
	videoCodec: string | undefined;
	/** Audio codec. */
	audioCodec: string | undefined;
	/** Times the publisher (re)connected. */
	connects: number;
	/** The moq-lite version of the current connection. */
	version: string | undefined;
	/** The transport of the current connection ("webtransport" or "websocket"). */
	transport: string | undefined;
	/** The last error, if any (e.g. capture permission denied). */
	error: string | undefined;
}

/** Publishes a hang broadcast. Dispatches `status` (detail: {@link PublishStatus}) events. */
export class Publish extends EventTarget {
	/** Relay URL. */
	readonly url: string;
	readonly #versions: Version[] | undefined;
	/** Broadcast path. */
	readonly path: string;
	/**
	 * The moq-lite broadcast: add your own tracks to it (e.g. `broadcast.createTrack("chat")`);
	 * describe them with {@link Publish.setCatalogSection} if viewers should find them.
	 */
	readonly broadcast: BroadcastProducer;
	#options: PublishOptions;
	#catalogTrack: TrackProducer;
	#catalog: Catalog = {};
	#epoch = performance.now();
	#meter = new RateMeter(2000);
	#video: VideoPublisher | undefined;
	#audio: AudioPublisher | undefined;
	#stream: MediaStream | undefined;
	#connection: Connection | undefined;
	#closed = new AbortController();
	#status: PublishStatus = "idle";
	#connects = 0;
	#error: string | undefined;
	#nextIndex = 0;

	/**
	 * @param options see {@link PublishOptions}
	 * @throws {RenditionError} when `options.renditions` is out of bounds (see {@link checkRenditions})
	 */
	constructor(options: PublishOptions) {
		super();
		if (options.renditions?.length) checkRenditions(options.renditions);
		this.url = String(options.url);
		this.#versions = options.versions;
		this.path = options.path;
		this.#options = options;
		this.broadcast = new BroadcastProducer();
		this.#catalogTrack = this.broadcast.createTrack(CATALOG_TRACK, { priority: PRIORITY.catalog });
		// Media time 0 is `#epoch`; anchor it to the wall clock so viewers can measure latency.
		setCatalogClock(this.#catalog, wallNowUs());
		void this.#capture();
		void this.#run();
	}

	/** The current connection, if connected. */
	get connection(): Connection | undefined {
		return this.#connection;
	}

	/** The captured stream (for a local preview). */
	get stream(): MediaStream | undefined {
		return this.#stream;
	}

	/** The catalog as last published. */
	get catalog(): Catalog {
		return this.#catalog;
	}

	/** A snapshot of the statistics. */
	get stats(): PublishStats {
		return {
			status: this.#status,
			framesEncoded: this.#video?.framesEncoded ?? 0,
			framesSkipped: this.#video?.framesSkipped ?? 0,
			audioFramesEncoded: this.#audio?.framesEncoded ?? 0,
			bitrateKbps: Math.round(this.#meter.kbps(performance.now())),
			width: this.#video?.width ?? 0,
			height: this.#video?.height ?? 0,
			videoCodec: this.#video?.config?.codec,
			audioCodec: this.#audio?.config?.codec,
			connects: this.#connects,
			version: this.#connection?.version,
			transport: this.#connection?.transport,
			error: this.#error,
		};
	}

	/**
	 * Set (or with `undefined`, remove) a root section of the catalog, e.g. `chat`, and publish
	 * the new catalog version.
	 */
	setCatalogSection(key: string, value: unknown): void {
		if (key === "video" || key === "audio" || key === "clock") throw new Error(`${key} is managed by the publisher`);
		if (value === undefined) delete this.#catalog[key];
		else this.#catalog[key] = value;
		this.#publishCatalog();
	}

	/** Create a media track named like the Rust publisher does (`video0`, `audio1`, ...). */
	#createMediaTrack(kind: "video" | "audio"): [string, TrackProducer] {
		const name = `${kind}${this.#nextIndex++}`;
		return [name, this.broadcast.createTrack(name, { maxLatencyMs: MEDIA_MAX_LATENCY_MS, timescale: MEDIA_TIMESCALE })];
	}

	#now(): number {
		return Math.round((performance.now() - this.#epoch) * 1000);
	}

	#publishCatalog() {
		try {
			this.#catalogTrack.writeFrame(serializeCatalog(this.#catalog));
		} catch (e) {
			console.warn("hang: catalog", e);
		}
	}

	#setStatus(status: PublishStatus) {
		if (this.#status === status || this.#status === "closed") return;
		this.#status = status;
		this.dispatchEvent(new CustomEvent("status", { detail: status }));
	}

	async #getStream(): Promise<MediaStream> {
		if (this.#options.stream) return this.#options.stream;
		const source = this.#options.source ?? "camera";
		const audio = this.#options.audio ?? true;
		// Capture at the largest rendition's size, so that no rendition is scaled up (and, where the
		// camera offers that aspect ratio, none is cropped).
		const largest = this.#options.renditions?.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
		const video = {
			width: { ideal: this.#options.width ?? largest?.width ?? 1280 },
			height: { ideal: this.#options.height ?? largest?.height ?? 720 },
			frameRate: { ideal: this.#options.framerate ?? 30 },
		};
		const mic = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
		if (source === "screen") {
			const stream = await navigator.mediaDevices.getDisplayMedia({ video, audio });
			if (audio && stream.getAudioTracks().length === 0) {
				// No tab audio offered: fall back to the microphone.
				try {
					const micStream = await navigator.mediaDevices.getUserMedia({ audio: mic });
					for (const t of micStream.getAudioTracks()) stream.addTrack(t);
				} catch (e) {
					console.warn("hang: no microphone", e);
				}
			}
			return stream;
		}
		if (source === "none" && !audio) return new MediaStream();
		return navigator.mediaDevices.getUserMedia({
			video: source === "camera" ? video : false,
			audio: audio ? mic : false,
		});
	}

	async #capture() {
		this.#setStatus("capturing");
		let stream: MediaStream;
		try {
			stream = await this.#getStream();
		} catch (e) {
			this.#error = e instanceof Error ? e.message : String(e);
			console.warn("hang: capture", e);
			this.#setStatus("error");
			return;
		}
		if (this.#closed.signal.aborted) {
			if (!this.#options.stream) for (const t of stream.getTracks()) t.stop();
			return;
		}
		this.#stream = stream;
		this.dispatchEvent(new CustomEvent("stream", { detail: stream }));
		const tasks: Promise<void>[] = [];
		const videoTrack = stream.getVideoTracks()[0];
		if (videoTrack) {
			const renditions = this.#options.renditions?.length ? this.#options.renditions : [undefined];
			const targets = renditions.map((rendition): VideoTarget => {
				const [name, track] = this.#createMediaTrack("video");
				return { name, track, rendition };
			});
			const video = new VideoPublisher(targets, {
				keyframeIntervalMs: this.#options.keyframeIntervalMs ?? 2000,
				bitrate: this.#options.videoBitrate,
				framerate: videoTrack.getSettings().frameRate ?? this.#options.framerate ?? 30,
				now: () => this.#now(),
				onConfig: (configs) => this.#setVideo(configs),
				onChunk: (bytes) => this.#meter.add(bytes, performance.now()),
			});
			this.#video = video;
			tasks.push(video.run(videoFrames(videoTrack)));
		}
		const audioTrack = stream.getAudioTracks()[0];
		if (audioTrack && canCaptureAudio()) {
			const [name, track] = this.#createMediaTrack("audio");
			const audio = new AudioPublisher(track, {
				bitrate: this.#options.audioBitrate,
				now: () => this.#now(),
				onConfig: (config) => this.#setAudio(name, config),
				onChunk: (bytes) => this.#meter.add(bytes, performance.now()),
			});
			this.#audio = audio;
			tasks.push(audio.run(audioFrames(audioTrack)));
		}
		const results = await Promise.allSettled(tasks);
		for (const r of results) {
			if (r.status === "rejected") {
				this.#error = r.reason instanceof Error ? r.reason.message : String(r.reason);
				console.warn("hang: encode", r.reason);
			}
		}
	}

	/** Set the catalog entries of these video renditions (by track name) in one catalog version. */
	#setVideo(configs: Record<string, VideoConfig>) {
		this.#catalog.video ??= { renditions: {} };
		Object.assign(this.#catalog.video.renditions, configs);
		this.#publishCatalog();
	}

	#setAudio(name: string, config: AudioConfig) {
		this.#catalog.audio ??= { renditions: {} };
		this.#catalog.audio.renditions[name] = config;
		this.#publishCatalog();
	}

	async #run() {
		const backoff = new Backoff(500, 5000);
		while (!this.#closed.signal.aborted) {
			let connection: Connection | undefined;
			try {
				if (this.#status !== "error") this.#setStatus("connecting");
				connection = await Connection.connect(this.url, {
					versions: this.#versions,
					transport: this.#options.transport,
				});
				if (this.#closed.signal.aborted) {
					connection.close();
					return;
				}
				this.#connection = connection;
				this.#connects++;
				connection.publish(this.path, this.broadcast);
				if (this.#status !== "error") this.#setStatus("live");
				backoff.reset();
				const closed = this.#closed.signal;
				await Promise.race([
					connection.closed,
					new Promise((resolve) => closed.addEventListener("abort", resolve, { once: true })),
				]);
			} catch (e) {
				console.warn("hang: publish", e);
			} finally {
				connection?.close();
				if (this.#connection === connection) this.#connection = undefined;
			}
			if (this.#closed.signal.aborted) return;
			if (this.#status !== "error") this.#setStatus("offline");
			const delay = backoff.next();
			await new Promise((resolve) => setTimeout(resolve, delay));
		}
	}

	/** Stop capturing and publishing; ends the broadcast. */
	close(): void {
		if (this.#closed.signal.aborted) return;
		this.#closed.abort();
		this.#video?.close();
		this.#audio?.close();
		if (this.#stream && !this.#options.stream) for (const t of this.#stream.getTracks()) t.stop();
		this.broadcast.close();
		this.#connection?.close();
		this.#setStatus("closed");
		this.#status = "closed";
	}
}
