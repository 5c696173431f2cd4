"""Differential fuzzing: the native core (tfckpt._native) against its pure-Python twin
(tfckpt._pycore).  They must agree on every input: both reject it (same error class), or both
accept it and say the same thing about it.

Run with atheris (``pip install atheris``; not a dependency of tfckpt)::

    python fuzz/differential.py -max_total_time=60 fuzz/seeds/differential/

Seeds come from ``python fuzz/differential_seeds.py`` (real TensorFlow index files of the test
corpus, below 64 KiB, plus crafted payloads).  A fuzzer input is one selector byte and a body:

* selector % 6 == 0, 1: the body is an .index file, parsed by both ``Index`` classes (0) or
  both ``read_table`` (1).  With the selector's bit 0x80 set, the block CRCs of the body are
  repaired first, so mutations reach the block and entry parsers behind the checksums.
* 2: ``decode_strings``: a flags byte (1 swap, 2 verify), a varint element count, the payload.
* 3: ``decode_variants``: a flags byte (2 verify), a varint element count, the payload.
* 4: ``snappy_decompress``: a varint max_output, the stream.
* 5: ``decode_slice_key`` of the body, and ``slice_key`` of what it decodes to.

The same checks run in pytest (tests/test_pycore.py) on seeded random mutations.  A
disagreement raises :class:`Disagreement` naming what differs; the atheris run then stops and
writes the input to ``crash-<sha1>``.  Every disagreement found so far was a native bug, fixed
in csrc/, with its input in tests/regressions/ and TensorFlow's behaviour beside it.
"""

from __future__ import annotations

import os
import random
import struct
import sys
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))

from tfckpt import _pycore as PY  # noqa: E402
from tfckpt.errors import CheckpointError  # noqa: E402

NAME = "fuzzed.index"  # the file name both parsers are given; their messages must name it
MAGIC = bytes.fromhex("57fb808b247547db")


class Disagreement(AssertionError):
    """The native core and the twin disagree about an input."""


def native_core():
    """The C++ extension, or None when it is not the implementation in use."""
    import tfckpt

    return tfckpt._native if tfckpt.implementation == "native" else None


# ---------------------------------------------------------------------------------------------
# What each implementation says about an input


def _rejected(e: CheckpointError) -> tuple:
    return ("rejected", type(e).__name__, str(e))


def observe_index(core, data: bytes) -> tuple:
    """Everything an Index tells about `data`, or ("rejected", class, message)."""
    try:
        idx = core.Index(data, NAME)
    except CheckpointError as e:
        return _rejected(e)
    entries = []
    for k in idx.raw_keys():
        try:
            ent = ("ok", idx.entry(k))
        except CheckpointError as e:
            ent = ("error", type(e).__name__)
        entries.append((k, ent, idx.raw_value(k), idx.is_hidden(k), k in idx))
    stats = dict(idx.table_stats)
    stats["index_handle"] = tuple(stats["index_handle"])
    stats["metaindex_handle"] = tuple(stats["metaindex_handle"])
    listing = [row[:5] + (row[5] is not None,) + row[6:] for row in idx.listing(True)]
    # The scan's per-key records and sums; error texts may differ, their presence may not.
    records = [
        (type(r).__name__,) + r[:-1] + (r[-1] is not None,)
        for r in idx.key_records(KeyRow, ("lead", 1, None), DTYPE_NAMES, _dtype_name)
    ]
    return (
        "accepted",
        idx.header,
        stats,
        len(idx),
        idx.keys(),
        idx.keys(True),
        listing,
        entries,
        idx.totals(),
        records,
    )


class KeyRow(tuple):
    """A tuple subclass without instance attributes, as ``Index.key_records`` builds."""

    __slots__ = ()


DTYPE_NAMES = ("zero", "one", "two")  # codes past these are named by _dtype_name


def _dtype_name(code: int) -> str:
    return f"code {code}"


def observe_table(core, data: bytes) -> tuple:
    try:
        return ("accepted", core.read_table(data, NAME))
    except CheckpointError as e:
        return _rejected(e)


def observe_call(fn: Callable, *args) -> tuple:
    try:
        return ("accepted", fn(*args))
    except CheckpointError as e:
        return _rejected(e)


