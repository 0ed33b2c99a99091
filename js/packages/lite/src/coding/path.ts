/**
 * Broadcast paths (spec §9): `/`-separated segments, normalised by trimming leading/trailing `/`
 * and collapsing `//`; at most {@link MAX_PATH_SEGMENTS} segments. Prefix matching is
 * segment-aware: `foo` matches `foo` and `foo/bar`, never `foobar`.
 */
import { DecodeError } from "../error.ts";
import { MAX_PATH_SEGMENTS } from "./primitives.ts";

/** Normalise a path; throws DecodeError if it has too many segments. */
export function normalizePath(path: string): string {
	const segments = path.split("/").filter((s) => s.length > 0);
	if (segments.length > MAX_PATH_SEGMENTS) {
		throw new DecodeError(`path has ${segments.length} segments (max ${MAX_PATH_SEGMENTS})`);
	}
	return segments.join("/");
}

/** Join a prefix and a suffix with exactly one `/` (empty sides skipped). */
export function joinPath(prefix: string, suffix: string): string {
	if (prefix === "") return suffix;
	if (suffix === "") return prefix;
	return `${prefix}/${suffix}`;
}

/** The suffix of `path` under `prefix` (segment-aware), or undefined if it is not under it. */
export function stripPrefix(prefix: string, path: string): string | undefined {
	if (prefix === "") return path;
	if (path === prefix) return "";
	if (path.startsWith(prefix) && path[prefix.length] === "/") return path.slice(prefix.length + 1);
	return undefined;
}
