#!/usr/bin/env bash
# Builds the Debian package (cargo-deb; the layout is [package.metadata.deb] in Cargo.toml):
# the release binary, then the man pages and shell completions it generates from its own
# argument definitions, then the .deb. Prints the package's path on the last line.
#
#   scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --locked --release
bin=target/release/flowkeep
extra=target/deb-extra
rm -rf "$extra"
mkdir -p "$extra/completions"
# --no-config: the pages and scripts must not depend on this machine's settings file.
"$bin" --no-config man --out "$extra/man" >/dev/null
"$bin" --no-config completions bash >"$extra/completions/flowkeep.bash"
"$bin" --no-config completions zsh >"$extra/completions/_flowkeep"
"$bin" --no-config completions fish >"$extra/completions/flowkeep.fish"
# --strip: the package ships the binary without its line tables (a fifth of the size).
cargo deb --locked --no-build --strip --quiet | tail -n 1