def _same(a: tuple, b: tuple) -> bool:
    """Equal outcomes: equal results, or rejections of the same class (messages differ)."""
    if a[0] == "rejected" or b[0] == "rejected":
        return a[:2] == b[:2]
    return a == b


def _describe(a: tuple, b: tuple) -> str:
    if a[0] != b[0] or a[0] == "rejected":
        return (
            f"native: {a[:3] if a[0] == 'rejected' else 'accepted'}; "
            f"python: {b[:3] if b[0] == 'rejected' else 'accepted'}"
        )
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            if isinstance(x, list) and isinstance(y, list):
                for j, (u, v) in enumerate(zip(x, y)):
                    if u != v:
                        return f"part {i}, item {j}: native {u!r:.400} vs python {v!r:.400}"
                return f"part {i}: {len(x)} vs {len(y)} items"
            return f"part {i}: native {x!r:.400} vs python {y!r:.400}"
    return "?"


# ---------------------------------------------------------------------------------------------
# The checks


class Stats:
    def __init__(self) -> None:
        self.counts: Dict[str, int] = {}

    def add(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


STATS = Stats()


def _compare(kind: str, observe: Callable, native, data: bytes, stats: Stats) -> tuple:
    a = observe(native)
    b = observe(PY)
    if _same(a, b):
        stats.add(f"{kind}:{a[0]}")
        if a[0] == "rejected" and NAME in a[2] and NAME not in b[2]:
            raise Disagreement(f"{kind}: the python message does not name the file: {b[2]}")
        return a
    raise Disagreement(f"{kind} of {len(data)} bytes {data[:64].hex()}...: {_describe(a, b)}")


def check_index(data: bytes, native=None, stats: Stats = STATS) -> tuple:
    """Both Index classes and both read_table on `data`; raises Disagreement."""
    native = native or native_core()
    out = _compare("index", lambda core: observe_index(core, data), native, data, stats)
    _compare("table", lambda core: observe_table(core, data), native, data, stats)
    return out


def check_strings(
    payload: bytes, n: int, swap: bool, verify: bool, native=None, stats: Stats = STATS
) -> tuple:
    native = native or native_core()
    return _compare(
        "strings",
        lambda core: observe_call(core.decode_strings, payload, n, swap, verify, "k"),
        native,
        payload,
        stats,
    )


def check_variants(
    payload: bytes, n: int, verify: bool, native=None, stats: Stats = STATS
) -> tuple:
    native = native or native_core()
    return _compare(
        "variants",
        lambda core: observe_call(core.decode_variants, payload, n, verify, "k"),
        native,
        payload,
        stats,
    )


def check_snappy(stream: bytes, max_output: int, native=None, stats: Stats = STATS) -> tuple:
    native = native or native_core()
    return _compare(
        "snappy",
        lambda core: observe_call(core.snappy_decompress, stream, max_output),
        native,
        stream,
        stats,
    )


def check_slice_key(key: bytes, native=None, stats: Stats = STATS) -> tuple:
    native = native or native_core()
    a, b = native.decode_slice_key(key), PY.decode_slice_key(key)
    if a != b:
        raise Disagreement(f"decode_slice_key({key!r}): native {a!r} vs python {b!r}")
    stats.add("slice_key:" + ("none" if a is None else "decoded"))
    if a is not None:
        name, extents = a
        ka, kb = native.slice_key(name, extents), PY.slice_key(name, extents)
        if ka != kb:
            raise Disagreement(f"slice_key({name!r}, {extents}): native {ka!r} vs python {kb!r}")
    return ("accepted", a)


# ---------------------------------------------------------------------------------------------
# Building inputs


def varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def read_varint(b: bytes, p: int) -> Tuple[int, int]:
    v = shift = 0
    while p < len(b) and shift < 70:
        c = b[p]
        p += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, p
        shift += 7
    return v, p


def _crc(data: bytes, crc: int = 0) -> int:
    import crcmod.predefined  # an implementation that is neither of the two under test

    global _CRCMOD
    if _CRCMOD is None:
        _CRCMOD = crcmod.predefined.mkCrcFun("crc-32c")
    return _CRCMOD(bytes(data), crc)


_CRCMOD = None


def mask(c: int) -> int:
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def frame(contents: bytes, btype: int = 0) -> bytes:
    return contents + bytes([btype]) + struct.pack("<I", mask(_crc(contents + bytes([btype]))))


def block(items: Sequence[Tuple[bytes, bytes]], interval: int) -> bytes:
    out, restarts, prev = bytearray(), [], b""
    for i, (k, v) in enumerate(items):
        shared = 0
        if i % interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(k), len(prev)) and k[shared] == prev[shared]:
                shared += 1
        out += varint(shared) + varint(len(k) - shared) + varint(len(v)) + k[shared:] + v
        prev = k
    restarts = restarts or [0]
    return (
        bytes(out) + struct.pack(f"<{len(restarts)}I", *restarts) + struct.pack("<I", len(restarts))
    )


