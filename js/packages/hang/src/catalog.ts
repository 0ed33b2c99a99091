/**
 * The hang catalog (spec §12.2): a JSON document describing a broadcast's renditions, published on
 * the `catalog.json` track as one group per version with one frame per group.
 *
 * A parsed catalog is the JSON object itself (validated, not copied), so every key this module does
 * not know (`user`, `chat`, `clock`, future fields, ...) survives a parse/serialize round trip.
 * A rendition whose container kind is unknown (or a `cmaf` one without its `init`) is kept in the
 * document but skipped by {@link videoRenditions} / {@link audioRenditions}.
 */

/** Name of the catalog track in a hang broadcast. */
export const CATALOG_TRACK = "catalog.json";

/** Default subscriber priorities of a hang broadcast's tracks (spec §7.2). */
export const PRIORITY = { catalog: 100, audio: 80, video: 60 } as const;

/** Largest catalog accepted, in bytes of JSON. */
export const MAX_CATALOG_SIZE = 1024 * 1024;

/** Publisher max latency of a hang media track, in ms (legacy container). */
export const MEDIA_MAX_LATENCY_MS = 30_000;

/** Timestamp units per second of a legacy-container media track: microseconds. */
export const MEDIA_TIMESCALE = 1_000_000;

/** Milliseconds from the Unix epoch to 2020-01-01T00:00:00Z, the origin of the catalog `clock`. */
export const EPOCH_2020_MS = Date.UTC(2020, 0, 1);

/** How a rendition's frames are framed on its track. Unknown kinds are kept verbatim. */
export type Container =
	| { kind: "legacy"; [key: string]: unknown }
	| { kind: "cmaf"; init: string; [key: string]: unknown }
	| { kind: "loc"; [key: string]: unknown }
	| { kind: string; [key: string]: unknown };

/** A rendition's timeline track (spec §12.6). */
export interface Timeline {
	/** Track name of the timeline. */
	track: string;
	/** Units per second of the timeline's `pts` (default 1000). */
	timescale?: number;
	/** Wall-clock anchor of pts 0, in timescale units since 2020-01-01. */
	wall?: number;
	/** Keys this module does not interpret. */
	[key: string]: unknown;
}

/** One video rendition: a WebCodecs `VideoDecoderConfig` subset plus hang extensions. */
export interface VideoConfig {
	/** WebCodecs codec string, e.g. `avc1.64001f`, `avc3.42c01e`, `vp8`, `vp09.00.10.08`, `av01.0.04M.08`. */
	codec: string;
	/** Decoder configuration record (avcC/hvcC) in hex; absent: parameter sets in band (Annex-B). */
	description?: string;
	/** Coded width in pixels. */
	codedWidth?: number;
	/** Coded height in pixels. */
	codedHeight?: number;
	/** Display aspect ratio, width part. */
	displayAspectWidth?: number;
	/** Display aspect ratio, height part. */
	displayAspectHeight?: number;
	/** Bits per second, if known. */
	bitrate?: number;
	/** Frames per second, if known. */
	framerate?: number;
	/** Ask the decoder to favour latency. */
	optimizeForLatency?: boolean;
	/** The publisher has stopped sending this rendition for now. */
	stalled?: boolean;
	/** How frames are framed on the track (default legacy). */
	container?: Container;
	/** Largest delay in ms before a frame is flushed. */
	jitter?: number;
	/** A timeline track for seeking. */
	timeline?: Timeline;
	/** The broadcast holding the track, relative to this one, when it is not this one. */
	broadcast?: string;
	/** Keys this module does not interpret. */
	[key: string]: unknown;
}

/** One audio rendition: a WebCodecs `AudioDecoderConfig` subset plus hang extensions. */
export interface AudioConfig {
	/** WebCodecs codec string: `opus`, `mp4a.40.2`, `pcm`, ... */
	codec: string;
	/** Samples per second. */
	sampleRate: number;
	/** Channel count. */
	numberOfChannels: number;
	/** Bits per second, if known. */
	bitrate?: number;
	/** Decoder configuration (AAC AudioSpecificConfig) in hex. */
	description?: string;
	/** How frames are framed on the track (default legacy). */
	container?: Container;
	/** Largest delay in ms before a frame is flushed. */
	jitter?: number;
	/** A timeline track for seeking. */
	timeline?: Timeline;
	/** The broadcast holding the track, relative to this one, when it is not this one. */
	broadcast?: string;
	/** Keys this module does not interpret. */
	[key: string]: unknown;
}

