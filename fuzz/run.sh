#!/usr/bin/env bash
# Runs the fuzz targets for a bounded time each, two at a time (one per core).
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# Targets: the libFuzzer binaries of fuzz/build.sh (built first if missing) and the
# atheris target fuzz_assemble (needs `pip install atheris` and tfckpt importable).
# Each target starts from the committed seeds (fuzz/seeds/<target>) plus its working
# corpus, fuzz/corpus/<target> (kept between runs, not committed; CORPUS_DIR moves it);
# findings go to fuzz/artifacts/<target>/ (ARTIFACT_DIR moves it). Logs: fuzz/logs/.
# Exit status 1 if any target found a crash, leak, timeout or out-of-memory input.
# EXTRA_ARGS are passed to every target (e.g. EXTRA_ARGS=-use_value_profile=1).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SECONDS_EACH="${1:?usage: fuzz/run.sh SECONDS [TARGET...]}"
shift
CPP_TARGETS=(fuzz_table fuzz_bundle fuzz_entry fuzz_payload fuzz_snappy fuzz_slicekey fuzz_tar
             fuzz_writer_roundtrip)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${CPP_TARGETS[@]}" fuzz_assemble)
CORPUS_DIR="${CORPUS_DIR:-$HERE/corpus}"
ARTIFACT_DIR="${ARTIFACT_DIR:-$HERE/artifacts}"
LOG_DIR="${LOG_DIR:-$HERE/logs}"
PYTHON="${PYTHON:-python3}"
JOBS="${JOBS:-2}"
mkdir -p "$CORPUS_DIR" "$ARTIFACT_DIR" "$LOG_DIR"

need_build=()
for t in "${TARGETS[@]}"; do
  [ "$t" = fuzz_assemble ] && continue
  [ -x "$HERE/out/$t" ] || need_build+=("$t")
done
if [ ${#need_build[@]} -gt 0 ]; then "$HERE/build.sh" "${need_build[@]}" || exit 2; fi

# Per-target input size limits: table-like inputs need room for a few blocks.
max_len() {
  case "$1" in
    fuzz_table|fuzz_bundle|fuzz_writer_roundtrip|fuzz_tar) echo 16384 ;;
    fuzz_snappy|fuzz_payload) echo 8192 ;;
    fuzz_assemble) echo 512 ;;
    *) echo 4096 ;;
  esac
}

run_one() {
  local t="$1"
  local corpus="$CORPUS_DIR/$t" art="$ARTIFACT_DIR/$t" log="$LOG_DIR/$t.log"
  mkdir -p "$corpus" "$art"
  # Every input a target reads is at most a few KiB, so no single allocation may
  # come near 256 MiB: a larger one is a size taken from the input unchecked.
  local common=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048
                -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$art/"
                ${EXTRA_ARGS:-})
  local start=$SECONDS
  if [ "$t" = fuzz_assemble ]; then
    FUZZ_ASSEMBLE_AS_MB=3072 "$PYTHON" "$HERE/fuzz_assemble.py" "${common[@]}" \
        "$corpus" "$HERE/seeds/$t" >"$log" 2>&1
  else
    "$HERE/out/$t" "${common[@]}" -malloc_limit_mb=256 "$corpus" "$HERE/seeds/$t" \
        >"$log" 2>&1
  fi
  local rc=$?
  local stats
  stats="$(grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log" \
           | tr '\n' ' ')"
  local cov
  cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)"
  if [ $rc -ne 0 ]; then
    echo "FAIL $t (exit $rc after $((SECONDS - start)) s): see $log and $art/"
    grep -E 'ERROR|SUMMARY|invariant|Traceback|Error' "$log" | head -5 | sed 's/^/    /'
  else
    echo "ok   $t: $cov; $stats"
  fi
  return $rc
}

failed=0
pids=()
names=()
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  pids+=($!)
  names+=("$t")
  if [ ${#pids[@]} -ge "$JOBS" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
if [ $failed -ne 0 ]; then
  echo "fuzzing found problems: inputs in $ARTIFACT_DIR"
  exit 1
fi
echo "fuzzing: no findings"