def snappy_compress(raw: bytes, rng: Optional[random.Random] = None) -> bytes:
    """A valid raw Snappy stream of `raw` using literals and all three copy forms."""
    out = bytearray(varint(len(raw)))
    i, lit_start, table = 0, 0, {}

    def literal(chunk: bytes) -> None:
        for s in range(0, len(chunk), 1 << 16):
            part = chunk[s : s + (1 << 16)]
            n = len(part) - 1
            if n < 60:
                out.append(n << 2)
            elif n < 256:
                out.extend(bytes([60 << 2, n]))
            else:
                out.extend(bytes([61 << 2]) + struct.pack("<H", n))
            out.extend(part)

    while i + 4 <= len(raw):
        key = raw[i : i + 4]
        j = table.get(key)
        table[key] = i
        if j is None or i - j > 0xFFFF:
            i += 1
            continue
        length = 4
        while i + length < len(raw) and raw[j + length] == raw[i + length] and length < 64:
            length += 1
        literal(raw[lit_start:i])
        offset = i - j
        if 4 <= length <= 11 and offset < 2048 and (rng is None or rng.random() < 0.7):
            out += bytes([1 | ((length - 4) << 2) | ((offset >> 8) << 5), offset & 0xFF])
        elif rng is not None and rng.random() < 0.3:
            out += bytes([3 | ((length - 1) << 2)]) + struct.pack("<I", offset)
        else:
            out += bytes([2 | ((length - 1) << 2)]) + struct.pack("<H", offset)
        i += length
        lit_start = i
    literal(raw[lit_start:])
    return bytes(out)


def assemble(
    blocks: Sequence[Tuple[bytes, int]],
    index_keys: Sequence[bytes],
    interval: int = 16,
    index_type: int = 0,
) -> bytes:
    """A table file of data blocks (contents, type), an empty metaindex and an index block."""
    out, handles = bytearray(), []
    for contents, btype in blocks:
        handles.append((len(out), len(contents)))
        out += frame(contents, btype)
    meta = (len(out), 8)
    out += frame(block([], 1))
    index = block([(k, varint(o) + varint(s)) for k, (o, s) in zip(index_keys, handles)], 1)
    if index_type == 1:
        index = snappy_compress(index)
    idx = (len(out), len(index))
    out += frame(index, index_type)
    footer = varint(meta[0]) + varint(meta[1]) + varint(idx[0]) + varint(idx[1])
    return bytes(out) + footer + b"\0" * (40 - len(footer)) + MAGIC


def build(items: Sequence[Tuple[bytes, bytes]], rng: random.Random) -> bytes:
    """A table of `items` (in the given order) cut into blocks at random, some Snappy."""
    blocks, keys, i = [], [], 0
    interval = rng.choice([1, 2, 3, 16, 16, 1000])
    while i < len(items) or not blocks:
        n = rng.choice([1, 2, 3, 5, 50, 10000])
        chunk = items[i : i + n]
        contents = block(chunk, interval)
        btype = 1 if rng.random() < 0.15 else 0
        if btype:
            contents = snappy_compress(contents, rng)
        blocks.append((contents, btype))
        keys.append((chunk[-1][0] if chunk else b"") + b"\xff")
        i += n
        if not chunk:
            break
    return assemble(blocks, keys, index_type=1 if rng.random() < 0.05 else 0)


# -- the bundle's protobuf values -----------------------------------------------------------


def tag(field: int, wt: int) -> bytes:
    return varint((field << 3) | wt)


def ld(field: int, payload: bytes) -> bytes:
    return tag(field, 2) + varint(len(payload)) + payload


def shape_bytes(dims: Sequence[int]) -> bytes:
    return b"".join(ld(2, (tag(1, 0) + varint(d)) if d else b"") for d in dims)


