"""Regression inputs found by fuzzing, and resource limits on hostile files.

Every file under ``tests/regressions/<target>/`` is an input of the fuzz target ``<target>``
(``fuzz/<target>.cc`` or ``fuzz/fuzz_assemble.py``) that once crashed, hung, failed an
invariant or exhausted memory. Each is replayed here through the PYTHON API
(``tfckpt._native``, ``tfckpt.Reader``), with the input split exactly as the C++ target
splits it (``Cursor`` mirrors ``fuzz/fuzz_common.h``): the invariants the target asserts
must hold, and the target's main call on the input (``observe_<target>``: the table read,
the index opened, the entry parsed, the payload decoded, the tensor assembled ...) must end
exactly as ``tests/regressions/<target>.json`` records it for that file: ``{"outcome":
"ok", "value": ...}`` (a short summary of what came back) or ``{"outcome": "error",
"class": "CorruptCheckpointError", "message": "a fragment of the message"}``. A new
regression input needs its line there; the failure message of ``test_regression_file``
shows what the input gave. No clang is needed; ``fuzz/build.sh`` binaries replay the same
files (``fuzz/out/<target> FILE``), which ``.ci/fuzz`` does when they are built.

Replays and the hostile files run in ONE child process with RLIMIT_AS = 1 GiB (not under
AddressSanitizer, which reserves terabytes of address space) and a timeout; the child
prints a line before and after each case, so a crash names its input.
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import struct
import subprocess
import sys
import tempfile
from typing import Dict, List

import pytest

TESTS_DIR = pathlib.Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent
REGRESSIONS = TESTS_DIR / "regressions"
FUZZ_DIR = ROOT / "fuzz"
AS_LIMIT = 1 << 30
CHILD_TIMEOUT = 300
CPP_TARGETS = [
    "fuzz_table",
    "fuzz_bundle",
    "fuzz_entry",
    "fuzz_payload",
    "fuzz_snappy",
    "fuzz_slicekey",
    "fuzz_tar",
    "fuzz_writer_roundtrip",
]
TARGETS = CPP_TARGETS + ["fuzz_assemble"]


def regression_files() -> List[pathlib.Path]:
    return sorted(p for p in REGRESSIONS.glob("*/*") if p.is_file() and p.parent.name in TARGETS)


def _under_asan() -> bool:
    return "libasan" in os.environ.get("LD_PRELOAD", "")


# --------------------------------------------------------------------------------------
# The replays (run in the child). Each raises AssertionError when an invariant fails and
# lets any exception other than a CheckpointError escape: both are failures.


class Cursor:
    """fuzz/fuzz_common.h Cursor: fields from the front, zeros past the end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = bytes(data), 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def uint(self, n: int) -> int:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return int.from_bytes(chunk, "little")

    def bytes_(self, wide: bool = False) -> bytes:
        n = self.uint(2 if wide else 1)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def rest(self) -> bytes:
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk


def _varint(data: bytes, pos: int, max_bytes: int = 10):
    result = 0
    for i in range(max_bytes):
        if pos >= len(data):
            return None
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return result, pos
    return None


def fix_table_checksums(data: bytes) -> bytes:
    """fuzz/fuzz_common.h FixTableChecksums: block trailer CRCs of the index block and of
    every data block the index names made right."""
    from tfckpt import _native

    buf = bytearray(data)
    if len(buf) < 48:
        return bytes(buf)
    footer = bytes(buf[-48:-8])
    handles = []
    pos = 0
    for _ in range(4):
        r = _varint(footer, pos)
        if r is None:
            return bytes(buf)
        handles.append(r[0])
        pos = r[1]
    limit = len(buf) - 48

    def fix(offset: int, size: int) -> bool:
        if offset > limit or size > limit - offset or 5 > limit - offset - size:
            return False
        crc = _native.crc32c(bytes(buf[offset : offset + size + 1]))
        buf[offset + size + 1 : offset + size + 5] = struct.pack("<I", _native.mask_crc(crc))
        return True

    fix(handles[0], handles[1])
    if not fix(handles[2], handles[3]):
        return bytes(buf)
    off, size = handles[2], handles[3]
    block = bytes(buf[off : off + size])
    if buf[off + size] == 1:
        try:
            block = _native.snappy_decompress(block, size * 24 + 64)
        except Exception:  # noqa: BLE001 - as the C++ helper, give up quietly
            return bytes(buf)
    if len(block) < 4:
        return bytes(buf)
    num_restarts = struct.unpack("<I", block[-4:])[0]
    if num_restarts > (len(block) - 4) // 4:
        return bytes(buf)
    end = len(block) - 4 - 4 * num_restarts
    p = 0
    while p < end:
        fields = []
        for _ in range(3):
            r = _varint(block[:end], p, 5)
            if r is None:
                return bytes(buf)
            fields.append(r[0] & 0xFFFFFFFF)  # a varint32 drops bits past 32 (coding.h)
            p = r[1]
        _, unshared, vlen = fields
        if unshared > end - p or vlen > end - p - unshared:
            return bytes(buf)
        p += unshared
        value = block[p : p + vlen]
        r1 = _varint(value, 0)
        r2 = _varint(value, r1[1]) if r1 else None
        if r2:
            fix(r1[0], r2[0])
        p += vlen
    return bytes(buf)


