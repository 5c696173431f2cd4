"""Exports fuzzing seeds from REAL TensorFlow checkpoints into fuzz/seeds/<target>/.

    python fuzz/make_seeds.py                 # builds the test corpus with TensorFlow
    python fuzz/make_seeds.py --corpus DIR    # reuses a corpus built by tests/tf_corpus.py
    python fuzz/make_seeds.py --out DIR       # somewhere else than fuzz/seeds

Seeds are small pieces of the corpus checkpoints (tests/tf_corpus.py): index files,
BundleEntryProto values, string and variant payloads, slice keys, Snappy streams of real
index bytes, and tables rebuilt from real entries with small blocks; each laid out as its
target reads its input (see the comment at the top of each fuzz/*.cc and fuzz_assemble.py).
The committed set is what CI fuzzes from, so CI needs no TensorFlow. Re-running this
script replaces the seed folders; names are content hashes, so the result is stable.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import hashlib
import pathlib
import shutil
import struct
import sys
import tempfile
from typing import Dict, List, Optional

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

MAX_INDEX = 64 << 10  # bigger index files are left out (the big_key_count case)
MAX_PAYLOAD = 16 << 10
MAX_TOTAL = 2 << 20

TARGETS = [
    "fuzz_table",
    "fuzz_bundle",
    "fuzz_entry",
    "fuzz_payload",
    "fuzz_snappy",
    "fuzz_slicekey",
    "fuzz_tar",
    "fuzz_writer_roundtrip",
    "fuzz_assemble",
]


def u8(v: int) -> bytes:
    return struct.pack("<B", v & 0xFF)


def u16(v: int) -> bytes:
    return struct.pack("<H", v & 0xFFFF)


def u32(v: int) -> bytes:
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def field(b: bytes, wide: bool = False) -> Optional[bytes]:
    """fuzz_common.h Cursor::Bytes: a length (u8, or u16 when wide) and the bytes."""
    if len(b) > (0xFFFF if wide else 0xFF):
        return None
    return (u16(len(b)) if wide else u8(len(b))) + b


class _Snappy:
    """The reference compressor through libsnappy's C API, when it is installed."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("snappy")
        self.lib = ctypes.CDLL(name) if name else None

    def compress(self, data: bytes) -> Optional[bytes]:
        if self.lib is None:
            return None
        cap = self.lib.snappy_max_compressed_length(ctypes.c_size_t(len(data)))
        out = ctypes.create_string_buffer(cap)
        n = ctypes.c_size_t(cap)
        if self.lib.snappy_compress(data, ctypes.c_size_t(len(data)), out, ctypes.byref(n)) != 0:
            return None
        return out.raw[: n.value]


def _index_files(corpus: Dict[str, object]) -> Dict[str, pathlib.Path]:
    out = {}
    for name, case in sorted(corpus.items()):
        prefix = pathlib.Path(case.prefix)
        index = prefix.with_name(prefix.name + ".index")
        if case.kind == "v1":
            out[name] = prefix  # a V1 file is one table
        elif index.exists():
            out[name] = index
    return out


