/**
 * Reading raw frames out of a `MediaStreamTrack`: `MediaStreamTrackProcessor` where the browser
 * has it (Chromium, on the main thread too), else — video only — a `<video>` element sampled at
 * the track's frame rate.
 */

interface TrackProcessor<T> {
	readonly readable: ReadableStream<T>;
}

type TrackProcessorConstructor = new <T>(init: {
	track: MediaStreamTrack;
	maxBufferSize?: number;
}) => TrackProcessor<T>;

function processorClass(): TrackProcessorConstructor | undefined {
	return (globalThis as unknown as { MediaStreamTrackProcessor?: TrackProcessorConstructor }).MediaStreamTrackProcessor;
}

/** Whether frames can be read from an audio track (needs `MediaStreamTrackProcessor`). */
export function canCaptureAudio(): boolean {
	return processorClass() !== undefined;
}

/** A stream of `AudioData` from an audio track. */
export function audioFrames(track: MediaStreamTrack): ReadableStream<AudioData> {
	const Processor = processorClass();
	if (!Processor) throw new Error("MediaStreamTrackProcessor is not available: cannot capture audio");
	return new Processor<AudioData>({ track, maxBufferSize: 10 }).readable;
}

/** A stream of `VideoFrame`s from a video track. */
export function videoFrames(track: MediaStreamTrack): ReadableStream<VideoFrame> {
	const Processor = processorClass();
	if (Processor) return new Processor<VideoFrame>({ track, maxBufferSize: 2 }).readable;
	// Fallback: sample a <video> element playing the track.
	const video = document.createElement("video");
	video.muted = true;
	video.playsInline = true;
	video.srcObject = new MediaStream([track]);
	const fps = track.getSettings().frameRate ?? 30;
	let timer: ReturnType<typeof setInterval> | undefined;
	return new ReadableStream<VideoFrame>({
		start(controller) {
			void video.play().catch(() => {});
			timer = setInterval(() => {
				if (track.readyState === "ended") {
					clearInterval(timer);
					controller.close();
					return;
				}
				if (video.readyState < 2 || video.videoWidth === 0) return;
				if ((controller.desiredSize ?? 0) <= 0) return;
				controller.enqueue(new VideoFrame(video, { timestamp: Math.round(performance.now() * 1000) }));
			}, 1000 / fps);
		},
		cancel() {
			clearInterval(timer);
			video.srcObject = null;
		},
	});
}