def _with_fixed_checksums(data: bytes, parse) -> None:
    import tfckpt

    try:
        parse(data)
        return
    except tfckpt.ChecksumMismatchError:
        pass
    try:
        parse(fix_table_checksums(data))
    except tfckpt.CheckpointError:
        pass


def replay_fuzz_table(data: bytes) -> None:
    from tfckpt import _native

    def parse(buf: bytes) -> None:
        items = _native.read_table(buf, "regression.index")
        keys = [k for k, _ in items]
        assert all(a < b for a, b in zip(keys, keys[1:])), "table keys out of order"

    _with_fixed_checksums(data, parse)


def replay_fuzz_bundle(data: bytes) -> None:
    import tfckpt
    from tfckpt import _native

    def parse(buf: bytes) -> None:
        index = _native.Index(buf, "regression.index")
        _ = index.header, index.table_stats
        index.listing(True)
        keys = index.raw_keys()
        assert len(keys) == len(index)
        listed = set(index.keys(hidden=False))
        for k in keys:
            assert k in index
            index.raw_value(k)
            if index.is_hidden(k):
                assert _native.decode_slice_key(k) is not None, "a hidden key is no slice key"
            try:
                index.entry(k)
            except tfckpt.CorruptCheckpointError:
                pass
        assert len(listed) <= len(keys)
        # The same bytes through the reader (no data files: reads fail cleanly).
        from tfckpt.storage import BytesStorage

        try:
            r = tfckpt.Reader(storage=BytesStorage("/regression/ckpt", {".index": buf}))
        except tfckpt.CheckpointError:
            return
        for k in r.keys():
            try:
                r.read(k)
            except tfckpt.CheckpointError:
                pass

    _with_fixed_checksums(data, parse)


def replay_fuzz_entry(data: bytes) -> None:
    import tfckpt
    from tfckpt import _native

    header = b"\x08\x01\x1a\x02\x08\x01"
    table = _native.build_table([(b"", header), (b"k", bytes(data))])
    index = _native.Index(table, "regression.index")
    row = index.listing(True)[0]
    try:
        dtype, shape, shard, offset, size, crc, slices, n = index.entry("k")
    except tfckpt.CorruptCheckpointError:
        assert row[5] is not None, "entry() failed on an entry listed without error"
        return
    assert row[5] is None
    assert len(shape) <= 254 and all(d >= 0 for d in shape)
    count = 1
    for d in shape:
        count *= d
    assert count == n < 1 << 63
    assert offset >= 0 and size >= 0 and offset + size < 1 << 63 and shard >= 0
    for s in slices:
        assert len(s) == len(shape)
        for (start, length), d in zip(s, shape):
            assert (start, length) == (0, -1) or (start >= 0 and 0 < length <= d - start)
    again = _native.serialize_entry(dtype, shape, shard, offset, size, crc, slices)
    table2 = _native.build_table([(b"", header), (b"k", again)])
    assert _native.Index(table2, "again.index").entry("k") == (
        dtype,
        shape,
        shard,
        offset,
        size,
        crc,
        slices,
        n,
    )
    # Through the reader, with a small data file: a clean error or a value.
    from tfckpt.storage import BytesStorage

    r = tfckpt.Reader(
        storage=BytesStorage(
            "/regression/ckpt", {".index": table, ".data-00000-of-00001": bytes(range(256)) * 4}
        )
    )
    try:
        r.read("k")
    except tfckpt.CheckpointError:
        pass


