/** Version negotiation and the SETUP exchange (spec §1.6, §1.7, §4). */
import {
	BiStream,
	CLIENT_SETUP_COMPAT,
	decodeClientSetupCompat,
	decodeServerSetupCompat,
	decodeSetup,
	encodeClientSetupCompat,
	encodeServerSetupCompat,
	encodeSetup,
	type LiteVersion,
	Reader,
	type Setup,
	UniStream,
	versionCode,
	versionFromAlpn,
	versionFromCode,
} from "../coding/index.ts";
import { ErrorCode, MoqError, WireCodes } from "../error.ts";
import { mapStreamError, stopError, type Transport, Writer } from "./stream.ts";

/** Compat parameter: MaxRequestId (even key, varint). */
const COMPAT_PARAM_MAX_REQUEST_ID = 2;
/** Compat parameter: implementation name (odd key, bytes). */
const COMPAT_PARAM_IMPLEMENTATION = 7;
/** Our implementation name in the compat SETUP. */
const IMPLEMENTATION = "moqx-lite-js";

/** The outcome of the handshake. */
export interface Negotiated {
	/** The version spoken from now on (6, 5 or 2). */
	version: LiteVersion;
	/** The peer's SETUP (lite-05/06). */
	peerSetup?: Setup;
	/** The compat session stream (lite-01/02): its end is the session's end. */
	compat?: { reader: Reader; writer: Writer };
}

/** Readers over the transport's incoming stream queues, shared by the handshake and the session. */
export interface Incoming {
	/** Incoming bidirectional streams. */
	bi: ReadableStreamDefaultReader<{ readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }>;
	/** Incoming unidirectional streams. */
	uni: ReadableStreamDefaultReader<ReadableStream<Uint8Array>>;
}

async function next<T>(reader: ReadableStreamDefaultReader<T>, codes: WireCodes): Promise<T> {
	let result: ReadableStreamReadResult<T>;
	try {
		result = await reader.read();
	} catch (err) {
		throw mapStreamError(err, codes);
	}
	if (result.done) throw new MoqError(ErrorCode.Transport, "session closed during setup");
	return result.value;
}

/**
 * The version fixed by the WebTransport protocol the server picked: lite-06 for "moq-lite-06",
 * lite-05 for "moq-lite-05", undefined (= compat exchange) for "moql" or none; anything else is
 * unsupported.
 */
export function negotiatedVersion(protocol: string | undefined): LiteVersion | undefined {
	if (!protocol || protocol === "moql") return undefined;
	const version = versionFromAlpn(protocol);
	if (version !== 5 && version !== 6) throw new MoqError(ErrorCode.Version, `unsupported protocol ${protocol}`);
	return version;
}

/** What the client offers. */
export interface Offer {
	/** moq-lite-06 (WT protocol "moq-lite-06"). */
	lite06: boolean;
	/** moq-lite-05 (WT protocol "moq-lite-05"). */
	lite05: boolean;
	/** moq-lite-02 (WT protocol "moql" + compat CLIENT_SETUP). */
	lite02: boolean;
}

/**
 * Our SETUP (lite-05/06): no parameters. Like the Rust side, Origin goes out only when we have an
 * origin id (a leaf browser has none), so a lite-06 peer filters nothing for us; Probe is not
 * offered because we serve no Probe stream (spec §5.14).
 */
const OUR_SETUP: Setup = {};

