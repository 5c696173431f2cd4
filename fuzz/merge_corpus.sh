#!/usr/bin/env bash
# Adds to the committed seeds (fuzz/seeds/<target>/) the inputs of the working corpus
# (fuzz/corpus/<target>/, grown by fuzz/run.sh) that reach new coverage: libFuzzer's
# -merge=1. Keeps the seed set under 2 MiB (checked at the end).
#
#   fuzz/merge_corpus.sh [TARGET...]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-python3}"
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(fuzz_table fuzz_bundle fuzz_entry fuzz_payload fuzz_snappy
                                     fuzz_slicekey fuzz_tar fuzz_writer_roundtrip fuzz_assemble)
for t in "${TARGETS[@]}"; do
  [ -d "$HERE/corpus/$t" ] || continue
  before=$(ls "$HERE/seeds/$t" | wc -l)
  if [ "$t" = fuzz_assemble ]; then
    "$PYTHON" "$HERE/fuzz_assemble.py" -merge=1 "$HERE/seeds/$t" "$HERE/corpus/$t" >/dev/null 2>&1
  else
    [ -x "$HERE/out/$t" ] || "$HERE/build.sh" "$t"
    # Table-shaped inputs: only the first 2 KiB of each, to keep the committed set small.
    case "$t" in
      fuzz_table|fuzz_bundle|fuzz_writer_roundtrip) lim=(-max_len=2048) ;;
      *) lim=() ;;
    esac
    "$HERE/out/$t" -merge=1 "${lim[@]}" "$HERE/seeds/$t" "$HERE/corpus/$t" >/dev/null 2>&1
  fi
  echo "$t: $before -> $(ls "$HERE/seeds/$t" | wc -l) seeds"
done
total=$(find "$HERE/seeds" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
echo "seed bytes: $total"
if [ "$total" -gt $((2 << 20)) ]; then
  echo "over 2 MiB: drop the largest new seeds or merge fewer targets" >&2
  exit 1
fi