def replay_fuzz_payload(data: bytes) -> None:
    import tfckpt
    from tfckpt import _native

    c = Cursor(data)
    flags = c.uint(1)
    n = c.uint(4)
    if not flags & 4:
        n %= 1 << 20
    payload = c.rest()
    variants, swap = bool(flags & 1), bool(flags & 2)
    results = {}
    for verify in (True, False):
        try:
            if variants:
                results[verify] = _native.decode_variants(payload, n, verify, "fuzz/key")[0]
            else:
                results[verify] = _native.decode_strings(payload, n, swap, verify, "fuzz/key")[0]
        except tfckpt.ChecksumMismatchError:
            assert verify, "a checksum error without verification"
        except tfckpt.CheckpointError:
            pass
    for items in results.values():
        assert len(items) == n
    if True in results:
        assert results.get(False) == results[True]
    if False in results and not variants:
        assert sum(map(len, results[False])) + 4 + n <= len(payload)


def replay_fuzz_snappy(data: bytes) -> None:
    import tfckpt
    from tfckpt import _native

    c = Cursor(data)
    max_output = c.uint(4)
    stream = c.rest()
    try:
        out = _native.snappy_decompress(stream, max_output)
    except tfckpt.CorruptCheckpointError:
        return
    assert len(out) <= max_output
    declared = _varint(stream, 0, 5)
    assert declared is not None and declared[0] == len(out)


def replay_fuzz_slicekey(data: bytes) -> None:
    from tfckpt import _native

    c = Cursor(data)
    mode = c.uint(1)
    if mode & 1:
        name = c.bytes_()
        rank = c.uint(1) % 9
        extents = []
        for _ in range(rank):
            start, length = c.uint(8), c.uint(8)
            extents.append(
                (
                    start - (1 << 64) if start >> 63 else start,
                    length - (1 << 64) if length >> 63 else length,
                )
            )
        key = _native.slice_key(name, extents)
        decoded = _native.decode_slice_key(key)
        assert decoded is not None
        assert decoded[0] == name
        assert decoded[1] == [(0, -1) if ln < 0 else (s, ln) for s, ln in extents]
        assert _native.slice_key(decoded[0], decoded[1]) == key
        return
    key = c.rest()
    decoded = _native.decode_slice_key(key)
    if decoded is None:
        return
    again = _native.slice_key(decoded[0], decoded[1])
    assert len(again) <= len(key)
    assert _native.decode_slice_key(again) == decoded


def replay_fuzz_writer_roundtrip(data: bytes) -> None:
    from tfckpt import _native

    c = Cursor(data)
    flags = c.uint(1)
    block_size = c.uint(2) + 1
    if flags & 1:
        block_size = 262144
    interval = c.uint(1) + 1
    kv: Dict[bytes, bytes] = {}
    while c.remaining():
        k = c.bytes_()
        v = c.bytes_(bool(flags & 2))
        kv.setdefault(k, v)
    items = sorted(kv.items())
    table = _native.build_table(items, block_size, interval)
    assert _native.read_table(table, "roundtrip") == items


def _tar_archive(data: bytes) -> bytearray:
    c = Cursor(data)
    flags = c.uint(1)
    archive = bytearray(c.rest())
    if flags & 1:  # fuzz_tar.cc FixHeaderChecksums
        for h in range(0, len(archive) - 511, 512):
            archive[h + 148 : h + 156] = b" " * 8
            archive[h + 148 : h + 155] = b"%06o\0" % (sum(archive[h : h + 512]) & 0o777777)
            archive[h + 155] = 0x20
    return archive


def replay_fuzz_tar(data: bytes) -> None:
    from tfckpt import _native, _pycore

    archive = _tar_archive(data)
    listing = _native.tar_members(bytes(archive))
    assert listing == _pycore.tar_members(bytes(archive))
    if listing is not None:
        for name, (offset, size) in listing[0].items():
            assert name and offset % 512 == 0 and 512 <= offset <= len(archive)


def replay_fuzz_assemble(data: bytes) -> None:
    _fuzz_assemble().one_input(data)


REPLAY = {t: globals()["replay_" + t] for t in TARGETS}


# --------------------------------------------------------------------------------------
# What each input does to the target's main call: the outcome the .json files record.


def _summary(value) -> str:
    """A short, stable description of a value a target's main call returned."""
    import hashlib

    import numpy as np

    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:16]}"
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{list(value.shape)}"
    text = repr(value)
    if len(text) <= 200:
        return text
    return (
        f"{text[:120]}... ({len(text)} characters, sha256 "
        f"{hashlib.sha256(text.encode()).hexdigest()[:16]})"
    )


