#!/usr/bin/env python3
"""Atheris target: assembling partitioned tensors (tfckpt/reader.py ``_assemble``).

Each input describes a checkpoint with one partitioned tensor: dtype, shape, a tiling of
the shape into stored slices, the full tensor's values, and optional damage (a dropped or
extra slice, a lying slice entry, damaged data, a hostile shape, a raw full entry, a
variant element holding a TensorProto with a fuzzer-chosen shape). The bundle is built in
memory with ``tfckpt._native.build_table`` and read through ``tfckpt.Reader`` over a
``BytesStorage``: ``read``, ``read_slice`` (numpy indices and TensorFlow specs, with and
without ``verify``), ``verify_key``, ``keys``, ``listing``.

What must hold:
* only ``tfckpt.CheckpointError`` subclasses escape (no IndexError, ValueError,
  MemoryError, OverflowError ...);
* an undamaged checkpoint reads back exactly: ``read`` gives the tensor and ``read_slice``
  gives what numpy indexing of the tensor gives (or InvalidArgumentError where numpy
  raises IndexError);
* memory stays bounded: the harness runs under RLIMIT_AS (``FUZZ_ASSEMBLE_AS_MB``,
  default 2048), so an allocation sized by a lying header fails as MemoryError, which is
  a finding.

Run (atheris from PyPI):

    python fuzz/fuzz_assemble.py -max_total_time=60 fuzz/seeds/fuzz_assemble
    python fuzz/fuzz_assemble.py crash-file            # replays one input

The input is read with ``Input`` below (plain Python, no atheris), so
``tests/test_regressions.py`` replays regression files with ``one_input`` alone.
"""

from __future__ import annotations

import itertools
import os
import random
import struct
import sys
from typing import List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))

# A few bits of the flags word; each damage kind consumes further input only when set.
F_DROP = 1 << 0  # leave one slice entry out of the index
F_EXTRA = 1 << 1  # one more (fuzzer-chosen) slice in the full entry
F_SUB = 1 << 2  # one field of one slice entry replaced
F_DATA = 1 << 3  # the data shard truncated or a byte changed
F_HUGE = 1 << 4  # one dimension of the full shape made huge
F_RAWFULL = 1 << 5  # the full entry is fuzzer bytes
F_BIG = 1 << 6  # header says big-endian (values are byte-swapped; no value oracle)
F_TWO = 1 << 7  # slices spread over two data shards (no damage)
F_FULLX = 1 << 8  # a slice covering a whole dimension uses the "full" extent (no damage)
F_VTP = 1 << 9  # variant elements hold a TensorProto with a fuzzer-chosen shape
F_RAWDTYPE = 1 << 10  # any dtype code, not one of DTYPES
DAMAGE = F_DROP | F_EXTRA | F_SUB | F_DATA | F_HUGE | F_RAWFULL | F_BIG | F_VTP | F_RAWDTYPE

DTYPES = [1, 3, 9, 10, 19, 14, 18, 7, 21, 6, 2, 29, 17, 8]
KEY = "part/.ATTRIBUTES/VARIABLE_VALUE"
MAX_SLICES = 48


