/** The WebTransport session: connect, negotiate the version, dispatch streams, publish and subscribe. */
import { BiStream, decodeSessionInfo, type LiteVersion, Reader, UniStream } from "../coding/index.ts";
import { type CodeRegistry, ErrorCode, MoqError, toError, WireCodes } from "../error.ts";
import type { Announced } from "../model/announced.ts";
import { BroadcastConsumer, type BroadcastProducer } from "../model/broadcast.ts";
import { deferred } from "../model/util.ts";
import { QmuxTransport } from "../qmux/session.ts";
import { connectWebSocket, wsProtocols } from "../qmux/websocket.ts";
import { Publisher } from "./publisher.ts";
import { clientSetup, type Incoming, type Negotiated, serverSetup } from "./setup.ts";
import { type BidiStream, errorCode, mapStreamError, stopError, type Transport, Writer } from "./stream.ts";
import { Subscriber } from "./subscriber.ts";

/** A moq-lite version this client speaks. */
export type Version = "moq-lite-06" | "moq-lite-05" | "moq-lite-02";

/** Every version this client speaks, most preferred first. */
export const VERSIONS: readonly Version[] = ["moq-lite-06", "moq-lite-05", "moq-lite-02"];

/** The WT protocol offered for each version (lite-02 is reached through "moql" + compat SETUP). */
const PROTOCOLS: Record<Version, string> = {
	"moq-lite-06": "moq-lite-06",
	"moq-lite-05": "moq-lite-05",
	"moq-lite-02": "moql",
};

function versionName(v: LiteVersion): Version {
	if (v >= 6) return "moq-lite-06";
	return v === 5 ? "moq-lite-05" : "moq-lite-02";
}

/** Which transport carries a session: W3C WebTransport (QUIC) or QMux over a WebSocket (TCP). */
export type TransportKind = "webtransport" | "websocket";

/** How {@link Connection.connect} picks the transport: race both ("auto") or force one. */
export type TransportChoice = "auto" | TransportKind;

/** How long WebTransport runs alone before the WebSocket attempt starts (auto mode). */
export const WEBSOCKET_HEAD_START_MS = 500;

/** Options for {@link Connection.connect}. */
export interface ConnectOptions {
	/**
	 * The transport: `"auto"` (default) races WebTransport against a WebSocket started
	 * {@link WEBSOCKET_HEAD_START_MS} later (at once where WebTransport is missing or known bad, or
	 * when the WebSocket won last time for this relay host); the first ready wins.
	 */
	transport?: TransportChoice;
	/** Versions to offer (always sent most preferred first: 06, 05, 02). Default {@link DEFAULT_VERSIONS}. */
	versions?: Version[];
	/**
	 * For http:// URLs: where to GET the hex SHA-256 of the server certificate.
	 * Default `http://host:port/certificate.sha256` of the URL itself.
	 */
	fingerprintUrl?: string;
	/**
	 * The peer's error-code registry, when known (see {@link CodeRegistry}): `"moq-net"` for the
	 * reference relay 0.17.x, `"lite"` for ours. Default: learnt from the peer's first telling code.
	 */
	codes?: CodeRegistry;
}

/** Options for {@link Connection.accept} over a custom transport. */
export interface TransportOptions {
	/** Versions allowed. Default every version we speak ({@link VERSIONS}): the transport's protocol already fixed it. */
	versions?: Version[];
	/** Play the server's part of the handshake (peer-to-peer and tests). Default false. */
	server?: boolean;
	/** The URL to report in {@link Connection.url}. */
	url?: string | URL;
	/** The peer's error-code registry (see {@link ConnectOptions.codes}). */
	codes?: CodeRegistry;
}

/** The versions offered when none are given. */
export const DEFAULT_VERSIONS: readonly Version[] = ["moq-lite-06", "moq-lite-05", "moq-lite-02"];

