/**
 * The WebSocket side of QMux: which subprotocols we offer, what the server's choice means, and
 * opening a browser WebSocket up to a ready {@link QmuxTransport} (moq-lite spec §1.5).
 */

import { ErrorCode, MoqError } from "../error.ts";
import type { QmuxVersion } from "./frame.ts";
import { type MessageSocket, QmuxTransport } from "./session.ts";

/** QMux versions we offer, most preferred first. */
export const QMUX_VERSIONS: readonly QmuxVersion[] = ["qmux-01", "qmux-00"];

/** How long the WebSocket open plus the peer's transport parameters may take. */
export const WS_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * The Sec-WebSocket-Protocol offer for the moq ALPNs `alpns` (most preferred first):
 * `qmux-01.<alpn>`, `qmux-00.<alpn>` for each, then the bare `qmux-01`, `qmux-00` (no moq
 * version: the session falls back to the compat SETUP). `bare` = false leaves those out.
 */
export function wsProtocols(alpns: readonly string[], bare = true): string[] {
	const out: string[] = [];
	for (const alpn of alpns) for (const v of QMUX_VERSIONS) out.push(`${v}.${alpn}`);
	if (bare) out.push(...QMUX_VERSIONS);
	return out;
}

/** What a negotiated subprotocol fixes: the QMux version and the moq ALPN ("" for a bare one). */
export function parseWsProtocol(protocol: string): { version: QmuxVersion; alpn: string } | undefined {
	for (const version of QMUX_VERSIONS) {
		if (protocol === version) return { version, alpn: "" };
		if (protocol.startsWith(`${version}.`) && protocol.length > version.length + 1)
			return { version, alpn: protocol.slice(version.length + 1) };
	}
	return undefined;
}

/** `http(s)://` → `ws(s)://`, same host, port, path and query (the relay serves WS on every path). */
export function wsUrl(url: URL): URL {
	const out = new URL(url);
	if (url.protocol === "http:") out.protocol = "ws:";
	else if (url.protocol === "https:") out.protocol = "wss:";
	else if (url.protocol !== "ws:" && url.protocol !== "wss:")
		throw new MoqError(ErrorCode.Unsupported, `no WebSocket URL for ${url.protocol}`);
	out.hash = "";
	return out;
}

/**
 * Open a WebSocket to `url` offering `protocols`, start QMux on it and wait for the peer's
 * transport parameters. Rejects on failure, timeout, an unknown or missing subprotocol in the
 * answer, or `signal` (the socket is closed then).
 */
export async function connectWebSocket(
	url: URL,
	protocols: string[],
	signal?: AbortSignal,
	timeoutMs = WS_HANDSHAKE_TIMEOUT_MS,
): Promise<QmuxTransport> {
	const ws = new WebSocket(wsUrl(url), protocols);
	ws.binaryType = "arraybuffer";
	let timer: ReturnType<typeof setTimeout> | undefined;
	let onAbort: (() => void) | undefined;
	const failure = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new MoqError(ErrorCode.Timeout, `WebSocket to ${url} timed out`)), timeoutMs);
		onAbort = () => reject(new MoqError(ErrorCode.Cancel, "WebSocket attempt cancelled"));
		if (signal?.aborted) onAbort();
		signal?.addEventListener("abort", onAbort);
	});
	failure.catch(() => {});
	let transport: QmuxTransport | undefined;
	try {
		await Promise.race([
			failure,
			new Promise<void>((resolve, reject) => {
				ws.onopen = () => resolve();
				ws.onclose = (e) =>
					reject(new MoqError(ErrorCode.Transport, `WebSocket to ${ws.url} closed (${e.code}) before it opened`));
			}),
		]);
		const chosen = parseWsProtocol(ws.protocol);
		if (!chosen) throw new MoqError(ErrorCode.Version, `WebSocket server chose unknown subprotocol "${ws.protocol}"`);
		transport = new QmuxTransport(ws as unknown as MessageSocket, { version: chosen.version, protocol: chosen.alpn });
		await Promise.race([failure, transport.ready]);
		return transport;
	} catch (err) {
		if (transport) transport.close({ closeCode: 0, reason: "" });
		else ws.close();
		if (err instanceof MoqError) throw err;
		throw new MoqError(ErrorCode.Transport, `WebSocket to ${ws.url} failed: ${(err as Error)?.message ?? err}`);
	} finally {
		clearTimeout(timer);
		if (onAbort) signal?.removeEventListener("abort", onAbort);
	}
}
