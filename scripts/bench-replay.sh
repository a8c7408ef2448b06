#!/usr/bin/env bash
# Full-path replay benchmark: capture file → reader → workers → store, in packets per second.
#
# Usage: scripts/bench-replay.sh [options]
#
#   --packets N      packets in the generated capture     (env PACKETS,  default 10000000)
#   --flows N        concurrent flows                      (env FLOWS,    default 100000)
#   --seed S         generator seed                        (env SEED,     default 1)
#   --duration SEC   capture duration in packet time       (env DURATION, default 60)
#   --snaplen BYTES  captured bytes per frame              (env SNAPLEN,  default 128)
#   --runs N         measured runs per worker count        (env RUNS,     default 5)
#   --workers "L"    worker counts to measure              (env WORKERS,  default "1 2 4")
#   --dir DIR        where captures and stores go          (env BENCH_DIR, default /tmp/flowkeep-bench)
#   --pcap FILE      use (or generate) this capture instead of the default name in DIR
#                    (env PCAP); its generator summary is FILE with .json instead of .pcap
#   --baseline BIN   also time this flowkeep binary (an older build), run by run interleaved
#                    with this tree's, so both see the same machine (env BASELINE)
#   -h, --help       this text
#
# The capture is made by genpcap.py (see shared/bench/README.md; env GENPCAP overrides its path)
# when it or its JSON summary is missing, and is deterministic: same options, same file. The
# summary is written last, so a capture without one is treated as incomplete and made again.
#
# For each worker count the script runs `flowkeep replay FILE --store STORE --workers N -q` once
# unmeasured (page cache, CPU frequency), then RUNS times into a fresh store, and prints the median
# wall-clock seconds, packets/s, the store size and bytes per flow record. Every run must report
# exactly the generator's `packets` and `ip_bytes`, and no malformed frames; otherwise it fails.
#
# Examples:
#   scripts/bench-replay.sh                                   # the 10 M packet benchmark
#   PACKETS=2000000 FLOWS=20000 scripts/bench-replay.sh       # a quicker 2 M packet one
#   scripts/bench-replay.sh --pcap /tmp/bench/bench-2m-s128.pcap --flows 20000 --runs 3
#   git worktree add /tmp/old v0.1 && (cd /tmp/old && cargo build --release) &&
#     scripts/bench-replay.sh --baseline /tmp/old/target/release/flowkeep --workers 2
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

packets=${PACKETS:-10000000}
flows=${FLOWS:-100000}
seed=${SEED:-1}
duration=${DURATION:-60}
snaplen=${SNAPLEN:-128}
runs=${RUNS:-5}
workers=${WORKERS:-"1 2 4"}
dir=${BENCH_DIR:-/tmp/flowkeep-bench}
pcap=${PCAP:-}
baseline=${BASELINE:-}

bench_name=bench-replay
# shellcheck source=scripts/lib-bench.sh
. "$root/scripts/lib-bench.sh"

bench_parse_args "packets flows seed duration snaplen runs workers dir pcap baseline" "$@"

for n in "$packets" "$flows" "$seed" "$duration" "$snaplen" "$runs"; do
    [[ $n =~ ^[0-9]+$ ]] || die "expected a whole number, got '$n'"
done
((runs >= 1)) || die "--runs must be at least 1"

mkdir -p "$dir"
if [[ -z $pcap ]]; then
    pcap=$(bench_capture_name "$dir" "$packets" "$flows" "$seed" "$duration" "$snaplen")
fi
summary=${pcap%.pcap}.json

# --- the capture -------------------------------------------------------------------------------
bench_ensure_capture "$pcap" "$summary" "$packets" "$flows" "$seed" "$duration" "$snaplen"
want_packets=$(bench_json "$summary" packets)
want_ip_bytes=$(bench_json "$summary" ip_bytes)

# --- the binary ----------------------------------------------------------------------------------
(cd "$root" && cargo build --release --quiet)
flowkeep=$root/target/release/flowkeep

# --- helpers -------------------------------------------------------------------------------------
# Runs one replay into a fresh store; prints its wall-clock seconds, checks its counts, and keeps
# flowkeep's summary in $last_out (it runs in a subshell, so a variable would not survive).
replay() {
    local w=$1 store=$2 bin=${3:-$flowkeep} out start end
    rm -rf "$store" "$last_out"
    start=$EPOCHREALTIME
    out=$("$bin" replay "$pcap" --store "$store" --workers "$w" -q) ||
        die "flowkeep replay failed (workers $w):"$'\n'"$out"
    end=$EPOCHREALTIME
    bench_check_replay "$w" "$out"
    printf '%s\n' "$out" >"$last_out"
    elapsed "$start" "$end"
}

# --- the runs ------------------------------------------------------------------------------------
echo "machine  $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "capture  $pcap"
echo "         $want_packets packets, $want_ip_bytes IP bytes, $(stat -c %s "$pcap") file bytes"
echo "flowkeep $flowkeep ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown))"
if [[ -n $baseline ]]; then
    [[ -x $baseline ]] || die "--baseline $baseline: not an executable"
    echo "baseline $baseline (its runs interleaved with this tree's)"
fi
echo "runs     $runs per worker count, after one unmeasured run; wall-clock seconds"
echo
printf '%-8s %10s %10s %10s %12s %12s %13s %10s\n' \
    workers "median s" "min s" "max s" "packets/s" "flows" "store bytes" "B/record"

store=$dir/store
last_out=$dir/last-replay.txt
# One table row: row LABEL WORKERS FLOWS_WRITTEN STORE_BYTES TIMES...
row() {
    local label=$1 w=$2 f=$3 b=$4 med min max
    shift 4
    med=$(printf '%s\n' "$@" | median)
    min=$(printf '%s\n' "$@" | sort -g | head -1)
    max=$(printf '%s\n' "$@" | sort -g | tail -1)
    awk -v w="$label" -v med="$med" -v min="$min" -v max="$max" -v p="$want_packets" \
        -v f="$f" -v b="$b" 'BEGIN {
            printf "%-8s %10.3f %10.3f %10.3f %12.0f %12s %13s %10.1f\n",
                w, med, min, max, p / med, f, b, (f > 0 ? b / f : 0)
        }'
}
for w in $workers; do
    [[ $w =~ ^[1-9][0-9]*$ ]] || die "bad worker count '$w'"
    replay "$w" "$store" >/dev/null
    [[ -n $baseline ]] && replay "$w" "$store" "$baseline" >/dev/null
    times=()
    base_times=()
    for ((r = 0; r < runs; r++)); do
        times+=("$(replay "$w" "$store")")
        flows_written=$(field "flows written" "$(cat "$last_out")")
        bytes=$(du -sb "$store" | cut -f1)
        if [[ -n $baseline ]]; then
            base_times+=("$(replay "$w" "$store" "$baseline")")
            base_flows=$(field "flows written" "$(cat "$last_out")")
            base_bytes=$(du -sb "$store" | cut -f1)
        fi
    done
    row "$w" "$w" "$flows_written" "$bytes" "${times[@]}"
    [[ -n $baseline ]] && row "$w base" "$w" "$base_flows" "$base_bytes" "${base_times[@]}"
done
rm -rf "$store" "$last_out"
