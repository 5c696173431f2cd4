"""Tests of the native CRC32C and raw Snappy primitives (tfckpt._native).

CRC32C is checked against published check values, against crcmod as an
independent oracle, and hardware against portable on the same machine.
Snappy is checked with streams from a small encoder defined here (literals
and copies of all three kinds), with hand-made streams whose output is known,
with hostile streams that must raise CorruptCheckpointError, and with a stream made once
by the reference compressor.
"""

import platform
import random
import struct
import sys

import pytest

import tfckpt
from tfckpt import _native

MASK_DELTA = 0xA282EAD8


# ---------------------------------------------------------------------------
# CRC32C


@pytest.fixture(scope="module")
def oracle():
    import crcmod.predefined as predefined

    return predefined.mkCrcFun("crc-32c")


CRC_FUNCS = [
    pytest.param(lambda *a, **k: _native.crc32c(*a, **k), id="dispatch"),
    pytest.param(lambda *a, **k: _native.crc32c_portable(*a, **k), id="portable"),
]

# RFC 3720 (iSCSI) appendix B.4 and the usual check value.
CHECK_VALUES = [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
]


@pytest.mark.parametrize("crc", CRC_FUNCS)
@pytest.mark.parametrize("data,expected", CHECK_VALUES)
def test_crc_check_values(crc, data, expected):
    assert crc(data) == expected
    assert crc(bytearray(data)) == expected
    assert crc(memoryview(data)) == expected


def test_crc_keyword_arguments():
    assert _native.crc32c(b"456789", crc=_native.crc32c(b"123")) == 0xE3069283
    assert (
        _native.crc32c_portable(data=b"456789", crc=_native.crc32c_portable(b"123")) == 0xE3069283
    )


def test_crc_default_is_zero():
    assert _native.crc32c(b"123456789", 0) == _native.crc32c(b"123456789")
    assert _native.crc32c_portable(b"123456789", 0) == 0xE3069283
    # Extending with nothing returns the incoming crc unchanged.
    assert _native.crc32c(b"", 0xDEADBEEF) == 0xDEADBEEF
    assert _native.crc32c_portable(b"", 0xDEADBEEF) == 0xDEADBEEF


def test_crc_matches_crcmod_every_small_length_unaligned(oracle):
    rng = random.Random(1234)
    buf = rng.randbytes(2048 + 64)
    view = memoryview(buf)
    for n in range(0, 1100):
        off = (n * 7) % 61  # every alignment, varied
        chunk = view[off : off + n]
        want = oracle(bytes(chunk))
        assert _native.crc32c(chunk) == want, (n, off)
        assert _native.crc32c_portable(chunk) == want, (n, off)


# Sizes around the chunk lengths of the interleaved hardware path
# (3 x 256 B, 3 x 8 KiB, 3 x 128 KiB) and one odd large size.
BOUNDARY_SIZES = [
    767,
    768,
    769,
    2 * 768 + 9,
    24575,
    24576,
    24577,
    24576 + 768 + 5,
    393215,
    393216,
    393217,
    393216 + 24576 + 768 + 13,
    (1 << 20) + 7,
]


def test_crc_matches_crcmod_boundary_sizes(oracle):
    rng = random.Random(99)
    buf = rng.randbytes((1 << 20) + 64)
    view = memoryview(buf)
    for i, n in enumerate(BOUNDARY_SIZES):
        off = (1, 3, 5, 7, 0)[i % 5]
        chunk = view[off : off + n]
        want = oracle(bytes(chunk))
        assert _native.crc32c(chunk) == want, n
        assert _native.crc32c_portable(chunk) == want, n


def test_crc_hardware_matches_portable_large():
    rng = random.Random(5)
    buf = rng.randbytes((16 << 20) + 16)
    view = memoryview(buf)
    for off, n in [
        (0, 16 << 20),
        (3, (16 << 20) + 5),
        (1, (4 << 20) + 1),
        (6, 3 * 131072 * 5 + 77),
    ]:
        chunk = view[off : off + n]
        assert _native.crc32c(chunk) == _native.crc32c_portable(chunk), (off, n)


