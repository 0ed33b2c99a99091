/** QMux frame codec: hand-computed byte vectors (RFC 9000 §19, draft-ietf-quic-qmux-01), round trips, rejections. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Qmux } from "../src/index.ts";
import { hex, rng, toHex } from "./helpers.ts";

const { decodeMessage, frameBytes, decodeParams, encodeParams, defaultParams, QmuxError, TransportError } = Qmux;
type Frame = Qmux.Frame;

const ascii = (s: string) => new TextEncoder().encode(s);

/** [name, frame, bytes]: bytes worked out by hand from the QUIC v1 / QMux frame layouts. */
const VECTORS: [string, Frame, string][] = [
	// type 0x0e (STREAM|OFF|LEN), id 4, offset 5, length 2, "hi"
	["STREAM", { type: "stream", id: 4, offset: 5, data: ascii("hi"), fin: false }, "0e 04 05 02 6869"],
	// type 0x0f (…|FIN), id 8, offset 0, length 3, "bye"
	["STREAM+FIN", { type: "stream", id: 8, offset: 0, data: ascii("bye"), fin: true }, "0f 08 00 03 627965"],
	// id 2^14 takes a 4-byte varint; offset 300 a 2-byte one (0x412c)
	[
		"STREAM wide id",
		{ type: "stream", id: 16384, offset: 300, data: ascii("x"), fin: false },
		"0e 80004000 412c 01 78",
	],
	// RESET_STREAM id 4, code 42, final size 128 (0x4080)
	["RESET_STREAM", { type: "reset_stream", id: 4, code: 42, finalSize: 128 }, "04 04 2a 4080"],
	["STOP_SENDING", { type: "stop_sending", id: 4, code: 42 }, "05 04 2a"],
	// MAX_DATA 1024 = 0x4400
	["MAX_DATA", { type: "max_data", max: 1024 }, "10 4400"],
	["MAX_STREAM_DATA", { type: "max_stream_data", id: 4, max: 1024 }, "11 04 4400"],
	// MAX_STREAMS 100 = 0x4064
	["MAX_STREAMS bidi", { type: "max_streams", bidi: true, max: 100 }, "12 4064"],
	["MAX_STREAMS uni", { type: "max_streams", bidi: false, max: 100 }, "13 4064"],
	["DATA_BLOCKED", { type: "data_blocked", limit: 1024 }, "14 4400"],
	["STREAM_DATA_BLOCKED", { type: "stream_data_blocked", id: 4, limit: 1024 }, "15 04 4400"],
	["STREAMS_BLOCKED bidi", { type: "streams_blocked", bidi: true, limit: 100 }, "16 4064"],
	["STREAMS_BLOCKED uni", { type: "streams_blocked", bidi: false, limit: 100 }, "17 4064"],
	// transport close: code, frame type, reason length, reason
	[
		"CONNECTION_CLOSE",
		{ type: "connection_close", application: false, code: 10, frameType: 0, reason: "bye" },
		"1c 0a 00 03 627965",
	],
	// application close: no frame type field
	["APPLICATION_CLOSE", { type: "connection_close", application: true, code: 42, reason: "bye" }, "1d 2a 03 627965"],
	// 0x348c67529ef8c7bd as an 8-byte varint: top two bits 11 → first byte 0xf4
	["QX_PING request", { type: "ping", response: false, sequence: 7 }, "f48c67529ef8c7bd 07"],
	["QX_PING response", { type: "ping", response: true, sequence: 7 }, "f48c67529ef8c7be 07"],
	// 0x3f5153300d0a0d0a → ff 51 53 30 0d 0a 0d 0a; body: initial_max_data (04) len 2 value 1024,
	// initial_max_streams_uni (09) len 2 value 100
	[
		"QX_TRANSPORT_PARAMETERS",
		{ type: "transport_parameters", params: { ...defaultParams(), initialMaxData: 1024, initialMaxStreamsUni: 100 } },
		"ff5153300d0a0d0a 08 04024400 09024064",
	],
	// DATAGRAM with length
	["DATAGRAM", { type: "datagram", data: ascii("hi") }, "31 02 6869"],
];

