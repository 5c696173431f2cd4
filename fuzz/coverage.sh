#!/usr/bin/env bash
# Line coverage of csrc/ reached by each libFuzzer target's inputs (the committed seeds,
# plus the working corpus of fuzz/run.sh when there is one), with clang's source-based
# coverage: a summary per target, and the merged report over all targets.
#
#   fuzz/coverage.sh [TARGET...]       # HTML too with HTML=1 (into fuzz/out-cov/html)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
OUT="$HERE/out-cov"
CXX="${CXX:-clang++}"
LLVM_PROFDATA="${LLVM_PROFDATA:-$(command -v llvm-profdata || command -v llvm-profdata-14)}"
LLVM_COV="${LLVM_COV:-$(command -v llvm-cov || command -v llvm-cov-14)}"
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(fuzz_table fuzz_bundle fuzz_entry fuzz_payload fuzz_snappy
                                     fuzz_slicekey fuzz_tar fuzz_writer_roundtrip)
mkdir -p "$OUT"
FLAGS="-std=c++17 -O1 -g -fprofile-instr-generate -fcoverage-mapping -I$ROOT/csrc -I$HERE"
SRCS=()
for s in crc32c snappy table bundle writer tar; do SRCS+=("$ROOT/csrc/$s.cc"); done
profiles=()
objects=()
for t in "${TARGETS[@]}"; do
  extra=()
  [ "$t" = fuzz_snappy ] && [ -f /usr/include/snappy-c.h ] && extra=(-DTFCKPT_FUZZ_REFERENCE_SNAPPY -lsnappy)
  $CXX $FLAGS -fsanitize=fuzzer "$HERE/$t.cc" "${SRCS[@]}" "${extra[@]}" -o "$OUT/$t"
  dirs=("$HERE/seeds/$t")
  [ -d "$HERE/corpus/$t" ] && dirs+=("$HERE/corpus/$t")
  LLVM_PROFILE_FILE="$OUT/$t.profraw" "$OUT/$t" -runs=0 "${dirs[@]}" >/dev/null 2>&1
  "$LLVM_PROFDATA" merge -sparse "$OUT/$t.profraw" -o "$OUT/$t.profdata"
  echo "== $t"
  "$LLVM_COV" report "$OUT/$t" -instr-profile="$OUT/$t.profdata" "${SRCS[@]}" | tail -n +1 \
    | grep -v '^---' | sed "s|$ROOT/||"
  profiles+=("$OUT/$t.profdata")
  objects+=(-object "$OUT/$t")
done
"$LLVM_PROFDATA" merge -sparse "${profiles[@]}" -o "$OUT/all.profdata"
echo "== all targets together"
first="${objects[1]}"
"$LLVM_COV" report "$first" "${objects[@]:2}" -instr-profile="$OUT/all.profdata" "${SRCS[@]}" \
  | grep -v '^---' | sed "s|$ROOT/||"
if [ -n "${HTML:-}" ]; then
  "$LLVM_COV" show "$first" "${objects[@]:2}" -instr-profile="$OUT/all.profdata" \
    -format=html -output-dir="$OUT/html" "${SRCS[@]}"
  echo "HTML report: $OUT/html/index.html"
fi