def slice_bytes(extents: Sequence[Tuple[int, int]]) -> bytes:
    out = b""
    for start, length in extents:
        e = b""
        if length >= 0:
            e = (tag(1, 0) + varint(start) if start else b"") + tag(2, 0) + varint(length)
        out += ld(1, e)
    return out


def entry_bytes(
    dtype: int,
    dims: Sequence[int],
    shard: int = 0,
    offset: int = 0,
    size: int = 0,
    crc: int = 0,
    slices: Sequence[Sequence[Tuple[int, int]]] = (),
) -> bytes:
    out = (tag(1, 0) + varint(dtype) if dtype else b"") + ld(2, shape_bytes(dims))
    for f, v in ((3, shard), (4, offset), (5, size)):
        if v:
            out += tag(f, 0) + varint(v)
    if crc:
        out += tag(6, 5) + struct.pack("<I", crc)
    return out + b"".join(ld(7, slice_bytes(s)) for s in slices)


def header_bytes(
    num_shards: int = 1,
    endianness: int = 0,
    producer: int = 1,
    min_consumer: int = 0,
    bad: Sequence[int] = (),
) -> bytes:
    version = (
        (tag(1, 0) + varint(producer) if producer else b"")
        + (tag(2, 0) + varint(min_consumer) if min_consumer else b"")
        + b"".join(tag(3, 0) + varint(v) for v in bad)
    )
    return (
        (tag(1, 0) + varint(num_shards) if num_shards else b"")
        + (tag(2, 0) + varint(endianness) if endianness else b"")
        + ld(3, version)
    )


def string_payload(items: Sequence[bytes], swap: bool = False) -> bytes:
    order = "big" if swap else "little"
    lengths = b"".join(varint(len(s)) for s in items)
    hashed = b"".join(len(s).to_bytes(4 if len(s) <= 0xFFFFFFFF else 8, order) for s in items)
    check = mask(_crc(hashed)).to_bytes(4, order)
    return lengths + check + b"".join(items)


def variant_payload(items: Sequence[bytes]) -> bytes:
    out, c = bytearray(), 0
    for s in items:
        c = _crc(struct.pack("<Q", len(s)) + s, c)
        check = struct.pack("<I", mask(c))
        out += varint(len(s)) + s + check
        c = _crc(check, c)
    return bytes(out)


def slice_key(name: bytes, extents: Sequence[Tuple[int, int]]) -> bytes:
    return PY.slice_key(name, extents)


def crafted_tables(rng: random.Random) -> Iterator[bytes]:
    """Well-formed index files exercising every feature: strings, slices (and their hidden
    keys), many blocks, restart intervals, Snappy blocks, unusual headers."""

    def bundle(items, hdr=None):
        items = sorted(items)
        return build([(b"", hdr if hdr is not None else header_bytes())] + items, rng)

    yield bundle([(b"ok", entry_bytes(1, [4], size=16, crc=mask(7)))])
    parts = [[(0, 2), (0, -1)], [(2, 2), (0, -1)]]
    yield bundle(
        [(b"p", entry_bytes(1, [4, 2], slices=parts))]
        + [
            (slice_key(b"p", s), entry_bytes(1, [2, 2], offset=16 * i, size=16, crc=mask(i)))
            for i, s in enumerate(parts)
        ]
        + [(b"q", entry_bytes(7, [3], size=9))]
    )
    yield bundle(
        [
            (b"k%04d" % i, entry_bytes(1 + i % 20, [i % 5, 3], offset=i, size=i, crc=mask(i)))
            for i in range(300)
        ]
    )
    yield bundle(
        [(bytes([c]) * 3, entry_bytes(9, [])) for c in (1, 0x7F, 0x80, 0xFE, 0xFF)],
        hdr=header_bytes(5, 1, 7, 1, [0, 2]),
    )
    yield bundle([(b"s\x00\xff", entry_bytes(21, [2], shard=3, size=20, crc=1))], hdr=b"")


# ---------------------------------------------------------------------------------------------
# Mutations