describe("qmux frame codec", () => {
	for (const [name, frame, bytes] of VECTORS) {
		it(`${name}: encodes to the hand-computed bytes and decodes back`, () => {
			assert.equal(toHex(frameBytes(frame)), toHex(hex(bytes)));
			assert.deepEqual(decodeMessage(hex(bytes), "qmux-01", 16382), [frame]);
		});
	}

	it("cut at every offset, a vector never decodes to a frame: it is a truncation error", () => {
		for (const [name, , bytes] of VECTORS) {
			const whole = hex(bytes);
			for (let cut = 1; cut < whole.length; cut++) {
				assert.throws(
					() => decodeMessage(whole.subarray(0, cut), "qmux-01", 16382),
					(err: unknown) => err instanceof QmuxError && err.transportCode === TransportError.FrameEncoding,
					`${name} cut at ${cut}`,
				);
			}
		}
	});

	it("decodes STREAM without OFF (offset 0) and without LEN (to the end of the message)", () => {
		assert.deepEqual(decodeMessage(hex("0a 04 02 6869"), "qmux-00", 16384), [
			{ type: "stream", id: 4, offset: 0, data: ascii("hi"), fin: false },
		]);
		assert.deepEqual(decodeMessage(hex("0d 04 07 6869"), "qmux-00", 16384), [
			{ type: "stream", id: 4, offset: 7, data: ascii("hi"), fin: true },
		]);
	});

	it("a record carries several frames; PADDING is skipped; an empty message is a no-op", () => {
		const record = hex("00 10 4400 00 00 05 04 2a 0e 04 05 02 6869");
		assert.deepEqual(decodeMessage(record, "qmux-01", 16382), [
			{ type: "max_data", max: 1024 },
			{ type: "stop_sending", id: 4, code: 42 },
			{ type: "stream", id: 4, offset: 5, data: ascii("hi"), fin: false },
		]);
		assert.deepEqual(decodeMessage(new Uint8Array(0), "qmux-01", 16382), []);
	});

	it("round-trips random frames, several per record", () => {
		const next = rng(7);
		const int = (max: number) => Math.floor(next() * max);
		const make = (): Frame => {
			switch (int(7)) {
				case 0:
					return {
						type: "stream",
						id: int(2 ** 20),
						offset: int(2 ** 40),
						data: Uint8Array.from({ length: int(100) }, () => int(256)),
						fin: next() < 0.5,
					};
				case 1:
					return { type: "reset_stream", id: int(2 ** 30), code: int(2 ** 50), finalSize: int(2 ** 50) };
				case 2:
					return { type: "max_stream_data", id: int(4000), max: int(2 ** 53) };
				case 3:
					return { type: "max_streams", bidi: next() < 0.5, max: int(2 ** 40) };
				case 4:
					return { type: "ping", response: next() < 0.5, sequence: int(2 ** 30) };
				case 5:
					return { type: "connection_close", application: true, code: int(2 ** 20), reason: "é".repeat(int(10)) };
				default:
					return { type: "stop_sending", id: int(2 ** 16), code: int(2 ** 53) };
			}
		};
		for (let round = 0; round < 200; round++) {
			const frames = Array.from({ length: 1 + int(5) }, make);
			const parts = frames.map((f) => frameBytes(f));
			const record = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
			let pos = 0;
			for (const p of parts) {
				record.set(p, pos);
				pos += p.length;
			}
			assert.deepEqual(decodeMessage(record, "qmux-01", 1 << 20), frames);
		}
	});

	it("transport parameters: round trip, default record size, max_record_size only on qmux-01", () => {
		const params = {
			...defaultParams(),
			maxIdleTimeout: 30_000,
			initialMaxData: 8 << 20,
			initialMaxStreamDataBidiLocal: 1 << 20,
			initialMaxStreamDataBidiRemote: 1 << 19,
			initialMaxStreamDataUni: 1 << 18,
			initialMaxStreamsBidi: 128,
			initialMaxStreamsUni: 256,
			maxRecordSize: 65536,
		};
		assert.deepEqual(decodeParams(encodeParams(params, "qmux-01")), params);
		// max_record_size id 0x0571c59429cd0845 → c571c59429cd0845, len 4, value 65536 = 80010000
		assert.ok(toHex(encodeParams(params, "qmux-01")).includes("c571c59429cd08450480010000"));
		const v00 = decodeParams(encodeParams(params, "qmux-00"));
		assert.equal(v00.maxRecordSize, 16382);
		assert.equal(v00.maxIdleTimeout, 0);
		// unknown ids are skipped
		assert.equal(decodeParams(hex("2a 02 4400 04 02 4400")).initialMaxData, 1024);
	});
});