class Input:
    """Reads fields from the front of the input; past its end numbers are 0."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0

    def uint(self, n: int) -> int:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return int.from_bytes(chunk, "little")

    def u8(self) -> int:
        return self.uint(1)

    def u16(self) -> int:
        return self.uint(2)

    def u32(self) -> int:
        return self.uint(4)

    def i64(self) -> int:
        v = self.uint(8)
        return v - (1 << 64) if v >= 1 << 63 else v

    def bytes(self) -> bytes:
        n = self.u8()
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk


# --- encoders (FORMAT.md 5.3, 5.4) ----------------------------------------------------


def _varint(v: int) -> bytes:
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _mask(c: int) -> int:
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _strings_payload(items: Sequence[bytes]) -> Tuple[bytes, int]:
    from tfckpt import _native

    c = 0
    for s in items:
        c = _native.crc32c(struct.pack("<I", len(s)), c)
    check = struct.pack("<I", _mask(c))
    c = _native.crc32c(check, c)
    body = b"".join(items)
    c = _native.crc32c(body, c)
    return b"".join(_varint(len(s)) for s in items) + check + body, _mask(c)


def _variants_payload(items: Sequence[bytes]) -> Tuple[bytes, int]:
    from tfckpt import _native

    out, c = bytearray(), 0
    for s in items:
        out += _varint(len(s))
        c = _native.crc32c(struct.pack("<Q", len(s)), c)
        c = _native.crc32c(s, c)
        check = struct.pack("<I", _mask(c))
        out += s + check
        c = _native.crc32c(check, c)
    return bytes(out), _mask(c)


def _variant_element(i: int, tensor: bytes = b"") -> bytes:
    """A VariantTensorDataProto: type_name, metadata, optional serialized TensorProto."""
    meta = b"m%d" % i
    out = b"\x0a\x04test" + b"\x12" + _varint(len(meta)) + meta
    if tensor:
        out += b"\x1a" + _varint(len(tensor)) + tensor
    return out


def _tensor_proto(inp: Input) -> bytes:
    """A TensorProto with a fuzzer-chosen dtype and shape and one stored value."""
    dtype = inp.u8() % 24
    dims = b""
    for _ in range(inp.u8() % 4):
        d = inp.i64() if inp.u8() & 1 else inp.u8()
        dims += b"\x12" + _varint(len(b"\x08" + _varint(d))) + b"\x08" + _varint(d)
    shape = b"\x12" + _varint(len(dims)) + dims
    value = {
        1: b"\x2d" + struct.pack("<f", 1.5),
        7: b"\x42\x01s",
        9: b"\x50\x07",
        2: b"\x31" + struct.pack("<d", 2.5),
    }.get(dtype, b"\x38\x05")
    return b"\x08" + _varint(dtype) + shape + value


# --- the case -------------------------------------------------------------------------


class Case:
    def __init__(self, data: bytes) -> None:
        import numpy as np

        from tfckpt import _native
        from tfckpt.dtypes import by_code, numpy_dtype

        inp = Input(data)
        self.inp = inp
        flags = self.flags = inp.u16()
        self.damaged = bool(flags & DAMAGE)
        dtype = inp.u8() if flags & F_RAWDTYPE else DTYPES[inp.u8() % len(DTYPES)]
        self.dtype = dtype
        rank = inp.u8() % 4
        shape = [inp.u8() % 7 for _ in range(rank)]

        # A tiling of the shape: per dimension, cut points from the input.
        per_dim = []
        for d in shape:
            cuts = sorted({inp.u8() % (d + 1) for _ in range(inp.u8() % 3)} - {0, d})
            bounds = list(zip([0] + cuts, cuts + [d]))
            per_dim.append(bounds)
        boxes = list(itertools.product(*per_dim))[:MAX_SLICES]
        if len(boxes) == MAX_SLICES:  # a truncated tiling is a damaged one
            self.damaged = True

        def extents(box) -> List[Tuple[int, int]]:
            out = []
            for (a, b), d in zip(box, shape):
                if (a, b) == (0, d) and (d == 0 or flags & F_FULLX):
                    out.append((0, -1))
                else:
                    out.append((a, b - a))
            return out

        slices = [extents(b) for b in boxes]

        # The values of the whole tensor.
        rng = random.Random(inp.u32())
        n = 1
        for d in shape:
            n *= d
        self.shape = tuple(shape)
        info = by_code(dtype) if dtype < 34 else None
        if dtype == 7:
            full = np.empty(n, dtype=object)
            full[:] = [rng.randbytes(rng.randrange(4)) for _ in range(n)]
        elif dtype == 21:
            from tfckpt import Variant

            full = np.empty(n, dtype=object)
            full[:] = [Variant("test", b"m%d" % i, []) for i in range(n)]
        elif info is not None and info.numpy is not None and info.itemsize > 0:
            nd = numpy_dtype(dtype)
            raw = rng.randbytes(n * nd.itemsize)
            full = np.frombuffer(raw, dtype=nd).copy()
            if dtype == 10:
                full = full.view(np.uint8) & 1
                full = full.astype(bool)
            if dtype == 29:  # int4: one value per byte, low nibble, sign-extended
                full = (np.frombuffer(raw, np.int8) % 16 - 8).astype(nd)
        else:
            full = None
            self.damaged = True
        self.full = None if full is None else full.reshape(shape)

        huge = None
        if flags & F_HUGE and rank:
            huge = (inp.u8() % rank, 1 << (inp.u8() % 63))
            shape[huge[0]] = huge[1]

        # The slice entries and the data shards.
        num_shards = 2 if flags & F_TWO else 1
        shards = [bytearray() for _ in range(num_shards)]
        items = {}
        for i, (box, ext) in enumerate(zip(boxes, slices)):
            sub_shape = [b - a for a, b in box]
            sid = i % num_shards
            if full is not None:
                region = np.asarray(
                    self.full[tuple(slice(a, b) for a, b in box)], dtype=self.full.dtype
                ).reshape(-1)
                if dtype == 7:
                    payload, crc = _strings_payload(list(region))
                elif dtype == 21:
                    tensor = _tensor_proto(inp) if flags & F_VTP else b""
                    payload, crc = _variants_payload(
                        [_variant_element(int(v.metadata[1:]), tensor) for v in region]
                    )
                else:
                    payload = region.tobytes()
                    crc = _mask(_native.crc32c(payload))
            else:
                payload = rng.randbytes(rng.randrange(16))
                crc = _mask(_native.crc32c(payload))
            key = _native.slice_key(KEY, ext)
            items[key] = [dtype, sub_shape, sid, len(shards[sid]), len(payload), crc, []]
            shards[sid] += payload

        full_slices = [list(e) for e in slices]
        if flags & F_DROP and boxes:
            victim = _native.slice_key(KEY, slices[inp.u8() % len(slices)])
            items.pop(victim, None)
        if flags & F_EXTRA:
            ext = [
                (
                    inp.i64() if inp.u8() & 1 else inp.u8() % 8,
                    inp.i64() if inp.u8() & 1 else inp.u8() % 8 - 1,
                )
                for _ in range(rank)
            ]
            full_slices.append(ext)
            if inp.u8() & 1:
                sub = [max(0, x) if x >= 0 else d for (_, x), d in zip(ext, shape)]
                try:
                    items[_native.slice_key(KEY, ext)] = [dtype, sub, 0, 0, 0, _mask(0), []]
                except (OverflowError, ValueError, TypeError):
                    pass
        if flags & F_SUB and items:
            key = sorted(items)[inp.u8() % len(items)]
            which = inp.u8() % 7
            value = inp.i64() if inp.u8() & 1 else inp.u8()
            e = items[key]
            if which == 1:
                e[1] = [value if j == 0 else x for j, x in enumerate(e[1])] or [value]
            elif which == 6:
                e[6] = [[(0, -1)] * len(e[1])]
            else:
                e[which] = value
        if flags & F_DATA and any(shards):
            s = shards[inp.u8() % num_shards]
            if s:
                if inp.u8() & 1:
                    del s[inp.u16() % len(s) :]
                else:
                    s[inp.u16() % len(s)] ^= inp.u8() | 1

        def entry_bytes(e) -> Optional[bytes]:
            try:
                return _native.serialize_entry(e[0], e[1], e[2], e[3], e[4], e[5], e[6])
            except (OverflowError, ValueError, TypeError):
                return None  # not representable (int32 overflow ...): leave it out

        index = {}
        for key, e in items.items():
            b = entry_bytes(e)
            if b is not None:
                index[key] = b
            else:
                self.damaged = True
        full_entry = entry_bytes([dtype, shape, 0, 0, 0, 0, full_slices])
        if flags & F_RAWFULL or full_entry is None:
            full_entry = inp.bytes()
        index[KEY.encode()] = full_entry
        header = b"\x08" + _varint(num_shards)
        if flags & F_BIG:
            header += b"\x10\x01"
        header += b"\x1a\x02\x08\x01"
        table = [(b"", header)] + sorted(index.items())
        self.files = {".index": _native.build_table(table, 4096 if inp.u8() & 1 else 262144)}
        for sid, s in enumerate(shards):
            self.files[".data-%05d-of-%05d" % (sid, num_shards)] = bytes(s)
        self.ops = inp


def _expect_equal(got, want, what: str) -> None:
    import numpy as np

    assert got.shape == want.shape, (what, got.shape, want.shape)
    if want.dtype == object:
        assert list(got.reshape(-1)) == list(want.reshape(-1)), what
    else:
        assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
        assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), what


def _index_for(inp: Input, shape: Sequence[int]):
    """A read_slice index for `shape`, and whether it is a TensorFlow spec string."""
    kind = inp.u8() % 4
    if kind == 0:  # a spec string, possibly bad
        parts = []
        for d in shape:
            a, ln = inp.u8() % (d + 2), inp.u8() % (d + 2)
            parts.append("-" if inp.u8() & 1 else f"{a},{ln}")
        if inp.u8() % 8 == 0:
            parts.append("0,1")
        return ":".join(parts), True
    idx = []
    for d in shape:
        how = inp.u8() % 4
        if how == 0:
            idx.append(inp.u8() % (d + 3) - 1)  # may be out of range
        elif how == 3:
            idx.append(slice(None))
        else:
            a, b = inp.u8() % (d + 3) - 1, inp.u8() % (d + 3) - 1
            idx.append(slice(a, b))
    if kind == 3 and idx:
        idx[inp.u8() % len(idx)] = Ellipsis
    return tuple(idx), False


def _spec_expected(full, spec: str):
    parts = spec.split(":") if spec else []
    if len(parts) != full.ndim:
        return None
    idx = []
    for p, d in zip(parts, full.shape):
        if p == "-":
            idx.append(slice(0, d))
        else:
            a, ln = (int(x) for x in p.split(","))
            idx.append(slice(a, a + ln))
    return tuple(idx)


def one_input(data: bytes) -> None:
    """Builds the case of `data` and reads it; raises on a finding."""
    import numpy as np

    import tfckpt
    from tfckpt.storage import BytesStorage

    case = Case(data)
    inp = case.ops
    try:
        r = tfckpt.Reader(storage=BytesStorage("/fuzz/ckpt", case.files))
    except tfckpt.CheckpointError:
        assert case.damaged, "an undamaged checkpoint failed to open"
        return
    clean = not case.damaged and case.full is not None
    with r:
        try:
            r.keys()
            r.listing(hidden=True)
            r.listing()
            assert (KEY in r) or case.damaged
        except tfckpt.CheckpointError:
            assert case.damaged, "listing an undamaged checkpoint failed"
        try:
            value = r.read(KEY)
            if clean:
                _expect_equal(value, case.full, "read")
        except tfckpt.CheckpointError:
            assert not clean, "reading an undamaged partitioned tensor failed"
        try:
            r.verify_key(KEY)
        except tfckpt.CheckpointError:
            assert not clean, "verifying an undamaged partitioned tensor failed"
        for _ in range(1 + inp.u8() % 3):
            shape = case.full.shape if case.full is not None else case.shape
            index, is_spec = _index_for(inp, shape)
            verify = bool(inp.u8() & 1)
            want = None
            if clean:
                try:
                    np_index = _spec_expected(case.full, index) if is_spec else index
                    if np_index is not None:
                        if is_spec and any(
                            s.start < 0 or s.stop > d or s.stop < s.start
                            for s, d in zip(np_index, case.full.shape)
                        ):
                            np_index = None
                        else:
                            want = case.full[np_index]
                except (IndexError, ValueError):
                    want = None
            try:
                got = r.read_slice(KEY, index, verify=verify)
            except tfckpt.CheckpointError:
                assert want is None, f"read_slice({index!r}) of an undamaged tensor failed"
                continue
            if want is not None:
                _expect_equal(
                    np.asarray(got),
                    np.asarray(want, dtype=case.full.dtype),
                    f"read_slice({index!r})",
                )
        for raw in r.raw_keys:  # every slice entry, read directly by its bytes key
            try:
                r.read(raw)
            except tfckpt.CheckpointError:
                pass
            try:
                r.read_slice(raw, ())
            except tfckpt.CheckpointError:
                pass


def seed_inputs() -> List[Tuple[str, bytes]]:
    """A few starting inputs: undamaged tilings of every dtype, and each damage kind."""
    seeds = []
    for i, dtype_index in enumerate(range(len(DTYPES))):
        for flags in (0, F_TWO | F_FULLX):
            body = struct.pack("<HBB", flags, dtype_index, 2 + i % 2)  # flags, dtype, rank
            body += bytes([5, 4, 6][: 2 + i % 2])  # dims
            body += bytes([2, 2, 4, 1, 3])  # cuts of dim 0 (2 cuts at 2 and 4), dim 1 ...
            body += bytes([1, 2, 0, 0]) + struct.pack("<I", i)
            seeds.append((f"clean-dtype{DTYPES[dtype_index]}-f{flags}", body + bytes(24)))
    for flag in (F_DROP, F_EXTRA, F_SUB, F_DATA, F_HUGE, F_RAWFULL, F_BIG, F_VTP):
        body = struct.pack("<HBB", flag, 0 if flag != F_VTP else DTYPES.index(21), 2)
        body += bytes([6, 3, 1, 3, 1, 1]) + struct.pack("<I", flag)
        body += bytes(range(40, 0, -1))
        seeds.append((f"damage-{flag}", body))
    return seeds


def main() -> None:
    import resource

    limit = int(os.environ.get("FUZZ_ASSEMBLE_AS_MB", "2048")) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import atheris

    with atheris.instrument_imports(include=["tfckpt"]):
        import tfckpt  # noqa: F401
        import tfckpt.reader  # noqa: F401
        import tfckpt.storage  # noqa: F401
        import tfckpt.tensor_proto  # noqa: F401
    import numpy  # noqa: F401

    def test_one_input(data: bytes) -> None:
        one_input(data)

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(HERE))
    main()
