/**
 * `@moqx/lite`: the moq-lite client for browsers (lite-06 and lite-05, with the lite-02 compat path),
 * over WebTransport or, where UDP or WebTransport is unavailable, QMux over a WebSocket
 * (`qmux/`; {@link Connection.connect} races the two).
 *
 * ```
 * Connection ──publish(path, BroadcastProducer)──► TrackProducer ──► GroupProducer ──► frames
 *            ──consume(path) → BroadcastConsumer ──subscribe(track)──► TrackConsumer ──► GroupConsumer ──► frames
 *            ──announced(prefix) → Announced (paths going live / ending)
 * ```
 *
 * @example
 * const conn = await Connection.connect("http://localhost:4443/anon");
 * const track = conn.consume("pattern.hang").subscribe("catalog.json", { priority: 100 });
 * const group = await track.nextGroup();
 * const frame = await group?.readFrame();
 */

export * as Wire from "./coding/index.ts";
export type { Arrival } from "./coding/reader.ts";
export { type CodeRegistry, DecodeError, ErrorCode, MoqError, WireCodes } from "./error.ts";
export type { Announced, Announcement } from "./model/announced.ts";
export { BroadcastConsumer, BroadcastProducer } from "./model/broadcast.ts";
export { type Frame, GroupConsumer, GroupProducer } from "./model/group.ts";
export { type SubscribeOptions, TrackConsumer, type TrackOptions, TrackProducer } from "./model/track.ts";
export * as Qmux from "./qmux/frame.ts";
export { DEFAULT_LIMITS, type Limits, type MessageSocket, type QmuxOptions, QmuxTransport } from "./qmux/session.ts";
export { connectWebSocket, parseWsProtocol, QMUX_VERSIONS, wsProtocols, wsUrl } from "./qmux/websocket.ts";
export {
	Connection,
	type ConnectOptions,
	DEFAULT_VERSIONS,
	type TransportChoice,
	type TransportKind,
	type TransportOptions,
	VERSIONS,
	type Version,
	WEBSOCKET_HEAD_START_MS,
	webSocketProtocols,
	webTransportUnusable,
} from "./session/connection.ts";
export type { BidiStream, StreamOptions, Transport } from "./session/stream.ts";
