#!/usr/bin/env bash
# Runs every libFuzzer harness of build/fuzz (make fuzz) for FUZZ_SECONDS each, starting from its
# checked-in corpus (tests/fuzz/corpus/<name>/, never written to here) and printing per harness the
# executions run and whether it found anything. `scripts/fuzz.sh merge` (make fuzz-merge) then adds
# the inputs that cover new code to the checked-in corpus.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=build/fuzz
SECONDS_EACH=${FUZZ_SECONDS:-120}
HARNESSES=(${FUZZ_HARNESSES:-sse protocol markdown transcript identity config request_head})
mode=${1:-run}

mkdir -p "$BUILD/work" "$BUILD/artifacts" "$BUILD/logs"
summary="$BUILD/summary.md"
status=0

if [ "$mode" = merge ]; then
  for h in "${HARNESSES[@]}"; do
    [ -d "$BUILD/work/$h" ] || continue
    echo "==== merge $h: new coverage from $BUILD/work/$h into tests/fuzz/corpus/$h ===="
    before=$(ls "tests/fuzz/corpus/$h" | wc -l)
    "$BUILD/tests/fuzz/${h}_fuzz" -merge=1 -max_len=4096 "tests/fuzz/corpus/$h" "$BUILD/work/$h" \
      >"$BUILD/logs/$h.merge.log" 2>&1 || status=1
    echo "$h: $before -> $(ls "tests/fuzz/corpus/$h" | wc -l) files"
  done
  exit $status
fi

{
  echo "| harness | seconds | executions | exec/s | corpus | result |"
  echo "|---|---|---|---|---|---|"
} >"$summary"
for h in "${HARNESSES[@]}"; do
  bin="$BUILD/tests/fuzz/${h}_fuzz"
  work="$BUILD/work/$h"
  rm -rf "$BUILD/artifacts/$h"  # this run's findings only
  mkdir -p "$work" "$BUILD/artifacts/$h"
  echo "==== fuzz $h for ${SECONDS_EACH}s ===="
  # New inputs go to the first directory ($work); the checked-in corpus is only read.
  "$bin" -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/$h/" "$work" "tests/fuzz/corpus/$h" >"$BUILD/logs/$h.log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$BUILD/logs/$h.log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$BUILD/logs/$h.log" | grep -o '[0-9]*$' | tail -1)
  corpus=$(ls "$work" | wc -l)
  artifacts=$(ls "$BUILD/artifacts/$h" 2>/dev/null | tr '\n' ' ')
  if [ "$rc" = 0 ] && [ -z "$artifacts" ]; then
    result="nothing found"
  else
    result="FOUND (exit $rc): ${artifacts:-see $BUILD/logs/$h.log}"
    status=1
    grep -m3 -E 'ERROR|fuzz property failed|runtime error' "$BUILD/logs/$h.log" | sed 's/^/    /'
  fi
  echo "$h: ${execs:-?} executions (${rate:-?}/s), $result"
  echo "| $h | $SECONDS_EACH | ${execs:-?} | ${rate:-?} | $corpus | $result |" >>"$summary"
done
echo "==== summary ($summary) ===="
cat "$summary"
exit $status
