#!/usr/bin/env bash
# Filtered holds: what adding one costs over a 30-day store, and what standing forward holds
# cost replay.
#
# Usage: scripts/bench-holds.sh [options]
#
#   --dir DIR       where captures are made and kept (default /tmp/flowkeep-bench)
#   --runs N        replay runs per configuration (env RUNS, default 3)
#   --busiest 1     hold the ten busiest clients instead of ten around the median
#   --packets N     packets of the 60-second replay capture (default 2000000; flows N/100)
#   -h, --help      this text
#
# 1. A 30-day capture (genpcap.py: 2 M packets, 20 000 flows, spread evenly over 30 days) is
#    replayed into a store with hourly partitions (720 of them). One client address (the
#    median of `stats --by host`'s ranking of 10.0.0.0/8 hosts) is held over the whole 30
#    days with `hold add --filter "host A" --explain`: the wall time and the --explain line
#    (segments, blocks read and skipped by time and address summary) are printed.
# 2. Replay of the 2 M-packet (--packets) 60-second benchmark capture into a store with 0, 1 and 10
#    standing forward holds (`--until open`, each `host` of a different client: ten around the
#    median of the ranking, or the ten busiest with --busiest 1), round-robin,
#    median of N runs: packets/s for each, and the holds' copies' record counts.
# Release build; temporary stores are removed on exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bench_name=bench-holds
# shellcheck source=scripts/lib-bench.sh
. "$root/scripts/lib-bench.sh"

dir=/tmp/flowkeep-bench
runs=${RUNS:-3}
busiest=0
packets=2000000
bench_parse_args "dir runs busiest packets" "$@"
mkdir -p "$dir"
(cd "$root" && cargo build --release --quiet)
fk=$root/target/release/flowkeep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

month=$(bench_capture_name "$dir" 2000000 20000 1 2592000 128)
bench_ensure_capture "$month" "$month.json" 2000000 20000 1 2592000 128
minute=$(bench_capture_name "$dir" "$packets" "$((packets / 100))" 1 60 128)
bench_ensure_capture "$minute" "$minute.json" "$packets" "$((packets / 100))" 1 60 128

echo "machine: $(nproc) cores, $(awk '/model name/ { sub(/.*: /, ""); print; exit }' /proc/cpuinfo)"
echo
echo "== one-address hold over a 30-day store"
"$fk" replay -q --store "$tmp/month" --partition 1h "$month" >/dev/null
"$fk" info --store "$tmp/month" | grep -E '^(segments|records|first record|last record)'
hosts=$("$fk" stats --store "$tmp/month" --by host --top 0 --format jsonl 'net 10.0.0.0/8' |
    python3 -c 'import json, sys; print("\n".join(json.loads(l)["key"] for l in sys.stdin))' |
    grep '^10\.')
n=$(wc -l <<<"$hosts")
addr=$(sed -n "$(((n + 1) / 2))p" <<<"$hosts")
echo "held address: $addr (median of $n clients by flows)"
start=$EPOCHREALTIME
"$fk" hold add --store "$tmp/month" --name ONE --from 2026-01-01T00:00:00Z --until open \
    --filter "host $addr" --explain
end=$EPOCHREALTIME
echo "hold add: $(elapsed "$start" "$end") s wall"
echo

echo "== replay with standing forward holds ($runs runs each, round-robin, median)"
# Subscribers, as preservation requests name them: the ten clients around the median, or with
# --busiest, the ten with the most flows (in every block: nothing can be skipped).
if [[ ${busiest:-} == 1 ]]; then
    mapfile -t clients < <(head -10 <<<"$hosts")
else
    mapfile -t clients < <(sed -n "$(((n + 1) / 2 - 5)),+9p" <<<"$hosts")
fi
echo "held clients: ${clients[*]}"
declare -A rates
for ((r = 0; r < runs; r++)); do
    for holds in 0 1 10; do
        s=$tmp/fw-$holds
        rm -rf "$s"
        # A store to hold the holds: one tiny fixture capture of 2020.
        "$fk" replay -q --store "$s" "$root/fixtures/pcaps/nDPI__iphone.pcap" >/dev/null
        for ((i = 0; i < holds; i++)); do
            "$fk" hold add --store "$s" --name "FW-$i" --from 2026-01-01T00:00:00Z --until open \
                --filter "host ${clients[$i]}" >/dev/null 2>&1
        done
        out=$("$fk" replay --store "$s" "$minute" 2>/dev/null)
        rates[$holds]+="$(field packets/s "$out")"$'\n'
        if ((r == 0 && holds > 0)); then
            kept=$("$fk" query --store "$s" --hold FW-0 --format csv | tail -n +2 | wc -l)
            echo "holds $holds: FW-0 keeps $kept records"
        fi
    done
done
for holds in 0 1 10; do
    printf 'holds %2d: %s packets/s\n' "$holds" "$(sed '/^$/d' <<<"${rates[$holds]}" | median)"
done