function hexToBytes(hex: string): Uint8Array {
	const clean = hex.trim().replace(/[^0-9a-fA-F]/g, "");
	if (clean.length !== 64)
		throw new MoqError(ErrorCode.Transport, "certificate fingerprint is not a SHA-256 hex string");
	const out = new Uint8Array(32);
	for (let i = 0; i < 32; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
	return out;
}

/**
 * A moq-lite session over WebTransport. Symmetric: publish and subscribe on the same connection.
 *
 * Lifetime: everything (subscriptions, announcements, published broadcasts) ends with the session;
 * {@link Connection.closed} tells why.
 */
export class Connection {
	/** The URL connected to (as given, http:// kept for dev URLs). */
	readonly url: URL;
	/** The negotiated version. */
	readonly version: Version;
	/** The transport that carries the session. */
	readonly transport: TransportKind;
	/** Resolves when the session ends (clean close or error; never rejects). */
	readonly closed: Promise<Error | undefined>;

	readonly #transport: Transport;
	readonly #incoming: Incoming;
	readonly #wire: LiteVersion;
	readonly #codes: WireCodes;
	readonly #publisher: Publisher;
	readonly #subscriber: Subscriber;
	readonly #closed = deferred<Error | undefined>();
	#done = false;

	private constructor(url: URL, transport: Transport, incoming: Incoming, negotiated: Negotiated, codes: WireCodes) {
		this.url = url;
		this.transport = transport instanceof QmuxTransport ? "websocket" : "webtransport";
		this.#codes = codes;
		this.#transport = transport;
		this.#incoming = incoming;
		this.#wire = negotiated.version;
		this.version = versionName(negotiated.version);
		this.closed = this.#closed.promise;
		this.#publisher = new Publisher(transport, this.#wire, codes);
		// A lite-06 announcement that breaks the id rules is a protocol violation: the session ends.
		this.#subscriber = new Subscriber(transport, this.#wire, codes, (err) => this.#fail(err));

		transport.closed.then(
			// spec §8: the close code is read in the peer's registry (1 = transport-level, not an extension).
			(info) => this.#finish(codes.fromSession(info?.closeCode ?? 0, info?.reason || undefined)),
			(err: unknown) => this.#finish(mapStreamError(err, codes)),
		);
		this.#acceptBi().catch((err: unknown) => this.#fail(err));
		this.#acceptUni().catch((err: unknown) => this.#fail(err));
		if (negotiated.compat) this.#runCompat(negotiated.compat.reader, negotiated.compat.writer);
	}

	/**
	 * Connect to `url`.
	 * - `http://host:port/path`: WebTransport fetches the certificate hash (see
	 *   {@link ConnectOptions.fingerprintUrl}), pins it (`serverCertificateHashes`) and connects to
	 *   `https://host:port/path`; the WebSocket goes to `ws://host:port/path`.
	 * - `https://host:port/path`: WebPKI WebTransport, or `wss://host:port/path`.
	 *
	 * Offers the WT protocols `moq-lite-06`, `moq-lite-05` and/or `moql` (in that order);
	 * "moq-lite-06"/"moq-lite-05" selected = that version (SETUP stream), none or "moql" = the compat
	 * CLIENT_SETUP offering lite-02. Over WebSocket the same versions go into the subprotocols
	 * `qmux-01.moq-lite-06` … `qmux-00` (see {@link wsProtocols}). The transport is raced as
	 * described at {@link ConnectOptions.transport}.
	 */
	static async connect(url: string | URL, options?: ConnectOptions): Promise<Connection> {
		const given = new URL(url);
		if (given.protocol !== "http:" && given.protocol !== "https:")
			throw new MoqError(ErrorCode.Unsupported, `unsupported URL scheme ${given.protocol}`);
		const versions = options?.versions ?? DEFAULT_VERSIONS;
		const choice = options?.transport ?? "auto";
		const { kind, transport } = await raceTransports(given, versions, choice, options?.fingerprintUrl);
		if (choice === "auto") rememberWinner(given, kind);
		return Connection.#start(given, transport, versions, false, options?.codes);
	}

	/**
	 * Run a session over an already established transport (anything shaped like WebTransport).
	 * Use `server: true` to play the server's part of the handshake.
	 */
	static accept(transport: Transport, options?: TransportOptions): Promise<Connection> {
		const url = new URL(options?.url ?? "moql://transport/");
		return Connection.#start(url, transport, options?.versions ?? VERSIONS, options?.server ?? false, options?.codes);
	}

	static async #start(
		url: URL,
		transport: Transport,
		versions: readonly Version[],
		server: boolean,
		registry: CodeRegistry | undefined,
	): Promise<Connection> {
		const codes = new WireCodes(registry);
		const incoming: Incoming = {
			bi: transport.incomingBidirectionalStreams.getReader(),
			uni: transport.incomingUnidirectionalStreams.getReader(),
		};
		try {
			const offer = {
				lite06: versions.includes("moq-lite-06"),
				lite05: versions.includes("moq-lite-05"),
				lite02: versions.includes("moq-lite-02"),
			};
			const negotiated = server
				? await serverSetup(transport, incoming, codes)
				: await clientSetup(transport, incoming, offer, codes);
			return new Connection(url, transport, incoming, negotiated, codes);
		} catch (err) {
			const error = mapStreamError(err, codes);
			try {
				transport.close({ closeCode: codes.toSession(errorCode(error)), reason: error.message });
			} catch {
				// already closed
			}
			throw error;
		}
	}

	/** Close the session (code 0). */
	close(): void {
		if (this.#done) return;
		try {
			this.#transport.close({ closeCode: 0, reason: "" });
		} catch {
			// already closed
		}
		this.#finish(undefined);
	}

	/**
	 * Discovery: broadcasts under `prefix` ("" = everything in the session's scope); paths are full
	 * paths relative to the session root. Starts with the current set (active=true each), then live changes.
	 */
	announced(prefix = ""): Announced {
		return this.#subscriber.announced(prefix);
	}

	/** Announce `broadcast` at `path` (relative to the session root) until broadcast.close() or the session ends. */
	publish(path: string, broadcast: BroadcastProducer): void {
		if (this.#done) throw new MoqError(ErrorCode.Closed, "session is closed");
		this.#publisher.publish(path, broadcast);
	}

	/** A handle to a remote broadcast. Nothing goes on the wire until a track is subscribed. */
	consume(path: string): BroadcastConsumer {
		return new BroadcastConsumer(path, {
			subscribe: (p, track, options) => this.#subscriber.subscribe(p, track, options),
		});
	}

	#fail(err: unknown): void {
		if (this.#done) return;
		const error = mapStreamError(err, this.#codes);
		try {
			this.#transport.close({
				closeCode: this.#codes.toSession(errorCode(error)),
				reason: error.message.slice(0, 100),
			});
		} catch {
			// already closed
		}
		this.#finish(error);
	}

	#finish(err: Error | undefined): void {
		if (this.#done) return;
		this.#done = true;
		this.#subscriber.close(err);
		this.#closed.resolve(err);
		this.#incoming.bi.cancel().catch(() => {});
		this.#incoming.uni.cancel().catch(() => {});
	}

	/** lite-01/02: the compat stream carries SESSION_INFO (ignored); its end ends the session. */
	#runCompat(reader: Reader, writer: Writer): void {
		(async () => {
			for (;;) {
				const info = await reader.decodeMaybe((c) => decodeSessionInfo(c));
				if (!info) break;
			}
			throw new MoqError(ErrorCode.Closed, "session stream ended");
		})().catch((err: unknown) => {
			writer.reset(ErrorCode.Cancel);
			this.#fail(err);
		});
		this.closed.then(() => writer.reset(ErrorCode.Cancel));
	}

	async #acceptBi(): Promise<void> {
		for (;;) {
			let result: ReadableStreamReadResult<BidiStream>;
			try {
				result = await this.#incoming.bi.read();
			} catch (err) {
				if (this.#done) return;
				throw err;
			}
			if (result.done) return;
			this.#serveBi(result.value).catch(() => {});
		}
	}

	async #serveBi(stream: BidiStream): Promise<void> {
		const codes = this.#codes;
		const reader = new Reader(stream.readable, (e) => mapStreamError(e, codes));
		const writer = new Writer(stream.writable, codes);
		try {
			const type = await reader.decode((c) => c.varint());
			const publisher = this.#publisher;
			const v = this.#wire;
			if (type === BiStream.Announce) await publisher.runAnnounce(reader, writer);
			else if (type === BiStream.Subscribe) await publisher.runSubscribe(reader, writer);
			else if (type === BiStream.Track && v >= 5) await publisher.runTrack(reader, writer);
			else if (type === BiStream.Fetch && v >= 5) await publisher.runFetch(reader, writer);
			else if (type === BiStream.Goaway && v >= 4) await publisher.runGoaway(reader, writer);
			// spec: §5.14 we advertise no Probe capability, so a Probe stream is reset; unknown types too (§3.3).
			else throw new MoqError(ErrorCode.UnexpectedStream, `unexpected bidi stream type ${type}`);
		} catch (err) {
			const code = errorCode(err);
			writer.reset(code);
			reader.cancel(stopError(codes, code));
		}
	}

	async #acceptUni(): Promise<void> {
		for (;;) {
			let result: ReadableStreamReadResult<ReadableStream<Uint8Array>>;
			try {
				result = await this.#incoming.uni.read();
			} catch (err) {
				if (this.#done) return;
				throw err;
			}
			if (result.done) return;
			this.#serveUni(result.value).catch((err: unknown) => {
				if (err instanceof MoqError && err.code === ErrorCode.ProtocolViolation) this.#fail(err);
			});
		}
	}

	async #serveUni(stream: ReadableStream<Uint8Array>): Promise<void> {
		const codes = this.#codes;
		const reader = new Reader(stream, (e) => mapStreamError(e, codes));
		try {
			const type = await reader.decode((c) => c.varint());
			if (type === UniStream.Group) return await this.#subscriber.runGroup(reader);
			// spec: §3.3 a second Setup stream is a protocol violation (session close).
			if (type === UniStream.Setup && this.#wire >= 5) {
				throw new MoqError(ErrorCode.ProtocolViolation, "second SETUP stream");
			}
			throw new MoqError(ErrorCode.UnexpectedStream, `unexpected uni stream type ${type}`);
		} catch (err) {
			reader.cancel(stopError(codes, errorCode(err)));
			throw err;
		}
	}
}

