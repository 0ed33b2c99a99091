#!/usr/bin/env bash
# Install the reference peers used by the interop tests (rs/moq-clock/tests/interop_reference.rs):
# the public `moq-relay` from crates.io, a current release (moq-lite-05) and a 0.10.x one
# (lite-01/02 via the compat SETUP). Idempotent: a binary already present is reused.
#
#   scripts/install-peers.sh            # install every peer that is missing
#   MOQ_PEERS_DIR=/some/dir scripts/install-peers.sh
#
# Layout: ${MOQ_PEERS_DIR:-$HOME/.cache/moq-interop}/relay-<version>/bin/moq-relay, one
# install log per version next to it (install-relay-<version>.log). Prints a one-line status on
# stdout (progress and failure details on stderr); exits non-zero if any install fails.
# Peers only: never a dependency of the product.
set -uo pipefail

PEERS_DIR="${MOQ_PEERS_DIR:-$HOME/.cache/moq-interop}"

# version  cargo-install flags. 0.17.10's lock file names crate versions the registry mirror
# lacks, so it installs without --locked (~6-16 min on 2 cores); 0.10.25 needs --locked (its
# unlocked resolution picks an ed25519-dalek pre-release that does not compile).
PEERS=(
	"0.17.10 "
	"0.10.25 --locked"
)

command -v cargo >/dev/null 2>&1 || {
	echo "install-peers: cargo not found on PATH" >&2
	exit 1
}
mkdir -p "$PEERS_DIR" || exit 1

install_relay() {
	local version=$1 flags=$2
	local root="$PEERS_DIR/relay-$version"
	local bin="$root/bin/moq-relay"
	local log="$PEERS_DIR/install-relay-$version.log"

	if [[ -x $bin ]]; then
		status+=("relay-$version present")
		return 0
	fi

	# One installer per version at a time (concurrent test runs on a fresh machine).
	local lock
	exec {lock}>"$PEERS_DIR/install-relay-$version.lock" || return 1
	flock "$lock"
	if [[ -x $bin ]]; then
		exec {lock}>&-
		status+=("relay-$version present")
		return 0
	fi

	echo "install-peers: installing moq-relay $version (several minutes), log: $log" >&2
	local start=$SECONDS rc
	# shellcheck disable=SC2086 # $flags is a deliberate word list.
	nice -n 10 cargo install $flags --root "$root" "moq-relay@$version" >"$log" 2>&1
	rc=$?
	echo "rc=$rc" >>"$log"
	exec {lock}>&-

	if [[ $rc -eq 0 && -x $bin ]]; then
		status+=("relay-$version installed in $((SECONDS - start))s")
		return 0
	fi
	status+=("relay-$version FAILED (rc=$rc, log $log)")
	echo "install-peers: moq-relay $version install failed (rc=$rc), last lines of $log:" >&2
	tail -n 20 "$log" >&2
	return 1
}

status=()
failed=0
for peer in "${PEERS[@]}"; do
	read -r version flags <<<"$peer"
	install_relay "$version" "${flags:-}" || failed=1
done
joined=$(printf '%s; ' "${status[@]}")
echo "install-peers: ${joined%; } (in $PEERS_DIR)"
exit "$failed"
