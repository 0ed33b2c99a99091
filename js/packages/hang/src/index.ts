/**
 * `@moqx/hang`: the hang media layer for browsers.
 *
 * - {@link parseCatalog} / {@link serializeCatalog}: the catalog (`catalog.json` track).
 * - {@link encodeFrame} / {@link decodeFrame}: the legacy frame container (varint µs timestamp + payload).
 * - {@link Abr} / {@link BandwidthEstimator}: adaptive bitrate, which simulcast video rendition the link carries.
 * - {@link annexBNalUnits}: the NAL units of an H.264/H.265 Annex-B buffer.
 * - {@link Watch}: catalog → WebCodecs → canvas + AudioWorklet, with a jitter buffer, group skipping,
 *   A/V sync and reconnects. {@link Publish}: camera/screen/microphone → WebCodecs → tracks + catalog,
 *   optionally as several renditions ({@link parseRenditions}: simulcast with aligned keyframes).
 * - Web components `<hang-watch>` and `<hang-publish>`: call {@link registerElements} once, or import
 *   `src/element.ts` which registers them on import. Importing this module has no side effect and
 *   works outside the browser (Node), where only the pure parts are usable.
 *
 * @example
 * import { registerElements } from "@moqx/hang";
 * registerElements();
 * // <hang-watch url="http://localhost:4443/anon" path="pattern.hang" latency="200" muted></hang-watch>
 * document.querySelector("hang-watch")?.addEventListener("stats", (e) => console.log(e.detail));
 */

export { Abr, type AbrConfig, DEFAULT_ABR_CONFIG, type Rendition } from "./abr.ts";
export { annexBNalUnits } from "./annexb.ts";
export {
	alignAudio,
	Backoff,
	isBuffering,
	PlaybackClock,
	pickFrame,
	RateMeter,
	type SkipInput,
	shouldSkipGroup,
	skippedFrames,
	wallLatencyMs,
} from "./buffer.ts";
export {
	type Audio,
	type AudioConfig,
	audioRenditions,
	bytesToHex,
	CATALOG_TRACK,
	type Catalog,
	CatalogError,
	type Clock,
	type Container,
	catalogClock,
	containerKind,
	containerSupported,
	EPOCH_2020_MS,
	hexToBytes,
	MAX_CATALOG_SIZE,
	MEDIA_MAX_LATENCY_MS,
	MEDIA_TIMESCALE,
	PRIORITY,
	parseCatalog,
	SUPPORTED_CONTAINERS,
	serializeCatalog,
	setCatalogClock,
	type Timeline,
	type Video,
	type VideoConfig,
	validateCatalog,
	videoRenditions,
	wallNowUs,
} from "./catalog.ts";
export {
	ContainerError,
	decodeFrame,
	encodeFrame,
	type LegacyFrame,
	MAX_VARINT,
	readVarint,
	varintLength,
	writeVarint,
} from "./container.ts";
export { HangPublishElement, HangWatchElement, registerElements } from "./element/index.ts";
export {
	BandwidthEstimator,
	DEFAULT_ESTIMATOR_CONFIG,
	type EstimatorConfig,
	type PlaybackState,
} from "./estimate.ts";
export {
	base64ToBytes,
	Fmp4Error,
	type Init,
	type InitTrack,
	MAX_SAMPLES_PER_FRAGMENT,
	parseFragment,
	parseInit,
	type Sample,
} from "./fmp4.ts";
export {
	Publish,
	type PublishOptions,
	type PublishSource,
	type PublishStats,
	type PublishStatus,
} from "./publish/publish.ts";
export {
	checkRenditions,
	MAX_RENDITION_KBPS,
	MAX_RENDITION_SIDE,
	MAX_RENDITIONS,
	MIN_RENDITION_KBPS,
	MIN_RENDITION_SIDE,
	type PublishRendition,
	parseRenditions,
	RenditionError,
} from "./publish/renditions.ts";
export { GroupReader, type GroupReaderOptions, type MediaFrame } from "./watch/reader.ts";
export { emptyStats, type WatchStats, type WatchStatus } from "./watch/stats.ts";
export { type Playable, playableAudio, playableVideo, type Unpack, unpackLegacy } from "./watch/unpack.ts";
export { DEFAULT_LATENCY_MS, Watch, type WatchEventMap, type WatchOptions } from "./watch/watch.ts";