/** WebTransport to `given` (dev `http://` URLs pin the served certificate hash). */
async function connectWebTransport(
	given: URL,
	versions: readonly Version[],
	fingerprintUrl: string | undefined,
	signal: AbortSignal,
): Promise<Transport> {
	const target = new URL(given);
	const wtOptions: WebTransportOptions = { allowPooling: false, congestionControl: "low-latency" };
	if (given.protocol === "http:") {
		const from = fingerprintUrl ?? `http://${given.host}/certificate.sha256`;
		const response = await fetch(from, { signal });
		if (!response.ok) throw new MoqError(ErrorCode.Transport, `GET ${from}: ${response.status}`);
		const hash = hexToBytes(await response.text());
		wtOptions.serverCertificateHashes = [{ algorithm: "sha-256", value: hash as Uint8Array<ArrayBuffer> }];
		target.protocol = "https:";
	}
	wtOptions.protocols = VERSIONS.filter((v) => versions.includes(v)).map((v) => PROTOCOLS[v]);
	const transport = new WebTransport(target, wtOptions);
	const onAbort = () => transport.close();
	signal.addEventListener("abort", onAbort);
	try {
		await transport.ready;
	} catch (err) {
		throw new MoqError(ErrorCode.Transport, `WebTransport to ${target} failed: ${toError(err).message}`);
	} finally {
		signal.removeEventListener("abort", onAbort);
	}
	if (signal.aborted) {
		transport.close();
		throw new MoqError(ErrorCode.Cancel, "WebTransport lost the race");
	}
	return transport as unknown as Transport;
}

