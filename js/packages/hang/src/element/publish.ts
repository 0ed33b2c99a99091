/**
 * `<hang-publish url path source=camera|screen|none audio>`: captures and publishes a hang broadcast.
 *
 * Attributes: `url` relay URL, `path` broadcast path relative to it, `source` `camera` (default),
 * `screen` or `none` (audio only), `audio` microphone on unless `audio="false"` (or `noaudio` is
 * present), `keyframe-interval` ms (default 2000), `bitrate` video bit/s (default from the size),
 * `width`/`height`/`framerate` capture hints, `renditions` simulcast as `WIDTHxHEIGHT@KBPS`,
 * comma-separated (e.g. `640x360@1200,320x180@300`: tracks `video0`, `video1`, keyframes on the
 * same frames; see {@link parseRenditions}; a bad value is reported as status `error` and nothing
 * is published), `versions` moq-lite versions to offer (comma-separated, default
 * "moq-lite-06,moq-lite-05,moq-lite-02"), `transport` "auto" (default: WebTransport with a
 * WebSocket fallback), "webtransport" or "websocket". Changing any of them restarts publishing.
 *
 * Properties: `stats` ({@link PublishStats}), `publisher` (the {@link Publish}), `broadcast` (its
 * `BroadcastProducer`: add tracks such as chat), `connection`, `stream`, `setCatalogSection()`.
 *
 * Events: `stats` every second (detail = {@link PublishStats}), `status`, and `broadcast`
 * (detail = the new `BroadcastProducer`) each time publishing (re)starts with a new broadcast.
 */

import type { BroadcastProducer, Connection } from "@moqx/lite";
import type { PublishSource, PublishStats } from "../publish/publish.ts";
import { Publish } from "../publish/publish.ts";
import { type PublishRendition, parseRenditions } from "../publish/renditions.ts";
import { BASE_CSS, ElementBase, formatStats, numberAttr, transportAttr, versionsAttr } from "./base.ts";

const ATTRIBUTES = [
	"url",
	"path",
	"source",
	"audio",
	"noaudio",
	"keyframe-interval",
	"bitrate",
	"width",
	"height",
	"framerate",
	"renditions",
	"versions",
	"transport",
];

/** The `<hang-publish>` element. See the module documentation. */
export class HangPublishElement extends ElementBase {
	/** Attributes the element reacts to. */
	static get observedAttributes(): string[] {
		return ATTRIBUTES;
	}

	#publish: Publish | undefined;
	#root: ShadowRoot | undefined;
	#ui:
		| { video: HTMLVideoElement; status: HTMLSpanElement; info: HTMLButtonElement; overlay: HTMLPreElement }
		| undefined;
	#showStats = false;
	/** Why the attributes cannot be published (a bad `renditions`), if so. */
	#error: string | undefined;
	#timer: ReturnType<typeof setInterval> | undefined;

