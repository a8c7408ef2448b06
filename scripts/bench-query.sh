#!/usr/bin/env bash
# One-address queries: flowkeep against nfdump over the same capture, on the same machine.
#
# Usage: scripts/bench-query.sh [options]
#
#   --pcap FILE   the capture (default /tmp/bench/bench-10m-s128.pcap)
#   --runs N      measured runs per query (env RUNS, default 3)
#   -h, --help    this text
#
# The capture is turned into flows twice, unmeasured: `nfpcapd -r FILE -w NFDIR -z` (nfdump's
# files) and `flowkeep replay FILE --store STORE -q` (release build). Four questions are then
# asked: two addresses, the busiest host (most flows, from `flowkeep stats --by host`) and a
# median one (the middle of that ranking), which flowkeep's block index narrows; and two that no
# index helps, so every record is tested: `bytes > 10000000` (almost nothing matches) and
# `proto udp and port 53` (a third of the flows match; printing them dominates). Each query is
# timed whole-process, wall clock, output in CSV to a file, median of N runs, the two tools
# round-robin:
#   nfdump -R NFDIR -q -o csv 'EXPR'
#   flowkeep query --store STORE --format csv 'EXPR'
# and the number of records each printed is shown next to its time. The counts differ: the
# tools cut flows differently (nfpcapd's and flowkeep's timeouts), which is why the record
# counts are printed, not compared. flowkeep's `--explain` line for the blocks read is shown.
# Temporary directories are removed on exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bench_name=bench-query
# shellcheck source=scripts/lib-bench.sh
. "$root/scripts/lib-bench.sh"

runs=${RUNS:-3}
pcap=/tmp/bench/bench-10m-s128.pcap
bench_parse_args "pcap runs" "$@"
[[ -s $pcap ]] || die "no capture at $pcap (make one with scripts/bench-replay.sh, or pass --pcap)"
{ command -v nfpcapd && command -v nfdump; } >/dev/null || die "nfpcapd and nfdump are needed (apt-get install nfdump)"

(cd "$root" && cargo build --release --quiet)
fk=$root/target/release/flowkeep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "preparing: nfpcapd and flowkeep replay of $pcap (not measured) ..." >&2
mkdir "$tmp/nf"
nfpcapd -r "$pcap" -w "$tmp/nf" -z >"$tmp/nfpcapd.out" 2>&1 || die "nfpcapd failed: $(tail -5 "$tmp/nfpcapd.out")"
"$fk" replay "$pcap" --store "$tmp/store" -q >"$tmp/replay.out" || die "flowkeep replay failed"

"$fk" stats --store "$tmp/store" --by host --order flows --top 0 --format csv >"$tmp/hosts.csv"
hosts=$(($(wc -l <"$tmp/hosts.csv") - 1))
busiest=$(awk -F, 'NR == 2 { print $3 }' "$tmp/hosts.csv")
middle=$(awk -F, -v m=$((hosts / 2 + 1)) 'NR == m + 1 { print $3 }' "$tmp/hosts.csv")

nf_query() { nfdump -R "$tmp/nf" -q -o csv "$1" >"$tmp/out.nf"; }
fk_query() { "$fk" query --store "$tmp/store" --format csv "$1" >"$tmp/out.fk"; }

echo "capture   $pcap"
echo "flows     nfdump $(nfdump -R "$tmp/nf" -I | awk '/^Flows:/ { print $2 }'), flowkeep $(field "flows written" "$(cat "$tmp/replay.out")") ($hosts hosts)"
echo "versions  $(nfdump -V 2>&1 | head -1), flowkeep $("$fk" --version | awk '{ print $2 }') (release)"
printf '%-34s %10s %10s %12s %12s\n' query "nfdump s" "flowkeep s" "nfdump recs" "flowkeep recs"
# Two one-address queries the block index narrows, and two the index cannot help (every
# record tested; both tools' syntax is the same for these).
for a in "host $busiest" "host $middle" "bytes > 10000000" "proto udp and port 53"; do
    nf_query "$a"
    fk_query "$a" # page cache warm for both
    nf_t=() fk_t=()
    for ((r = 0; r < runs; r++)); do
        s=$EPOCHREALTIME; nf_query "$a"; e=$EPOCHREALTIME; nf_t+=("$(elapsed "$s" "$e")")
        s=$EPOCHREALTIME; fk_query "$a"; e=$EPOCHREALTIME; fk_t+=("$(elapsed "$s" "$e")")
    done
    nf_n=$(grep -c '^[0-9]' "$tmp/out.nf" || true)
    fk_n=$(($(wc -l <"$tmp/out.fk") - 1))
    printf '%-34s %10s %10s %12s %12s\n' "$a" \
        "$(printf '%s\n' "${nf_t[@]}" | median)" "$(printf '%s\n' "${fk_t[@]}" | median)" "$nf_n" "$fk_n"
    "$fk" query --store "$tmp/store" --format csv --explain "$a" 2>&1 >/dev/null | grep 'explain: blocks' | sed 's/^/    flowkeep /'
done
