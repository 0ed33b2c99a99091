/**
 * `<hang-watch url path latency muted paused volume>`: plays a hang broadcast.
 *
 * Attributes: `url` relay URL (e.g. `http://localhost:4443/anon`), `path` broadcast path relative
 * to it (e.g. `pattern.hang`), `latency` target latency in ms (default 200), `muted` (boolean),
 * `paused` (boolean), `volume` 0..1 (default 1), `versions` moq-lite versions to offer
 * (comma-separated, default "moq-lite-06,moq-lite-05,moq-lite-02"), `transport` "auto" (default:
 * WebTransport with a WebSocket fallback), "webtransport" or "websocket", `abr` adaptive bitrate
 * among the catalog's video renditions with a `bitrate` (on unless "false", "off" or "0"; it acts
 * when there are several), `rendition` the track name of a video rendition to play, which disables
 * adaptive bitrate (ignored if the catalog has no playable rendition of that name). Changing `url`,
 * `path`, `versions` or `transport` restarts playback; `abr` and `rendition` switch renditions
 * without a gap (the new one is shown from its first keyframe that catches up).
 *
 * Properties: `stats` ({@link WatchStats}), `watch` (the {@link Watch} or undefined),
 * `connection`, `catalog`, plus `latency`, `muted`, `paused`, `volume`, `abr`, `rendition`
 * reflecting the attributes. `stats.rendition`, `stats.estimateKbps` and `stats.abrSwitches` show
 * adaptive bitrate at work.
 *
 * Events: `stats` every second (detail = {@link WatchStats}), `status` (detail = the new `WatchStatus`),
 * `catalog` (detail = the catalog). None bubble.
 */

import type { Connection } from "@moqx/lite";
import type { Catalog } from "../catalog.ts";
import type { WatchStats } from "../watch/stats.ts";
import { emptyStats } from "../watch/stats.ts";
import { DEFAULT_LATENCY_MS, Watch } from "../watch/watch.ts";
import { BASE_CSS, ElementBase, formatStats, numberAttr, transportAttr, versionsAttr } from "./base.ts";

const CSS = `${BASE_CSS}
.badge.status { background: rgba(60,60,60,.85); }
`;

/** The `<hang-watch>` element. See the module documentation. */
export class HangWatchElement extends ElementBase {
	/** Attributes the element reacts to. */
	static get observedAttributes(): string[] {
		return ["url", "path", "latency", "muted", "paused", "volume", "versions", "transport", "abr", "rendition"];
	}

	#watch: Watch | undefined;
	#root: ShadowRoot | undefined;
	#canvas: HTMLCanvasElement | undefined;
	#ui:
		| {
				play: HTMLButtonElement;
				mute: HTMLButtonElement;
				volume: HTMLInputElement;
				latency: HTMLSpanElement;
				info: HTMLButtonElement;
				overlay: HTMLPreElement;
				buffering: HTMLDivElement;
				status: HTMLDivElement;
		  }
		| undefined;
	#showStats = false;
	#uiTimer: ReturnType<typeof setInterval> | undefined;

