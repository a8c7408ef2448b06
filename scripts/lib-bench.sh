# Shared helpers of the benchmark scripts (bench-replay.sh, compare.sh). Sourced, not run.
#
# The caller sets `bench_name` (prefix of error messages) before sourcing, and `root` (the
# repository) before calling bench_ensure_capture.

# Prints the caller's usage header: the comment block from line 2 to `set -euo pipefail`.
bench_usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

die() {
    echo "${bench_name:-bench}: $*" >&2
    exit 1
}

# The value of a summary line such as "ip bytes       123" (the last word; the key is the rest).
field() {
    awk -v key="$1" '{ v = $NF; $NF = ""; sub(/ +$/, ""); if ($0 == key) print v }' <<<"$2"
}

# Median of the numbers on stdin, one a line.
median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# One top-level value of a genpcap JSON summary: bench_json FILE KEY.
bench_json() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# Makes the capture PCAP and its JSON summary SUMMARY with genpcap.py unless both exist:
#   bench_ensure_capture PCAP SUMMARY PACKETS FLOWS SEED DURATION SNAPLEN
# The summary is written last, so a capture without one is treated as incomplete and made again.
bench_ensure_capture() {
    local pcap=$1 summary=$2 packets=$3 flows=$4 seed=$5 duration=$6 snaplen=$7
    [[ -s $pcap && -s $summary ]] && return 0
    local genpcap=${GENPCAP:-} g
    if [[ -z $genpcap ]]; then
        for g in "$root/../shared/bench/genpcap.py" "$root/../../shared/bench/genpcap.py"; do
            [[ -f $g ]] && genpcap=$g && break
        done
    fi
    [[ -n $genpcap && -f $genpcap ]] || die "genpcap.py not found; set GENPCAP=/path/to/genpcap.py"
    echo "generating $pcap ($packets packets, $flows flows, seed $seed) ..." >&2
    rm -f "$summary"
    python3 "$genpcap" --packets "$packets" --flows "$flows" --seed "$seed" \
        --duration "$duration" --snaplen "$snaplen" --out "$pcap" --summary "$summary.tmp" 2>/dev/null
    mv "$summary.tmp" "$summary"
}

# Seconds between two $EPOCHREALTIME values, to the millisecond.
elapsed() {
    awk -v s="$1" -v e="$2" 'BEGIN { printf "%.3f\n", e - s }'
}
