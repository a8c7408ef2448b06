#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), one after the other,
# under `nice`, and prints per target what libFuzzer itself reports: executions, corpus
# entries and bytes, and whether it crashed (docs/FUZZING.md).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Each target starts from its committed seeds (fuzz/seeds/T, read only) and its working
# corpus (fuzz/corpus/T, where what it finds goes; not committed). A crash, timeout or
# out-of-memory input lands in fuzz/artifacts/T/; the script then exits 1.
#
# One process, one thread per target: libFuzzer's own default, the same as -jobs=1
# -workers=1 without the separate log file that -jobs writes (this script reads the output).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
shift || true
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi
logs=${FUZZ_LOGS:-$(mktemp -d)}
mkdir -p "$logs"
nice -n 19 cargo +nightly fuzz build >"$logs/build.log" 2>&1 || {
  cat "$logs/build.log" >&2
  exit 1
}
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
printf '%-13s %7s %12s %9s %12s %s\n' target cpu_s executions corpus corpus_bytes result
failed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$logs/$t.log
  start=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  rc=0
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: 2 GB is an OOM on this machine.
  # The binary itself, not `cargo fuzz run`: the CPU time is the fuzzer's alone, and a source
  # changed since the build above cannot start a rebuild in the middle of the runs.
  mkdir -p "artifacts/$t"
  nice -n 19 "target/$triple/release/$t" -artifact_prefix="artifacts/$t/" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "corpus/$t" "seeds/$t" >"$log" 2>&1 || rc=$?
  end=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  cpu=$(awk -v a="$start" -v b="$end" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", (b - a) / hz}')
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  # The last status line, e.g. "#123456 DONE cov: 812 ft: 2011 corp: 310/52Kb ...".
  corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -n 1 | cut -d' ' -f2)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="CRASHED (rc $rc, see $log and fuzz/artifacts/$t/)"
    failed=1
  fi
  printf '%-13s %7s %12s %9s %12s %s\n' "$t" "$cpu" "${execs:-?}" "${corp%%/*}" \
    "${corp#*/}" "$result"
done
echo "logs: $logs"
exit "$failed"
