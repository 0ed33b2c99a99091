#!/usr/bin/env bash
# Regenerate testdata/moq-lite-06-vectors.json from the reference's own Rust encoder.
#
# npm @moq/net (0.3.4, the newest) only has lite-06-wip ("moq-lite-06-wip", one-varint route
# cost, the Ordered byte, no frame bounds), which is not what moq-relay 0.17.10 speaks. So the
# vectors come from the crate the 0.17.10 relay is built on, moq-net 0.3.18, in a throw-away
# cargo project outside the repository: the crate's source is copied from the cargo registry
# with only `mod lite;` and `mod coding;` made public, so the generator can call the encoder.
# Nothing in the product depends on moq-net.
#
# Usage: scripts/lite06-vectors/gen.sh  (writes testdata/moq-lite-06-vectors.json)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${WORK:-/tmp/moq-lite06-vecgen}
src=$(ls -d ~/.cargo/registry/src/*/moq-net-0.3.18 | head -1)
[ -d "$src" ] || { echo "moq-net 0.3.18 not in the cargo registry (cargo fetch it)" >&2; exit 1; }

rm -rf "$work/moq-net" && mkdir -p "$work/gen/src"
cp -r "$src" "$work/moq-net"
sed -i 's/^mod coding;/pub mod coding;/; s/^mod lite;/pub mod lite;/' "$work/moq-net/src/lib.rs"
cp "$here/main.rs" "$work/gen/src/main.rs"
cat > "$work/gen/Cargo.toml" <<TOML
[package]
name = "lite06-vecgen"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
moq-net = { path = "../moq-net" }
serde_json = "1"
hex = "0.4"

[workspace]
TOML
cp "$src/Cargo.lock" "$work/gen/Cargo.lock" 2>/dev/null || true
cd "$work/gen"
CARGO_INCREMENTAL=0 cargo run --offline --quiet > "$repo/testdata/moq-lite-06-vectors.json"
echo "wrote $repo/testdata/moq-lite-06-vectors.json"