def test_crc_hardware_matches_portable_random_lengths_and_seeds():
    rng = random.Random(6)
    buf = rng.randbytes(70000)
    view = memoryview(buf)
    for _ in range(400):
        n = rng.randrange(0, 60000)
        off = rng.randrange(0, 64)
        seed = rng.getrandbits(32)
        chunk = view[off : off + n]
        assert _native.crc32c(chunk, seed) == _native.crc32c_portable(chunk, seed)


@pytest.mark.parametrize("crc", CRC_FUNCS)
def test_crc_extend_chaining(crc, oracle):
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randrange(0, 5000)
        data = rng.randbytes(n)
        whole = oracle(data)
        cuts = sorted([0, n] + [rng.randrange(0, n + 1) for _ in range(rng.randrange(0, 6))])
        c = 0
        view = memoryview(data)
        for a, b in zip(cuts, cuts[1:]):
            c = crc(view[a:b], c)
        assert c == whole
    # Extending a crcmod result continues it.
    a, b = b"hello, ", b"world" * 100
    assert crc(b, oracle(a)) == oracle(a + b)


def test_crc_implementation_name():
    impl = _native.crc32c_implementation
    assert impl in ("sse4.2", "armv8-crc", "portable")
    machine = platform.machine().lower()
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return
        flags = set()
        for line in cpuinfo.splitlines():
            if line.startswith(("flags", "Features")):
                flags.update(line.split(":", 1)[1].split())
        if machine in ("x86_64", "amd64") and "sse4_2" in flags:
            assert impl == "sse4.2"
        if machine in ("aarch64", "arm64") and "crc32" in flags:
            assert impl == "armv8-crc"


def _py_mask(c):
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + MASK_DELTA) & 0xFFFFFFFF


def test_mask_known_values():
    assert _native.mask_crc(0) == 0xA282EAD8
    assert _native.unmask_crc(0xA282EAD8) == 0
    # FORMAT.md 5.3: string tensor ["hi", "x"] stores the length checksum
    # bytes 03 71 7c 67 = mask(crc32c(le32(2) + le32(1))).
    lengths = struct.pack("<II", 2, 1)
    masked = _native.mask_crc(_native.crc32c(lengths))
    assert masked == 0x677C7103
    assert struct.pack("<I", masked) == bytes.fromhex("03717c67")
    assert _native.unmask_crc(0x677C7103) == _native.crc32c(lengths)


def test_mask_roundtrip_and_formula():
    rng = random.Random(8)
    values = [0, 1, 0x7FFF, 0x8000, 0xFFFFFFFF, 0x80000000, 0x5D7D1528]
    values += [rng.getrandbits(32) for _ in range(2000)]
    for v in values:
        m = _native.mask_crc(v)
        assert m == _py_mask(v)
        assert 0 <= m <= 0xFFFFFFFF
        assert _native.unmask_crc(m) == v
        assert _native.mask_crc(_native.unmask_crc(v)) == v


# ---------------------------------------------------------------------------
# Snappy: a small raw-format encoder for the tests.


def _varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _literal(chunk, width=None):
    n = len(chunk) - 1
    need = 0 if n < 60 else (n.bit_length() + 7) // 8
    width = need if width is None else max(width, need)
    if width == 0:
        return bytes([n << 2]) + chunk
    return bytes([(59 + width) << 2]) + n.to_bytes(width, "little") + chunk


def _copy1(offset, length):
    assert 4 <= length <= 11 and 0 < offset < 2048
    return bytes([0x01 | ((length - 4) << 2) | ((offset >> 8) << 5), offset & 0xFF])


def _copy2(offset, length):
    assert 1 <= length <= 64 and 0 < offset < 65536
    return bytes([0x02 | ((length - 1) << 2)]) + offset.to_bytes(2, "little")


