"""Exports seeds for the differential fuzzer (fuzz/differential.py) into
fuzz/seeds/differential/.

    python fuzz/differential_seeds.py --corpus DIR   # a corpus built by tests/tf_corpus.py
    python fuzz/differential_seeds.py                # builds the corpus with TensorFlow first

Each seed is laid out as differential.one_input reads it: a selector byte, then the body.
Index files of the corpus below 64 KiB go in twice (selector 0x80: Index with CRC repair;
0x81: read_table), followed by crafted tables, string and variant payloads, Snappy streams
of real index blocks, and slice keys. Names are content hashes, so re-running gives the same
set; the folder is replaced.
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib
import random
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

import differential as D  # noqa: E402

MAX_INDEX = 64 << 10


def _index_files(corpus: pathlib.Path):
    for f in sorted(corpus.rglob("*.index")):
        if f.stat().st_size < MAX_INDEX:
            yield f


def seeds(corpus: pathlib.Path):
    """(name, bytes) of every seed."""
    rng = random.Random(0)
    for f in _index_files(corpus):
        data = f.read_bytes()
        case = f.relative_to(corpus).parts[0]
        yield f"index-{case}", b"\x80" + data
        yield f"table-{case}", b"\x81" + data
        # Snappy streams of real index bytes
        raw = data[:4096]
        stream = D.snappy_compress(raw, rng)
        yield f"snappy-{case}", b"\x04" + D.varint(len(raw)) + stream
    for i, table in enumerate(D.crafted_tables(rng)):
        yield f"index-crafted{i}", b"\x80" + table
    for i, items in enumerate([[], [b""], [b"hi", b"x"], [b"a" * 300, b"\x00\xff"]]):
        for swap in (False, True):
            yield (
                f"strings-{i}-{int(swap)}",
                b"\x02"
                + bytes([2 | int(swap)])
                + D.varint(len(items))
                + D.string_payload(items, swap),
            )
    for i, items in enumerate([[], [b""], [b"\x0a\x03abc", b"\x12\x01z"]]):
        yield f"variants-{i}", b"\x03\x02" + D.varint(len(items)) + D.variant_payload(items)
    for i, extents in enumerate(
        [[], [(0, -1)], [(0, 3), (0, 3)], [(3, 2), (0, -1)], [(2**40, 2**20)], [(-65, 64)]]
    ):
        yield f"slicekey-{i}", b"\x05" + D.slice_key(b"scope/pv\x00\xff", extents)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=pathlib.Path, help="a corpus built by tests/tf_corpus.py")
    ap.add_argument("--out", type=pathlib.Path, default=HERE / "seeds" / "differential")
    args = ap.parse_args(argv)
    corpus = args.corpus
    if corpus is None:
        import tf_corpus

        corpus = pathlib.Path(tempfile.mkdtemp(prefix="tfckpt-corpus-"))
        tf_corpus.build_corpus(corpus)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    total = count = 0
    for name, data in seeds(corpus):
        digest = hashlib.sha1(data).hexdigest()[:12]
        (args.out / f"{name}-{digest}").write_bytes(data)
        total += len(data)
        count += 1
    print(f"{count} seeds, {total} bytes in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
