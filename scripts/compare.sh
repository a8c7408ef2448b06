#!/usr/bin/env bash
# flowkeep against other tools: the same capture, the same machine, one run.
#
# Usage: scripts/compare.sh [options]
#
#   --pcap FILE      the capture (default: the benchmark capture in DIR, made like
#                    scripts/bench-replay.sh makes it when missing: 10 M packets, 100 k flows)
#   --summary FILE   the generator's JSON summary of FILE (default: FILE with .json for .pcap,
#                    when it exists)
#   --runs N         measured runs per tool (env RUNS, default 5)
#   --dir DIR        where the default capture lives (env BENCH_DIR, default /tmp/flowkeep-bench)
#   --before BIN     also time BIN (a flowkeep binary built at an earlier commit) in the same
#                    round-robin, with the default worker count and --workers 2: the
#                    before/after of a change in one run
#   -h, --help       this text
#
# Each of these is timed whole-process, wall clock, and the median of N runs is printed:
#   tcpdump -r FILE -w /dev/null             the libpcap read floor (every ratio's denominator
#                                            "x floor")
#   pcap_next_ex loop                        a C loop that only counts packets (built with
#                                            `cc -O2 -lpcap` in a temporary directory; skipped
#                                            when there is no compiler or no pcap.h)
#   nfpcapd -r FILE -w DIR -z                nfdump's pcap-to-flow converter, into a fresh DIR;
#                                            its totals are read back with `nfdump -R DIR -I`
#   softflowd -d -6 -c none -r FILE          softflowd's statistics-only mode: tracks flows
#                                            (IPv6 too, default -m 8192 flow table), exports
#                                            nothing, prints its totals at the end. `-c none`
#                                            is needed: with a control socket softflowd 1.1.0
#                                            blocks in accept() before reading the file
#   flowkeep replay FILE --store S -q        release build, fresh store each run; with the
#                                            default worker count and --workers 1 and 2
# The file is read once unmeasured first (page cache). Runs go round-robin (run 1 of every
# tool, then run 2, ...), so a burst of load from elsewhere spreads over all tools.
#
# The table gives median seconds, packets per second (the capture's packet count / median),
# the ratio of packets per second to nfpcapd's and to tcpdump's, and the packets and IP bytes
# each tool accounted for where it reports them. With a summary, every flowkeep run must report
# exactly its `packets` and `ip_bytes` and no malformed frames, or the script fails; other
# tools' counts that differ are marked with `!`.
#
# Missing tools are installed from Debian's packages (tcpdump nfdump softflowd), with sudo
# when not root. Temporary directories are removed on exit.
#
# Examples:
#   scripts/compare.sh --runs 3
#   scripts/compare.sh --pcap /tmp/bench/bench-2m-s128.pcap --runs 3
#   scripts/compare.sh --runs 5 --before /tmp/flowkeep-5580f5e
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bench_name=compare
# shellcheck source=scripts/lib-bench.sh
. "$root/scripts/lib-bench.sh"

runs=${RUNS:-5}
dir=${BENCH_DIR:-/tmp/flowkeep-bench}
pcap=
summary=

before=
bench_parse_args "pcap summary runs dir before" "$@"
[[ -z $before || -x $before ]] || die "--before: $before is not an executable"
[[ $runs =~ ^[0-9]+$ ]] && ((runs >= 1)) || die "--runs must be a whole number, at least 1"

# --- the capture -------------------------------------------------------------------------------
if [[ -z $pcap ]]; then
    mkdir -p "$dir"
    pcap=$(bench_capture_name "$dir" 10000000 100000 1 60 128)
    summary=${pcap%.pcap}.json
    bench_ensure_capture "$pcap" "$summary" 10000000 100000 1 60 128
fi
[[ -s $pcap ]] || die "no capture at $pcap"
if [[ -z $summary && -s ${pcap%.pcap}.json ]]; then
    summary=${pcap%.pcap}.json
fi
want_packets=
want_ip_bytes=
if [[ -n $summary ]]; then
    [[ -s $summary ]] || die "no summary at $summary"
    want_packets=$(bench_json "$summary" packets)
    want_ip_bytes=$(bench_json "$summary" ip_bytes)
fi