/** The `video` section. */
export interface Video {
	/** Renditions by track name. */
	renditions: Record<string, VideoConfig>;
	/** Render size in pixels. */
	display?: { width: number; height: number; [key: string]: unknown };
	/** Clockwise rotation in degrees. */
	rotation?: number;
	/** Mirror horizontally. */
	flip?: boolean;
	/** Keys this module does not interpret. */
	[key: string]: unknown;
}

/** The `audio` section. */
export interface Audio {
	/** Renditions by track name. */
	renditions: Record<string, AudioConfig>;
	/** Keys this module does not interpret. */
	[key: string]: unknown;
}

/** The `clock` root section: the wall-clock time of pts 0. */
export interface Clock {
	/** Wall-clock time of media time 0, in `timescale` units since 2020-01-01T00:00:00Z. */
	wall: number;
	/** Units per second of `wall` (default 1 000 000). */
	timescale?: number;
	/** Keys this module does not interpret. */
	[key: string]: unknown;
}

/** The root of a catalog. */
export interface Catalog {
	/** Video renditions and how to display them. */
	video?: Video;
	/** Audio renditions. */
	audio?: Audio;
	/** Wall-clock anchor of media time, used to measure end-to-end latency. */
	clock?: Clock;
	/** Sections this module does not interpret, kept as they came. */
	[key: string]: unknown;
}

/** A catalog that is not JSON, too large, or does not follow the schema. */
export class CatalogError extends Error {
	/** @param message what is wrong */
	constructor(message: string) {
		super(`invalid catalog: ${message}`);
		this.name = "CatalogError";
	}
}

