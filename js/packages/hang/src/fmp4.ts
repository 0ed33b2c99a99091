/**
 * A small fragmented-MP4 demuxer for CMAF-container renditions (spec §12.3): the catalog carries
 * a rendition's init segment (`ftyp`+`moov`, base64) and every moq-lite frame of its track is a
 * complete fragment (`moof`+`mdat`, possibly several samples).
 *
 * - {@link parseInit} reads, per track of the init, what WebCodecs needs: the timescale, the sample
 *   entry's codec box as a `description` (avcC, hvcC, av1C; the AudioSpecificConfig of an esds;
 *   dOps rewritten as the OpusHead WebCodecs expects), coded size or sample rate and channels,
 *   and the `trex` sample defaults.
 * - {@link parseFragment} cuts a fragment into samples with their presentation times in µs,
 *   from `tfdt` and the `trun` durations and composition offsets in the track's timescale.
 *
 * Only what ISO BMFF lays out for CMAF is read; edit lists are ignored (like the reference
 * player). Every size and count is checked against the bytes present: a malformed input throws
 * {@link Fmp4Error}, never reads out of bounds or allocates from an unchecked count.
 */

/** Most samples accepted in one fragment. */
export const MAX_SAMPLES_PER_FRAGMENT = 4096;

/** Most tracks accepted in one init segment. */
export const MAX_TRACKS = 16;

/** Malformed or unsupported fMP4. */
export class Fmp4Error extends Error {
	/** @param message what is wrong */
	constructor(message: string) {
		super(message);
		this.name = "Fmp4Error";
	}
}

/** One box: its type and the bytes of its body (after the header). */
interface Box {
	type: string;
	body: Uint8Array;
	/** Offset of the box's first byte in the buffer it was read from. */
	start: number;
}