def _index_of(data: bytes) -> Optional[Tuple[Tuple[int, int], List[Tuple[bytes, int, int]]]]:
    """((offset, size) of the index block, [(separator key, offset, size) of each data block
    inside the file]), read leniently; None if there is no usable footer."""
    if len(data) < 48 or data[-8:] != MAGIC:
        return None
    f = len(data) - 48
    _, p = read_varint(data, f)
    _, p = read_varint(data, p)
    io, p = read_varint(data, p)
    isz, p = read_varint(data, p)
    if io + isz + 5 > f:
        return None
    found: List[Tuple[bytes, int, int]] = []
    contents = data[io : io + isz]
    if data[io + isz] != 0 or len(contents) < 4:
        return (io, isz), found
    nr = struct.unpack_from("<I", contents, len(contents) - 4)[0]
    end = len(contents) - 4 - 4 * nr
    p, prev = 0, b""
    while 0 <= p < end:
        shared, p = read_varint(contents, p)
        unshared, p = read_varint(contents, p)
        vlen, p = read_varint(contents, p)
        key = prev[:shared] + contents[p : p + unshared]
        value = contents[p + unshared : p + unshared + vlen]
        p += unshared + vlen
        prev = key
        o, q = read_varint(value, 0)
        s, _ = read_varint(value, q)
        if o + s + 5 <= f:
            found.append((key, o, s))
    return (io, isz), found


def _blocks_of(data: bytes) -> List[Tuple[int, int]]:
    """(offset, size) of the index block and of every data block it points at."""
    index = _index_of(data)
    if index is None:
        return []
    return [index[0]] + [(o, s) for _, o, s in index[1]]


def repair_crcs(data: bytes) -> bytes:
    """`data` with the CRC of every block it points at made right (the index block first, as
    the handles of data blocks are inside it)."""
    out = bytearray(data)
    for o, s in _blocks_of(bytes(out))[:1] + _blocks_of(bytes(out))[1:]:
        out[o + s + 1 : o + s + 5] = struct.pack("<I", mask(_crc(out[o : o + s + 1])))
    return bytes(out)


INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFE, 0x40, 0x3F, 0x08, 0x12, 0x1A, 0x35, 0x3A]


