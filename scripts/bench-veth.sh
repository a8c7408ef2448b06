#!/usr/bin/env bash
# Live capture on a virtual wire: flowkeep (fanout and single reader) against nfpcapd (nfdump)
# and softflowd, with one sender, in one run: the highest rate each stores with zero loss.
#
# Usage: scripts/bench-veth.sh [options]        (root only: namespaces, veth, packet sockets)
#
#   --pcap FILE      what is sent (default /tmp/bench/bench-10m-s128.pcap, made with
#                    shared/bench/genpcap.py when missing: 10 M packets, 100 k flows, snaplen
#                    128, so every frame is at most 128 bytes)
#   --limit N        send only the first N frames (default 2000000)
#   --rates LIST     comma-separated frames/s, or `max` (as fast as the sender goes); default
#                    max,250000,500000,1000000
#   --search N       after the rates, bisect N times per tool between the highest zero-loss rate
#                    and the lowest lossy one (default 4; 0 turns it off)
#   --tools LIST     any of none,flowkeep,flowkeep-single,nfpcapd,softflowd (default all; `none`
#                    captures nothing: the sender and the wire alone). flowkeep is
#                    `--fanout on` (a ring per worker), flowkeep-single `--fanout off`
#   --buffer MB      every tool's kernel capture buffer, in total (flowkeep --buffer, split over
#                    its rings; nfpcapd -b; softflowd -B); default 64
#   --workers N      flowkeep --workers (default: its own, one per core)
#   --settle S       seconds a tool gets to finish what its ring holds after the sender ends,
#                    before it is stopped (default 2)
#   --flowkeep BIN   the flowkeep binary (default target/release/flowkeep, built when missing)
#   -h, --help       this text
#
# The sender is examples/wiresend.rs (built when missing): the capture held in memory and
# handed to the kernel 256 frames per sendmmsg(2), paced to the rate asked. tcpreplay, one
# send(2) per frame, reached about 0.4 M frames/s on the benchmark machine.
#
# A network namespace and a veth pair are made for the run (the far end in the namespace, IPv6
# off, MTU 65535, so only sent frames cross). For every rate, each tool in turn captures on the
# near end while the sender sends through the far end:
#   flowkeep capture -i IF --store DIR         frames read and kernel/interface drops from its
#                                              summary (SIGINT: drains the rings, then exits)
#   nfpcapd -i IF -w DIR                       packets from `nfdump -R DIR -I` after SIGTERM
#   softflowd -d -i IF -n 127.0.0.1:PORT       `softflowctl statistics` (libpcap's received and
#                                              dropped) before SIGTERM; the export goes to a
#                                              port nobody listens on
# A frame "arrived" when the near end's veth counted it received (frames the wire itself drops
# never reach a packet socket; the count is printed when there are any). Per pass it prints the
# rate reached, frames arrived, what the tool's capture received (libpcap's count, where the
# tool reports it), what it accounted for, the drops it reported, its loss (arrived - accounted)
# and the CPU the tool's process used per arrived frame, user and system (from /proc/PID/stat,
# 10 ms ticks), and the whole machine's busy CPU per arrived frame over the send and the settle
# time ("all", from /proc/stat). The kernel's delivery of each frame into the rings runs in the
# sender's softirq and is charged to the sender, not the tool: a tool's whole cost per frame,
# the kernel's part included, is its "all" less the `none` row's at the same rate.
# softflowd 1.1.0 leaves a few frames of the benchmark capture out of both "processed" and
# "ignored" (322 of the first 200 000, at any rate, with no drop), so its loss is judged by
# libpcap's counts: zero when it received every frame that arrived and dropped none.
#
# Missing tools are installed from Debian's packages (nfdump softflowd iproute2).
# Everything made is removed on exit.
#
# Examples:
#   scripts/bench-veth.sh
#   scripts/bench-veth.sh --rates max --tools flowkeep,flowkeep-single --buffer 256 --search 0
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bench_name=bench-veth
# shellcheck source=scripts/lib-bench.sh
. "$root/scripts/lib-bench.sh"