describe("qmux frame rejections", () => {
	const rejects = (bytes: Uint8Array, code: number, what: RegExp, version: "qmux-00" | "qmux-01" = "qmux-01") =>
		assert.throws(
			() => decodeMessage(bytes, version, 16382),
			(err: unknown) => err instanceof QmuxError && err.transportCode === code && what.test(err.message),
		);

	it("an unknown frame type (HANDSHAKE_DONE 0x1e, ACK 0x02) is a frame encoding error", () => {
		rejects(hex("1e"), TransportError.FrameEncoding, /unknown frame type 0x1e/);
		rejects(hex("02 00 00 00 00"), TransportError.FrameEncoding, /unknown frame type 0x2/);
	});

	it("a message over the size limit is refused before decoding", () => {
		rejects(new Uint8Array(16383), TransportError.FrameEncoding, /exceeds 16382/);
	});

	it("a STREAM length past the end of its message", () => {
		rejects(hex("0e 04 00 05 6869"), TransportError.FrameEncoding, /STREAM length/);
	});

	it("an offset varint beyond 2^53, or offset + length beyond 2^53", () => {
		rejects(hex("0e 04 ffffffffffffffff 00"), TransportError.FrameEncoding, /2\^53/);
		rejects(hex("0e 04 c01fffffffffffff 02 6869"), TransportError.FrameEncoding, /2\^53/);
	});

	it("a stream count over 2^60", () => {
		rejects(hex("12 d000000000000001"), TransportError.FrameEncoding, /exceeds 2\^60/);
	});

	it("a close reason longer than its message", () => {
		rejects(hex("1d 00 09 6869"), TransportError.FrameEncoding, /reason/);
	});

	it("bad transport parameters: duplicate, forbidden QUIC v1 id, value with trailing bytes, overrun", () => {
		const tp = (body: string) => hex(`ff5153300d0a0d0a ${hex(body).length.toString(16).padStart(2, "0")} ${body}`);
		rejects(tp("04 01 01 04 01 02"), TransportError.TransportParameter, /duplicate/);
		rejects(tp("00 01 01"), TransportError.TransportParameter, /forbidden/);
		rejects(tp("04 02 01 01"), TransportError.TransportParameter, /trailing/);
		rejects(tp("04 05 01"), TransportError.TransportParameter, /runs past/);
	});

	it("QX_PING and DATAGRAM do not exist on qmux-00", () => {
		rejects(hex("f48c67529ef8c7bd 07"), TransportError.FrameEncoding, /ping frame on qmux-00/, "qmux-00");
	});

	it("random garbage only ever fails with a QmuxError (seeded)", () => {
		const next = rng(22);
		for (let round = 0; round < 5000; round++) {
			const bytes = Uint8Array.from({ length: Math.floor(next() * 40) }, () => Math.floor(next() * 256));
			// Bias towards real frame types so the bodies get exercised too.
			if (bytes.length > 0 && next() < 0.7)
				bytes[0] = [0x04, 0x05, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x1c, 0x1d, 0x31][round % 10] ?? 0;
			try {
				decodeMessage(bytes, round % 2 ? "qmux-00" : "qmux-01", 16382);
			} catch (err) {
				assert.ok(err instanceof QmuxError, `round ${round}: ${String(err)}`);
			}
		}
	});
});