/**
 * The WebSocket subprotocols offered for `versions`, most preferred first: `qmux-01.moq-lite-06`,
 * `qmux-00.moq-lite-06`, `qmux-01.moq-lite-05`, `qmux-00.moq-lite-05`, then the bare `qmux-01`,
 * `qmux-00` (lite-02 has no prefixed name: a bare subprotocol leads to the compat SETUP).
 */
export function webSocketProtocols(versions: readonly Version[]): string[] {
	const alpns = VERSIONS.filter((v) => versions.includes(v) && v !== "moq-lite-02");
	return wsProtocols(alpns, versions.includes("moq-lite-02") || alpns.length === 0);
}

/** Whether this browser's WebTransport is missing or known not to work for us (Safari, Firefox < 153). */
export function webTransportUnusable(userAgent = globalThis.navigator?.userAgent ?? ""): boolean {
	if (typeof WebTransport === "undefined") return true;
	const firefox = /Firefox\/(\d+)/.exec(userAgent);
	if (firefox) return Number(firefox[1]) < 153;
	// Safari, and every iOS browser (all WebKit): no "Chrome/", "Chromium/" or "Edg/" token.
	return /AppleWebKit/.test(userAgent) && !/(Chrome|Chromium|Edg)\//.test(userAgent);
}

