#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/*.cc into fuzz/out/ with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer (UB aborts: no recovery).
#
#   fuzz/build.sh            # all targets
#   fuzz/build.sh fuzz_table # some of them
#
# Needs clang with its runtime (Debian: apt-get install clang libclang-rt-14-dev).
# With libsnappy-dev installed, fuzz_snappy is also checked against the
# reference Snappy decoder. CXX overrides the compiler; OUT the output folder.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
OUT="${OUT:-$HERE/out}"
CXX="${CXX:-}"
if [ -z "$CXX" ]; then
  for c in clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14; do
    if command -v "$c" >/dev/null 2>&1; then CXX="$c"; break; fi
  done
fi
if [ -z "$CXX" ]; then
  echo "fuzz/build.sh: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi

ALL_TARGETS=(fuzz_table fuzz_bundle fuzz_entry fuzz_payload fuzz_snappy fuzz_slicekey fuzz_tar
             fuzz_writer_roundtrip)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CXXFLAGS="-std=c++17 -O1 -g -Wall -Wextra -Wno-unused-parameter $SAN -I$ROOT/csrc -I$HERE"
# The native core, instrumented for coverage but without libFuzzer's main.
CORE=(crc32c snappy table bundle writer tar mapped_file)
mkdir -p "$OUT/obj"

SNAPPY_FLAGS=()
SNAPPY_LIBS=()
if [ -z "${TFCKPT_FUZZ_NO_REFERENCE:-}" ] && [ -f /usr/include/snappy-c.h ]; then
  SNAPPY_FLAGS=(-DTFCKPT_FUZZ_REFERENCE_SNAPPY)
  SNAPPY_LIBS=(-lsnappy)
fi

pids=()
for src in "${CORE[@]}"; do
  $CXX $CXXFLAGS -fsanitize=fuzzer-no-link -c "$ROOT/csrc/$src.cc" -o "$OUT/obj/$src.o" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

objs=()
for src in "${CORE[@]}"; do objs+=("$OUT/obj/$src.o"); done
pids=()
for t in "${TARGETS[@]}"; do
  extra=()
  libs=()
  if [ "$t" = fuzz_snappy ]; then extra=("${SNAPPY_FLAGS[@]}"); libs=("${SNAPPY_LIBS[@]}"); fi
  $CXX $CXXFLAGS -fsanitize=fuzzer "${extra[@]}" "$HERE/$t.cc" "${objs[@]}" \
      "${libs[@]}" -o "$OUT/$t" &
  pids+=($!)
  # Two at a time: the machines have two cores.
  if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
echo "built ${TARGETS[*]} with $CXX into $OUT"