def mutate_bytes(data: bytes, rng: random.Random, donors: Sequence[bytes] = ()) -> bytes:
    """One to a few raw mutations: bit flips, byte sets, insertions, deletions, duplicated or
    spliced ranges, truncation, varint rewrites."""
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        n = len(b)
        op = rng.randrange(10)
        pos = rng.randrange(n) if n else 0
        if op == 0 and n:
            b[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            b[pos] = rng.choice(INTERESTING) if rng.random() < 0.6 else rng.randrange(256)
        elif op == 2:
            b[pos:pos] = bytes(rng.choice(INTERESTING) for _ in range(rng.randint(1, 8)))
        elif op == 3 and n:
            del b[pos : pos + rng.randint(1, 16)]
        elif op == 4 and n:
            length = rng.randint(1, 32)
            src = rng.randrange(n)
            b[pos:pos] = b[src : src + length]
        elif op == 5 and n:
            del b[rng.randrange(n) :]
        elif op == 6 and n > 48:  # cut a range out of the middle, keep the footer
            start = rng.randrange(n - 48)
            del b[start : start + rng.randint(1, n - 48 - start)]
        elif op == 7 and n:  # a varint grows continuation bytes, bits past 32, or a huge value
            r = rng.random()
            if r < 0.3:
                b[pos : pos + 1] = bytes([b[pos] | 0x80, 0x80, 0x00])
            elif r < 0.5 and b[pos] < 0x80:
                b[pos : pos + 1] = bytes(
                    [b[pos] | 0x80, 0x80, 0x80, 0x80, rng.choice([0x10, 0x1F, 0x70, 0x0F])]
                )
            else:
                b[pos : pos + 1] = varint(
                    rng.choice(
                        [2**31, 2**32, 2**32 - 1, 2**63, 2**64 - 1, -1, 255, 1 << rng.randrange(64)]
                    )
                )
        elif op == 8 and donors:
            d = rng.choice(donors)
            if d:
                src = rng.randrange(len(d))
                b[pos : pos + rng.randint(0, 32)] = d[src : src + rng.randint(1, 64)]
        elif op == 9 and n >= 4:
            struct.pack_into(
                "<I",
                b,
                rng.randrange(n - 3),
                rng.choice([0, 1, 2, 0xFFFFFFFF, 0x7FFFFFFF, n, n // 2, rng.randrange(1 << 32)]),
            )
    return bytes(b)


def mutate_value(value: bytes, rng: random.Random) -> bytes:
    """A protobuf-aware mutation of an entry or header value."""
    op = rng.randrange(12)
    if op < 4:
        return mutate_bytes(value, rng)
    if op == 4:  # an extra field of a random number and wire type
        f, wt = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 15, 2**29 - 1]), rng.randrange(8)
        body = rng.choice([b"", b"\x01", b"\x02\x08\x01", b"\xff" * 11, bytes(8)])
        return value + tag(f, wt) + body
    if op == 5:  # a group, well-formed or not, possibly deep
        depth = rng.choice([1, 2, 50, 99, 100, 101, 1000, 1001, 1002])
        f = rng.randint(1, 20)
        tail = tag(f, 4) * depth if rng.random() < 0.8 else tag(f + 1, 4)
        return value + tag(f, 3) * depth + tag(1, 0) + b"\x05" + tail
    if op == 6:  # another shape: merges into the first
        dims = [
            rng.choice([0, 1, 3, -1, 2**31, 2**32, 2**62, 2**63 - 1])
            for _ in range(rng.choice([0, 1, 2, 3, 254, 255]))
        ]
        extra = rng.choice([b"", tag(3, 0) + b"\x01", tag(3, 0) + b"\x00", tag(1, 0) + b"\x01"])
        return value + ld(2, shape_bytes(dims) + extra)
    if op == 7:  # a slice
        rank = rng.choice([0, 1, 2, 3])
        ext = [
            (rng.choice([0, 1, 2, -1, 2**63 - 5]), rng.choice([-1, 0, 1, 2, 3, 100, 2**62]))
            for _ in range(rank)
        ]
        sb = slice_bytes(ext)
        if rng.random() < 0.2:
            sb += ld(1, tag(1, 0) + varint(rng.choice([1, 5])))  # start without a length
        return value + ld(7, sb)
    if op == 8:  # a scalar field with an odd value or wire type
        f = rng.choice([1, 3, 4, 5, 6])
        wt = rng.choice([0, 0, 1, 2, 5])
        v = rng.choice([0, 1, -1, 2**31, 2**32 + 3, 2**63, 2**64 - 1])
        body = {
            0: varint(v),
            1: struct.pack("<q", -1),
            2: b"\x01\x01",
            5: struct.pack("<I", v & 0xFFFFFFFF),
        }[wt]
        return value + tag(f, wt) + body
    if op == 9:  # an overlong varint somewhere (non-canonical encodings)
        if not value:
            return value
        pos = rng.randrange(len(value))
        return (
            value[:pos]
            + bytes([value[pos] | 0x80])
            + b"\x80" * rng.randint(0, 8)
            + b"\x00"
            + value[pos + 1 :]
        )
    if op == 10:  # truncated
        return value[: rng.randrange(len(value) + 1)]
    return value + value  # everything twice: scalars overwrite, repeated fields append


def mutate_table(data: bytes, rng: random.Random, donors: Sequence[bytes] = ()) -> bytes:
    """A mutation of the index file `data`: at the entry level (then rebuilt with random
    blocks), or at the byte level (then, usually, with the CRCs repaired)."""
    if rng.random() < 0.5:
        try:
            items = PY.read_table(data, "seed")
        except CheckpointError:
            items = None
        if items:
            items = list(items)
            for _ in range(rng.choice([1, 1, 2, 3])):
                if not items:
                    break
                i = rng.randrange(len(items))
                k, v = items[i]
                op = rng.randrange(10)
                if op < 6:
                    items[i] = (k, mutate_value(v, rng))
                elif op == 6:
                    items[i] = (mutate_bytes(k, rng), v)
                elif op == 7:
                    del items[i]
                elif op == 8:
                    items.insert(i, (k, v))  # a duplicate key
                else:  # the slice key of a random extent list of some key
                    ext = [
                        (rng.choice([0, 1, 2]), rng.choice([-1, 1, 2]))
                        for _ in range(rng.choice([1, 2]))
                    ]
                    items.append((slice_key(k, ext), v))
                    items.sort(key=lambda kv: kv[0])
            out = build(items, rng)
            if rng.random() < 0.2:
                out = repair_crcs(mutate_bytes(out, rng, donors))
            return out
    if rng.random() < 0.4:  # mutate the contents of one block, keep the table consistent
        index = _index_of(data)
        if index and index[1]:
            blocks = [(data[o : o + s], data[o + s]) for _, o, s in index[1]]
            keys = [k for k, _, _ in index[1]]
            i = rng.randrange(len(blocks))
            contents, btype = blocks[i]
            if btype == 1:
                try:
                    contents, btype = PY.snappy_decompress(contents, 1 << 24), 0
                except CheckpointError:
                    pass
            blocks[i] = (mutate_bytes(contents, rng, donors), btype)
            return assemble(blocks, keys)
    out = mutate_bytes(data, rng, donors)
    return repair_crcs(out) if rng.random() < 0.8 else out


def mutate_strings(rng: random.Random) -> Tuple[bytes, int, bool, bool]:
    items = [
        bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 3, 200])))
        for _ in range(rng.choice([0, 1, 2, 5]))
    ]
    swap = rng.random() < 0.3
    payload = string_payload(items, swap)
    if rng.random() < 0.7:
        payload = mutate_bytes(payload, rng)
    n = max(0, len(items) + rng.choice([0, 0, 0, 1, -1, 2**40]))
    return payload, n, swap, rng.random() < 0.8