def _copy4(offset, length):
    assert 1 <= length <= 64 and 0 < offset < (1 << 32)
    return bytes([0x03 | ((length - 1) << 2)]) + offset.to_bytes(4, "little")


def snappy_encode(
    data, copy_kinds=(1, 2, 4), literal_width=None, max_literal=None, find_copies=True
):
    """Greedy raw Snappy encoder. copy_kinds gives the preferred copy element
    kinds, used in turn; a kind that cannot encode a copy falls back to one
    that can. literal_width forces (possibly non-minimal) literal length
    widths; max_literal splits literals; find_copies=False emits only
    literals."""
    data = bytes(data)
    n = len(data)
    out = bytearray(_varint(n))
    turn = [0]

    def emit_literal(chunk):
        step = max_literal or max(len(chunk), 1)
        for s in range(0, len(chunk), step):
            out.extend(_literal(chunk[s : s + step], literal_width))

    def emit_copy(offset, length):
        while length > 0:
            kinds = [copy_kinds[(turn[0] + k) % len(copy_kinds)] for k in range(len(copy_kinds))]
            turn[0] += 1
            for kind in kinds + [2, 4]:
                if kind == 1 and offset < 2048 and length >= 4:
                    size = min(length, 11)
                    out.extend(_copy1(offset, size))
                    break
                if kind == 2 and offset < 65536:
                    size = min(length, 64)
                    out.extend(_copy2(offset, size))
                    break
                if kind == 4:
                    size = min(length, 64)
                    out.extend(_copy4(offset, size))
                    break
            length -= size

    table = {}
    i = lit_start = 0
    while find_copies and i + 4 <= n:
        key = data[i : i + 4]
        j = table.get(key)
        table[key] = i
        if j is None:
            i += 1
            continue
        length = 4
        while i + length < n and data[j + length] == data[i + length]:
            length += 1  # may overlap the copy's own output: offset < length
        if lit_start < i:
            emit_literal(data[lit_start:i])
        emit_copy(i - j, length)
        i += length
        lit_start = i
    if lit_start < n:
        emit_literal(data[lit_start:])
    return bytes(out)