def collect(corpus: Dict[str, object]) -> Dict[str, Dict[str, bytes]]:
    import craft

    import tfckpt
    from tfckpt import _native

    seeds: Dict[str, Dict[str, bytes]] = {t: {} for t in TARGETS}

    def add(target: str, data: Optional[bytes], label: str) -> None:
        if data is None:
            return
        name = f"{label}-{hashlib.sha1(data).hexdigest()[:12]}"
        seeds[target].setdefault(name, data)

    snappy = _Snappy()
    tables = {}  # case name -> list of (key, value) including the header
    for name, path in _index_files(corpus).items():
        data = path.read_bytes()
        if len(data) > MAX_INDEX:
            continue
        add("fuzz_table", data, name)
        items = _native.read_table(data, str(path))
        tables[name] = items
        if corpus[name].kind != "v1":
            add("fuzz_bundle", data, name)

    for name, items in tables.items():
        # The same entries in small blocks: many data blocks, restarts and shared prefixes.
        small = _native.build_table(items, 128, 4)
        add("fuzz_table", small, name + "-small-blocks")
        if corpus[name].kind != "v1":
            add("fuzz_bundle", small, name + "-small-blocks")
        # Snappy-compressed data blocks, as early writers made them.
        comp = snappy.compress(craft.simple_block(items)) if items else None
        if comp is not None:
            t = craft.assemble([(comp, 1)])
            add("fuzz_table", t, name + "-snappy")
            if corpus[name].kind != "v1":
                add("fuzz_bundle", t, name + "-snappy")
        # The writer round trip: the real keys and values with a few block settings.
        for flags, block_size, interval in ((2, 64, 1), (2, 256, 16), (3, 0, 16)):
            body = b""
            for k, v in items:
                fk, fv = field(k), field(v, wide=True)
                if fk is None or fv is None:
                    continue
                body += fk + fv
            add(
                "fuzz_writer_roundtrip",
                u8(flags) + u16(block_size - 1 if block_size else 0) + u8(interval - 1) + body,
                f"{name}-b{block_size or 262144}-r{interval}",
            )

    for name, items in tables.items():
        if corpus[name].kind == "v1":
            continue
        for key, value in items[1:]:
            add("fuzz_entry", value, name)
            if key.startswith(b"\x00"):
                add("fuzz_slicekey", b"\x00" + key, name)
                dec = _native.decode_slice_key(key)
                if dec is not None and len(dec[0]) < 256:
                    n, extents = dec
                    s = u8(1) + field(n) + u8(len(extents))
                    for start, length in extents:
                        s += u64(start) + u64(length)
                    add("fuzz_slicekey", s + u64(3) + u64(-1), name + "-structured")

    # Payloads of string and variant tensors, as stored in the data files.
    for name, case in sorted(corpus.items()):
        if name not in tables or case.kind == "v1":
            continue
        try:
            r = tfckpt.open(case.prefix)
        except tfckpt.CheckpointError:
            continue
        with r:
            for key in r.raw_keys:
                e = r.entry(key)
                if e.slices or e.dtype_code not in (7, 21) or e.size > MAX_PAYLOAD:
                    continue
                payload = bytes(r.payload(e))
                if e.dtype_code == 7:
                    add("fuzz_payload", u8(0) + u32(e.num_elements) + payload, name + "-strings")
                    add(
                        "fuzz_payload",
                        u8(2) + u32(e.num_elements) + payload,
                        name + "-strings-swapped",
                    )
                else:
                    add("fuzz_payload", u8(1) + u32(e.num_elements) + payload, name + "-variants")

    # Snappy streams of real bytes (the reference compressor if present, else literals).
    samples = [("index", d) for d in list(seeds["fuzz_bundle"].values())[:6]]
    samples += [("payload", d[5:]) for d in list(seeds["fuzz_payload"].values())[:4]]
    samples += [
        ("zeros", bytes(3000)),
        ("text", b"model/dense/kernel/.ATTRIBUTES/" * 40),
        ("empty", b""),
    ]
    for label, raw in samples:
        for stream in (snappy.compress(raw), craft.snappy_literal(raw)):
            if stream is not None:
                add("fuzz_snappy", u32(len(raw)) + stream, label)
                add("fuzz_snappy", u32(0xFFFFFFFF) + stream, label + "-nolimit")

    import fuzz_assemble

    for label, data in fuzz_assemble.seed_inputs():
        add("fuzz_assemble", data, label)
    for label, data in tar_seeds(sorted(tables.items())[:2]):
        add("fuzz_tar", data, label)
    return seeds


def tar_seeds(tables=()) -> List[tuple]:
    """fuzz_tar inputs: tars in the ustar, GNU and pax formats holding every kind of member
    a listing meets, and the (small) index files of real checkpoints; flags 0 and 1."""
    import io
    import tarfile

    import craft

    out = []
    for fmt_name, fmt in (
        ("ustar", tarfile.USTAR_FORMAT),
        ("gnu", tarfile.GNU_FORMAT),
        ("pax", tarfile.PAX_FORMAT),
    ):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:

            def add(name, data=b"", **attrs):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 0
                for k, v in attrs.items():
                    setattr(info, k, v)
                t.addfile(info, io.BytesIO(data) if info.isfile() else None)

            add("run", type=tarfile.DIRTYPE)
            for case, items in tables:
                index = craft.table(items, block_size=256)
                if len(index) <= 3000:
                    add(f"run/{case}/ckpt-1.index", index)
                    add(f"run/{case}/ckpt-1.data-00000-of-00001", b"\0" * 64)
            add("./run/checkpoint", b'model_checkpoint_path: "ckpt-1"\n')
            add("p" * 110 + "/long.index", b"x" * 3)
            add("run/hard", type=tarfile.LNKTYPE, linkname="run/checkpoint")
            add("run/dangling", type=tarfile.LNKTYPE, linkname="nowhere")
            add("run/sym", type=tarfile.SYMTYPE, linkname="checkpoint")
            add("run/fifo", type=tarfile.FIFOTYPE)
            if fmt != tarfile.USTAR_FORMAT:
                add("run/longlink", type=tarfile.SYMTYPE, linkname="t" * 120)
        raw = buf.getvalue().rstrip(b"\0") + bytes(1024)
        out.append((f"tar-{fmt_name}", b"\0" + raw))
        out.append((f"tar-{fmt_name}-fixsums", b"\1" + raw))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", help="a corpus directory of tests/tf_corpus.py to reuse")
    ap.add_argument("--out", default=str(HERE / "seeds"))
    args = ap.parse_args(argv)

    import tf_corpus

    tmp = None
    if args.corpus:
        root = pathlib.Path(args.corpus)
        corpus = tf_corpus.build_corpus(root, reuse=True)
    else:
        tmp = tempfile.mkdtemp(prefix="tfckpt-seeds-")
        corpus = tf_corpus.build_corpus(pathlib.Path(tmp))
    try:
        seeds = collect(corpus)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    total = sum(len(d) for per in seeds.values() for d in per.values())
    if total > MAX_TOTAL:
        raise SystemExit(f"seed set of {total} bytes is over the {MAX_TOTAL}-byte budget")
    out = pathlib.Path(args.out)
    for target, per in seeds.items():
        d = out / target
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for name, data in sorted(per.items()):
            (d / name).write_bytes(data)
        print(f"{target:24s} {len(per):4d} seeds {sum(map(len, per.values())):8d} bytes")
    print(f"total {total} bytes in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