function view(buf: Uint8Array): DataView {
	return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function fourcc(buf: Uint8Array, offset: number): string {
	return String.fromCharCode(buf[offset] ?? 0, buf[offset + 1] ?? 0, buf[offset + 2] ?? 0, buf[offset + 3] ?? 0);
}

/** The boxes laid end to end in `buf` from `offset`. Throws on a size that does not fit. */
function boxes(buf: Uint8Array, offset = 0): Box[] {
	const out: Box[] = [];
	const v = view(buf);
	while (offset < buf.byteLength) {
		if (offset + 8 > buf.byteLength) throw new Fmp4Error("truncated box header");
		let size = v.getUint32(offset);
		const type = fourcc(buf, offset + 4);
		let header = 8;
		if (size === 1) {
			if (offset + 16 > buf.byteLength) throw new Fmp4Error("truncated box header");
			size = v.getUint32(offset + 8) * 2 ** 32 + v.getUint32(offset + 12);
			header = 16;
		} else if (size === 0) {
			size = buf.byteLength - offset; // to the end
		}
		if (size < header || offset + size > buf.byteLength) {
			throw new Fmp4Error(`box '${type}' of ${size} bytes does not fit in ${buf.byteLength - offset}`);
		}
		out.push({ type, body: buf.subarray(offset + header, offset + size), start: offset });
		offset += size;
	}
	return out;
}

function child(parent: Uint8Array, type: string, offset = 0): Box | undefined {
	return boxes(parent, offset).find((b) => b.type === type);
}

function need(parent: Uint8Array, type: string, where: string, offset = 0): Box {
	const box = child(parent, type, offset);
	if (!box) throw new Fmp4Error(`${where} has no '${type}'`);
	return box;
}

/** A bounds-checked big-endian reader over one box body. */
class Reader {
	#v: DataView;
	#buf: Uint8Array;
	pos = 0;
	constructor(
		buf: Uint8Array,
		readonly what: string,
	) {
		this.#buf = buf;
		this.#v = view(buf);
	}
	#take(n: number): number {
		if (this.pos + n > this.#buf.byteLength) throw new Fmp4Error(`truncated '${this.what}'`);
		const at = this.pos;
		this.pos += n;
		return at;
	}
	u8(): number {
		return this.#v.getUint8(this.#take(1));
	}
	u16(): number {
		return this.#v.getUint16(this.#take(2));
	}
	u24(): number {
		const at = this.#take(3);
		return (this.#v.getUint8(at) << 16) | this.#v.getUint16(at + 1);
	}
	u32(): number {
		return this.#v.getUint32(this.#take(4));
	}
	i32(): number {
		return this.#v.getInt32(this.#take(4));
	}
	u64(): number {
		const at = this.#take(8);
		return this.#v.getUint32(at) * 2 ** 32 + this.#v.getUint32(at + 4);
	}
	skip(n: number): void {
		this.#take(n);
	}
	bytes(n: number): Uint8Array {
		const at = this.#take(n);
		return this.#buf.subarray(at, at + n);
	}
	get left(): number {
		return this.#buf.byteLength - this.pos;
	}
}

/** Sample defaults of a track (`trex`, overridden per fragment by `tfhd`). */
interface Defaults {
	duration: number;
	size: number;
	flags: number;
}

/** What the init segment says about one track. */
export interface InitTrack {
	/** `tkhd` track ID (the fragments' `tfhd` names it). */
	trackId: number;
	/** `hdlr` handler type: `vide`, `soun`, ... */
	handler: string;
	/** `mdhd` timescale: units per second of fragment times. */
	timescale: number;
	/** Type of the first sample entry: `avc1`, `avc3`, `hvc1`, `hev1`, `av01`, `vp09`, `mp4a`, `Opus`, ... */
	entry: string;
	/**
	 * The WebCodecs `description`: avcC/hvcC/av1C body; the AudioSpecificConfig of an esds; dOps
	 * as OpusHead. Absent for codecs that take none (VP8, VP9) or when the box is missing.
	 */
	description?: Uint8Array;
	/** Visual sample entry width and height. */
	codedWidth?: number;
	codedHeight?: number;
	/** Audio sample entry (or dOps) rate and channel count. */
	sampleRate?: number;
	numberOfChannels?: number;
	/** `trex` defaults. */
	defaults: Defaults;
}

/** A parsed init segment. */
export interface Init {
	/** Its tracks, in `moov` order. */
	tracks: InitTrack[];
}

const VISUAL = new Set(["avc1", "avc3", "hvc1", "hev1", "av01", "vp08", "vp09", "dvh1", "dvhe"]);
const AUDIO = new Set(["mp4a", "Opus", "fLaC", "ac-3", "ec-3", "ipcm", "fpcm"]);

/** Parse an init segment (`ftyp`+`moov`; other top-level boxes are ignored). Throws {@link Fmp4Error}. */
export function parseInit(init: Uint8Array): Init {
	const moov = need(init, "moov", "the init segment").body;
	const top = boxes(moov);
	const trexes = new Map<number, Defaults>();
	const mvex = top.find((b) => b.type === "mvex");
	for (const b of mvex ? boxes(mvex.body) : []) {
		if (b.type !== "trex") continue;
		const r = new Reader(b.body, "trex");
		r.skip(4); // version + flags: trex has one layout
		const trackId = r.u32();
		r.skip(4); // default_sample_description_index: one sample entry per track is all CMAF allows
		trexes.set(trackId, { duration: r.u32(), size: r.u32(), flags: r.u32() });
	}
	const traks = top.filter((b) => b.type === "trak");
	if (traks.length === 0) throw new Fmp4Error("the init segment has no track");
	if (traks.length > MAX_TRACKS) throw new Fmp4Error(`${traks.length} tracks in the init segment`);
	const tracks = traks.map((trak) => parseTrak(trak.body, trexes));
	return { tracks };
}

function parseTrak(trak: Uint8Array, trexes: Map<number, Defaults>): InitTrack {
	const tkhd = new Reader(need(trak, "tkhd", "trak").body, "tkhd");
	const version = tkhd.u8();
	tkhd.skip(3 + (version === 1 ? 16 : 8)); // flags, creation and modification times: not used for playback
	const trackId = tkhd.u32();
	const mdia = need(trak, "mdia", "trak").body;
	const mdhd = new Reader(need(mdia, "mdhd", "mdia").body, "mdhd");
	const mdhdVersion = mdhd.u8();
	mdhd.skip(3 + (mdhdVersion === 1 ? 16 : 8)); // flags, creation and modification times: only the timescale matters
	const timescale = mdhd.u32();
	if (timescale === 0) throw new Fmp4Error(`track ${trackId} has timescale 0`);
	const hdlr = new Reader(need(mdia, "hdlr", "mdia").body, "hdlr");
	hdlr.skip(8); // version + flags, pre_defined
	const handler = fourcc(hdlr.bytes(4), 0);
	const minf = need(mdia, "minf", "mdia").body;
	const stbl = need(minf, "stbl", "minf").body;
	const stsd = need(stbl, "stsd", "stbl").body;
	const entries = boxes(stsd, 8); // version+flags, entry_count
	const entry = entries[0];
	if (!entry) throw new Fmp4Error(`track ${trackId} has no sample entry`);
	const track: InitTrack = {
		trackId,
		handler,
		timescale,
		entry: entry.type,
		defaults: trexes.get(trackId) ?? { duration: 0, size: 0, flags: 0 },
	};
	if (VISUAL.has(entry.type)) parseVisual(entry.body, track);
	else if (AUDIO.has(entry.type)) parseAudio(entry.body, track);
	else if (entry.type === "encv" || entry.type === "enca") throw new Fmp4Error("encrypted tracks are not supported");
	return track;
}

/** VisualSampleEntry: 8 bytes SampleEntry, 16 reserved, width, height, 50 more, then boxes. */
function parseVisual(body: Uint8Array, track: InitTrack) {
	const r = new Reader(body, track.entry);
	r.skip(24); // SampleEntry (reserved, data_reference_index) and pre_defined/reserved fields
	track.codedWidth = r.u16();
	track.codedHeight = r.u16();
	r.skip(50); // resolutions, frame_count, compressorname, depth, pre_defined: WebCodecs needs none
	const config = boxes(body, r.pos).find((b) => ["avcC", "hvcC", "av1C"].includes(b.type));
	// VP8/VP9 (vpcC) take no WebCodecs description.
	if (config) track.description = config.body;
}

/** AudioSampleEntry: 8 bytes SampleEntry, version, 6 reserved, channels, size, 4, rate (16.16), boxes. */
function parseAudio(body: Uint8Array, track: InitTrack) {
	const r = new Reader(body, track.entry);
	r.skip(8); // SampleEntry: reserved, data_reference_index
	const version = r.u16();
	r.skip(6); // revision level, vendor
	track.numberOfChannels = r.u16();
	r.skip(6); // samplesize, compression id, packet size: the codec config box is authoritative
	track.sampleRate = r.u32() >>> 16;
	// QuickTime sound descriptions version 1 and 2 carry 16 and 36 more bytes.
	if (version === 1) r.skip(16);
	else if (version === 2) r.skip(36);
	const children = boxes(body, r.pos);
	const esds = children.find((b) => b.type === "esds");
	if (esds) track.description = audioSpecificConfig(esds.body);
	const dops = children.find((b) => b.type === "dOps");
	if (dops) {
		const head = opusHead(dops.body);
		track.description = head;
		track.numberOfChannels = head[9];
		// The Opus decoder runs at 48 kHz whatever the input rate was.
		track.sampleRate = 48_000;
	}
}

/** An MPEG-4 descriptor's expandable size (up to 4 bytes of 7 bits). */
function descriptorSize(r: Reader): number {
	let size = 0;
	for (let i = 0; i < 4; i++) {
		const b = r.u8();
		size = (size << 7) | (b & 0x7f);
		if ((b & 0x80) === 0) break;
	}
	if (size > r.left) throw new Fmp4Error("esds descriptor larger than its box");
	return size;
}

/** The DecoderSpecificInfo (the AAC AudioSpecificConfig) of an esds body. */
function audioSpecificConfig(esds: Uint8Array): Uint8Array | undefined {
	const r = new Reader(esds, "esds");
	r.skip(4); // version + flags
	if (r.u8() !== 0x03) throw new Fmp4Error("esds without an ES_Descriptor");
	descriptorSize(r);
	r.skip(2); // ES_ID
	const flags = r.u8();
	if (flags & 0x80) r.skip(2);
	if (flags & 0x40) r.skip(r.u8());
	if (flags & 0x20) r.skip(2);
	if (r.u8() !== 0x04) throw new Fmp4Error("esds without a DecoderConfigDescriptor");
	descriptorSize(r);
	r.skip(13); // objectTypeIndication, streamType, bufferSizeDB, maxBitrate, avgBitrate
	if (r.left === 0 || r.u8() !== 0x05) return undefined;
	return r.bytes(descriptorSize(r));
}

/**
 * dOps (big-endian, version 0) as the Ogg identification header WebCodecs takes as the Opus
 * `description`: "OpusHead", version 1, channels, pre-skip, input rate and gain little-endian,
 * mapping family and its table as they are.
 */
function opusHead(dops: Uint8Array): Uint8Array {
	const r = new Reader(dops, "dOps");
	r.skip(1); // version
	const channels = r.u8();
	const preSkip = r.u16();
	const rate = r.u32();
	const gain = r.u16();
	const family = r.u8();
	const table = family === 0 ? new Uint8Array() : r.bytes(2 + channels);
	const out = new Uint8Array(19 + table.byteLength);
	out.set(new TextEncoder().encode("OpusHead"));
	const v = view(out);
	v.setUint8(8, 1);
	v.setUint8(9, channels);
	v.setUint16(10, preSkip, true);
	v.setUint32(12, rate, true);
	v.setUint16(16, gain, true);
	v.setUint8(18, family);
	out.set(table, 19);
	return out;
}

/** One sample of a fragment. */
export interface Sample {
	/** Presentation time in µs. */
	timestamp: number;
	/** Duration in µs (0 when the fragment does not say). */
	duration: number;
	/** The sample is a sync sample (its flags say so, or they say nothing). */
	keyframe: boolean;
	/** The sample's bytes (a view into the fragment). */
	payload: Uint8Array;
}

/** `sample_is_non_sync_sample` in sample flags. */
const NON_SYNC = 0x0001_0000;

/**
 * The samples of `track` in a fragment (one or more `moof`+`mdat`), in decode order. Samples of
 * other tracks are left out. Throws {@link Fmp4Error}.
 */
export function parseFragment(fragment: Uint8Array, track: InitTrack): Sample[] {
	const out: Sample[] = [];
	const moofs = boxes(fragment).filter((b) => b.type === "moof");
	if (moofs.length === 0) throw new Fmp4Error("a fragment without a moof");
	for (const moof of moofs) {
		for (const traf of boxes(moof.body)) {
			if (traf.type !== "traf") continue;
			parseTraf(fragment, moof.start, traf.body, track, out);
		}
	}
	return out;
}

function parseTraf(fragment: Uint8Array, moofStart: number, traf: Uint8Array, track: InitTrack, out: Sample[]) {
	const trafBoxes = boxes(traf);
	const tfhdBox = trafBoxes.find((b) => b.type === "tfhd");
	if (!tfhdBox) throw new Fmp4Error("traf without a tfhd");
	const tfhd = new Reader(tfhdBox.body, "tfhd");
	const tfhdFlags = tfhd.u32() & 0xff_ffff;
	if (tfhd.u32() !== track.trackId) return;
	if (tfhdFlags & 0x01) throw new Fmp4Error("absolute data offsets (tfhd base_data_offset) are not supported");
	if (tfhdFlags & 0x02) tfhd.skip(4);
	const defaults = { ...track.defaults };
	if (tfhdFlags & 0x08) defaults.duration = tfhd.u32();
	if (tfhdFlags & 0x10) defaults.size = tfhd.u32();
	if (tfhdFlags & 0x20) defaults.flags = tfhd.u32();

	const tfdtBox = trafBoxes.find((b) => b.type === "tfdt");
	if (!tfdtBox) throw new Fmp4Error("traf without a tfdt");
	const tfdt = new Reader(tfdtBox.body, "tfdt");
	const tfdtVersion = tfdt.u8();
	tfdt.skip(3);
	let dts = tfdtVersion === 1 ? tfdt.u64() : tfdt.u32();

	// CMAF: offsets are from the moof (default-base-is-moof, or no flag on a fragment's only traf).
	let dataOffset = moofStart;
	const scale = 1_000_000 / track.timescale;
	for (const box of trafBoxes) {
		if (box.type !== "trun") continue;
		const r = new Reader(box.body, "trun");
		const version = r.u8();
		const flags = r.u24();
		const count = r.u32();
		if (out.length + count > MAX_SAMPLES_PER_FRAGMENT) throw new Fmp4Error(`${count} samples in one fragment`);
		if (flags & 0x01) dataOffset = moofStart + r.i32();
		const firstFlags = flags & 0x04 ? r.u32() : undefined;
		for (let i = 0; i < count; i++) {
			const duration = flags & 0x100 ? r.u32() : defaults.duration;
			const size = flags & 0x200 ? r.u32() : defaults.size;
			const sampleFlags = flags & 0x400 ? r.u32() : i === 0 && firstFlags !== undefined ? firstFlags : defaults.flags;
			const offset = flags & 0x800 ? (version === 0 ? r.u32() : r.i32()) : 0;
			if (dataOffset < 0 || dataOffset + size > fragment.byteLength) {
				throw new Fmp4Error(`sample of ${size} bytes at ${dataOffset} is outside the fragment`);
			}
			out.push({
				timestamp: Math.round((dts + offset) * scale),
				duration: Math.round(duration * scale),
				keyframe: (sampleFlags & NON_SYNC) === 0,
				payload: fragment.subarray(dataOffset, dataOffset + size),
			});
			dataOffset += size;
			dts += duration;
		}
	}
}

/** The first track of `init` with handler `handler` (`vide` or `soun`), else its first track. */
export function pickTrack(init: Init, handler: string): InitTrack {
	const track = init.tracks.find((t) => t.handler === handler) ?? init.tracks[0];
	if (!track) throw new Fmp4Error("the init segment has no track");
	return track;
}

/** Decode standard base64 (the catalog's `init`). Throws {@link Fmp4Error} on invalid input. */
export function base64ToBytes(text: string): Uint8Array {
	let binary: string;
	try {
		binary = atob(text);
	} catch {
		throw new Fmp4Error("init is not base64");
	}
	const out = new Uint8Array(binary.length);
	for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
	return out;
}
