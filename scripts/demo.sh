#!/usr/bin/env bash
# Quick start: build flowkeep, replay a bundled capture into a store, print the flows back.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked --quiet
store=${STORE:-/tmp/flowkeep-demo}
rm -rf "$store"
./target/release/flowkeep replay fixtures/pcaps/nDPI__iphone.pcap --store "$store"
./target/release/flowkeep query --store "$store" --format table
