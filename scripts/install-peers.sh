#!/usr/bin/env bash
# Install the reference peers used by the interop tests (rs/*/tests/interop_reference.rs): the
# public `moq-relay` from crates.io, a current release (moq-lite-05) and a 0.10.x one (lite-01/02
# via the compat SETUP), the public `moq-token` CLI (crate moq-token-cli), `moq-clock` and `moq`
# (moq-cli). Idempotent: a binary already present is reused. Also one npm peer, the public web
# player and publisher (`@moq/watch`, `@moq/publish`, js/e2e/reference-player.test.ts): installed
# with `npm ci` from js/e2e/reference/package-lock.json (exact versions, transitive ones too) and
# bundled with esbuild from js/node_modules (scripts/js-setup.sh) into one file.
#
#   scripts/install-peers.sh              # every test peer that is missing (cheap build profile)
#   scripts/install-peers.sh --optimised  # also the reference relays as their authors ship them
#                                         # (release profile), for the benchmarks
#   MOQ_PEERS_DIR=/some/dir scripts/install-peers.sh
#   PEERS_LTO=1 scripts/install-peers.sh --optimised  # also relay-lto-0.10.25: 0.10.25 built with
#                                         # our release profile (fat LTO, one codegen unit), for
#                                         # docs/performance.md's like-for-like column (~12 min)
#
# Two builds of a peer, because the tests only need the peers to be correct while the benchmarks
# need them as fast as their authors ship them:
# - test peers, `<name>-<version>/`: opt-level 1, no LTO, 256 codegen units, no debug info. These
#   build several times faster than the release profile (times in docs/testing.md) and are plenty
#   fast for the interop tests' few streams.
# - benchmark relays, `<name>-opt-<version>/` (--optimised): the crate's own release profile, used
#   by scripts/bench-relays.sh and scripts/bench-slow-link.py.
# Every install shares one cargo target directory (`$MOQ_PEERS_DIR/target`), so the dependencies
# the peers have in common (quinn, rustls, tokio, ...) compile once per profile.
#
# Layout: ${MOQ_PEERS_DIR:-$HOME/.cache/moq-interop}/<name>-<version>/bin/<binary> (e.g.
# relay-0.17.10/bin/moq-relay), one install log per peer next to it
# (install-<name>-<version>.log); the npm peer in npm-moq-watch-<v>-publish-<v>/moq-reference.js,
# reinstalled when js/e2e/reference/package-lock.json changes. Prints a one-line status on
# stdout (progress and failure details on stderr); exits non-zero if any install fails.
# Peers only: never a dependency of the product.
set -uo pipefail

PEERS_DIR="${MOQ_PEERS_DIR:-$HOME/.cache/moq-interop}"

# name  crate  version  binary  cargo-install flags. moq-relay 0.17.10's lock file names crate
# versions the registry mirror lacks, so it installs without --locked (~6-16 min on 2 cores);
# 0.10.25 needs --locked (its unlocked resolution picks an ed25519-dalek pre-release that does
# not compile). moq-token-cli 0.5.48 installs with --locked (~2 min; cargo warns that its
# crypto-bigint 0.7.5 is yanked, harmlessly). moq-clock 0.10.21 (lite-01..03) installs with
# --locked (~3 min). moq-cli 0.14.10 (lite-05; `moq import/export fmp4`) builds with only its QUIC
# backend (`noq`): the defaults add iroh, NVIDIA and LAN-cluster code we do not need.
PEERS=(
	"relay moq-relay 0.17.10 moq-relay "
	"relay moq-relay 0.10.25 moq-relay --locked"
	"token-cli moq-token-cli 0.5.48 moq-token --locked"
	"clock moq-clock 0.10.21 moq-clock --locked"
	"cli moq-cli 0.14.10 moq --no-default-features --features noq"
)

optimised=0
for arg in "$@"; do
	case $arg in
	--optimised | --optimized) optimised=1 ;;
	-h | --help)
		sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "install-peers: unknown argument $arg (see --help)" >&2
		exit 2
		;;
	esac
done

if [[ $optimised == 1 ]]; then
	PEERS+=(
		"relay-opt moq-relay 0.17.10 moq-relay "
		"relay-opt moq-relay 0.10.25 moq-relay --locked"
	)
	if [[ ${PEERS_LTO:-} == 1 ]]; then
		PEERS+=("relay-lto moq-relay 0.10.25 moq-relay --locked")
	fi
fi

command -v cargo >/dev/null 2>&1 || {
	echo "install-peers: cargo not found on PATH" >&2
	exit 1
}
mkdir -p "$PEERS_DIR" || exit 1
REPO="$(cd "$(dirname "$0")/.." && pwd)"

