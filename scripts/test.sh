#!/usr/bin/env bash
# The whole test suite: every benchmark run once as a smoke test, then the unit tests and the
# end-to-end tests (replay of every fixture against tshark's counts, live capture on loopback
# when root, crash recovery, retention and audit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --locked --benches
# fault-injection: tests/faults.rs needs the hook in the binary (never in a release build)
cargo test --locked --features fault-injection --lib --bins --tests