pcap=/tmp/bench/bench-10m-s128.pcap
limit=2000000
rates=max,250000,500000,1000000
search=4
tools=none,flowkeep,flowkeep-single,nfpcapd,softflowd
buffer=64
workers=
settle=2
flowkeep=$root/target/release/flowkeep

bench_parse_args "pcap limit rates search tools buffer workers settle flowkeep" "$@"
[[ $(id -u) == 0 ]] || die "needs root (network namespaces, veth, packet sockets)"
[[ $limit =~ ^[1-9][0-9]*$ ]] || die "--limit: expected a positive number"
[[ $buffer =~ ^[1-9][0-9]*$ ]] || die "--buffer: expected MiB as a number"
[[ $search =~ ^[0-9]+$ ]] || die "--search: expected a number"

missing=()
{ command -v nfpcapd && command -v nfdump; } >/dev/null || missing+=(nfdump)
{ command -v softflowd && command -v softflowctl; } >/dev/null || missing+=(softflowd)
command -v ip >/dev/null || missing+=(iproute2)
bench_install "${missing[@]}"

if [[ $pcap == /tmp/bench/bench-10m-s128.pcap ]]; then
    mkdir -p /tmp/bench
    bench_ensure_capture "$pcap" "${pcap%.pcap}.json" 10000000 100000 1 60 128
fi
[[ -s $pcap ]] || die "no capture at $pcap"
if [[ ! -x $flowkeep ]]; then
    echo "building flowkeep (release) ..." >&2
    (cd "$root" && cargo build --release -q)
fi
sender=$root/target/release/examples/wiresend
if [[ ! -x $sender ]]; then
    echo "building the sender (examples/wiresend.rs) ..." >&2
    (cd "$root" && cargo build --release -q --example wiresend)
fi

tmp=$(mktemp -d /tmp/bench-veth.XXXXXX)
chmod 755 "$tmp"
tag=$$
ns=fkbench$tag
out_if=fkbo$tag
in_if=fkbi$tag
tool_pid=
cleanup() {
    [[ -n $tool_pid ]] && kill -TERM "$tool_pid" 2>/dev/null && wait "$tool_pid" 2>/dev/null
    ip link del "$out_if" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$ns"
ip link add "$out_if" mtu 65535 type veth peer name "$in_if" mtu 65535
ip link set "$in_if" netns "$ns"
sysctl -q -w "net.ipv6.conf.$out_if.disable_ipv6=1"
ip netns exec "$ns" sysctl -q -w "net.ipv6.conf.$in_if.disable_ipv6=1"
ip link set "$out_if" up
ip netns exec "$ns" ip link set "$in_if" up

rx_packets() { cat "/sys/class/net/$out_if/statistics/rx_packets"; }
wire_dropped() { ip netns exec "$ns" cat "/sys/class/net/$in_if/statistics/tx_dropped"; }

# Sends at rate $1 (frames/s or max); prints "ARRIVED PPS WIRE_DROPPED".
send() {
    local pps=$1 before after dropped_before out
    [[ $pps == max ]] && pps=0
    before=$(rx_packets)
    dropped_before=$(wire_dropped)
    out=$(ip netns exec "$ns" "$sender" --interface "$in_if" --pps "$pps" --limit "$limit" "$pcap") ||
        die "the sender failed: $out"
    after=$(rx_packets)
    # "sent N frames in S s (R frames/s); E refused"
    local secs
    secs=$(awk '{ print $5 }' <<<"$out")
    echo "$((after - before)) $(awk -v n=$((after - before)) -v s="$secs" 'BEGIN { printf "%d", n / s }') $(($(wire_dropped) - dropped_before))"
}

# Clock ticks every CPU of the machine has been busy (all but idle and iowait).
busy_ticks() {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# Clock ticks (user, system) the process $1 has used, all its threads.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat"
}

# Starts tool $1 capturing on the near end (its pid in tool_pid).
start_tool() {
    rm -rf "$tmp/run" && mkdir "$tmp/run" && chmod 777 "$tmp/run"
    case $1 in
    none)
        sleep 1000000 &
        tool_pid=$!
        return 0
        ;;
    flowkeep | flowkeep-single)
        local args=(--user nobody --buffer "${buffer}M")
        [[ $1 == flowkeep ]] && args+=(--fanout on) || args+=(--fanout off)
        [[ -n $workers ]] && args+=(--workers "$workers")
        mkdir "$tmp/run/store" && chown nobody "$tmp/run/store"
        "$flowkeep" capture -i "$out_if" --store "$tmp/run/store" "${args[@]}" \
            >"$tmp/run/out" 2>"$tmp/run/err" &
        tool_pid=$!
        # Ready once it says so: the rings are open before that line.
        for _ in $(seq 100); do
            grep -qs "capturing on" "$tmp/run/err" && return 0
            kill -0 "$tool_pid" 2>/dev/null || die "flowkeep failed:"$'\n'"$(cat "$tmp/run/err")"
            sleep 0.1
        done
        die "flowkeep did not start"
        ;;
    nfpcapd)
        mkdir "$tmp/run/nf"
        nfpcapd -i "$out_if" -w "$tmp/run/nf" -b "$buffer" >"$tmp/run/out" 2>&1 &
        tool_pid=$!
        ;;
    softflowd)
        softflowd -d -6 -i "$out_if" -n 127.0.0.1:9 -c "$tmp/run/ctl" -p "$tmp/run/pid" \
            -B $((buffer << 20)) >"$tmp/run/out" 2>&1 &
        tool_pid=$!
        ;;
    esac
    # nfpcapd and softflowd print nothing when ready: give them a second to open the ring.
    sleep 1
    kill -0 "$tool_pid" 2>/dev/null || die "$1 failed:"$'\n'"$(cat "$tmp/run/out")"
}