install_peer() {
	local name=$1 crate=$2 version=$3 binary=$4 flags=$5
	local root="$PEERS_DIR/$name-$version"
	local bin="$root/bin/$binary"
	local log="$PEERS_DIR/install-$name-$version.log"

	if [[ -x $bin ]]; then
		status+=("$name-$version present")
		return 0
	fi

	# One installer per peer at a time (concurrent test runs on a fresh machine).
	local lock
	exec {lock}>"$PEERS_DIR/install-$name-$version.lock" || return 1
	flock "$lock"
	if [[ -x $bin ]]; then
		exec {lock}>&-
		status+=("$name-$version present")
		return 0
	fi

	echo "install-peers: installing $crate $version (several minutes), log: $log" >&2
	local start=$SECONDS rc
	local profile target
	case $name in
	*-lto)
		# Our release profile (Cargo.toml's [profile.release]) applied to the peer.
		profile=(CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1)
		target="$PEERS_DIR/target/lto"
		;;
	*-opt)
		# The crate's own release profile.
		profile=()
		target="$PEERS_DIR/target/opt"
		;;
	*)
		# Cheap: correct is all the tests need.
		profile=(CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false
			CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 CARGO_PROFILE_RELEASE_DEBUG=0
			CARGO_PROFILE_RELEASE_INCREMENTAL=false)
		target="$PEERS_DIR/target/test"
		;;
	esac
	# shellcheck disable=SC2086 # $flags is a deliberate word list.
	env "${profile[@]}" nice -n 10 cargo install $flags --target-dir "$target" --root "$root" "$crate@$version" >"$log" 2>&1
	rc=$?
	echo "rc=$rc seconds=$((SECONDS - start))" >>"$log"
	exec {lock}>&-

	if [[ $rc -eq 0 && -x $bin ]]; then
		status+=("$name-$version installed in $((SECONDS - start))s")
		return 0
	fi
	status+=("$name-$version FAILED (rc=$rc, log $log)")
	echo "install-peers: $crate $version install failed (rc=$rc), last lines of $log:" >&2
	tail -n 20 "$log" >&2
	return 1
}

# The npm peer: js/e2e/reference/{package.json,package-lock.json,entry.js} copied into the cache
# directory, `npm ci` there, then esbuild bundles entry.js into moq-reference.js. The directory
# is named after the pinned versions (the test derives the same name from package.json).
install_npm_peer() {
	local src="$REPO/js/e2e/reference"
	local esbuild="$REPO/js/node_modules/.bin/esbuild"
	local versions
	versions=$(cd "$src" && node -p 'const d = require("./package.json").dependencies;
		`watch-${d["@moq/watch"]}-publish-${d["@moq/publish"]}`') || return 1
	local name="npm-moq-$versions"
	local root="$PEERS_DIR/$name"
	local bundle="$root/moq-reference.js"
	local log="$PEERS_DIR/install-$name.log"

	current() { [[ -s $bundle ]] && cmp -s "$src/package-lock.json" "$root/package-lock.json" && cmp -s "$src/entry.js" "$root/entry.js"; }
	if current; then
		status+=("$name present")
		return 0
	fi
	if [[ ! -x $esbuild ]] || ! command -v npm >/dev/null 2>&1; then
		status+=("$name FAILED (needs npm and js/node_modules: scripts/js-setup.sh)")
		echo "install-peers: $name needs npm and $esbuild (run scripts/js-setup.sh first)" >&2
		return 1
	fi

	local lock
	exec {lock}>"$PEERS_DIR/install-$name.lock" || return 1
	flock "$lock"
	if current; then
		exec {lock}>&-
		status+=("$name present")
		return 0
	fi

	echo "install-peers: installing $name (npm), log: $log" >&2
	local start=$SECONDS rc
	{
		rm -rf "$root" && mkdir -p "$root" &&
			cp "$src/package.json" "$src/package-lock.json" "$src/entry.js" "$root/" &&
			(cd "$root" && npm ci --no-audit --no-fund --loglevel=error) &&
			"$esbuild" "$root/entry.js" --bundle --format=esm --target=chrome120 --sourcemap \
				--outfile="$bundle"
	} >"$log" 2>&1
	rc=$?
	echo "rc=$rc seconds=$((SECONDS - start))" >>"$log"
	exec {lock}>&-

	if [[ $rc -eq 0 ]] && current; then
		status+=("$name installed in $((SECONDS - start))s")
		return 0
	fi
	status+=("$name FAILED (rc=$rc, log $log)")
	echo "install-peers: $name install failed (rc=$rc), last lines of $log:" >&2
	tail -n 20 "$log" >&2
	return 1
}

status=()
failed=0
for peer in "${PEERS[@]}"; do
	read -r name crate version binary flags <<<"$peer"
	install_peer "$name" "$crate" "$version" "$binary" "${flags:-}" || failed=1
done
install_npm_peer || failed=1
joined=$(printf '%s; ' "${status[@]}")
echo "install-peers: ${joined%; } (in $PEERS_DIR)"
exit "$failed"
