# Shared helpers of the benchmark scripts (bench-replay.sh, bench-query.sh, bench-veth.sh,
# compare.sh). Sourced, not run.
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

# Parses the caller's command line: bench_parse_args "NAME..." "$@". Each `--NAME VALUE` of the
# names listed sets the variable NAME to VALUE; -h or --help prints the usage and exits.
bench_parse_args() {
    local names=" $1 " name
    shift
    while (($#)); do
        case $1 in
        -h | --help) bench_usage; exit 0 ;;
        esac
        name=${1#--}
        [[ $1 == --* && $names == *" $name "* ]] || die "unknown argument: $1 (see --help)"
        (($# >= 2)) || die "$1 needs a value"
        printf -v "$name" '%s' "$2"
        shift 2
    done
}

# Installs the missing tools' Debian packages, with sudo when not root: bench_install PACKAGE...
bench_install() {
    (($#)) || return 0
    local sudo=()
    (($(id -u) == 0)) || sudo=(sudo)
    echo "installing $* ..." >&2
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
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

# Checks the summary OUT of a `flowkeep replay` with W workers against the generator's counts
# in want_packets and want_ip_bytes: bench_check_replay W OUT. Every packet and IP byte must be
# counted, and no frame malformed.
bench_check_replay() {
    local w=$1 out=$2 got_packets got_ip_bytes got_malformed
    got_packets=$(field packets "$out")
    got_ip_bytes=$(field "ip bytes" "$out")
    got_malformed=$(field malformed "$out")
    [[ $got_packets == "$want_packets" ]] ||
        die "workers $w: flowkeep counted $got_packets packets, the generator wrote $want_packets"$'\n'"$out"
    [[ $got_ip_bytes == "$want_ip_bytes" ]] ||
        die "workers $w: flowkeep counted $got_ip_bytes IP bytes, the generator wrote $want_ip_bytes"$'\n'"$out"
    [[ $got_malformed == 0 ]] ||
        die "workers $w: $got_malformed malformed frames in a capture that has none"$'\n'"$out"
}

# The benchmark capture's name in DIR for genpcap's options:
#   bench_capture_name DIR PACKETS FLOWS SEED DURATION SNAPLEN
bench_capture_name() {
    echo "$1/bench-p$2-f$3-s$4-d$5-snap$6.pcap"
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
