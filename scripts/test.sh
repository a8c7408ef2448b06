#!/usr/bin/env bash
# The whole test suite: unit tests, the end-to-end replay tests against tshark's counts, docs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --locked --all-targets
