/**
 * The watcher: connects to a relay, follows a hang broadcast's catalog and plays its first usable
 * video and audio renditions; reconnects with backoff when the connection drops or the broadcast
 * ends, and resumes as soon as it is announced again.
 *
 * Adaptive bitrate: when the catalog lists several playable video renditions with a `bitrate`
 * (simulcast, keyframes aligned), {@link Abr} picks one from a {@link BandwidthEstimator} fed with
 * the media bytes delivered, the rate bursts of them arrive at, and whether playback falls behind
 * (see `estimate.ts`). It starts with the smallest rendition and moves up as the bursts show room.
 * Renditions are subscribed with a priority by rank, the smallest highest, so a step down gets
 * through a saturated link. On a switch the new rendition's track is subscribed next to the old one,
 * whose frames keep being shown until a decoded frame of the new one is due; then the old track
 * is closed: no gap.
 */

import type { Announced, BroadcastConsumer, TrackConsumer, TransportChoice, Version } from "@moqx/lite";
import { Connection } from "@moqx/lite";
import { Abr } from "../abr.ts";
import { Backoff, isBuffering, PlaybackClock, RateMeter, wallLatencyMs } from "../buffer.ts";
import type { AudioConfig, Catalog, VideoConfig } from "../catalog.ts";
import {
	audioRenditions,
	CATALOG_TRACK,
	catalogClock,
	PRIORITY,
	parseCatalog,
	videoRenditions,
	wallNowUs,
} from "../catalog.ts";
import { BandwidthEstimator } from "../estimate.ts";
import { AudioRenderer, audioSupported } from "./audio.ts";
import type { MediaFrame } from "./reader.ts";
import { GroupReader } from "./reader.ts";
import type { WatchStats, WatchStatus } from "./stats.ts";
import { emptyStats } from "./stats.ts";
import type { Playable } from "./unpack.ts";
import { playableAudio, playableVideo } from "./unpack.ts";
import { VideoRenderer, videoSupported } from "./video.ts";

/** Default target latency in ms. */
export const DEFAULT_LATENCY_MS = 200;

/** Without media for this long while playing, the broadcast is considered gone and re-subscribed. */
const STALL_TIMEOUT_MS = 2500;

/** How often adaptive bitrate looks at the estimate. */
const ABR_INTERVAL_MS = 250;

/** A rendition switch whose new track has shown nothing due by then is given up. */
const SWITCH_TIMEOUT_MS = 5000;

/** Options of a {@link Watch}. */
export interface WatchOptions {
	/** Relay URL, e.g. `http://localhost:4443/anon` (see `Connection.connect`). */
	url: string | URL;
	/** Broadcast path relative to the URL, e.g. `pattern.hang`. */
	path: string;
	/** Canvas to draw video on. */
	canvas: HTMLCanvasElement;
	/** Target latency in ms (default {@link DEFAULT_LATENCY_MS}). */
	latencyMs?: number;
	/** Start muted (default true: browsers block audible autoplay anyway). */
	muted?: boolean;
	/** Volume 0..1 (default 1). */
	volume?: number;
	/** Start paused (nothing is fetched while paused). */
	paused?: boolean;
	/** moq-lite versions to offer, most preferred first (default: the client's, lite-05 then lite-02). */
	versions?: Version[];
	/** The transport: "auto" (default: WebTransport, WebSocket as fallback), "webtransport" or "websocket". */
	transport?: TransportChoice;
	/** Adaptive bitrate among the catalog's video renditions with a `bitrate` (default true). */
	abr?: boolean;
	/** Play this video rendition (track name), which disables adaptive bitrate; ignored if not playable. */
	rendition?: string | undefined;
}

/** Events of a {@link Watch}: `stats` every second and `status` on each change. */
export interface WatchEventMap {
	/** Statistics, every second. */
	stats: CustomEvent<WatchStats>;
	/** The status changed; detail = the new status. */
	status: CustomEvent<WatchStatus>;
	/** A new catalog was applied; detail = the catalog. */
	catalog: CustomEvent<Catalog>;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve) => {
		const timer = setTimeout(resolve, ms);
		signal.addEventListener(
			"abort",
			() => {
				clearTimeout(timer);
				resolve();
			},
			{ once: true },
		);
	});
}