# Stops the tool and writes "RECEIVED ACCOUNTED DROPS USER_TICKS SYS_TICKS" to $tmp/counted
# (DROPS: what the tool says its capture lost; RECEIVED: - where the tool does not say).
# Runs in this shell: the tool is its child, to wait for.
stop_tool() {
    local accounted drops received ticks
    ticks=$(cpu_ticks "$tool_pid")
    case $1 in
    none)
        kill -TERM "$tool_pid"
        wait "$tool_pid" 2>/dev/null || true
        received=-
        accounted=-
        drops=-
        ;;
    flowkeep | flowkeep-single)
        kill -INT "$tool_pid"
        wait "$tool_pid" || die "flowkeep failed:"$'\n'"$(tail -20 "$tmp/run/err")"
        local out
        out=$(cat "$tmp/run/out")
        accounted=$(field packets "$out")
        received=$(awk '$1 == "kernel" { gsub(/,/, ""); print $3 }' <<<"$out")
        drops=$(awk '$1 == "kernel" { gsub(/,/, ""); print $5 + $8 }' <<<"$out")
        ;;
    nfpcapd)
        kill -TERM "$tool_pid"
        wait "$tool_pid" || true
        local info
        info=$(nfdump -R "$tmp/run/nf" -I 2>/dev/null) || die "nfdump -R -I failed"
        accounted=$(awk '$1 == "Packets:" { s += $2 } END { print s + 0 }' <<<"$info")
        # nfpcapd logs libpcap's counters to syslog only: not available here.
        received=-
        drops=-
        ;;
    softflowd)
        local stats
        stats=$(softflowctl -c "$tmp/run/ctl" statistics) || die "softflowctl failed"
        kill -TERM "$tool_pid"
        wait "$tool_pid" 2>/dev/null || true
        accounted=$(awk '
            /^Packets processed:/ { p = $3 }
            /^Ignored packets:/ { i = $3 }
            END { print p + i }' <<<"$stats")
        received=$(awk '/^Packets received by libpcap:/ { print $NF }' <<<"$stats")
        drops=$(awk '/^Packets dropped by/ { s += $NF } END { print s + 0 }' <<<"$stats")
        ;;
    esac
    tool_pid=
    echo "$received $accounted $drops $ticks" >"$tmp/counted"
}

# Whether a pass lost nothing: $1 tool, then arrived received accounted drops.
lossless() {
    local tool=$1 arrived=$2 received=$3 accounted=$4 drops=$5
    case $tool in
    none) true ;;
    softflowd) [[ $received == "$arrived" && $drops == 0 ]] ;;
    *) [[ $accounted == "$arrived" && ($drops == - || $drops == 0) ]] ;;
    esac
}

