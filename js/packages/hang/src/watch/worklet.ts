/**
 * The AudioWorklet that plays decoded PCM. Its source is a string turned into a Blob URL, so it
 * survives any bundler (no separate module file to ship).
 *
 * Protocol (main thread → worklet, via the node's port):
 * - `{ type: "data", start, channels }`: planar Float32 samples to play from absolute output frame
 *   `start` (the AudioContext's `currentFrame` timeline). Chunks may arrive in any order; parts of
 *   a chunk already in the past are dropped.
 * - `{ type: "reset" }`: forget everything queued.
 *
 * Worklet → main thread, every ~250 ms: `{ type: "status", frame, buffered, underruns }` where
 * `buffered` is the number of frames queued ahead of `frame` and `underruns` counts render quanta
 * that found no data while playing.
 */

/** Name the processor is registered under. */
export const WORKLET_NAME = "hang-audio-player";

/** JavaScript source of the worklet module. */
export const WORKLET_SOURCE = `
class HangAudioPlayer extends AudioWorkletProcessor {
	constructor() {
		super();
		this.chunks = [];
		this.playing = false;
		this.underruns = 0;
		this.lastStatus = 0;
		this.port.onmessage = (e) => {
			const msg = e.data;
			if (msg.type === "data") {
				const length = msg.channels[0] ? msg.channels[0].length : 0;
				if (length === 0) return;
				this.chunks.push({ start: msg.start, end: msg.start + length, channels: msg.channels });
				this.chunks.sort((a, b) => a.start - b.start);
			} else if (msg.type === "reset") {
				this.chunks = [];
				this.playing = false;
			}
		};
	}

	process(inputs, outputs) {
		const output = outputs[0];
		if (!output || output.length === 0) return true;
		const size = output[0].length;
		const from = currentFrame;
		const to = from + size;
		while (this.chunks.length > 0 && this.chunks[0].end <= from) this.chunks.shift();
		let wrote = false;
		for (const chunk of this.chunks) {
			if (chunk.start >= to) break;
			const begin = Math.max(from, chunk.start);
			const end = Math.min(to, chunk.end);
			for (let c = 0; c < output.length; c++) {
				const src = chunk.channels[Math.min(c, chunk.channels.length - 1)];
				output[c].set(src.subarray(begin - chunk.start, end - chunk.start), begin - from);
			}
			wrote = true;
		}
		if (wrote) this.playing = true;
		else if (this.playing) this.underruns++;
		if (currentTime - this.lastStatus > 0.25) {
			this.lastStatus = currentTime;
			let buffered = 0;
			for (const chunk of this.chunks) buffered += chunk.end - Math.max(chunk.start, to);
			this.port.postMessage({ type: "status", frame: to, buffered, underruns: this.underruns });
		}
		return true;
	}
}
registerProcessor(${JSON.stringify(WORKLET_NAME)}, HangAudioPlayer);
`;

const loaded = new WeakMap<BaseAudioContext, Promise<void>>();

/** Add the worklet module to `context` (once per context). */
export function loadWorklet(context: BaseAudioContext): Promise<void> {
	let promise = loaded.get(context);
	if (!promise) {
		const url = URL.createObjectURL(new Blob([WORKLET_SOURCE], { type: "text/javascript" }));
		promise = context.audioWorklet.addModule(url).finally(() => URL.revokeObjectURL(url));
		loaded.set(context, promise);
	}
	return promise;
}