/**
 * The transport that won the last auto race per relay (host and port: the query may carry a
 * token, which has no business in storage), in memory and in localStorage when available.
 */
const winners = new Map<string, TransportKind>();
const STORAGE_PREFIX = "moq-transport:";

function lastWinner(url: URL): TransportKind | undefined {
	const remembered = winners.get(url.host);
	if (remembered) return remembered;
	try {
		const stored = globalThis.localStorage?.getItem(STORAGE_PREFIX + url.host);
		if (stored === "websocket" || stored === "webtransport") return stored;
	} catch {
		// storage disabled (private mode, sandboxed frame)
	}
	return undefined;
}

function rememberWinner(url: URL, kind: TransportKind): void {
	winners.set(url.host, kind);
	try {
		globalThis.localStorage?.setItem(STORAGE_PREFIX + url.host, kind);
	} catch {
		// storage disabled
	}
}

/**
 * Run the transport attempts for `choice`; the first ready one wins and the others are closed.
 * In auto mode the WebSocket waits {@link WEBSOCKET_HEAD_START_MS} unless WebTransport is
 * unusable here, won nothing last time, or has already failed.
 */
async function raceTransports(
	given: URL,
	versions: readonly Version[],
	choice: TransportChoice,
	fingerprintUrl: string | undefined,
): Promise<{ kind: TransportKind; transport: Transport }> {
	const abort = new AbortController();
	const useWt = choice === "webtransport" || (choice === "auto" && !webTransportUnusable());
	const useWs = choice !== "webtransport";
	const attempts: Promise<{ kind: TransportKind; transport: Transport }>[] = [];
	let startWs: () => void = () => {};
	const wsGo = new Promise<void>((resolve) => {
		startWs = resolve;
	});
	let headStart: ReturnType<typeof setTimeout> | undefined;
	if (useWt) {
		const wt = connectWebTransport(given, versions, fingerprintUrl, abort.signal);
		wt.catch(() => startWs());
		attempts.push(wt.then((transport) => ({ kind: "webtransport" as const, transport })));
	}
	if (useWs) {
		if (!useWt || lastWinner(given) === "websocket") startWs();
		else headStart = setTimeout(startWs, WEBSOCKET_HEAD_START_MS);
		attempts.push(
			wsGo.then(async () => {
				if (abort.signal.aborted) throw new MoqError(ErrorCode.Cancel, "WebSocket not needed");
				const transport = await connectWebSocket(given, webSocketProtocols(versions), abort.signal);
				return { kind: "websocket" as const, transport };
			}),
		);
	}
	let winner: Transport | undefined;
	try {
		const won = await Promise.any(attempts);
		winner = won.transport;
		return won;
	} catch (err) {
		const errors = err instanceof AggregateError ? err.errors : [err];
		throw new MoqError(ErrorCode.Transport, errors.map((e) => toError(e).message).join("; "));
	} finally {
		clearTimeout(headStart);
		abort.abort();
		startWs();
		// A loser that became ready in the same instant is closed too.
		for (const attempt of attempts) {
			attempt.then(
				({ transport }) => {
					if (transport !== winner) transport.close({ closeCode: 0, reason: "lost the race" });
				},
				() => {},
			);
		}
	}
}