/** Plays a hang broadcast on a canvas (and speakers). Dispatches {@link WatchEventMap} events. */
export class Watch extends EventTarget {
	/** Relay URL. */
	readonly url: string;
	readonly #versions: Version[] | undefined;
	readonly #transport: TransportChoice | undefined;
	/** Broadcast path. */
	readonly path: string;
	#canvas: HTMLCanvasElement;
	#latencyMs: number;
	#muted: boolean;
	#volume: number;
	#paused: boolean;
	#stats: WatchStats;
	#meter = new RateMeter(2000);
	#estimator = new BandwidthEstimator();
	#abr: boolean;
	#rendition: string | undefined;
	#closed = new AbortController();
	/** Aborted to interrupt a wait (unpause, close). */
	#wake = new AbortController();
	#session: Session | undefined;
	#connection: Connection | undefined;
	#catalog: Catalog | undefined;
	#statsTimer: ReturnType<typeof setInterval>;

	/** @param options see {@link WatchOptions} */
	constructor(options: WatchOptions) {
		super();
		this.url = String(options.url);
		this.path = options.path;
		this.#versions = options.versions;
		this.#transport = options.transport;
		this.#canvas = options.canvas;
		this.#latencyMs = options.latencyMs ?? DEFAULT_LATENCY_MS;
		this.#muted = options.muted ?? true;
		this.#volume = options.volume ?? 1;
		this.#paused = options.paused ?? false;
		this.#abr = options.abr ?? true;
		this.#rendition = options.rendition;
		this.#stats = emptyStats(this.#latencyMs);
		this.#statsTimer = setInterval(() => {
			this.#refreshStats();
			this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
		}, 1000);
		void this.#run();
	}

	/** A snapshot of the playback statistics. */
	get stats(): WatchStats {
		this.#refreshStats();
		return { ...this.#stats };
	}

	/** The current connection, if connected. */
	get connection(): Connection | undefined {
		return this.#connection;
	}

	/** The catalog being played, if any. */
	get catalog(): Catalog | undefined {
		return this.#catalog;
	}

	/** Target latency in ms. */
	get latencyMs(): number {
		return this.#latencyMs;
	}
	set latencyMs(ms: number) {
		this.#latencyMs = Math.max(0, ms);
		this.#stats.targetLatencyMs = this.#latencyMs;
		if (this.#session) this.#session.clock.latencyMs = this.#latencyMs;
	}

	/** Whether audio is muted (it is still decoded). */
	get muted(): boolean {
		return this.#muted;
	}
	set muted(muted: boolean) {
		this.#muted = muted;
		this.#session?.audio?.setMuted(muted);
	}

	/** Volume 0..1. */
	get volume(): number {
		return this.#volume;
	}
	set volume(volume: number) {
		this.#volume = Math.min(1, Math.max(0, volume));
		this.#session?.audio?.setVolume(this.#volume);
	}

	/** Adaptive bitrate among the video renditions (when no {@link Watch.rendition} is pinned). */
	get abr(): boolean {
		return this.#abr;
	}
	set abr(abr: boolean) {
		this.#abr = abr;
		this.#session?.select(this.#abr, this.#rendition);
	}

	/** The video rendition pinned (track name), which disables adaptive bitrate; undefined: none. */
	get rendition(): string | undefined {
		return this.#rendition;
	}
	set rendition(rendition: string | undefined) {
		this.#rendition = rendition;
		this.#session?.select(this.#abr, this.#rendition);
	}

	/** Paused: disconnect and stop fetching; unpausing rejoins the live edge. */
	get paused(): boolean {
		return this.#paused;
	}
	set paused(paused: boolean) {
		if (paused === this.#paused) return;
		this.#paused = paused;
		this.#wakeUp();
	}

	/** Stop for good. */
	close(): void {
		this.#closed.abort();
		this.#wakeUp();
		clearInterval(this.#statsTimer);
		this.#session?.close();
		this.#connection?.close();
	}

	#wakeUp() {
		const wake = this.#wake;
		this.#wake = new AbortController();
		wake.abort();
	}

	#setStatus(status: WatchStatus) {
		if (this.#stats.status === status) return;
		this.#stats.status = status;
		this.dispatchEvent(new CustomEvent("status", { detail: status }));
	}

	#refreshStats() {
		const now = performance.now();
		this.#stats.bitrateKbps = Math.round(this.#meter.kbps(now));
		const estimate = this.#estimator.estimate(now);
		this.#stats.estimateKbps = estimate === undefined ? undefined : Math.round(estimate / 1000);
		this.#stats.buffering = this.#session ? this.#session.buffering(now) : this.#stats.status !== "paused";
		const audio = this.#session?.audio;
		this.#stats.audioState = audio?.state ?? "none";
		if (audio) this.#stats.audioUnderruns = audio.underruns;
	}

	async #run() {
		const backoff = new Backoff(500, 5000);
		while (!this.#closed.signal.aborted) {
			if (this.#paused) {
				this.#setStatus("paused");
				await sleep(3_600_000, this.#wake.signal);
				continue;
			}
			const wake = this.#wake.signal;
			let connection: Connection | undefined;
			try {
				this.#setStatus("connecting");
				connection = await Connection.connect(this.url, { versions: this.#versions, transport: this.#transport });
				if (this.#closed.signal.aborted || this.#paused) continue;
				this.#connection = connection;
				this.#stats.connects++;
				this.#stats.version = connection.version;
				this.#stats.transport = connection.transport;
				const announced = new AnnounceWatcher(connection, this.path);
				try {
					while (!this.#closed.signal.aborted && !this.#paused && !wake.aborted) {
						const ok = await this.#watchBroadcast(connection, announced);
						if (ok) backoff.reset();
						if (this.#closed.signal.aborted || this.#paused) break;
						this.#setStatus("offline");
						// Wait for the backoff, an announcement of the path, or the connection to end.
						const delay = backoff.next();
						const ended = await Promise.race([
							sleep(delay, wake).then(() => false),
							announced.active().then(() => false),
							connection.closed.then(() => true),
						]);
						if (ended) break;
					}
				} finally {
					announced.close();
				}
			} catch (e) {
				console.warn("hang: watch", e);
			} finally {
				connection?.close();
				if (this.#connection === connection) this.#connection = undefined;
			}
			if (this.#closed.signal.aborted || this.#paused) continue;
			this.#setStatus("offline");
			await sleep(backoff.next(), this.#wake.signal);
		}
		this.#setStatus("idle");
	}

	/**
	 * Follow the broadcast's catalog until it ends or stalls. Returns whether media was received
	 * (to reset the backoff).
	 */
	async #watchBroadcast(connection: Connection, announced: AnnounceWatcher): Promise<boolean> {
		this.#setStatus("waiting");
		const broadcast = connection.consume(this.path);
		const catalogTrack = broadcast.subscribe(CATALOG_TRACK, { priority: PRIORITY.catalog });
		const stop = new AbortController();
		const wake = this.#wake.signal;
		const onAbort = () => stop.abort();
		wake.addEventListener("abort", onAbort, { once: true });
		// The relay says the broadcast ended: do not wait for the tracks to notice.
		void announced.inactive().then(onAbort);
		this.#closed.signal.addEventListener("abort", onAbort, { once: true });
		let received = false;
		let lastJson: string | undefined;
		let lastSequence = -1;
		try {
			const stopped = new Promise<undefined>((resolve) =>
				stop.signal.addEventListener("abort", () => resolve(undefined)),
			);
			for (;;) {
				const ended = this.#session ? this.#session.ended : new Promise<never>(() => {});
				const group = await Promise.race([catalogTrack.nextGroup(), stopped, ended.then(() => undefined)]);
				if (!group || stop.signal.aborted) break;
				if (group.sequence <= lastSequence) {
					group.close();
					continue;
				}
				lastSequence = group.sequence;
				const frame = await Promise.race([group.readFrame(), stopped]);
				group.close();
				if (!frame) continue;
				const json = new TextDecoder().decode(frame.payload);
				if (json === lastJson) continue;
				lastJson = json;
				let catalog: Catalog;
				try {
					catalog = parseCatalog(json);
				} catch (e) {
					console.warn("hang: bad catalog", e);
					continue;
				}
				if (this.#session?.received) received = true;
				this.#session?.close();
				this.#catalog = catalog;
				this.dispatchEvent(new CustomEvent("catalog", { detail: catalog }));
				this.#session = await Session.start(broadcast, catalog, {
					canvas: this.#canvas,
					latencyMs: this.#latencyMs,
					muted: this.#muted,
					volume: this.#volume,
					stats: this.#stats,
					meter: this.#meter,
					estimator: this.#estimator,
					abr: this.#abr,
					rendition: this.#rendition,
					previous: this.#stats.rendition,
					onPlaying: () => this.#setStatus("playing"),
				});
			}
		} catch (e) {
			console.warn("hang: catalog", e);
		} finally {
			wake.removeEventListener("abort", onAbort);
			this.#closed.signal.removeEventListener("abort", onAbort);
			if (this.#session?.received) received = true;
			this.#session?.close();
			this.#session = undefined;
			catalogTrack.close();
			broadcast.close();
		}
		return received;
	}
}

/**
 * Tracks whether a path is announced: {@link AnnounceWatcher.active} resolves when it (re)appears,
 * {@link AnnounceWatcher.inactive} when it goes away.
 */
class AnnounceWatcher {
	#announced: Announced | undefined;
	#waiters: (() => void)[] = [];
	#goneWaiters: (() => void)[] = [];
	#active = false;

	constructor(connection: Connection, path: string) {
		try {
			this.#announced = connection.announced(path);
		} catch {
			return;
		}
		void this.#loop(this.#announced, path);
	}

	async #loop(announced: Announced, path: string) {
		try {
			for (;;) {
				const a = await announced.next();
				if (!a) return;
				if (a.path.replace(/^\/+|\/+$/g, "") !== path.replace(/^\/+|\/+$/g, "")) continue;
				const was = this.#active;
				this.#active = a.active;
				if (a.active && !was) {
					for (const w of this.#waiters.splice(0)) w();
				}
				if (!a.active) {
					for (const w of this.#goneWaiters.splice(0)) w();
				}
			}
		} catch {
			// Discovery is only an accelerator; the backoff retries anyway.
		}
	}

	/** Resolves the next time the path goes from not announced to announced. */
	active(): Promise<void> {
		return new Promise((resolve) => this.#waiters.push(resolve));
	}

	/** Resolves the next time the path is unannounced (never if discovery does not work). */
	inactive(): Promise<void> {
		return new Promise((resolve) => this.#goneWaiters.push(resolve));
	}

	close() {
		this.#announced?.close();
		for (const w of this.#waiters.splice(0)) w();
		this.#goneWaiters = [];
	}
}

interface SessionOptions {
	canvas: HTMLCanvasElement;
	latencyMs: number;
	muted: boolean;
	volume: number;
	stats: WatchStats;
	meter: RateMeter;
	estimator: BandwidthEstimator;
	/** Adaptive bitrate on (see {@link WatchOptions.abr}). */
	abr: boolean;
	/** The pinned video rendition (see {@link WatchOptions.rendition}). */
	rendition: string | undefined;
	/** The video rendition the previous session showed: adaptive bitrate resumes from it. */
	previous: string | undefined;
	onPlaying: () => void;
}

/** A video rendition being shown or switched to: its track, reader and decoder. */
interface VideoPipe {
	name: string;
	config: VideoConfig;
	renderer: VideoRenderer;
	track: TrackConsumer;
	reader: GroupReader;
	/** When it was subscribed (ms): what arrives in its first group's time is its join burst, not lateness. */
	since: number;
	/** Whether adaptive bitrate chose it (counted in `abrSwitches` when it takes over). */
	byAbr: boolean;
	/** Resolves when its read loop ends. */
	done: Promise<void>;
	closed: boolean;
}

/**
 * The renditions this browser can play, in catalog order (`playable` is {@link playableVideo} or
 * {@link playableAudio}): those whose container is known, whose CMAF init parses, and whose
 * decoder configuration is supported.
 */
async function playables<C>(
	renditions: [string, C][],
	playable: (config: C) => Playable<C>,
	supported: (config: C) => Promise<boolean>,
): Promise<[string, Playable<C>][]> {
	const checked = await Promise.all(
		renditions.map(async ([name, config]): Promise<[string, Playable<C>] | undefined> => {
			let ready: Playable<C>;
			try {
				ready = playable(config);
			} catch (e) {
				console.warn("hang: rendition skipped", name, e);
				return undefined;
			}
			if (await supported(ready.config)) return [name, ready];
			console.warn("hang: rendition not supported", name, ready.config);
			return undefined;
		}),
	);
	return checked.filter((r) => r !== undefined);
}

/** Playback of one catalog version: the chosen renditions, their clock and renderers. */
class Session {
	readonly clock: PlaybackClock;
	audio: AudioRenderer | undefined;
	/** Resolves when every media track ended or the media stalled. */
	readonly ended: Promise<void>;
	/** Whether any media frame arrived. */
	received = false;
	#end!: () => void;
	#tracks: TrackConsumer[] = [];
	#readers: GroupReader[] = [];
	#closed = false;
	#raf = 0;
	#stallTimer: ReturnType<typeof setInterval> | undefined;
	#abrTimer: ReturnType<typeof setInterval> | undefined;
	#lastData = performance.now();
	#wallUs: number | undefined;
	#opts: SessionOptions;
	#frameDurationUs: number;
	#broadcast: BroadcastConsumer;
	/** The playable video renditions by track name. */
	#videos = new Map<string, Playable<VideoConfig>>();
	/** Whether video drives the playback clock (no audio). */
	#videoPrimary = false;
	/** The video rendition shown. */
	#video: VideoPipe | undefined;
	/** The video rendition being switched to, until a frame of it is due. */
	#next: VideoPipe | undefined;
	/** Adaptive bitrate, when there are several renditions with a bitrate. */
	#abr: Abr | undefined;
	#abrOn: boolean;
	#pinned: string | undefined;
	/** Lateness of the newest video frame of the shown rendition (see `PlaybackState.lateMs`). */
	#lateMs: number | undefined;
	/** Group duration in ms, from consecutive keyframes. */
	#groupMs = 2000;
	#lastKey: { group: number; timestamp: number } | undefined;
	/**
	 * Groups of the shown rendition never read (gaps in the sequence of the groups read: skipped by
	 * the reader or dropped by the relay), past its join burst and outside a switch.
	 */
	#skippedGroups = 0;

	private constructor(broadcast: BroadcastConsumer, catalog: Catalog, opts: SessionOptions) {
		this.#opts = opts;
		this.#broadcast = broadcast;
		this.#abrOn = opts.abr;
		this.clock = new PlaybackClock(opts.latencyMs);
		this.ended = new Promise((resolve) => {
			this.#end = resolve;
		});
		this.#wallUs = catalogClock(catalog);
		this.#frameDurationUs = 1_000_000 / 30;
	}

	static async start(broadcast: BroadcastConsumer, catalog: Catalog, opts: SessionOptions): Promise<Session> {
		const session = new Session(broadcast, catalog, opts);
		const [videos, audios] = await Promise.all([
			playables(videoRenditions(catalog), playableVideo, videoSupported),
			playables(audioRenditions(catalog), playableAudio, audioSupported),
		]);
		const audio = audios[0];
		session.#videos = new Map(videos);
		session.#videoPrimary = !audio;
		const ladder = videos.flatMap(([name, p]) =>
			p.config.bitrate && p.config.bitrate > 0 ? [{ name, bitrate: p.config.bitrate }] : [],
		);
		if (ladder.length >= 2) {
			// Start with the best rendition the estimate carries (the lowest without one, as on a
			// first connection: the burst samples move it up within seconds where the link has
			// room), or where the previous catalog version's playback was.
			session.#abr = new Abr(ladder, {}, opts.estimator.estimate(performance.now()));
			if (opts.previous) session.#abr.pin(opts.previous);
		}
		// Also watches over switches to a pinned rendition.
		if (videos.length >= 2) session.#abrTimer = setInterval(() => session.#abrTick(), ABR_INTERVAL_MS);
		opts.stats.audioCodec = audio?.[1].config.codec;
		opts.stats.videoCodec = undefined;
		opts.stats.rendition = undefined;
		const running: Promise<void>[] = [];
		if (audio) running.push(session.#runAudio(broadcast, audio[0], audio[1]));
		const first = videos[0]?.[0];
		if (first) {
			session.select(opts.abr, opts.rendition, first);
			running.push(session.#runVideo());
		}
		if (running.length > 0) {
			void Promise.allSettled(running).then(() => session.#end());
			session.#stallTimer = setInterval(() => {
				if (performance.now() - session.#lastData > STALL_TIMEOUT_MS) session.#end();
			}, 500);
		}
		session.#raf = requestAnimationFrame(() => session.#render());
		return session;
	}

	/** The renderer of the video rendition shown. */
	get video(): VideoRenderer | undefined {
		return this.#video?.renderer;
	}

	/**
	 * Apply the `abr` and `rendition` settings: show the pinned rendition (if playable), else let
	 * adaptive bitrate choose (if on), else keep what is shown (`fallback` when nothing is).
	 */
	select(abr: boolean, rendition: string | undefined, fallback?: string): void {
		this.#abrOn = abr;
		this.#pinned = rendition !== undefined && this.#videos.has(rendition) ? rendition : undefined;
		if (this.#pinned) this.#abr?.pin(this.#pinned);
		const chosen = this.#pinned ?? (abr ? this.#abr?.current.name : undefined) ?? this.#video?.name ?? fallback;
		if (chosen) this.#switchVideo(chosen, false);
	}

	#onData(size: number) {
		const now = performance.now();
		this.#lastData = now;
		this.received = true;
		this.#opts.meter.add(size, now);
		this.#opts.estimator.add(size, now);
	}

	/** Adaptive bitrate: feed the estimate, start a switch when the choice changes; give up a stuck switch. */
	#abrTick() {
		const now = performance.now();
		const next = this.#next;
		if (next) {
			if (now - next.since > SWITCH_TIMEOUT_MS) this.#abandonSwitch();
			return;
		}
		const abr = this.#abr;
		if (!abr || !this.#video || !this.#abrOn || this.#pinned !== undefined) return;
		const estimator = this.#opts.estimator;
		const behind = estimator.behind(now, {
			lateMs: this.#lateMs,
			targetLatencyMs: this.clock.latencyMs,
			groupMs: this.#groupMs,
			skippedGroups: this.#skippedGroups,
		});
		const target = abr.update(now, estimator.estimate(now), behind);
		if (target) this.#switchVideo(target, true);
	}

	/** Show rendition `name`: at once when nothing is shown, else once a frame of it is due. */
	#switchVideo(name: string, byAbr: boolean) {
		if (this.#next) {
			if (this.#next.name === name) return;
			this.#closePipe(this.#next);
			this.#next = undefined;
		}
		if (this.#video?.name === name) return;
		const playable = this.#videos.get(name);
		if (!playable || this.#closed) return;
		const pipe = this.#openVideo(name, playable, byAbr);
		if (!this.#video) {
			this.#takeOver(pipe);
			return;
		}
		this.#next = pipe;
		void pipe.done.then(() => {
			if (this.#next === pipe) this.#abandonSwitch();
		});
	}

	/** The rendition switched to failed or showed nothing in time: stay with the one shown. */
	#abandonSwitch() {
		const next = this.#next;
		if (!next) return;
		console.warn("hang: rendition switch given up", next.name);
		this.#next = undefined;
		this.#closePipe(next);
		if (this.#video) this.#abr?.pin(this.#video.name);
	}

	/** Whether the rendition switched to can be shown at media time `media` (µs). */
	#caughtUp(next: VideoPipe, media: number): boolean {
		const oldest = next.renderer.oldest;
		const newest = next.renderer.newest;
		if (oldest === undefined || newest === undefined || oldest > media) return false;
		const shown = this.#video?.renderer.lastShownPts;
		return shown === undefined || newest >= shown;
	}

	/** `pipe` becomes the rendition shown; the previous one is closed. */
	#takeOver(pipe: VideoPipe) {
		const old = this.#video;
		this.#video = pipe;
		if (this.#next === pipe) this.#next = undefined;
		if (old) this.#closePipe(old);
		this.#lateMs = undefined;
		this.#lastKey = undefined;
		const stats = this.#opts.stats;
		stats.rendition = pipe.name;
		stats.videoCodec = pipe.config.codec;
		if (old && pipe.byAbr) stats.abrSwitches++;
		if (pipe.config.framerate && pipe.config.framerate > 0) this.#frameDurationUs = 1_000_000 / pipe.config.framerate;
	}

	#closePipe(pipe: VideoPipe) {
		pipe.closed = true;
		pipe.reader.close();
		pipe.track.close();
		pipe.renderer.close();
	}

	/** Subscribe to video rendition `name` and decode it (it is drawn once it is the one shown). */
	#openVideo(name: string, playable: Playable<VideoConfig>, byAbr: boolean): VideoPipe {
		const config = playable.config;
		const frameUs = config.framerate && config.framerate > 0 ? 1_000_000 / config.framerate : 1_000_000 / 30;
		const stats = this.#opts.stats;
		const renderer = new VideoRenderer(config, this.#opts.canvas, {
			decoded: () => stats.framesDecoded++,
			dropped: (n) => {
				stats.framesDropped += n;
			},
			rendered: (pts, width, height) => {
				stats.framesRendered++;
				stats.width = width;
				stats.height = height;
				this.#updateLatency(pts);
				this.#opts.onPlaying();
			},
		});
		// The relay resets video groups that fell this far behind a newer one instead of sending
		// them late (a link slower than the stream would otherwise carry stale tails).
		const track = this.#broadcast.subscribe(name, {
			priority: this.#videoPriority(name),
			maxLatencyMs: Math.max(1, Math.round(this.clock.latencyMs)),
		});
		const since = performance.now();
		const reader = new GroupReader(track, {
			latencyUs: () => this.clock.latencyMs * 1000,
			playbackUs: () => this.clock.mediaTime(performance.now()),
			frameDurationUs: () => frameUs,
			onSkip: (n) => {
				stats.framesDropped += n;
			},
			unpack: playable.unpack,
			onInvalid: (e) => console.warn("hang: bad video frame", name, e),
		});
		const pipe: VideoPipe = {
			name,
			config,
			renderer,
			track,
			reader,
			since,
			byAbr,
			done: Promise.resolve(),
			closed: false,
		};
		pipe.done = this.#readVideo(pipe);
		return pipe;
	}

	async #readVideo(pipe: VideoPipe) {
		try {
			for (;;) {
				const frame = await pipe.reader.read();
				if (!frame || this.#closed || pipe.closed) return;
				this.#onData(frame.size);
				const now = performance.now();
				// A fragment's samples arrive together, when the last is complete: anchoring on its
				// first sample gives that one the whole target latency (the others get more).
				this.clock.observe(frame.timestamp, now, this.#videoPrimary);
				if (pipe === this.#video) {
					this.#observeVideo(pipe, frame, now);
					this.#opts.estimator.addMedia(frame.timestamp, now);
					if (frame.arrival) this.#opts.estimator.addArrival(frame.arrival);
				}
				pipe.renderer.decode(frame);
			}
		} catch (e) {
			if (!this.#closed && !pipe.closed) console.warn("hang: video track", pipe.name, e);
		}
	}

	/** Group duration and lateness of the rendition shown, for adaptive bitrate. */
	#observeVideo(pipe: VideoPipe, frame: MediaFrame, now: number) {
		const settled = now - pipe.since > this.#groupMs && !this.#next;
		if (frame.keyframe) {
			const last = this.#lastKey;
			if (last && frame.group === last.group + 1 && frame.timestamp > last.timestamp)
				this.#groupMs = (frame.timestamp - last.timestamp) / 1000;
			if (last && settled && frame.group > last.group + 1) this.#skippedGroups += frame.group - last.group - 1;
			this.#lastKey = { group: frame.group, timestamp: frame.timestamp };
		}
		const ref = this.clock.reference(now);
		if (ref !== undefined && settled) this.#lateMs = (now * 1000 - frame.timestamp - ref) / 1000;
	}

	/**
	 * The subscriber priority of video rendition `name`: the smaller the rendition, the higher
	 * (below audio's). While two are subscribed during a switch, a smaller one being switched to
	 * is sent before the bigger one being left, and a bigger one being tried only takes what the
	 * link has left.
	 */
	#videoPriority(name: string): number {
		const ladder = this.#abr?.renditions ?? [];
		const rank = ladder.findIndex((r) => r.name === name);
		if (rank < 0) return PRIORITY.video;
		return Math.min(PRIORITY.audio - 1, PRIORITY.video + ladder.length - 1 - rank);
	}

	/** Resolves when the video rendition shown ends by itself (not replaced by a switch). */
	async #runVideo() {
		for (let pipe = this.#video; pipe; pipe = this.#video) {
			await pipe.done;
			if (this.#closed || this.#video === pipe) return;
		}
	}

	async #runAudio(broadcast: BroadcastConsumer, name: string, playable: Playable<AudioConfig>) {
		const config = playable.config;
		const stats = this.#opts.stats;
		const audio = new AudioRenderer(
			config,
			this.clock,
			() => stats.audioFramesDecoded++,
			() => stats.audioFramesLate++,
		);
		audio.setVolume(this.#opts.volume);
		audio.setMuted(this.#opts.muted);
		this.audio = audio;
		const track = broadcast.subscribe(name, { priority: PRIORITY.audio });
		this.#tracks.push(track);
		// Each frame is its own group, and a fragment's groups arrive close together, often newest
		// first (their streams race): the reader puts them back in sequence order (the decoder needs
		// them in order) instead of dropping the ones that lost the race.
		let frameUs = 20_000;
		let last: { group: number; timestamp: number } | undefined;
		const reader = new GroupReader(track, {
			latencyUs: () => this.clock.latencyMs * 1000,
			playbackUs: () => this.clock.mediaTime(performance.now()),
			frameDurationUs: () => frameUs,
			onSkip: (n) => {
				stats.audioFramesSkipped += n;
			},
			unpack: playable.unpack,
			onInvalid: (e) => console.warn("hang: bad audio frame", name, e),
		});
		this.#readers.push(reader);
		try {
			for (;;) {
				const frame = await reader.read();
				if (!frame || this.#closed) return;
				this.#onData(frame.size);
				const now = performance.now();
				// A group missing before this frame is a gap in the audio; frames of one group, or of
				// consecutive groups, follow each other. The sample duration (to count skipped
				// frames) from the fragment, else from frames of consecutive groups.
				const next = last !== undefined && (frame.group === last.group || frame.group === last.group + 1);
				const step = next && last ? frame.timestamp - last.timestamp : 0;
				const duration = frame.samples[0]?.duration || step;
				if (duration > 0 && duration <= 120_000) frameUs = duration;
				this.clock.observe(frame.timestamp, now, true);
				frame.samples.forEach((sample, i) => {
					audio.decode(sample.timestamp, sample.payload, i === 0 && last !== undefined && !next);
				});
				last = { group: frame.group, timestamp: frame.timestamp };
			}
		} catch (e) {
			if (!this.#closed) console.warn("hang: audio track", name, e);
		}
	}

	#updateLatency(pts: number) {
		const stats = this.#opts.stats;
		if (this.#wallUs !== undefined) {
			stats.latencyMs = Math.round(wallLatencyMs(this.#wallUs, pts, wallNowUs()));
			stats.latencyFromClock = true;
		} else {
			const ref = this.clock.reference(performance.now());
			if (ref !== undefined) stats.latencyMs = Math.round((performance.now() * 1000 - ref - pts) / 1000);
			stats.latencyFromClock = false;
		}
	}

	#render() {
		if (this.#closed) return;
		this.#raf = requestAnimationFrame(() => this.#render());
		const now = performance.now();
		const media = this.clock.mediaTime(now);
		// Cut over to the rendition switched to once a decoded frame of it is due and its decoding
		// has caught up with the picture shown (its first group may start in the past: no jump
		// back); the one shown keeps playing until then.
		const next = this.#next;
		if (next && media !== undefined && this.#caughtUp(next, media)) this.#takeOver(next);
		this.video?.render(media);
		if (!this.video && this.audio) {
			// Audio only: report latency of what is due now.
			if (media !== undefined && this.received) {
				this.#updateLatency(media);
				this.#opts.onPlaying();
			}
		}
	}

	/** Whether playback is waiting for data. */
	buffering(now: number): boolean {
		const playbackUs = this.clock.mediaTime(now);
		if (this.video) {
			return isBuffering({
				lastShownPts: this.video.lastShownPts,
				playbackUs,
				stallUs: Math.max(this.#frameDurationUs * 4, 250_000),
				ready: false,
			});
		}
		return !this.received || playbackUs === undefined || performance.now() - this.#lastData > 500;
	}

	close() {
		if (this.#closed) return;
		this.#closed = true;
		cancelAnimationFrame(this.#raf);
		if (this.#stallTimer) clearInterval(this.#stallTimer);
		if (this.#abrTimer) clearInterval(this.#abrTimer);
		for (const r of this.#readers) r.close();
		for (const t of this.#tracks) t.close();
		if (this.#next) this.#closePipe(this.#next);
		if (this.#video) this.#closePipe(this.#video);
		this.audio?.close();
		this.#end();
	}
}