/** The client's side: SETUP stream on lite-05/06, compat CLIENT_SETUP (offering lite-02) otherwise. */
export async function clientSetup(
	transport: Transport,
	incoming: Incoming,
	offer: Offer,
	codes: WireCodes = new WireCodes(),
): Promise<Negotiated> {
	const mapError = (err: unknown) => mapStreamError(err, codes);
	const version = negotiatedVersion(transport.protocol);
	if (version === undefined) {
		if (!offer.lite02)
			throw new MoqError(ErrorCode.Version, "server negotiated no protocol and lite-02 is not offered");
		return clientCompat(transport, codes);
	}
	if (!(version === 6 ? offer.lite06 : offer.lite05))
		throw new MoqError(ErrorCode.Version, `server picked moq-lite-0${version}, which was not offered`);
	// spec: §1.7 the client's SETUP goes on a uni stream (type 0x1) before anything else, then FIN.
	const writer = new Writer(await transport.createUnidirectionalStream(), codes);
	await writer.encode((e) => {
		e.varint(UniStream.Setup);
		encodeSetup(e, OUR_SETUP, version);
	});
	await writer.close();
	// The reference server answers with its own SETUP stream; wait for it so errors surface in connect().
	const reader = new Reader(await next(incoming.uni, codes), mapError);
	const type = await reader.decode((c) => c.varint());
	if (type !== UniStream.Setup)
		throw new MoqError(ErrorCode.ProtocolViolation, `expected SETUP stream, got type ${type}`);
	const peerSetup = await reader.decode((c) => decodeSetup(c, version));
	return { version, peerSetup };
}

async function clientCompat(transport: Transport, codes: WireCodes): Promise<Negotiated> {
	const stream = await transport.createBidirectionalStream();
	const writer = new Writer(stream.writable, codes);
	const reader = new Reader(stream.readable, (err) => mapStreamError(err, codes));
	await writer.encode((e) =>
		encodeClientSetupCompat(e, {
			versions: [versionCode(2)],
			params: [
				{ key: COMPAT_PARAM_MAX_REQUEST_ID, value: 42069 },
				{ key: COMPAT_PARAM_IMPLEMENTATION, value: new TextEncoder().encode(IMPLEMENTATION) },
			],
		}),
	);
	const server = await reader.decode((c) => decodeServerSetupCompat(c));
	if (versionFromCode(server.version) !== 2) {
		throw new MoqError(ErrorCode.Version, `server selected version 0x${server.version.toString(16)}`);
	}
	return { version: 2, compat: { reader, writer } };
}

/** The server's side (used by tests and peer-to-peer setups): read the client's SETUP or answer the compat exchange. */
export async function serverSetup(
	transport: Transport,
	incoming: Incoming,
	codes: WireCodes = new WireCodes(),
): Promise<Negotiated> {
	const mapError = (err: unknown) => mapStreamError(err, codes);
	const version = negotiatedVersion(transport.protocol);
	if (version === undefined) {
		const stream = await next(incoming.bi, codes);
		const writer = new Writer(stream.writable, codes);
		const reader = new Reader(stream.readable, mapError);
		const kind = await reader.decode((c) => c.varint());
		if (kind !== CLIENT_SETUP_COMPAT)
			throw new MoqError(ErrorCode.UnexpectedStream, `expected compat SETUP, got ${kind}`);
		const client = await reader.decode((c) => decodeClientSetupCompat(c));
		// spec: appendix §1.3 the first version in the client's list that we support.
		const chosen = client.versions.map(versionFromCode).find((v) => v === 2);
		if (chosen === undefined) throw new MoqError(ErrorCode.Version, "no common version");
		await writer.encode((e) => encodeServerSetupCompat(e, { version: versionCode(chosen), params: [] }));
		return { version: chosen, compat: { reader, writer } };
	}
	// spec: §1.7 uni streams that arrive before the client's SETUP are refused (code 10).
	for (;;) {
		const reader = new Reader(await next(incoming.uni, codes), mapError);
		const type = await reader.decode((c) => c.varint());
		if (type !== UniStream.Setup) {
			reader.cancel(stopError(codes, ErrorCode.UnexpectedStream));
			continue;
		}
		const peerSetup = await reader.decode((c) => decodeSetup(c, version));
		const writer = new Writer(await transport.createUnidirectionalStream(), codes);
		await writer.encode((e) => {
			e.varint(UniStream.Setup);
			encodeSetup(e, OUR_SETUP, version);
		});
		await writer.close();
		return { version, peerSetup };
	}
}

export { BiStream };