def observe_fuzz_table(data: bytes):
    from tfckpt import _native

    return f"{len(_native.read_table(data, 'regression.index'))} entries"


def observe_fuzz_bundle(data: bytes):
    from tfckpt import _native

    index = _native.Index(data, "regression.index")
    return f"{len(index)} keys, header {index.header!r}"


def observe_fuzz_entry(data: bytes):
    from tfckpt import _native

    header = b"\x08\x01\x1a\x02\x08\x01"
    table = _native.build_table([(b"", header), (b"k", bytes(data))])
    return _summary(_native.Index(table, "regression.index").entry("k"))


def observe_fuzz_payload(data: bytes):
    from tfckpt import _native

    c = Cursor(data)
    flags, n = c.uint(1), c.uint(4)
    if not flags & 4:
        n %= 1 << 20
    payload = c.rest()
    if flags & 1:
        items, crc = _native.decode_variants(payload, n, True, "fuzz/key")
    else:
        items, crc = _native.decode_strings(payload, n, bool(flags & 2), True, "fuzz/key")
    return f"{len(items)} items, crc {crc:08x}"


def observe_fuzz_snappy(data: bytes):
    from tfckpt import _native

    c = Cursor(data)
    max_output = c.uint(4)
    return _summary(_native.snappy_decompress(c.rest(), max_output))


def observe_fuzz_slicekey(data: bytes):
    from tfckpt import _native

    c = Cursor(data)
    if c.uint(1) & 1:
        return "encoded and decoded"  # the round trip's invariants are the whole check
    return _summary(_native.decode_slice_key(c.rest()))


def observe_fuzz_writer_roundtrip(data: bytes):
    return "round trip"  # building never fails; replay_fuzz_writer_roundtrip compares


def observe_fuzz_tar(data: bytes):
    from tfckpt import _native

    listing = _native.tar_members(bytes(_tar_archive(data)))
    if listing is None:
        return "not a tar"
    files, errors, end = listing
    return _summary((sorted(files.items()), sorted(errors.items()), end))


def observe_fuzz_assemble(data: bytes):
    """Every entry of the input's index (the slices and the partitioned tensor) read whole
    through the reader, in index order; the first error ends it."""
    import tfckpt
    from tfckpt.storage import BytesStorage

    mod = _fuzz_assemble()
    case = mod.Case(data)
    with tfckpt.Reader(storage=BytesStorage("/fuzz/ckpt", case.files)) as r:
        return ", ".join(_summary(r.read(raw)) for raw in r.raw_keys)


def _fuzz_assemble():
    import importlib.util

    mod = sys.modules.get("fuzz_assemble")
    if mod is None:
        spec = importlib.util.spec_from_file_location(
            "fuzz_assemble", FUZZ_DIR / "fuzz_assemble.py"
        )
        mod = importlib.util.module_from_spec(spec)
        sys.modules["fuzz_assemble"] = mod
        spec.loader.exec_module(mod)
    return mod


OBSERVE = {t: globals()["observe_" + t] for t in TARGETS}


def observe(target: str, data: bytes) -> dict:
    """{"outcome": "ok", "value": summary} or {"outcome": "error", "class", "message"}."""
    import tfckpt

    try:
        return {"outcome": "ok", "value": OBSERVE[target](data)}
    except tfckpt.CheckpointError as e:
        return {"outcome": "error", "class": type(e).__name__, "message": str(e)}


def expected_outcomes(target: str) -> dict:
    """tests/regressions/<target>.json: {input file name: expected outcome}."""
    path = REGRESSIONS / f"{target}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


# --------------------------------------------------------------------------------------
# Hostile files for the resource limits: each must fail cleanly (or succeed) without
# allocating more than the files justify. Built in the child, in a temporary directory.