	#build() {
		if (this.#root) return;
		const root = this.attachShadow({ mode: "open" });
		root.innerHTML = `<style>${CSS}</style>
<canvas class="media" width="640" height="360" part="canvas"></canvas>
<div class="badge status" hidden></div>
<div class="badge buffering" hidden>buffering…</div>
<pre class="overlay" hidden></pre>
<div class="bar" part="controls">
<button class="play" title="play/pause">pause</button>
<button class="mute" title="mute/unmute">unmute</button>
<input class="volume" type="range" min="0" max="1" step="0.05" title="volume">
<span class="grow"></span>
<span class="latency" title="end-to-end latency">latency –</span>
<button class="info" title="statistics">stats</button>
</div>`;
		const q = <T extends Element>(sel: string) => root.querySelector(sel) as T;
		this.#root = root;
		this.#canvas = q<HTMLCanvasElement>("canvas");
		this.#ui = {
			play: q(".play"),
			mute: q(".mute"),
			volume: q(".volume"),
			latency: q(".latency"),
			info: q(".info"),
			overlay: q(".overlay"),
			buffering: q(".buffering"),
			status: q(".status"),
		};
		this.#ui.play.onclick = () => {
			this.paused = !this.paused;
		};
		this.#ui.mute.onclick = () => {
			this.muted = !this.muted;
		};
		this.#ui.volume.oninput = () => {
			this.volume = Number(this.#ui?.volume.value ?? 1);
			if (this.muted && this.volume > 0) this.muted = false;
		};
		this.#ui.info.onclick = () => {
			this.#showStats = !this.#showStats;
			this.#updateUi();
		};
		this.#updateUi();
	}

	/** @internal */
	connectedCallback(): void {
		this.#build();
		this.#uiTimer ??= setInterval(() => this.#updateUi(), 250);
		this.#restart();
	}

	/** @internal */
	disconnectedCallback(): void {
		this.#stop();
		if (this.#uiTimer) clearInterval(this.#uiTimer);
		this.#uiTimer = undefined;
	}

	/** @internal */
	attributeChangedCallback(name: string, oldValue: string | null, newValue: string | null): void {
		if (oldValue === newValue) return;
		switch (name) {
			case "url":
			case "path":
			case "versions":
			case "transport":
				if (this.isConnected) this.#restart();
				break;
			case "latency":
				if (this.#watch) this.#watch.latencyMs = this.latency;
				break;
			case "muted":
				if (this.#watch) this.#watch.muted = this.muted;
				break;
			case "paused":
				if (this.#watch) this.#watch.paused = this.paused;
				break;
			case "volume":
				if (this.#watch) this.#watch.volume = this.volume;
				break;
			case "abr":
				if (this.#watch) this.#watch.abr = this.abr;
				break;
			case "rendition":
				if (this.#watch) this.#watch.rendition = this.rendition ?? undefined;
				break;
		}
		this.#updateUi();
	}

	#stop() {
		this.#watch?.close();
		this.#watch = undefined;
	}

	#restart() {
		this.#stop();
		const url = this.getAttribute("url");
		const path = this.getAttribute("path");
		if (!url || !path || !this.#canvas) return;
		const watch = new Watch({
			url,
			path,
			canvas: this.#canvas,
			latencyMs: this.latency,
			muted: this.muted,
			volume: this.volume,
			paused: this.paused,
			versions: versionsAttr(this.getAttribute("versions")),
			transport: transportAttr(this.getAttribute("transport")),
			abr: this.abr,
			rendition: this.rendition ?? undefined,
		});
		for (const type of ["stats", "status", "catalog"]) {
			watch.addEventListener(type, (e) => {
				if (watch !== this.#watch) return;
				this.dispatchEvent(new CustomEvent(type, { detail: (e as CustomEvent).detail }));
				if (type !== "stats") this.#updateUi();
			});
		}
		this.#watch = watch;
	}

	#updateUi() {
		const ui = this.#ui;
		if (!ui) return;
		const stats = this.stats;
		ui.play.textContent = this.paused ? "play" : "pause";
		ui.mute.textContent = this.muted ? "unmute" : "mute";
		ui.volume.value = String(this.volume);
		ui.latency.textContent =
			stats.latencyMs === undefined ? "latency –" : `latency ${stats.latencyMs} ms (target ${stats.targetLatencyMs})`;
		const waiting = stats.status === "offline" || stats.status === "connecting" || stats.status === "waiting";
		ui.status.hidden = !waiting;
		ui.status.textContent = stats.status;
		ui.buffering.hidden = waiting || this.paused || !stats.buffering;
		ui.overlay.hidden = !this.#showStats;
		if (this.#showStats) ui.overlay.textContent = formatStats(stats);
	}

	/** Playback statistics (a snapshot). */
	get stats(): WatchStats {
		return this.#watch?.stats ?? { ...emptyStats(this.latency), status: this.paused ? "paused" : "idle" };
	}

	/** The underlying watcher, while url and path are set and the element is in the document. */
	get watch(): Watch | undefined {
		return this.#watch;
	}

	/** The current relay connection. */
	get connection(): Connection | undefined {
		return this.#watch?.connection;
	}

	/** The catalog being played. */
	get catalog(): Catalog | undefined {
		return this.#watch?.catalog;
	}

	/** The canvas video is drawn on. */
	get canvas(): HTMLCanvasElement | undefined {
		return this.#canvas;
	}

	/** Relay URL (`url` attribute). */
	get url(): string | null {
		return this.getAttribute("url");
	}
	set url(url: string) {
		this.setAttribute("url", url);
	}

	/** Broadcast path (`path` attribute). */
	get path(): string | null {
		return this.getAttribute("path");
	}
	set path(path: string) {
		this.setAttribute("path", path);
	}

	/** Target latency in ms (`latency` attribute). */
	get latency(): number {
		return Math.max(0, numberAttr(this.getAttribute("latency"), DEFAULT_LATENCY_MS));
	}
	set latency(ms: number) {
		this.setAttribute("latency", String(ms));
	}

	/** Muted (`muted` attribute). Unmuting from a click also starts the AudioContext. */
	get muted(): boolean {
		return this.hasAttribute("muted");
	}
	set muted(muted: boolean) {
		this.toggleAttribute("muted", muted);
	}

	/** Paused (`paused` attribute): disconnects; resuming rejoins live. */
	get paused(): boolean {
		return this.hasAttribute("paused");
	}
	set paused(paused: boolean) {
		this.toggleAttribute("paused", paused);
	}

	/** Adaptive bitrate (`abr` attribute: on unless "false", "off" or "0"). */
	get abr(): boolean {
		const value = this.getAttribute("abr")?.trim().toLowerCase();
		return value !== "false" && value !== "off" && value !== "0";
	}
	set abr(abr: boolean) {
		this.setAttribute("abr", String(abr));
	}

	/** The pinned video rendition (`rendition` attribute, a track name); null: adaptive bitrate or the first. */
	get rendition(): string | null {
		return this.getAttribute("rendition") || null;
	}
	set rendition(rendition: string | null) {
		if (rendition) this.setAttribute("rendition", rendition);
		else this.removeAttribute("rendition");
	}

	/** Volume 0..1 (`volume` attribute). */
	get volume(): number {
		return Math.min(1, Math.max(0, numberAttr(this.getAttribute("volume"), 1)));
	}
	set volume(volume: number) {
		this.setAttribute("volume", String(volume));
	}
}