	#build() {
		if (this.#root) return;
		const root = this.attachShadow({ mode: "open" });
		root.innerHTML = `<style>${BASE_CSS}</style>
<video class="media" muted autoplay playsinline part="preview"></video>
<pre class="overlay" hidden></pre>
<div class="bar" part="controls">
<span class="status">idle</span>
<span class="grow"></span>
<button class="info" title="statistics">stats</button>
</div>`;
		const q = <T extends Element>(sel: string) => root.querySelector(sel) as T;
		this.#root = root;
		this.#ui = { video: q(".media"), status: q(".status"), info: q(".info"), overlay: q(".overlay") };
		this.#ui.video.muted = true;
		this.#ui.info.onclick = () => {
			this.#showStats = !this.#showStats;
			this.#updateUi();
		};
	}

	/** @internal */
	connectedCallback(): void {
		this.#build();
		this.#timer ??= setInterval(() => {
			this.#updateUi();
			if (this.#publish) this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
		}, 1000);
		this.#restart();
	}

	/** @internal */
	disconnectedCallback(): void {
		this.#stop();
		if (this.#timer) clearInterval(this.#timer);
		this.#timer = undefined;
	}

	/** @internal */
	attributeChangedCallback(_name: string, oldValue: string | null, newValue: string | null): void {
		if (oldValue === newValue || !this.isConnected) return;
		this.#restart();
	}

	#stop() {
		this.#publish?.close();
		this.#publish = undefined;
		if (this.#ui) this.#ui.video.srcObject = null;
	}

	#restart() {
		this.#stop();
		this.#error = undefined;
		const url = this.getAttribute("url");
		const path = this.getAttribute("path");
		if (!url || !path) return;
		const attribute = this.getAttribute("renditions");
		let renditions: PublishRendition[] | undefined;
		try {
			renditions = attribute === null ? undefined : parseRenditions(attribute);
		} catch (e) {
			this.#error = `renditions: ${e instanceof Error ? e.message : String(e)}`;
			console.warn(`hang: ${this.#error}`);
			this.dispatchEvent(new CustomEvent("status", { detail: "error" }));
			this.#updateUi();
			return;
		}
		const source = this.source;
		const publish = new Publish({
			url,
			path,
			source,
			audio: this.audio,
			keyframeIntervalMs: numberAttr(this.getAttribute("keyframe-interval"), 2000),
			...(this.hasAttribute("bitrate") ? { videoBitrate: numberAttr(this.getAttribute("bitrate"), 1_000_000) } : {}),
			...(this.hasAttribute("width") ? { width: numberAttr(this.getAttribute("width"), 1280) } : {}),
			...(this.hasAttribute("height") ? { height: numberAttr(this.getAttribute("height"), 720) } : {}),
			...(this.hasAttribute("framerate") ? { framerate: numberAttr(this.getAttribute("framerate"), 30) } : {}),
			renditions,
			versions: versionsAttr(this.getAttribute("versions")),
			transport: transportAttr(this.getAttribute("transport")),
		});
		publish.addEventListener("status", (e) => {
			if (publish !== this.#publish) return;
			this.dispatchEvent(new CustomEvent("status", { detail: (e as CustomEvent).detail }));
			this.#updateUi();
		});
		publish.addEventListener("stream", (e) => {
			if (publish !== this.#publish || !this.#ui) return;
			const stream = (e as CustomEvent<MediaStream>).detail;
			// A media element fed a stream without video never loads, which holds the page's load
			// event forever: only preview when there is video.
			const video = stream.getVideoTracks().length > 0;
			this.#ui.video.hidden = !video;
			this.#ui.video.srcObject = video ? stream : null;
			if (video) void this.#ui.video.play().catch(() => {});
		});
		this.#publish = publish;
		this.dispatchEvent(new CustomEvent("broadcast", { detail: publish.broadcast }));
		this.#updateUi();
	}

	#updateUi() {
		const ui = this.#ui;
		if (!ui) return;
		const stats = this.stats;
		const error = stats.error ? ` — ${stats.error}` : "";
		ui.status.textContent = `${stats.status}${error} · ${stats.framesEncoded} frames · ${stats.bitrateKbps} kbps`;
		ui.overlay.hidden = !this.#showStats;
		if (this.#showStats) ui.overlay.textContent = formatStats(stats);
	}

	/** Publishing statistics (a snapshot). */
	get stats(): PublishStats {
		return (
			this.#publish?.stats ?? {
				status: this.#error ? "error" : "idle",
				framesEncoded: 0,
				framesSkipped: 0,
				audioFramesEncoded: 0,
				bitrateKbps: 0,
				width: 0,
				height: 0,
				videoCodec: undefined,
				audioCodec: undefined,
				connects: 0,
				version: undefined,
				transport: undefined,
				error: this.#error,
			}
		);
	}

	/** The underlying publisher, while url and path are set and the element is in the document. */
	get publisher(): Publish | undefined {
		return this.#publish;
	}

	/** The broadcast being published: `broadcast.createTrack("chat")` adds a track to it. */
	get broadcast(): BroadcastProducer | undefined {
		return this.#publish?.broadcast;
	}

	/** The current relay connection. */
	get connection(): Connection | undefined {
		return this.#publish?.connection;
	}

	/** The captured stream. */
	get stream(): MediaStream | undefined {
		return this.#publish?.stream;
	}

	/** Set (or remove, with undefined) a root catalog section, e.g. `chat`, and republish the catalog. */
	setCatalogSection(key: string, value: unknown): void {
		this.#publish?.setCatalogSection(key, value);
	}

	/** Video source (`source` attribute). */
	get source(): PublishSource {
		const s = this.getAttribute("source");
		return s === "screen" || s === "none" ? s : "camera";
	}
	set source(source: PublishSource) {
		this.setAttribute("source", source);
	}

	/** Whether the microphone is captured (`audio` attribute; off with `audio="false"` or `noaudio`). */
	get audio(): boolean {
		if (this.hasAttribute("noaudio")) return false;
		const a = this.getAttribute("audio");
		return a === null || !["false", "off", "0", "no"].includes(a.toLowerCase());
	}
	set audio(audio: boolean) {
		this.setAttribute("audio", String(audio));
	}
}