function isObject(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optional(obj: Record<string, unknown>, key: string, type: "number" | "string" | "boolean", where: string) {
	const value = obj[key];
	if (value !== undefined && typeof value !== type) throw new CatalogError(`${where}.${key} must be a ${type}`);
}

function checkRendition(value: unknown, where: string): Record<string, unknown> {
	if (!isObject(value)) throw new CatalogError(`${where} must be an object`);
	if (typeof value.codec !== "string") throw new CatalogError(`${where}.codec must be a string`);
	optional(value, "description", "string", where);
	if (typeof value.description === "string" && !/^([0-9a-fA-F]{2})*$/.test(value.description)) {
		throw new CatalogError(`${where}.description must be hex`);
	}
	optional(value, "bitrate", "number", where);
	optional(value, "jitter", "number", where);
	optional(value, "broadcast", "string", where);
	if (value.container !== undefined && (!isObject(value.container) || typeof value.container.kind !== "string")) {
		throw new CatalogError(`${where}.container must be an object with a string kind`);
	}
	if (value.timeline !== undefined && (!isObject(value.timeline) || typeof value.timeline.track !== "string")) {
		throw new CatalogError(`${where}.timeline must be an object with a string track`);
	}
	return value;
}

function checkSection(value: unknown, where: string): Record<string, unknown> {
	if (!isObject(value)) throw new CatalogError(`${where} must be an object`);
	const renditions = value.renditions ?? {};
	if (!isObject(renditions)) throw new CatalogError(`${where}.renditions must be an object`);
	value.renditions = renditions;
	return renditions;
}

/**
 * Validate a decoded JSON value as a catalog. Returns the same object (unknown keys kept), with
 * missing `renditions` maps filled in as `{}`. Throws {@link CatalogError}.
 */
export function validateCatalog(value: unknown): Catalog {
	if (!isObject(value)) throw new CatalogError("the root must be an object");
	if (value.video !== undefined) {
		const renditions = checkSection(value.video, "video");
		for (const [name, config] of Object.entries(renditions)) {
			const r = checkRendition(config, `video.renditions.${name}`);
			for (const key of ["codedWidth", "codedHeight", "displayAspectWidth", "displayAspectHeight", "framerate"]) {
				optional(r, key, "number", `video.renditions.${name}`);
			}
			optional(r, "optimizeForLatency", "boolean", `video.renditions.${name}`);
			optional(r, "stalled", "boolean", `video.renditions.${name}`);
		}
	}
	if (value.audio !== undefined) {
		const renditions = checkSection(value.audio, "audio");
		for (const [name, config] of Object.entries(renditions)) {
			const r = checkRendition(config, `audio.renditions.${name}`);
			if (typeof r.sampleRate !== "number")
				throw new CatalogError(`audio.renditions.${name}.sampleRate must be a number`);
			if (typeof r.numberOfChannels !== "number") {
				throw new CatalogError(`audio.renditions.${name}.numberOfChannels must be a number`);
			}
		}
	}
	if (value.clock !== undefined) {
		if (!isObject(value.clock) || typeof value.clock.wall !== "number") {
			throw new CatalogError("clock must be an object with a numeric wall");
		}
		optional(value.clock, "timescale", "number", "clock");
	}
	return value as Catalog;
}

/** Parse a catalog frame (UTF-8 JSON bytes or a string). Throws {@link CatalogError}. */
export function parseCatalog(json: Uint8Array | string): Catalog {
	const size = typeof json === "string" ? json.length : json.byteLength;
	if (size > MAX_CATALOG_SIZE) throw new CatalogError(`${size} bytes exceeds the limit`);
	const text = typeof json === "string" ? json : new TextDecoder().decode(json);
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch (e) {
		throw new CatalogError(e instanceof Error ? e.message : String(e));
	}
	return validateCatalog(value);
}

/** The JSON bytes of a catalog, as published (one frame of the catalog track). */
export function serializeCatalog(catalog: Catalog): Uint8Array {
	validateCatalog(catalog);
	const bytes = new TextEncoder().encode(JSON.stringify(catalog));
	if (bytes.byteLength > MAX_CATALOG_SIZE) throw new CatalogError(`${bytes.byteLength} bytes exceeds the limit`);
	return bytes;
}

/** The container kind of a rendition (`legacy` when absent). */
export function containerKind(config: { container?: Container }): string {
	return config.container?.kind ?? "legacy";
}

/** Container kinds this package can play. */
export const SUPPORTED_CONTAINERS: readonly string[] = ["legacy", "cmaf"];

/** Whether a rendition's container is one this package plays (a `cmaf` one needs its `init`). */
export function containerSupported(config: { container?: Container }): boolean {
	const kind = containerKind(config);
	if (kind === "cmaf") return typeof config.container?.init === "string" && config.container.init !== "";
	return SUPPORTED_CONTAINERS.includes(kind);
}

/** The video renditions a player can use (known container), in catalog order. */
export function videoRenditions(catalog: Catalog): [string, VideoConfig][] {
	return Object.entries(catalog.video?.renditions ?? {}).filter(([, c]) => containerSupported(c));
}

/** The audio renditions a player can use (known container), in catalog order. */
export function audioRenditions(catalog: Catalog): [string, AudioConfig][] {
	return Object.entries(catalog.audio?.renditions ?? {}).filter(([, c]) => containerSupported(c));
}

/** The wall-clock time of pts 0 in µs since 2020-01-01, if the publisher anchored it. */
export function catalogClock(catalog: Catalog): number | undefined {
	const clock = catalog.clock;
	if (!clock || typeof clock.wall !== "number") return undefined;
	const timescale = clock.timescale ?? MEDIA_TIMESCALE;
	if (!(timescale > 0)) return undefined;
	return (clock.wall * MEDIA_TIMESCALE) / timescale;
}

/** Set the `clock` section: pts 0 happened at `wallUs` µs since 2020-01-01 (timescale 1 000 000). */
export function setCatalogClock(catalog: Catalog, wallUs: number): void {
	catalog.clock = { wall: Math.round(wallUs), timescale: MEDIA_TIMESCALE };
}

/** Microseconds since 2020-01-01T00:00:00Z now, the unit of the catalog's `clock.wall`. */
export function wallNowUs(nowMs: number = Date.now()): number {
	return (nowMs - EPOCH_2020_MS) * 1000;
}

/** Decode a hex string (either case, no separators). Throws on odd length or a non-hex digit. */
export function hexToBytes(hex: string): Uint8Array {
	if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error("invalid hex string");
	const out = new Uint8Array(hex.length / 2);
	for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
	return out;
}

/** Encode bytes as lowercase hex. */
export function bytesToHex(bytes: Uint8Array): string {
	let out = "";
	for (const b of bytes) out += b.toString(16).padStart(2, "0");
	return out;
}