hz=$(getconf CLK_TCK)
declare -A best worst
# One pass: tool $1 at rate $2. Prints a row; records the rate in best/worst.
pass() {
    local tool=$1 rate=$2 arrived pps wire received accounted drops user sys all lost verdict
    start_tool "$tool"
    local t0 b0 b1
    t0=$(cpu_ticks "$tool_pid")
    b0=$(busy_ticks)
    read -r arrived pps wire < <(send "$rate")
    sleep "$settle"
    b1=$(busy_ticks)
    stop_tool "$tool"
    read -r received accounted drops user sys <"$tmp/counted"
    read -r user0 sys0 <<<"$t0"
    user=$(awk -v t=$((user - user0)) -v n="$arrived" -v hz="$hz" 'BEGIN { printf "%.0f", t * 1e9 / hz / n }')
    sys=$(awk -v t=$((sys - sys0)) -v n="$arrived" -v hz="$hz" 'BEGIN { printf "%.0f", t * 1e9 / hz / n }')
    all=$(awk -v t=$((b1 - b0)) -v n="$arrived" -v hz="$hz" 'BEGIN { printf "%.0f", t * 1e9 / hz / n }')
    if [[ $tool == none ]]; then
        lost=-
    elif [[ $tool == softflowd ]]; then
        lost=$((arrived - received + drops))
    else
        lost=$((arrived - accounted))
    fi
    if lossless "$tool" "$arrived" "$received" "$accounted" "$drops"; then
        verdict=ok
        ((pps > ${best[$tool]:-0})) && best[$tool]=$pps
    else
        verdict=LOSS
        ((pps < ${worst[$tool]:-999999999})) && worst[$tool]=$pps
    fi
    printf '%-9s %-16s %10s %10s %10s %10s %9s %9s %8s %7s %7s %7s %s\n' "$rate" "$tool" "$pps" "$arrived" \
        "$received" "$accounted" "$drops" "$lost" \
        "$([[ $lost == - ]] && echo - || awk -v l="$lost" -v s="$arrived" 'BEGIN { printf "%.3f", 100 * l / s }')" \
        "$user" "$sys" "$all" "$verdict${wire:+$([[ $wire != 0 ]] && echo " (wire dropped $wire)")}"
}

echo "capture   $pcap (first $limit frames)"
echo "machine   $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -r)"
echo "buffers   $buffer MiB for every tool (flowkeep: in total over its rings)"
echo "cpu       per arrived frame, ns: the tool's process (user, sys) and the whole machine busy"
echo "          while sending and settling (all: sender, softirq, tool); $hz ticks/s"
printf '%-9s %-16s %10s %10s %10s %10s %9s %9s %8s %7s %7s %7s %s\n' rate tool "sent pps" arrived received \
    accounted drops lost "loss %" "usr ns" "sys ns" "all ns" verdict
IFS=, read -ra rate_list <<<"$rates"
IFS=, read -ra tool_list <<<"$tools"
for rate in "${rate_list[@]}"; do
    [[ $rate == max || $rate =~ ^[1-9][0-9]*$ ]] || die "--rates: '$rate' is neither max nor frames/s"
    for tool in "${tool_list[@]}"; do
        pass "$tool" "$rate"
    done
done
# Narrow the gap between each tool's highest lossless rate and its lowest lossy one.
for tool in "${tool_list[@]}"; do
    [[ $tool == none ]] && continue
    for ((i = 0; i < search; i++)); do
        [[ -n ${worst[$tool]:-} ]] || break
        lo=${best[$tool]:-0}
        hi=${worst[$tool]}
        ((hi - lo > hi / 20)) || break
        pass "$tool" $(((lo + hi) / 2))
    done
done
echo
echo "highest rate stored with zero loss (frames/s; '>=' when the sender's own maximum was lossless)"
for tool in "${tool_list[@]}"; do
    [[ $tool == none ]] && continue
    if [[ -z ${worst[$tool]:-} ]]; then
        printf '  %-16s >= %s\n' "$tool" "${best[$tool]:-0}"
    else
        printf '  %-16s %s (lost frames at %s)\n' "$tool" "${best[$tool]:-0}" "${worst[$tool]}"
    fi
done