# --- the tools -----------------------------------------------------------------------------------
missing=()
command -v tcpdump >/dev/null || missing+=(tcpdump)
{ command -v nfpcapd && command -v nfdump; } >/dev/null || missing+=(nfdump)
command -v softflowd >/dev/null || [[ -x /usr/sbin/softflowd ]] || missing+=(softflowd)
bench_install "${missing[@]}"
export PATH=$PATH:/usr/sbin:/sbin

tmp=$(mktemp -d "${TMPDIR:-/tmp}/flowkeep-compare.XXXXXX")
cleanup() {
    local pid
    for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The counting loop: optional, so a failed build only skips it.
counter=
cat >"$tmp/count.c" <<'EOF'
#include <pcap.h>
#include <stdio.h>

int main(int argc, char **argv) {
    char err[PCAP_ERRBUF_SIZE];
    struct pcap_pkthdr *h;
    const u_char *data;
    unsigned long long n = 0;
    int r;
    pcap_t *p;
    if (argc != 2) return 2;
    p = pcap_open_offline(argv[1], err);
    if (!p) { fprintf(stderr, "%s\n", err); return 1; }
    while ((r = pcap_next_ex(p, &h, &data)) == 1) n++;
    if (r == PCAP_ERROR) { fprintf(stderr, "%s\n", pcap_geterr(p)); return 1; }
    printf("%llu\n", n);
    return 0;
}
EOF
if cc -O2 -o "$tmp/count" "$tmp/count.c" -lpcap 2>"$tmp/count.err"; then
    counter=$tmp/count
else
    echo "compare: skipping the pcap_next_ex loop (cc -O2 -lpcap failed: $(head -1 "$tmp/count.err"))" >&2
fi

(cd "$root" && cargo build --release --quiet)
flowkeep=$root/target/release/flowkeep
default_workers=$(nproc) # pipeline::default_workers: one per core

# --- one run of each tool ----------------------------------------------------------------------
# Each prints "SECONDS PACKETS IP_BYTES" ("-" where the tool reports no such count) and fails on
# the tool's failure. The work directory is made fresh before the clock starts.

run_tcpdump() {
    local start end
    start=$EPOCHREALTIME
    tcpdump -r "$pcap" -w /dev/null 2>"$tmp/tcpdump.err" || die "tcpdump failed: $(cat "$tmp/tcpdump.err")"
    end=$EPOCHREALTIME
    echo "$(elapsed "$start" "$end") - -"
}

run_counter() {
    local start end n
    start=$EPOCHREALTIME
    n=$("$counter" "$pcap") || die "the pcap_next_ex loop failed"
    end=$EPOCHREALTIME
    echo "$(elapsed "$start" "$end") $n -"
}

run_nfpcapd() {
    local start end info
    rm -rf "$tmp/nf" && mkdir "$tmp/nf"
    start=$EPOCHREALTIME
    nfpcapd -r "$pcap" -w "$tmp/nf" -z >"$tmp/nfpcapd.out" 2>&1 ||
        die "nfpcapd failed:"$'\n'"$(tail -20 "$tmp/nfpcapd.out")"
    end=$EPOCHREALTIME
    # -R reads every file nfpcapd rotated to in the directory.
    info=$(nfdump -R "$tmp/nf" -I) || die "nfdump -R $tmp/nf -I failed"
    echo "$(elapsed "$start" "$end") $(awk '$1 == "Packets:" { print $2 }' <<<"$info") $(awk '$1 == "Bytes:" { print $2 }' <<<"$info")"
}

run_softflowd() {
    local start end
    start=$EPOCHREALTIME
    softflowd -d -6 -c none -p "$tmp/softflowd.pid" -r "$pcap" >"$tmp/softflowd.out" 2>&1 ||
        die "softflowd failed:"$'\n'"$(tail -20 "$tmp/softflowd.out")"
    end=$EPOCHREALTIME
    # "Packets processed" leaves out what it ignored (non-IP, too short); both are counted.
    echo "$(elapsed "$start" "$end") $(awk '
        /^Packets processed:/ { p = $3 }
        /^Ignored packets:/ { i = $3 }
        END { print p + i }' "$tmp/softflowd.out") -"
}

run_flowkeep() {
    local w=$1 bin=${2:-$flowkeep} start end out args=()
    [[ $w == default ]] || args=(--workers "$w")
    rm -rf "$tmp/store"
    start=$EPOCHREALTIME
    out=$("$bin" replay "$pcap" --store "$tmp/store" "${args[@]}" -q) ||
        die "flowkeep replay failed (workers $w):"$'\n'"$out"
    end=$EPOCHREALTIME
    [[ -z $want_packets ]] || bench_check_replay "$w" "$out"
    echo "$(elapsed "$start" "$end") $(field packets "$out") $(field "ip bytes" "$out")"
}

names=("tcpdump -r -w /dev/null")
cmds=(run_tcpdump)
if [[ -n $counter ]]; then
    names+=("pcap_next_ex loop")
    cmds+=(run_counter)
fi
names+=("nfpcapd -z" "softflowd (statistics)"
    "flowkeep (default: $default_workers)" "flowkeep --workers 1" "flowkeep --workers 2")
cmds+=(run_nfpcapd run_softflowd "run_flowkeep default" "run_flowkeep 1" "run_flowkeep 2")
if [[ -n $before ]]; then
    names+=("before (default: $default_workers)" "before --workers 2")
    cmds+=("run_flowkeep default $before" "run_flowkeep 2 $before")
fi

# --- the runs ------------------------------------------------------------------------------------
echo "machine   $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(free -h | awk '/^Mem:/ { print $2 }') memory"
echo "capture   $pcap ($(stat -c %s "$pcap") bytes)"
if [[ -n $summary ]]; then
    echo "summary   $summary: $want_packets packets, $want_ip_bytes IP bytes"
fi
echo "versions  $(tcpdump --version 2>&1 | head -1), $(nfpcapd -V 2>&1 | sed -n 's/.*Version: *\([^ ]*\).*/nfdump \1/p' | head -1)," \
    "$(softflowd -h 2>&1 | sed -n 's/.*This is softflowd version \([^.]*\.[^.]*\.[^. ]*\).*/softflowd \1/p')," \
    "flowkeep $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "runs      $runs per tool, round-robin, after one unmeasured read of the file; wall-clock seconds"
echo "load      before: $(cut -d' ' -f1-3 /proc/loadavg)"

cat "$pcap" >/dev/null

declare -A times counts bytes
for ((r = 0; r < runs; r++)); do
    for i in "${!cmds[@]}"; do
        read -r t p b < <(${cmds[$i]}) || die "${names[$i]}: no result"
        [[ $t =~ ^[0-9.]+$ ]] || die "${names[$i]}: run failed"
        times[$i]+="$t "
        counts[$i]=$p
        bytes[$i]=$b
    done
done
echo "load      after:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# The packet count behind packets per second: the summary's, else that of the second tool (the
# counting loop, or nfpcapd when the loop was skipped).
total=${want_packets:-${counts[1]}}

declare -A med
for i in "${!cmds[@]}"; do
    # shellcheck disable=SC2086 # the list of times is split on purpose
    med[$i]=$(printf '%s\n' ${times[$i]} | median)
done
floor=${med[0]}
for i in "${!cmds[@]}"; do
    [[ ${cmds[$i]} == run_nfpcapd ]] && nf=${med[$i]}
done

mark() { # a count, with "!" when a summary says otherwise
    local got=$1 want=$2
    if [[ $got == - ]]; then echo -; elif [[ -n $want && $got != "$want" ]]; then echo "$got!"; else echo "$got"; fi
}

printf '%-26s %9s %12s %10s %9s %12s %14s\n' tool "median s" "packets/s" "x nfpcapd" "x floor" packets "IP bytes"
for i in "${!cmds[@]}"; do
    awk -v n="${names[$i]}" -v m="${med[$i]}" -v p="$total" -v nf="$nf" -v fl="$floor" \
        -v c="$(mark "${counts[$i]}" "$want_packets")" -v b="$(mark "${bytes[$i]}" "$want_ip_bytes")" 'BEGIN {
            printf "%-26s %9.3f %12.0f %10.2f %9.2f %12s %14s\n", n, m, p / m, nf / m, fl / m, c, b
        }'
done
echo
echo "per-run seconds:"
for i in "${!cmds[@]}"; do
    printf '  %-26s %s\n' "${names[$i]}" "${times[$i]}"
done
