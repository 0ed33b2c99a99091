/** The moq-lite wire codec: pure encode/decode over bytes, every function taking the version. */
export * from "./announce.ts";
export * from "./group.ts";
export * from "./misc.ts";
export * from "./path.ts";
export * from "./primitives.ts";
export * from "./reader.ts";
export * from "./setup.ts";
export * from "./stream.ts";
export * from "./subscribe.ts";
export * from "./track.ts";
export * from "./version.ts";