def element_kinds(stream):
    """Walks a well-formed stream; returns the set of element kinds used
    ('lit0'..'lit4' by literal length width, 'copy1', 'copy2', 'copy4') and
    whether any copy overlaps its own output."""
    pos = 0
    while stream[pos] & 0x80:
        pos += 1
    pos += 1
    kinds = set()
    overlap = False
    while pos < len(stream):
        tag = stream[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            width = 0
            if n >= 60:
                width = n - 59
                n = int.from_bytes(stream[pos : pos + width], "little")
                pos += width
            kinds.add("lit%d" % width)
            pos += n + 1
            continue
        if kind == 1:
            length, offset = ((tag >> 2) & 7) + 4, ((tag >> 5) << 8) | stream[pos]
            pos += 1
        elif kind == 2:
            length, offset = (tag >> 2) + 1, int.from_bytes(stream[pos : pos + 2], "little")
            pos += 2
        else:
            length, offset = (tag >> 2) + 1, int.from_bytes(stream[pos : pos + 4], "little")
            pos += 4
        kinds.add({1: "copy1", 2: "copy2", 3: "copy4"}[kind])
        overlap |= offset < length
    assert pos == len(stream)
    return kinds, overlap


def _inputs():
    rng = random.Random(42)
    far_block = rng.randbytes(70000)
    mixed = b"".join(
        rng.choice(
            [
                rng.randbytes(rng.randrange(1, 90)),
                b"abc" * rng.randrange(1, 40),
                bytes(rng.randrange(1, 300)),
            ]
        )
        for _ in range(300)
    )
    return {
        "empty": b"",
        "one": b"x",
        "short": b"abcd",
        "text": b"The quick brown fox jumps over the lazy dog. " * 150,
        "zeros": bytes(20000),
        "random": rng.randbytes(3000),
        "long_literal": rng.randbytes(70000),  # as one literal: 3-byte length
        "far": far_block + b"--" + far_block[:3000],  # offsets >= 65536
        "mixed": mixed,
        "floats": struct.pack("<3000f", *[(i % 37) * 0.25 for i in range(3000)]),
    }


INPUTS = _inputs()
_ENCODED = {}

ENCODINGS = {
    "default": dict(),
    "copy1": dict(copy_kinds=(1,)),
    "copy2": dict(copy_kinds=(2,)),
    "copy4": dict(copy_kinds=(4,)),
    "wide_literals": dict(literal_width=4, max_literal=1000),
    "literal_width2": dict(literal_width=2, copy_kinds=(4, 2, 1)),
    "split_literals": dict(max_literal=7, literal_width=1),
    "literal_only": dict(find_copies=False),
}


def encoded(name, enc):
    """snappy_encode(INPUTS[name], **ENCODINGS[enc]), computed once."""
    key = (name, enc)
    if key not in _ENCODED:
        _ENCODED[key] = snappy_encode(INPUTS[name], **ENCODINGS[enc])
    return _ENCODED[key]


@pytest.mark.parametrize("enc", sorted(ENCODINGS))
@pytest.mark.parametrize("name", sorted(INPUTS))
def test_snappy_roundtrip(name, enc):
    data = INPUTS[name]
    stream = encoded(name, enc)
    assert _native.snappy_decompress(stream, len(data)) == data
    assert _native.snappy_decompress(stream, len(data) + 1000) == data


def test_snappy_encoder_covers_every_element_kind():
    used = set()
    any_overlap = False
    for name, data in INPUTS.items():
        for enc in ENCODINGS:
            if data:
                kinds, overlap = element_kinds(encoded(name, enc))
                used |= kinds
                any_overlap |= overlap
    assert used == {"lit0", "lit1", "lit2", "lit3", "lit4", "copy1", "copy2", "copy4"}
    assert any_overlap
    far_kinds, _ = element_kinds(encoded("far", "default"))
    assert "copy4" in far_kinds  # offsets >= 65536 can only use copy4


# Streams whose output is known byte for byte.
HANDMADE = [
    (b"\x00", b""),
    (b"\x01\x00a", b"a"),
    # "a", then copy2 offset 1 length 64: run-length encoding.
    (b"\x41\x00a\xfe\x01\x00", b"a" * 65),
    # "abcd", then copy1 offset 2 length 6: overlapping pattern.
    (b"\x0a\x0cabcd\x09\x02", b"abcdcdcdcd"),
    # "xyz", then copy4 offset 3 length 3.
    (b"\x06\x08xyz\x0b\x03\x00\x00\x00", b"xyzxyz"),
    # "abcd", then copy4 offset 1 length 4.
    (b"\x08\x0cabcd\x0f\x01\x00\x00\x00", b"abcddddd"),
    # Non-minimal literal lengths: 1, 2, 3 and 4 length bytes for 3 bytes.
    (b"\x03\xf0\x02abc", b"abc"),
    (b"\x03\xf4\x02\x00abc", b"abc"),
    (b"\x03\xf8\x02\x00\x00abc", b"abc"),
    (b"\x03\xfc\x02\x00\x00\x00abc", b"abc"),
    # copy1 with the high offset bits in the tag: offset 0x100 + 0 = 256.
    (
        _varint(260) + _literal(bytes(range(256))) + bytes([0x01 | (1 << 5), 0x00]),
        bytes(range(256)) + bytes(range(4)),
    ),
    # Multi-byte preamble (300 = ac 02), literal 44 + copy2 offset 44 len 64 x4 + len 0.
    (
        b"\xac\x02"
        + _literal(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH")
        + _copy2(44, 64) * 4,
        (b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH" * 7)[:300],
    ),
]


@pytest.mark.parametrize("stream,expected", HANDMADE)
def test_snappy_handmade_streams(stream, expected):
    assert _native.snappy_decompress(stream, len(expected)) == expected


def test_snappy_max_output_boundary():
    data = INPUTS["text"]
    stream = snappy_encode(data)
    assert _native.snappy_decompress(stream, len(data)) == data
    with pytest.raises(tfckpt.CorruptCheckpointError, match="declared length exceeds limit"):
        _native.snappy_decompress(stream, len(data) - 1)
    assert _native.snappy_decompress(b"\x00", 0) == b""


HOSTILE = [
    # (stream, max_output, reason substring)
    (b"", 10, "bad length preamble"),
    (b"\x80", 10, "bad length preamble"),
    (b"\xff\xff\xff\xff\x1f", 10, "bad length preamble"),  # > 32 bits
    (b"\xff\xff\xff\xff\xff\x01", 10, "bad length preamble"),  # 6-byte varint
    (b"\xff\xff\xff\xff\x0f", 10, "declared length exceeds limit"),  # 2^32-1
    (b"\xff\xff\xff\xff\x0f\xfc\xff\xff\xff\xffab", 1 << 20, "declared length exceeds limit"),
    (b"\x05\x10ab", 10, "truncated literal"),  # literal of 5, 2 present
    (b"\x05\xf0", 10, "truncated literal"),  # missing length byte
    (b"\x05\xfc\xfe\xff\xff\xffabc", 10, "truncated literal"),  # 2^32 - 1 bytes claimed
    (b"\x02\x08abc", 10, "literal exceeds declared length"),
    (b"\x05\x08abc", 10, "output length mismatch"),  # stops short
    (b"\x02\x00a", 10, "output length mismatch"),
    (b"\x08\x0cabcd\x0e\x00\x00", 10, "copy offset out of range"),  # offset 0
    (b"\x08\x0cabcd\x01\x00", 10, "copy offset out of range"),  # copy1 offset 0
    (b"\x08\x0cabcd\x0e\x05\x00", 10, "copy offset out of range"),  # past output
    (b"\x08\x0cabcd\x13\xff\xff\xff\xff", 10, "copy offset out of range"),
    (b"\x08\x00a\x01\x02", 10, "copy offset out of range"),  # offset 2 > 1 produced
    (b"\x08\x0e\x01\x00", 10, "copy offset out of range"),  # copy before any output
    (b"\x08\x0cabcd\x12\x04\x00", 10, "copy exceeds declared length"),  # len 5 > 4 left
    (b"\x08\x0cabcd\x01", 10, "truncated copy"),
    (b"\x08\x0cabcd\x02\x01", 10, "truncated copy"),
    (b"\x08\x0cabcd\x03\x01\x00\x00", 10, "truncated copy"),
]


@pytest.mark.parametrize("stream,max_output,reason", HOSTILE)
def test_snappy_hostile_streams_raise(stream, max_output, reason):
    with pytest.raises(tfckpt.CorruptCheckpointError, match=reason):
        _native.snappy_decompress(stream, max_output)


def test_snappy_error_class():
    assert issubclass(tfckpt.CorruptCheckpointError, tfckpt.CheckpointError)
    with pytest.raises(tfckpt.CheckpointError):
        _native.snappy_decompress(b"\x05\x10ab", 10)


def test_snappy_huge_claim_fails_without_allocating():
    # A 5-byte preamble claiming 4 GiB - 1 with a generous limit must fail
    # (the input cannot produce that much) instead of allocating 4 GiB.
    with pytest.raises(tfckpt.CorruptCheckpointError):
        _native.snappy_decompress(b"\xff\xff\xff\xff\x0f\x00a", 1 << 40)


def test_snappy_every_truncation_fails():
    data = INPUTS["mixed"][:4000]
    stream = snappy_encode(data)
    for cut in range(len(stream)):
        with pytest.raises(tfckpt.CorruptCheckpointError):
            _native.snappy_decompress(stream[:cut], len(data))
    # Trailing garbage after a complete stream is also rejected.
    with pytest.raises(tfckpt.CorruptCheckpointError):
        _native.snappy_decompress(stream + b"\x00z", len(data))


def test_snappy_mutations_never_misbehave():
    rng = random.Random(11)
    data = INPUTS["mixed"][:1500]
    base = snappy_encode(data)
    accepted = 0
    for _ in range(3000):
        s = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            s[rng.randrange(len(s))] = rng.randrange(256)
        declared = 0
        for k, b in enumerate(s[:5]):  # the varint32 preamble, if well-formed
            declared |= (b & 0x7F) << (7 * k)
            if not b & 0x80:
                break
        try:
            out = _native.snappy_decompress(bytes(s), 1 << 16)
        except tfckpt.CorruptCheckpointError:
            continue
        accepted += 1
        assert len(out) == declared
    assert accepted > 0  # some mutations (e.g. inside literals) stay valid


# A stream made once by the reference compressor (snappy via cramjam 2.x, compress_raw)
# from REFERENCE_INPUT: real copies of every length class, not only this file's encoder.
REFERENCE_INPUT = (
    b"model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE " * 6 + bytes(range(256)) + b"\x00" * 200
)
REFERENCE_STREAM = bytes.fromhex(
    "dc05b86d6f64656c2f64656e73652f6b65726e656c2f2e415454524942555445532f5641524941424c455f56414c5545206dfe2e00fe2e00fe2e00922e00f40e01000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000000000000000000000000000000fe0900fe0900e20900"
)


def test_snappy_stream_from_reference_compressor():
    assert _native.snappy_decompress(REFERENCE_STREAM, len(REFERENCE_INPUT)) == REFERENCE_INPUT
    with pytest.raises(tfckpt.CorruptCheckpointError):
        _native.snappy_decompress(REFERENCE_STREAM[:-3], len(REFERENCE_INPUT))


def test_crc_of_a_file_range_on_threads_and_combined(oracle, tmp_path):
    """core.crc32c_file (pread outside the GIL, a large range split between threads, the
    parts' CRCs combined) gives crcmod's CRC of the range, the native core and the twin
    alike; a file that ends early gives a short count, never a fault; a bad descriptor is an
    OSError."""
    import os

    from tfckpt import _pycore

    rng = random.Random(7)
    data = rng.randbytes(40 << 20) + bytes(3 << 20) + rng.randbytes(12345)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        cases = [(0, len(data), 2), (7, len(data) - 7, 3), (123, 17 << 20, 4), (5, 100, 2)]
        cases += [(0, 0, 2), (len(data) - 10, 10, 2)]
        for offset, size, threads in cases:
            want = oracle(data[offset : offset + size])
            assert _native.crc32c_file(fd, offset, size, threads) == (want, size)
        # The twin on small ranges (it is slow): the same answers.
        for offset, size in [(0, 1000), (999, 70000), (len(data) - 10, 10)]:
            want = (oracle(data[offset : offset + size]), size)
            assert _pycore.crc32c_file(fd, offset, size, 2) == want
        # Past the end: the bytes that are there, and how many.
        tail = len(data) - (1 << 20)
        for core in (_native, _pycore):
            assert core.crc32c_file(fd, tail, 2 << 20, 2) == (oracle(data[tail:]), 1 << 20)
        assert _native.crc32c_file(fd, 1 << 20, len(data), 2) == (
            oracle(data[1 << 20 :]),
            len(data) - (1 << 20),
        )
    finally:
        os.close(fd)
    for core in (_native, _pycore):
        with pytest.raises(OSError):
            core.crc32c_file(fd, 0, 10, 1)
    for _ in range(200):
        a, b = rng.randbytes(rng.randint(0, 3000)), rng.randbytes(rng.randint(0, 3000))
        for core in (_native, _pycore):
            assert core.crc32c_combine(oracle(a), oracle(b), len(b)) == oracle(a + b)