def _hostile_cases(d: str) -> Dict[str, tuple]:
    """{name: (prefix or None, callable(prefix) -> None)}"""
    sys.path.insert(0, str(TESTS_DIR))
    import craft as C

    import tfckpt

    cases = {}

    def reader_case(name, entries, data=b"", op="read", key="x", **kw):
        prefix = C.write_bundle(d, name, entries, data, **kw)

        def run(prefix=prefix):
            r = tfckpt.open(prefix)
            r.listing(hidden=True)
            if op == "read":
                r.read(key)
            elif op == "slice":
                r.read_slice(key, (slice(0, 1),))
            elif op == "verify":
                r.verify_key(key)

        cases[name] = run

    def native_case(name, fn):
        cases[name] = fn

    G = 1 << 30
    # A float tensor of 2^40 elements whose entry is honest about the size: the data file
    # is 16 bytes, nothing is mapped or allocated for it.
    reader_case(
        "numeric_2^40_elements", [("x", C.entry(1, [1 << 40], size=4 << 40, crc=0))], bytes(16)
    )
    reader_case(
        "numeric_2^40_read_slice",
        [("x", C.entry(1, [1 << 40], size=4 << 40, crc=0))],
        bytes(16),
        op="slice",
    )
    # Strings: 2^40 elements claimed, 16 bytes stored (the count is checked against the
    # stored size before the lengths array is reserved).
    reader_case("strings_2^40_elements", [("x", C.entry(7, [1 << 40], size=16, crc=0))], bytes(16))
    reader_case(
        "strings_count_equals_size", [("x", C.entry(7, [1 << 20], size=1 << 20, crc=0))], bytes(16)
    )
    reader_case(
        "variants_2^40_elements", [("x", C.entry(21, [1 << 40], size=16, crc=0))], bytes(16)
    )
    # A string whose length varint says 2^62 bytes (length checksum right).
    check = struct.pack("<I", C.mask(C.crc32c(struct.pack("<Q", 1 << 62))))
    lengths = bytes([0x80] * 8 + [0x40]) + check
    reader_case("string_length_2^62", [("x", C.entry(7, [1], data=lengths))], lengths)
    # Partitioned tensors whose declared shapes would need gigabytes of output.
    for name, dtype, per in (
        ("partitioned_float_1GiB", 1, 4),
        ("partitioned_strings_1G", 7, 0),
        ("partitioned_variants_1G", 21, 0),
    ):
        n = G // max(per, 1)
        sk = C.slice_key("x", [(0, n)])
        reader_case(
            name,
            [
                ("x", C.entry(dtype, [n], slices=[[(0, n)]])),
                (sk, C.entry(dtype, [n], size=n * per or 64, crc=0)),
            ],
            bytes(64),
        )
        reader_case(
            name + "_verify",
            [
                ("x", C.entry(dtype, [n], slices=[[(0, n)]])),
                (sk, C.entry(dtype, [n], size=n * per or 64, crc=0)),
            ],
            bytes(64),
            op="verify",
        )
    # Many small slices that together claim a huge tensor.
    n = 1 << 36
    slices = [[(i * (n // 64), n // 64)] for i in range(64)]
    entries = [("x", C.entry(1, [n], slices=slices))]
    entries += [
        (C.slice_key("x", s), C.entry(1, [n // 64], size=4 * (n // 64), crc=0)) for s in slices
    ]
    reader_case("partitioned_64_slices_2^36", entries, bytes(64))
    # A shape whose element count overflows int64, and one with 254 dimensions of 2^31.
    reader_case("shape_overflow", [("x", C.entry(1, [1 << 62, 1 << 62]))])
    reader_case("shape_254_dims", [("x", C.entry(1, [1 << 31] * 254))])

    # Index-level bombs, straight at the native parser.
    def snappy_claim():
        # An index block whose Snappy preamble claims 4 GiB - 1.
        t = C.assemble(
            [C.simple_block([(b"", b"\x08\x01")])],
            index_block=b"\xff\xff\xff\xff\x0f" + bytes(16),
            index_type=1,
        )
        _native_index(t)

    def key_bomb():
        # Entries sharing ever longer prefixes: keys would expand quadratically.
        entries = [C.block_entry(0, b"k" * 4000, b"")]
        for _ in range(3000):
            entries.append(C.block_entry(4000, b"k", b"", unshared_len=1))
        blk = C.block(entries, [0])
        _native_index(C.assemble([blk]))

    def restart_count():
        blk = bytes(8) + struct.pack("<I", 0xFFFFFFFF)
        _native_index(C.assemble([blk]))

    def huge_handle():
        t = C.assemble([C.simple_block([(b"", b"\x08\x01")])], index_handles=[(1 << 62, 1 << 62)])
        _native_index(t)

    def group_nesting():
        # An entry that opens 100000 nested groups (field 15, wire type 3).
        value = b"\x7b" * 100000
        t = C.table([(b"", b"\x08\x01\x1a\x02\x08\x01"), (b"x", value)])
        _native_index(t)

    def snappy_repeated_entries():
        # A 1 MB Snappy data block that expands 21-fold into 7 million copies of the entry
        # (shared 0, unshared 0, value 0): 400 MB of decoded entries before the key order
        # check used to run; now the second entry stops it.
        _native_index(C.assemble([(_zero_entries_snappy(7_000_000), 1)]))

    def snappy_index_entries():
        # The same in the index block: millions of index entries before any handle is read.
        _native_index(
            C.assemble(
                [C.simple_block([(b"", b"\x08\x01")])],
                index_block=_zero_entries_snappy(7_000_000),
                index_type=1,
            )
        )

    def long_name_many_slices():
        # A 300 KB key whose entry lists 150000 (rank-0) slices: finding the hidden slice
        # keys used to encode and look up the whole 300 KB name for every slice (45 GB of
        # copying, about a minute); now the name's prefix is looked up once.
        k = 300_000
        t = C.table([(b"", b"\x08\x01\x1a\x02\x08\x01"), (b"k" * k, b"\x3a\x00" * (k // 2))])
        _native_index(t)

    for fn in (
        snappy_claim,
        key_bomb,
        restart_count,
        huge_handle,
        group_nesting,
        snappy_repeated_entries,
        snappy_index_entries,
        long_name_many_slices,
    ):
        native_case("index_" + fn.__name__, fn)
    return cases


def _zero_entries_snappy(n: int) -> bytes:
    """A raw Snappy stream of n 3-byte block entries 00 00 00 and a restart array [0]."""
    sys.path.insert(0, str(TESTS_DIR))
    import craft as C

    out = bytearray(C.varint(3 * n + 8))
    out += bytes([59 << 2]) + bytes(60)  # a literal of 60 zero bytes
    left = 3 * n - 60
    while left >= 64:  # copies of 64 bytes, 60 back: 3 bytes of stream each
        out += bytes([0x02 | (63 << 2)]) + (60).to_bytes(2, "little")
        left -= 64
    if left:
        out += bytes([(left - 1) << 2]) + bytes(left)
    out += bytes([7 << 2]) + struct.pack("<II", 0, 1)
    return bytes(out)


def _native_index(table: bytes) -> None:
    from tfckpt import _native

    idx = _native.Index(table, "hostile.index")
    idx.listing(True)
    for k in idx.raw_keys():
        idx.entry(k)


# --------------------------------------------------------------------------------------
# The child process


def child_main() -> None:
    import time
    import traceback

    import tfckpt

    job = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as d:
        hostile = _hostile_cases(d)
        todo = [("file", p) for p in job["files"]] + [("hostile", n) for n in job["hostile"]]
        for kind, name in todo:
            print("START " + name, flush=True)
            t0 = time.perf_counter()
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            error = outcome = observed = None
            try:
                if kind == "file":
                    target = pathlib.Path(name).parent.name
                    data = pathlib.Path(name).read_bytes()
                    REPLAY[target](data)
                    observed = observe(target, data)
                else:
                    hostile[name]()
                outcome = "ok"
            except tfckpt.CheckpointError as e:
                outcome = "checkpoint_error"
                error = f"{type(e).__name__}: {str(e)[:300]}"
            except BaseException as e:  # noqa: BLE001 - reported as a failure
                outcome = "failure"
                error = "".join(traceback.format_exception(e))[-3000:]
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(
                "RESULT "
                + json.dumps(
                    {
                        "name": name,
                        "outcome": outcome,
                        "error": error,
                        "observed": observed,
                        "seconds": time.perf_counter() - t0,
                        "max_rss_kb": rss,
                        "rss_growth_kb": rss - rss0,
                    }
                ),
                flush=True,
            )
    print("DONE", flush=True)


def _limits() -> None:
    if not _under_asan():
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


HOSTILE_NAMES = [
    "numeric_2^40_elements",
    "numeric_2^40_read_slice",
    "strings_2^40_elements",
    "strings_count_equals_size",
    "variants_2^40_elements",
    "string_length_2^62",
    "partitioned_float_1GiB",
    "partitioned_float_1GiB_verify",
    "partitioned_strings_1G",
    "partitioned_strings_1G_verify",
    "partitioned_variants_1G",
    "partitioned_variants_1G_verify",
    "partitioned_64_slices_2^36",
    "shape_overflow",
    "shape_254_dims",
    "index_snappy_claim",
    "index_key_bomb",
    "index_restart_count",
    "index_huge_handle",
    "index_group_nesting",
    "index_snappy_repeated_entries",
    "index_snappy_index_entries",
    "index_long_name_many_slices",
]
MAX_RSS_GROWTH_KB = 128 * 1024  # per hostile case; the files themselves are at most 1 MB


@pytest.fixture(scope="module")
def child_results():
    files = [str(p) for p in regression_files()]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    try:
        p = subprocess.run(
            [sys.executable, __file__, "child"],
            input=json.dumps({"files": files, "hostile": HOSTILE_NAMES}),
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            preexec_fn=_limits,
            env=env,
        )
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc = None
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
    records, last = {}, None
    for line in out.splitlines():
        if line.startswith("START "):
            last = line[6:]
        elif line.startswith("RESULT "):
            rec = json.loads(line[7:])
            records[rec["name"]] = rec
    return {"rc": rc, "records": records, "last": last, "stderr": err, "stdout": out}


def test_child_survived(child_results):
    r = child_results
    assert r["rc"] == 0 and r["stdout"].rstrip().endswith("DONE"), (
        f"the replay child {'timed out' if r['rc'] is None else 'exited %s' % r['rc']} "
        f"during {r['last']!r}; stderr tail: {r['stderr'][-3000:]}"
    )


def test_every_target_has_a_folder():
    # Folders exist for targets with findings; a stray folder name is a typo.
    for d in REGRESSIONS.iterdir():
        if d.is_dir():
            assert d.name in TARGETS, f"tests/regressions/{d.name} names no fuzz target"


@pytest.mark.parametrize("path", regression_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_regression_file(child_results, path):
    rec = child_results["records"].get(str(path))
    assert rec is not None, f"not replayed (child stopped during {child_results['last']!r})"
    assert rec["outcome"] in ("ok", "checkpoint_error"), rec["error"]
    # The replay swallows the errors a target expects; its invariants held: "ok".
    assert rec["outcome"] == "ok", rec["error"]
    assert rec["seconds"] < 30, f"took {rec['seconds']:.1f} s"
    got = rec["observed"]
    want = expected_outcomes(path.parent.name).get(path.name)
    assert want is not None, (
        f"tests/regressions/{path.parent.name}.json has no outcome for "
        f"{path.name}; this input gives {json.dumps(got)}"
    )
    assert got["outcome"] == want["outcome"], got
    if want["outcome"] == "ok":
        assert got == {"outcome": "ok", "value": want["value"]}
    else:
        assert got["class"] == want["class"], got
        assert want["message"] and want["message"] in got["message"], got


def test_every_recorded_outcome_has_its_input():
    for target in TARGETS:
        names = {p.name for p in regression_files() if p.parent.name == target}
        recorded = expected_outcomes(target)
        assert set(recorded) <= names, f"{target}.json: no input for {set(recorded) - names}"
        for name, want in recorded.items():
            keys = (
                {"outcome", "value"} if want["outcome"] == "ok" else {"outcome", "class", "message"}
            )
            assert set(want) == keys, (target, name, want)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_file_bounded(child_results, name):
    rec = child_results["records"].get(name)
    assert rec is not None, f"not run (child stopped during {child_results['last']!r})"
    assert rec["outcome"] in ("ok", "checkpoint_error"), rec["error"]
    assert rec["seconds"] < 5, f"took {rec['seconds']:.1f} s"
    if not _under_asan():
        assert rec["rss_growth_kb"] < MAX_RSS_GROWTH_KB, f"peak RSS grew {rec['rss_growth_kb']} KiB"


def test_hostile_files_fail_cleanly(child_results):
    # Every hostile case is refused (none of them is a readable checkpoint), but the one
    # that is only slow to list.
    for name in HOSTILE_NAMES:
        if name == "index_long_name_many_slices":
            continue
        rec = child_results["records"].get(name)
        if rec is not None and rec["outcome"] == "ok":
            pytest.fail(f"{name}: read without an error")


def test_peak_memory_of_the_child(child_results):
    # Replays and hostile files together stay far below the 1 GiB address-space limit.
    peak = max((r["max_rss_kb"] for r in child_results["records"].values()), default=0)
    if not _under_asan():
        assert peak < 600 * 1024, f"peak RSS {peak} KiB"


# The C++-only targets replay tests/regressions/ through their binaries in .ci/fuzz, which
# builds them with clang; this suite needs no compiler beyond the one that built tfckpt.


# --------------------------------------------------------------------------------------
# Bugs found while fuzzing that are not about one input file


def test_paths_that_are_not_utf8(tmp_path):
    """A checkpoint under a directory whose name is not UTF-8 opens, reads and is written
    (paths reach the native core as the bytes the OS sees; they used to be refused with
    TypeError)."""
    import numpy as np

    import tfckpt

    d = os.fsdecode(os.fsencode(str(tmp_path)) + b"/dir\xff")
    os.mkdir(d)
    prefix = os.path.join(d, "ckpt")
    tfckpt.write(prefix, {"a": np.arange(3, dtype=np.int32), "s": np.array([b"x", b"yz"])})
    with tfckpt.open(prefix) as r:
        assert r["a"].tolist() == [0, 1, 2]
        assert r["s"].tolist() == [b"x", b"yz"]
        assert r._index.name == prefix + ".index"
    with open(prefix + ".index", "r+b") as f:
        f.seek(3)
        b = f.read(1)
        f.seek(3)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(tfckpt.ChecksumMismatchError, match=r"dir\\xff"):
        tfckpt.open(prefix)


def test_string_tensor_under_a_key_that_is_not_utf8(tmp_path):
    """String and variant payload decoders take the key as bytes (a key that is not UTF-8
    used to make reading the tensor fail with TypeError)."""
    sys.path.insert(0, str(TESTS_DIR))
    import craft as C

    import tfckpt

    payload, crc = C.string_payload([b"hi", b"x"])
    prefix = C.write_bundle(
        tmp_path, "ck", [(b"caf\xe9", C.entry(7, [2], data=payload, crc=crc))], payload
    )
    with tfckpt.open(prefix) as r:
        assert r.keys() == ["caf\udce9"]
        assert r.read("caf\udce9").tolist() == [b"hi", b"x"]
        assert r.read(b"caf\xe9").tolist() == [b"hi", b"x"]


def test_snappy_literal_length_wraps_as_in_the_reference_decoder():
    """A 4-byte literal length of 0xffffffff is length-1, so 2^32 in 64 bits, but the
    reference Snappy decoder (which TensorFlow uses) adds the 1 in 32 bits: a literal of
    0 bytes. Found by fuzz_snappy differentially against libsnappy."""
    from tfckpt import _native

    assert _native.snappy_decompress(bytes.fromhex("00fcffffffff"), 5) == b""
    assert _native.snappy_decompress(bytes.fromhex("01fcffffffff0061"), 1) == b"a"
    assert _native.snappy_decompress(bytes.fromhex("02fcffffffff0061fcffffffff0062"), 2) == b"ab"


def test_shapes_numpy_cannot_hold_are_unsupported_in_every_read(tmp_path):
    """(2^62, 0) holds no element but numpy refuses it, and numpy has at most 64 dims:
    read_slice and partitioned reads used to let numpy's ValueError escape."""
    sys.path.insert(0, str(TESTS_DIR))
    import craft as C

    import tfckpt

    n = 1 << 62
    entries = [
        ("x", C.entry(1, [n, 0], size=0, crc=C.mask(0))),
        ("y", C.entry(1, [1] * 70, data=b"abcd")),
        ("p", C.entry(1, [n, 0], slices=[[(0, None), (0, None)]])),
        (C.slice_key("p", [(0, None), (0, None)]), C.entry(1, [n, 0], size=0)),
    ]
    prefix = C.write_bundle(tmp_path, "ck", entries, b"abcd")
    with tfckpt.open(prefix) as r:
        for op in (
            lambda: r.read("x"),
            lambda: r.read_slice("x", (slice(0, 2),)),
            lambda: r.read_slice("x", "0,1:-"),
            lambda: r.read_slice("y", ()),
            lambda: r.read("y"),
            lambda: r.read("p"),
            lambda: r.read_slice("p", ()),
        ):
            with pytest.raises(tfckpt.UnsupportedCheckpointError, match="numpy"):
                op()


def test_negative_dtype_is_unsupported_not_an_index_error():
    from tfckpt.dtypes import by_code

    for code in (-1, -5, -34, -35, -(1 << 31)):
        assert by_code(code).itemsize == -1


if __name__ == "__main__" and sys.argv[1:] == ["child"]:
    child_main()