def mutate_variants(rng: random.Random) -> Tuple[bytes, int, bool]:
    items = [
        bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 7, 100])))
        for _ in range(rng.choice([0, 1, 3]))
    ]
    payload = variant_payload(items)
    if rng.random() < 0.7:
        payload = mutate_bytes(payload, rng)
    n = max(0, len(items) + rng.choice([0, 0, 0, 1, -1, 2**40]))
    return payload, n, rng.random() < 0.8


def mutate_snappy(rng: random.Random) -> Tuple[bytes, int]:
    raw = rng.choice(
        [
            b"abcd" * 40,
            bytes(range(256)) * 3,
            b"x" * 500,
            bytes(rng.randrange(4) for _ in range(300)),
            b"",
        ]
    )
    stream = snappy_compress(raw, rng)
    if rng.random() < 0.8:
        stream = mutate_bytes(stream, rng)
    max_output = rng.choice([len(raw), len(raw) + 1, max(0, len(raw) - 1), 1 << 20, 0])
    return stream, max_output


def mutate_slice_key(rng: random.Random) -> bytes:
    ext = [
        (
            rng.choice([0, 1, 63, 64, 2**40, 2**63 - 1, -1, -65, -(2**63)]),
            rng.choice([-1, 1, 64, 2**62, -2]),
        )
        for _ in range(rng.choice([0, 1, 2, 3]))
    ]
    key = slice_key(bytes(rng.choice([0, 1, 0xFF, 0x61]) for _ in range(rng.randint(0, 5))), ext)
    return mutate_bytes(key, rng) if rng.random() < 0.8 else key


# ---------------------------------------------------------------------------------------------
# atheris

_INPUTS = 0


def one_input(data: bytes) -> None:
    """The atheris entry point: see the module docstring for the input layout."""
    global _INPUTS
    _INPUTS += 1
    if _INPUTS % 50000 == 0:
        print(
            f"differential: {_INPUTS} inputs, outcomes {dict(sorted(STATS.counts.items()))}",
            file=sys.stderr,
            flush=True,
        )
    if not data:
        return
    selector, body = data[0], data[1:]
    mode = (selector & 0x7F) % 6
    if mode in (0, 1):
        if selector & 0x80:
            body = repair_crcs(body)
        if mode == 0:
            check_index(body)
        else:
            _compare("table", lambda core: observe_table(core, body), native_core(), body, STATS)
    elif mode in (2, 3):
        if not body:
            return
        flags = body[0]
        n, p = read_varint(body, 1)
        n &= (1 << 64) - 1
        if mode == 2:
            check_strings(body[p:], n, bool(flags & 1), bool(flags & 2))
        else:
            check_variants(body[p:], n, bool(flags & 2))
    elif mode == 4:
        max_output, p = read_varint(body, 0)
        check_snappy(body[p:], min(max_output, 1 << 24))
    else:
        check_slice_key(body)


def main(argv: List[str]) -> None:
    import atheris

    if native_core() is None:
        sys.exit(
            "the differential fuzzer needs the native extension (tfckpt.implementation is 'python')"
        )
    atheris.instrument_all()  # coverage of the twin (and of this file) guides the fuzzer
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
