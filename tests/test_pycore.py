"""The pure-Python twin of the native core (tfckpt/_pycore/) against the native core.

* Selection: ``tfckpt.implementation``, ``TFCKPT_IMPLEMENTATION=python``, the automatic
  fallback when the extension cannot be imported.
* The primitives, on the corpus and on random inputs: CRC32C (also against crcmod), masks,
  dtype sizes, Snappy, slice keys, string and variant payloads, tables, entries, MappedFile.
* The named rows of ``Index`` (header, entry, listing, totals): the same names and the same
  values, field by field, on every corpus index.
* The whole reader API on every corpus checkpoint, in a child process per implementation:
  keys, entries, values (as digests), slices, the object graph, ``tfckpt verify``.
* A differential fuzz test (fixed seed, about 10 s): mutated real and crafted index files and
  payloads; both implementations must reject an input with the same error class, or accept
  it and say the same about it (fuzz/differential.py holds the machinery; the atheris
  harness there runs the same checks).
* Regressions (tests/regressions/*.bin + .json): inputs where the native core differs from
  TensorFlow and the twin follows TensorFlow.  These fail until csrc/ is fixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import random
import struct
import subprocess
import sys
import time
from typing import Dict, List

import pytest

import tfckpt
from tfckpt import _pycore as PY
from tfckpt._pycore import bundle as PY_bundle
from tfckpt._pycore import mapped_file as PY_mapped_file
from tfckpt.errors import CheckpointError, ChecksumMismatchError, CorruptCheckpointError

TESTS_DIR = pathlib.Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent
REGRESSIONS = TESTS_DIR / "regressions"
sys.path.insert(0, str(ROOT / "fuzz"))
sys.path.insert(0, str(TESTS_DIR))

import differential as D  # noqa: E402


@pytest.fixture(scope="module")
def native():
    if tfckpt.implementation != "native":
        pytest.skip("the native extension is not the implementation in use")
    return tfckpt._native


def _run_python(code: str, env_extra: Dict[str, str], timeout: float = 60):
    env = dict(os.environ)
    env.pop("TFCKPT_IMPLEMENTATION", None)
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(ROOT),
    )


# ---------------------------------------------------------------------------------------------
# selection


def test_implementation_attribute():
    assert tfckpt.implementation in ("native", "python")
    assert tfckpt.crc32c_implementation == tfckpt._native.crc32c_implementation
    assert sys.modules["tfckpt._native"] is tfckpt._native
    if tfckpt.implementation == "python":
        assert tfckpt._native is PY


def test_environment_variable_forces_the_twin():
    code = (
        "import sys, tfckpt, tfckpt.reader, tfckpt.storage, tfckpt._pycore as P\n"
        "assert tfckpt.implementation == 'python', tfckpt.implementation\n"
        "assert tfckpt.crc32c_implementation == 'python'\n"
        "assert sys.modules['tfckpt._native'] is P and tfckpt._native is P\n"
        "assert tfckpt._core.core is P and tfckpt.reader.core is P and tfckpt.storage.core is P\n"
        "from tfckpt import _native; assert _native is P\n"
        "files = [getattr(m, '__file__', None) or '' for m in list(sys.modules.values())]\n"
        "assert not [f for f in files if '_native.' in f], 'the extension was loaded'\n"
        "print('ok')"
    )
    p = _run_python(code, {"TFCKPT_IMPLEMENTATION": "python"})
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_falls_back_to_the_twin_with_a_runtime_warning_when_the_extension_does_not_import():
    code = (
        "import sys, warnings\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tfckpt._native':\n"
        "            raise ImportError('no extension here')\n"
        "sys.meta_path.insert(0, Block())\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import tfckpt\n"
        "assert tfckpt.implementation == 'python'\n"
        "assert [w.category.__name__ for w in caught] == ['RuntimeWarning'], caught\n"
        "print(tfckpt.implementation)\n"
        "print(caught[0].message)"
    )
    p = _run_python(code, {})
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert out[0] == "python"
    assert out[1].startswith("tfckpt: the native extension cannot be imported (no extension here)")
    assert "TFCKPT_IMPLEMENTATION=python" in out[1]
    assert p.stderr == ""
    # Asked for by name, the twin is chosen quietly.
    p = _run_python(
        "import tfckpt; print(tfckpt.implementation)", {"TFCKPT_IMPLEMENTATION": "python"}
    )
    assert p.returncode == 0 and p.stdout.strip() == "python" and p.stderr == "", p.stderr


def test_native_can_be_required_and_bad_values_are_refused():
    import importlib.machinery

    built = any(
        (ROOT / "tfckpt" / f"_native{suffix}").exists()
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )
    p = _run_python(
        "import tfckpt; print(tfckpt.implementation)", {"TFCKPT_IMPLEMENTATION": "native"}
    )
    if built:
        assert p.returncode == 0 and p.stdout.strip() == "native", p.stderr
    else:
        assert p.returncode != 0 and "ImportError" in p.stderr
    p = _run_python("import tfckpt", {"TFCKPT_IMPLEMENTATION": "fortran"})
    assert p.returncode != 0
    assert "TFCKPT_IMPLEMENTATION must be 'native' or 'python'" in p.stderr


def _write_with(core, prefix: str, big_endian: bool, max_shard_bytes: int) -> Dict[str, bytes]:
    """Every kind of entry through one core's BundleWriter; the files' bytes by name."""
    import numpy as np

    w = core.BundleWriter(prefix, max_shard_bytes, big_endian)
    w.add("b/f32", 1, (2, 3), np.arange(6, dtype=np.float32).tobytes())
    w.add("a/empty", 9, (0, 4), b"")
    w.add_strings("s/text", (3,), [b"", b"abc", b"\xff" * 300])
    w.add_variants("v/var", (2,), [b"\x0a\x03abc", b""])
    w.add_slice_meta("p/part", 3, (4, 2), [(0, 2), (0, -1)])
    w.add("p/part\x00", 3, (2, 2), b"\x01" * 16)  # an ordinary key that sorts beside it
    w.add_raw(
        PY.slice_key("p/part", [(0, 2), (0, -1)]),
        3,
        (2, 2),
        b"\x02" * 16,
        PY.mask_crc(PY.crc32c(b"\x02" * 16)),
    )
    w.add_slice_meta("p/part", 3, (4, 2), [(2, 2), (0, -1)])
    w.add(PY.slice_key("p/part", [(2, 2), (0, -1)]), 3, (2, 2), b"\x03" * 16)
    assert w.finish() >= 1
    directory = pathlib.Path(prefix).parent
    return {f.name: f.read_bytes() for f in sorted(directory.iterdir())}


@pytest.mark.parametrize("big_endian,max_shard_bytes", [(False, 0), (True, 0), (False, 20)])
def test_the_twin_writes_what_the_native_writer_writes(tmp_path, big_endian, max_shard_bytes):
    """The pure-Python BundleWriter: the same files, byte for byte, as csrc/writer.cc."""
    native = pytest.importorskip("tfckpt._native")
    if native is PY:
        pytest.skip("the native extension is not built")
    (tmp_path / "n").mkdir()
    (tmp_path / "p").mkdir()
    expected = _write_with(native, str(tmp_path / "n" / "ck"), big_endian, max_shard_bytes)
    got = _write_with(PY, str(tmp_path / "p" / "ck"), big_endian, max_shard_bytes)
    assert got == expected


def test_the_twin_writer_refuses_what_the_native_one_refuses(tmp_path):
    w = PY.BundleWriter(str(tmp_path / "x"))
    w.add("k", 1, (1,), b"\0\0\0\0")
    with pytest.raises(tfckpt.InvalidArgumentError, match="Adding duplicate key: k"):
        w.add("k", 1, (1,), b"\0\0\0\0")
    with pytest.raises(ChecksumMismatchError, match="refusing to copy damaged data"):
        w.add_raw("r", 1, (1,), b"\1\0\0\0", 12345)
    assert os.listdir(tmp_path) == []  # the failure removed every temporary file
    with pytest.raises(tfckpt.InvalidArgumentError, match="failed earlier|closed"):
        w.add("z", 1, (1,), b"\0\0\0\0")


# ---------------------------------------------------------------------------------------------
# primitives


def test_crc32c_known_values_and_crcmod():
    import crcmod.predefined

    ref = crcmod.predefined.mkCrcFun("crc-32c")
    assert PY.crc32c(b"123456789") == 0xE3069283
    assert PY.crc32c(b"456789", PY.crc32c(b"123")) == 0xE3069283
    assert PY.crc32c(b"", 0xDEADBEEF) == 0xDEADBEEF
    assert PY.crc32c_portable is PY.crc32c
    rng = random.Random(7)
    for n in list(range(0, 70)) + [255, 256, 1000, 4097, 65536 + 3]:
        data = bytes(rng.randrange(256) for _ in range(n))
        seed = rng.randrange(1 << 32)
        assert PY.crc32c(data) == ref(data), n
        assert PY.crc32c(data, seed) == ref(data, seed), n
        # every buffer the reader hands over: bytes, bytearray, memoryview slices, numpy
        mv = memoryview(b"xx" + data)[2:]
        assert PY.crc32c(mv) == PY.crc32c(bytearray(data)) == ref(data)
    import numpy as np

    arr = np.arange(100, dtype=np.float32)
    assert PY.crc32c(arr) == ref(arr.tobytes())


def test_crc32c_and_masks_equal_native(native):
    rng = random.Random(8)
    for n in (0, 1, 7, 8, 9, 63, 64, 1000, 100003):
        data = os.urandom(n)
        seed = rng.randrange(1 << 32)
        assert (
            PY.crc32c(data, seed) == native.crc32c(data, seed) == native.crc32c_portable(data, seed)
        )
    for v in [0, 1, 0xA282EAD8, 0xFFFFFFFF] + [rng.randrange(1 << 32) for _ in range(1000)]:
        assert PY.mask_crc(v) == native.mask_crc(v)
        assert PY.unmask_crc(v) == native.unmask_crc(v)
        assert PY.unmask_crc(PY.mask_crc(v)) == v
    with pytest.raises(TypeError):
        PY.mask_crc(-1)


def test_dtype_sizes_equal_native(native):
    assert PY.dtype_sizes == list(native.dtype_sizes)


def test_snappy_round_trips_equal_native(native):
    rng = random.Random(9)
    for raw in [
        b"",
        b"a",
        b"abcd" * 100,
        bytes(range(256)) * 10,
        os.urandom(3000),
        b"x" * 70000,
        bytes(rng.randrange(3) for _ in range(5000)),
    ]:
        stream = D.snappy_compress(raw, rng)
        assert PY.snappy_decompress(stream, len(raw)) == raw
        assert native.snappy_decompress(stream, len(raw)) == raw
        if raw:
            for cls_of in (PY, native):
                with pytest.raises(CorruptCheckpointError, match="corrupted compressed block"):
                    cls_of.snappy_decompress(stream, len(raw) - 1)
    # A 4-byte literal length of 0xffffffff: length + 1 wraps in 32 bits (a 0-byte literal),
    # as in the reference decoder (tests/test_regressions.py)
    for stream, want in [
        ("00fcffffffff", b""),
        ("01fcffffffff0061", b"a"),
        ("02fcffffffff0061fcffffffff0062", b"ab"),
    ]:
        for core in (PY, native):
            assert core.snappy_decompress(bytes.fromhex(stream), len(want) + 3) == want


def test_slice_keys_equal_native(native):
    rng = random.Random(10)
    values = [
        0,
        1,
        -1,
        63,
        64,
        -64,
        -65,
        127,
        128,
        8191,
        8192,
        2**40 - 3,
        2**62,
        2**63 - 1,
        -(2**63),
        -(2**62) - 1,
    ]
    values += [rng.choice([1, -1]) * rng.getrandbits(rng.randint(0, 63)) for _ in range(500)]
    for i in range(len(values) - 1):
        extents = [(values[i], values[i + 1]), (abs(values[i + 1]) % 1000, -1)]
        name = bytes(rng.choice([0, 0xFF, 0x61, 0x2F]) for _ in range(rng.randint(0, 5)))
        key = PY.slice_key(name, extents)
        assert key == native.slice_key(name, extents)
        assert PY.decode_slice_key(key) == native.decode_slice_key(key)
    # FORMAT.md 6.3 worked examples, checked against keys TensorFlow wrote
    for v, enc in [
        (63, "bf"),
        (64, "c040"),
        (71, "c047"),
        (10**6, "ef4240"),
        (2 * 10**6, "f01e8480"),
        (2**40 - 3, "fcfffffffffd"),
        (-65, "3fbf"),
        (2**62, "ffc04000000000000000"),
        (-(2**63), "003f8000000000000000"),
        (2**63 - 1, "ffc07fffffffffffffff"),
    ]:
        assert PY_bundle._signed_num_increasing(v).hex() == enc, v
    assert (
        PY.slice_key("scope/pv", [(0, 3), (0, 3)])
        == b"\x00scope/pv\x00\x01\x01\x02\x80\x83\x80\x83"
    )
    assert PY.slice_key(b"a\xffb", []) == b"\x00a\xff\x00b\x00\x01\x00"


def test_build_table_and_serialize_entry_equal_native(native):
    rng = random.Random(11)
    for trial in range(60):
        n = rng.choice([0, 1, 2, 17, 200])
        keys = sorted(
            {bytes(rng.randrange(256) for _ in range(rng.randint(0, 12))) for _ in range(n)}
        )
        items = [
            (k, bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 100, 700]))))
            for k in keys
        ]
        block_size = rng.choice([16, 100, 1024, 262144])
        interval = rng.choice([1, 2, 16])
        assert PY.build_table(items, block_size, interval) == native.build_table(
            items, block_size, interval
        ), trial
    for trial in range(300):
        dims = [rng.choice([0, 1, 5, 2**40]) for _ in range(rng.randint(0, 4))]
        slices = [
            [(rng.choice([0, 3]), rng.choice([-1, 0, 2])) for _ in dims]
            for _ in range(rng.choice([0, 0, 2]))
        ]
        args = (
            rng.choice([0, 1, 7, 21]),
            dims,
            rng.choice([0, 2]),
            rng.choice([0, 99]),
            rng.choice([0, 16, 2**33]),
            rng.choice([0, 0xA282EAD8]),
            slices,
        )
        assert PY.serialize_entry(*args) == native.serialize_entry(*args), args


def _scan_index(core) -> object:
    """An index for the scan sums: a partitioned tensor with its two slices (hidden), a
    string, a bad entry, and sizes and element counts whose sums leave int64's range."""
    import craft

    big = 2**62
    entries = [
        ("a/big", craft.entry(1, [big], size=big)),
        ("b/big", craft.entry(1, [big], size=big)),
        ("c/big", craft.entry(1, [big], size=big)),
        ("d/str", craft.entry(7, [2], size=9)),
        ("e/bad", craft.entry(1, [-3])),
        ("f/odd", craft.entry(99, [1], size=1)),
        ("p", craft.entry(1, [4], slices=[[(0, 2)], [(2, 2)]])),
        (craft.slice_key("p", [(0, 2)]), craft.entry(1, [2], size=8)),
        (craft.slice_key("p", [(2, 2)]), craft.entry(1, [2], offset=8, size=8)),
    ]
    items = sorted((craft._b(k), v) for k, v in entries)
    data = craft.table([(b"", craft.header())] + items)
    return core.Index(data, "sums.index")


def test_scan_totals_and_key_records_equal_native(native):
    from tfckpt.scanning import KeyRecord
    from tfckpt.scanning.describe import DTYPE_NAME_CACHE as _DTYPE_NAMES
    from tfckpt.scanning.describe import dtype_name as _dtype_name

    big = 2**62
    for core in (native, PY):
        idx = _scan_index(core)
        # listed: 7 keys (slices hidden); the bad entry counts as an error, not parameters;
        # data bytes: the big ones, the string, f/odd and the two slices, not the partitioned
        assert idx.totals() == (
            7,
            3 * big + 2 + 1 + 4,
            1,
            1,
            {1: 5, 7: 1, 99: 1},
            3 * big + 9 + 1 + 16,
        ), core
        recs = idx.key_records(KeyRecord, ("key", "LOC", "NAME"), _DTYPE_NAMES, _dtype_name)
        assert [type(r) for r in recs] == [KeyRecord] * 7
        assert [r.key for r in recs] == ["a/big", "b/big", "c/big", "d/str", "e/bad", "f/odd", "p"]
        a, d, e, f, p = recs[0], recs[3], recs[4], recs[5], recs[6]
        assert a == ("key", "LOC", "NAME", "a/big", "float32", (big,), big, big, False, "ok", None)
        assert (d.dtype, d.shape, d.parameters, d.bytes) == ("string", (2,), 2, 9)
        assert (e.status, e.error is not None, e.shape) == ("error", True, (-3,))
        assert (f.dtype, f.ok) == (_dtype_name(99), True)
        assert (p.partitioned, p.parameters, p.bytes) == (True, 4, 0)
        for bad in (list, dict, type("WithDict", (tuple,), {})):
            with pytest.raises(TypeError, match="tuple subclass"):
                idx.key_records(bad, (), _DTYPE_NAMES, _dtype_name)
    # Records of plain values are out of the garbage collector's sight, as CPython leaves
    # such plain tuples; with another object in the lead they stay in sight.
    import gc

    idx = _scan_index(native)
    assert not any(
        gc.is_tracked(r)
        for r in idx.key_records(KeyRecord, ("key", "L", None), _DTYPE_NAMES, _dtype_name)
    )
    assert all(
        gc.is_tracked(r)
        for r in idx.key_records(KeyRecord, ("key", [], 1), _DTYPE_NAMES, _dtype_name)
    )


def test_small_files_are_read_and_big_ones_mapped_natively(native, tmp_path):
    """The native MappedFile reads a file of up to 64 KiB whose size it does not track (an
    index) instead of mapping it; the bytes and the API are the same either way."""
    for size in (10, 64 << 10, (64 << 10) + 1):
        p = tmp_path / f"f{size}"
        p.write_bytes((bytes(range(256)) * (size // 256 + 1))[:size])
        for track in (False, True):
            f = native.MappedFile(str(p), track_size=track)
            assert (len(f), f.size, f.current_size()) == (size, size, size)
            assert bytes(memoryview(f)) == p.read_bytes()
            f.will_need(0, size)
            view = memoryview(f)[1:4]
            del f
            assert bytes(view) == bytes([1, 2, 3])
    # a small file read is a copy: a later change of the file does not show
    p = tmp_path / "f10"
    f = native.MappedFile(str(p))
    p.write_bytes(b"x" * 10)
    assert bytes(memoryview(f)) == bytes(range(10))


@pytest.mark.parametrize("mapped", [False, True], ids=["read", "mapped"])
def test_mapped_file(tmp_path, monkeypatch, mapped):
    # Before Python 3.13, files under 64 MiB are read, bigger ones mapped: test both ways.
    monkeypatch.setattr(PY_mapped_file, "_READ_BELOW", 0 if mapped else 1 << 20)
    monkeypatch.setattr(
        PY_mapped_file,
        "_MAP_KEEPS_NO_DESCRIPTOR",
        PY_mapped_file._MAP_KEEPS_NO_DESCRIPTOR and mapped,
    )
    p = tmp_path / "f.bin"
    p.write_bytes(b"0123456789")
    f = PY.MappedFile(str(p))
    assert isinstance(f, PY.MappedFile) == mapped
    assert (len(f), f.size, f.path, f.current_size()) == (10, 10, str(p), 10)
    assert bytes(memoryview(f)[2:5]) == b"234"
    assert memoryview(f).readonly
    f.will_need(0, 100)
    f.will_need(100, 5)
    view = memoryview(f)[3:6]
    del f
    assert bytes(view) == b"345"  # views keep the mapping alive
    t = PY.MappedFile(str(p), track_size=True)
    os.truncate(p, 4)
    assert t.current_size() == 4 and t.size == 10
    p.unlink()
    assert t.current_size() == 0
    p.write_bytes(b"other file")  # a different file at the path: the mapping is intact
    assert t.current_size() == 10
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    e = PY.MappedFile(str(empty), track_size=True)
    assert (len(e), e.size, e.path, e.current_size(), bytes(memoryview(e))) == (
        0,
        0,
        str(empty),
        0,
        b"",
    )
    e.will_need(0, 10)
    with pytest.raises(FileNotFoundError):
        PY.MappedFile(str(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        PY.MappedFile(str(tmp_path))
    assert PY.MappedFile(p).path == str(p)  # os.PathLike
    assert PY.MappedFile(os.fsencode(str(p))).path == str(p)  # bytes


def test_small_file_reads_and_identities(tmp_path):
    """read_small_file and file_identity (the reader's open and pin in one call each), in
    both cores: bytes and identities as os reads them; None for anything else, at once."""
    small = tmp_path / "small"
    small.write_bytes(b"0123456789")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    fifo = tmp_path / "fifo"  # must not block: opened non-blocking, refused as no file
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(small)
    st = os.stat(small)
    identity = (st.st_dev, st.st_ino, 10, st.st_mtime_ns)
    for core in _cores_in_use():
        read, ident = core.read_small_file, core.file_identity
        assert read(str(small), 10) == b"0123456789"
        assert read(small, 64) == read(os.fsencode(str(small)), 64) == b"0123456789"
        assert read(str(link), 10) == b"0123456789"
        assert read(str(empty), 0) == b""
        for path in (tmp_path / "missing", tmp_path, fifo, str(small) + "\0x"):
            assert read(str(path), 1 << 20) is None, (core, path)
            assert ident(str(path)) is None, (core, path)
        assert read(str(small), 9) is None  # over the limit
        assert ident(str(small)) == ident(str(link)) == ident(small) == identity
        assert ident(str(empty))[2] == 0


def test_mapped_files_hold_no_descriptors(tmp_path):
    """Like the native core, a reader of thousands of checkpoints must not run out of file
    descriptors: small files are read (or, from Python 3.13, mapped without a descriptor)."""
    p = tmp_path / "f.bin"
    p.write_bytes(bytes(1000))
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    files = [PY.MappedFile(str(p)) for _ in range(300)]
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) - before < 5
    del files


def test_slice_keys_of_a_long_name_are_hidden_in_linear_time():
    """A 300 KB key whose entry lists 150000 slices (the hostile case of
    tests/test_regressions.py): re-encoding the whole name per slice took minutes."""
    import craft

    name = b"k" * 300_000
    many = b"\x3a\x00" * 150_000  # 150000 more (rank-0) slices, appended to the entry
    entries = [
        (name, craft.entry(1, [2], slices=[[(0, 1)], [(1, 1)]]) + many),
        (craft.slice_key(name, [(0, 1)]), craft.entry(1, [1], size=4)),
        (craft.slice_key(name, [(1, 1)]), craft.entry(1, [1], offset=4, size=4)),
        (craft.slice_key(name, [(0, 2)]), craft.entry(1, [2], size=8)),
    ]
    data = craft.table([(b"", craft.header())] + sorted((craft._b(k), v) for k, v in entries))
    t0 = time.perf_counter()
    idx = PY.Index(data, "long.index")
    assert time.perf_counter() - t0 < 5
    # sorted: the slice keys (0,1), (0,2) (no slice of the entry) and (1,1), then the name
    assert [idx.is_hidden(k) for k in idx.raw_keys()] == [True, False, True, False]
    if tfckpt.implementation == "native":
        assert D.observe_index(tfckpt._native, data) == D.observe_index(PY, data)


def test_empty_and_short_index_files_are_refused_like_native(native, tmp_path):
    empty = tmp_path / "e.index"
    empty.write_bytes(b"")
    for core in (native, PY):
        with pytest.raises(CorruptCheckpointError, match="too short"):
            core.Index(core.MappedFile(str(empty)), str(empty))


# ---------------------------------------------------------------------------------------------
# the corpus


def _corpus_files(corpus) -> List[str]:
    files = []
    for case in corpus.values():
        d = pathlib.Path(case.prefix).parent
        files += sorted(str(f) for f in d.rglob("*.index"))
        if case.kind == "v1" or pathlib.Path(case.prefix).suffix == ".ckpt":
            files.append(case.prefix)
    return sorted(set(f for f in files if os.path.isfile(f)))


def test_corpus_indexes_equal_native(native, corpus):
    files = _corpus_files(corpus)
    assert len(files) >= 15
    accepted = 0
    for f in files:
        data = pathlib.Path(f).read_bytes()
        a, b = D.observe_index(native, data), D.observe_index(PY, data)
        assert a == b, f"{f}: {D._describe(a, b)}"
        accepted += a[0] == "accepted"
        assert D.observe_table(native, data) == D.observe_table(PY, data), f
        # through the mapping, as the reader opens it
        assert D.observe_index(PY, PY.MappedFile(f)) == b
    assert accepted >= len(files) - 2


def test_corpus_payloads_equal_native(native, corpus):
    """decode_strings / decode_variants on every string and variant tensor of the corpus."""
    seen = {7: 0, 21: 0}
    for case in corpus.values():
        if not os.path.exists(case.prefix + ".index"):
            continue
        r = tfckpt.open(case.prefix)
        for key, dtype, shape, size, n, error, sliced in r.listing(hidden=True):
            if dtype not in (7, 21) or error or sliced:
                continue
            e = r.entry(key)
            payload = bytes(r.payload(e))
            seen[dtype] += 1
            for verify in (True, False):
                if dtype == 7:
                    got = PY.decode_strings(payload, n, False, verify, key)
                    want = native.decode_strings(payload, n, False, verify, key)
                else:
                    got = PY.decode_variants(payload, n, verify, key)
                    want = native.decode_variants(payload, n, verify, key)
                assert got == want, key
                if verify:
                    assert got[1] == PY.unmask_crc(e.crc32c), key
            if dtype == 7 and len(payload) > 4:  # a damaged last byte: equal, wrong CRCs
                bad = bytearray(payload)
                bad[-1] ^= 1
                got = _attempt(lambda: PY.decode_strings(bytes(bad), n, False, True, key))
                want = _attempt(lambda: native.decode_strings(bytes(bad), n, False, True, key))
                assert got == want, key
                if isinstance(got, tuple):
                    assert got[1] != PY.unmask_crc(e.crc32c)
    assert seen[7] >= 3 and seen[21] >= 1, seen


def test_payload_checksum_errors_carry_key_and_crcs(native):
    def error_of(call):
        with pytest.raises(ChecksumMismatchError) as info:
            call()
        return type(info.value), info.value.key, info.value.stored, info.value.computed

    strings = bytearray(D.string_payload([b"hi", b"x"]))
    strings[2] ^= 0x40  # the length checksum
    variants = bytearray(D.variant_payload([b"abc", b"de"]))
    variants[-1] ^= 1  # the checksum after the last element
    for decode, args in [
        ("decode_strings", (bytes(strings), 2, False, True, "k")),
        ("decode_strings", (bytes(strings), 2, False, True, b"k")),
        ("decode_variants", (bytes(variants), 2, True, "k")),
    ]:
        got = error_of(lambda: getattr(PY, decode)(*args))
        assert got == error_of(lambda: getattr(native, decode)(*args)), decode
        assert got[1] == "k"
    assert (
        error_of(lambda: PY.decode_strings(bytes(strings), 2, False, True, "k"))[2]
        == struct.unpack_from("<I", strings, 2)[0]
    )


# ---------------------------------------------------------------------------------------------
# named rows: Index.header, entry(key), listing() and totals() are tuples with field names


ROW_FIELDS = {
    "HeaderRow": ("num_shards", "endianness", "producer", "min_consumer", "bad_consumers"),
    "EntryRow": (
        "dtype",
        "shape",
        "shard_id",
        "offset",
        "size",
        "crc32c",
        "slices",
        "num_elements",
    ),
    "ListingRow": ("key", "dtype", "shape", "size", "num_elements", "error", "partitioned"),
    "TotalsRow": ("keys", "elements", "bad", "partitioned", "dtype_counts", "data_bytes"),
}


def _cores_in_use() -> list:
    return [PY] + ([tfckpt._native] if tfckpt.implementation == "native" else [])


def test_row_types_have_the_field_names():
    for core in _cores_in_use():
        for name, fields in ROW_FIELDS.items():
            cls = getattr(core, name)
            assert issubclass(cls, tuple), (core, name)
            assert (cls.__name__, cls._fields, cls.__match_args__) == (name, fields, fields)
    assert set(ROW_FIELDS) <= set(PY.__all__)


def _fields_of(row) -> dict:
    """A row as {field: value}, after checking that unpacking it by position gives the same
    values in the order of its fields."""
    fields = ROW_FIELDS[type(row).__name__]
    assert isinstance(row, tuple) and type(row)._fields == fields
    values = {f: getattr(row, f) for f in fields}
    assert tuple(row) == tuple(values.values())
    return values


def test_rows_equal_native_field_by_field_on_the_corpus(native, corpus):
    files = [f for f in _corpus_files(corpus) if f.endswith(".index")]
    assert len(files) >= 15
    seen = {"partitioned": 0, "slices": 0, "bad_consumers": 0}
    for f in files:
        data = pathlib.Path(f).read_bytes()
        a, b = native.Index(data, f), PY.Index(data, f)
        pairs = [(a.header, b.header), (a.totals(), b.totals())]
        listing = a.listing(hidden=True)
        assert len(listing) == len(b.listing(hidden=True)) == len(a), f
        pairs += zip(listing, b.listing(hidden=True))
        for key, row in zip(a.raw_keys(), listing):
            if row.error is None:
                pairs.append((a.entry(key), b.entry(key)))
        for x, y in pairs:
            assert type(x).__name__ == type(y).__name__, f
            assert _fields_of(x) == _fields_of(y), f"{f}: {x!r} vs {y!r}"
            assert repr(x) == repr(y)
        seen["partitioned"] += sum(row.partitioned for row in listing)
        seen["slices"] += sum(bool(x.slices) for x, _ in pairs if type(x).__name__ == "EntryRow")
        seen["bad_consumers"] += a.header.bad_consumers is not None
    assert all(seen.values()), seen


def test_native_rows_are_struct_sequences(native):
    """Module attributes of tfckpt._native that pickle by name; rows of plain values are
    left out of the garbage collector's sight, as CPython leaves such plain tuples."""
    import gc
    import pickle

    idx = _scan_index(native)
    rows = [idx.header, idx.totals(), idx.entry("p"), idx.listing()[0]]
    for row in rows:
        assert type(row).__module__ == "tfckpt._native"
        assert getattr(native, type(row).__name__) is type(row)
        again = pickle.loads(pickle.dumps(row))
        assert type(again) is type(row) and again == row
    assert [gc.is_tracked(r) for r in rows] == [True, True, True, False]  # list, dict, list


@pytest.mark.parametrize("impl", ["native", "python"])
def test_variant_element_without_room_for_its_checksum(native, impl):
    """Each variant element is followed by a 4-byte checksum. When the last element's bytes
    end fewer than 4 bytes before the end of the payload, its checksum is not there: both
    cores refuse before reading it (never past the payload), verified or not, and the error
    is plain corruption, not a checksum mismatch."""
    core = native if impl == "native" else PY
    good = D.variant_payload([b"abc", b"de"])  # 1+3+4 + 1+2+4 bytes
    items, crc = core.decode_variants(good, 2, True, "k")
    # the CRC covers each length as 8 bytes, the element and its checksum (FORMAT.md)
    hashed = struct.pack("<Q", 3) + good[1:8] + struct.pack("<Q", 2) + good[9:]
    assert items == [b"abc", b"de"] and crc == PY.crc32c(hashed)
    for cut in (1, 2, 3, 4):
        bad = good[:-cut]
        for verify in (True, False):
            with pytest.raises(CorruptCheckpointError) as info:
                core.decode_variants(bad, 2, verify, "k")
            assert type(info.value) is CorruptCheckpointError, (cut, verify, info.value)
            assert (
                str(info.value)
                == f"variant tensor k: element 1 runs past the end of the entry ({len(bad)} bytes)"
            )
    # the first element short of its checksum too
    first = good[: 1 + 3 + 2] + bytes(6)  # room for the count check, not for element 0's CRC
    with pytest.raises(CorruptCheckpointError, match="element 0 runs past the end"):
        core.decode_variants(good[: 1 + 3 + 2], 1, False, "k")
    with pytest.raises(CorruptCheckpointError, match="checksum after Variant 0"):
        core.decode_variants(first, 2, True, "k")  # the CRC read is garbage, caught as such


# -- the whole reader API, in a child process per implementation --------------------------------


def _digest(value) -> str:
    import numpy as np

    h = hashlib.sha256()
    if isinstance(value, np.ndarray):
        h.update(f"{value.dtype.str}{value.shape}".encode())
        if value.dtype == object:
            for item in value.ravel():
                if isinstance(item, bytes):
                    h.update(len(item).to_bytes(8, "little") + item)
                else:  # a Variant
                    h.update(item.type_name.encode() + item.metadata)
                    for t in item.tensors:
                        h.update(_digest(t).encode())
        else:
            h.update(np.ascontiguousarray(value).tobytes())
    else:
        h.update(repr(value).encode())
    return h.hexdigest()[:24]


def _attempt(fn):
    try:
        return fn()
    except CheckpointError as e:
        return {"error": type(e).__name__}


def _reader_report(prefix: str) -> dict:
    """Everything the reader API says about one checkpoint, values as digests."""
    import io

    from tfckpt import cli

    out: dict = {}
    try:
        r = tfckpt.open(prefix)
    except CheckpointError as e:
        return {"open": type(e).__name__}
    out["header"] = repr(r.header)
    out["keys"] = r.keys()
    out["raw_keys"] = [k.hex() for k in r.raw_keys]
    out["listing"] = [list(map(repr, row)) for row in r.listing(hidden=True)]
    values = {}
    for k in r.raw_keys:
        key = k.decode("utf-8", "surrogateescape")
        e = _attempt(lambda: repr(r.entry(k)))
        raw = _attempt(lambda: r.raw_entry(k).hex())
        val = _attempt(lambda: _digest(r.read(k)))
        unverified = _attempt(lambda: _digest(r.read(k, verify=False)))
        part = None
        ent = _attempt(lambda: r.entry(k))
        if isinstance(ent, tfckpt.Entry) and ent.shape and ent.shape[0] >= 2:
            part = _attempt(lambda: _digest(r.read_slice(k, slice(1, ent.shape[0]))))
        ok = _attempt(lambda: r.verify_key(k) or "ok")
        values[key] = [e, raw, val, unverified, part, ok]
    out["values"] = values
    graph = _attempt(lambda: r.object_graph)
    out["object_graph"] = (
        _digest(json.dumps(graph.to_json(), sort_keys=True, default=repr))
        if graph is not None and not isinstance(graph, dict)
        else graph
    )
    buf_out, buf_err = io.StringIO(), io.StringIO()
    code = cli.run(["verify", prefix], buf_out, buf_err)
    out["cli_verify"] = [code, buf_out.getvalue().replace(prefix, "<P>")]
    r.close()
    return out


def _child_main(prefixes: List[str]) -> None:
    report = {
        "implementation": tfckpt.implementation,
        "cases": {p: _reader_report(p) for p in prefixes},
    }
    print(json.dumps(report, sort_keys=True, default=repr))


def _reader_reports(prefixes: List[str], implementation: str) -> dict:
    env = dict(os.environ, TFCKPT_IMPLEMENTATION=implementation, PYTHONFAULTHANDLER="1")
    p = subprocess.run(
        [sys.executable, __file__, "child"],
        input=json.dumps(prefixes),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=str(ROOT),
    )
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads(p.stdout)
    assert report["implementation"] == implementation
    return report["cases"]


def test_whole_reader_api_equal_on_every_corpus_case(native, corpus):
    prefixes = sorted(case.prefix for case in corpus.values())
    t0 = time.perf_counter()
    py = _reader_reports(prefixes, "python")
    seconds = time.perf_counter() - t0
    nat = _reader_reports(prefixes, "native")
    for prefix in prefixes:
        a, b = nat[prefix], py[prefix]
        if a != b:
            for part in sorted(set(a) | set(b)):
                if a.get(part) != b.get(part):
                    if part == "values":
                        diff = {
                            k: (a[part].get(k), b[part].get(k))
                            for k in set(a[part]) | set(b[part])
                            if a[part].get(k) != b[part].get(k)
                        }
                        pytest.fail(f"{prefix}: values differ: {str(diff)[:2000]}")
                    pytest.fail(
                        f"{prefix}: {part} differs: native {str(a.get(part))[:800]} "
                        f"vs python {str(b.get(part))[:800]}"
                    )
    opened = [p for p in prefixes if "values" in nat[p]]
    assert len(opened) >= len(prefixes) - 2
    assert sum(len(nat[p]["values"]) for p in opened) > 4000
    assert seconds < 60


# ---------------------------------------------------------------------------------------------
# differential fuzzing


FUZZ_SECONDS = float(os.environ.get("TFCKPT_FUZZ_SECONDS", "9"))


def _seeds(corpus) -> List[bytes]:
    rng = random.Random(1)
    seeds = [
        pathlib.Path(f).read_bytes()
        for f in _corpus_files(corpus)
        if os.path.getsize(f) < (64 << 10)
    ]
    return seeds + list(D.crafted_tables(rng))


def test_differential_fuzz(native, corpus, tmp_path):
    """Seeded mutations of real and crafted inputs: the two implementations must agree on
    every one."""
    seeds = _seeds(corpus)
    for s in seeds:
        assert D.check_index(s, native)[0] == "accepted"
    rng = random.Random(20240601)
    stats = D.Stats()
    deadline = time.perf_counter() + FUZZ_SECONDS
    n = 0
    while time.perf_counter() < deadline:
        n += 1
        kind = rng.random()
        data = b""
        try:
            if kind < 0.7:
                data = D.mutate_table(rng.choice(seeds), rng, seeds)
                D.check_index(data, native, stats)
            elif kind < 0.8:
                data, count, swap, verify = D.mutate_strings(rng)
                D.check_strings(data, count, swap, verify, native, stats)
            elif kind < 0.87:
                data, count, verify = D.mutate_variants(rng)
                D.check_variants(data, count, verify, native, stats)
            elif kind < 0.94:
                data, max_output = D.mutate_snappy(rng)
                D.check_snappy(data, max_output, native, stats)
            else:
                data = D.mutate_slice_key(rng)
                D.check_slice_key(data, native, stats)
        except D.Disagreement:
            failed = tmp_path / f"disagreement-{n}.bin"
            failed.write_bytes(data)
            raise
    counts = stats.counts
    print(f"\n{n} inputs in {FUZZ_SECONDS:.0f} s: {dict(sorted(counts.items()))}")
    # the mutations reach every outcome, deep parsing included
    for outcome in (
        "index:accepted",
        "index:rejected",
        "strings:accepted",
        "strings:rejected",
        "variants:accepted",
        "variants:rejected",
        "snappy:accepted",
        "snappy:rejected",
        "slice_key:decoded",
        "slice_key:none",
    ):
        assert counts.get(outcome, 0) > 0, (outcome, counts)
    assert n > 2000


def test_mutations_detect_a_changed_rule(native, corpus):
    """The fuzz test would notice a twin that drifts: with the dimension limit off by one,
    disagreements turn up quickly."""
    seeds = _seeds(corpus)
    rng = random.Random(3)
    original = PY_bundle._MAX_DIMS
    PY_bundle._MAX_DIMS = original - 1
    try:
        found = 0
        for _ in range(4000):
            try:
                D.check_index(D.mutate_table(rng.choice(seeds), rng, seeds), native, D.Stats())
            except D.Disagreement:
                found += 1
                break
    finally:
        PY_bundle._MAX_DIMS = original
    assert found


# ---------------------------------------------------------------------------------------------
# regressions: the native core differs from TensorFlow, the twin follows TensorFlow


def _regressions() -> List[pathlib.Path]:
    out = []
    for doc in sorted(REGRESSIONS.glob("*.json")):
        if "expect" in json.loads(doc.read_text()) and doc.with_suffix(".bin").exists():
            out.append(doc)
    return out


def _check_expectation(core, data: bytes, expect: dict) -> None:
    if "rejected" in expect:
        with pytest.raises(CheckpointError) as info:
            core.Index(data, "regression.index")
        assert type(info.value).__name__ == expect["rejected"]
        return
    idx = core.Index(data, "regression.index")
    for key, want in expect.items():
        if want.get("error"):
            with pytest.raises(CorruptCheckpointError):
                idx.entry(key)
            continue
        dtype, shape, shard, offset, size, crc, slices, n = idx.entry(key)
        assert (dtype, list(shape), size) == (want["dtype"], want["shape"], want["size"])


@pytest.mark.parametrize("doc", _regressions(), ids=lambda p: p.stem)
def test_regression_twin_follows_tensorflow(doc):
    spec = json.loads(doc.read_text())
    _check_expectation(PY, doc.with_suffix(".bin").read_bytes(), spec["expect"])


@pytest.mark.parametrize("doc", _regressions(), ids=lambda p: p.stem)
def test_regression_native_follows_tensorflow(native, doc):
    """The native core does what TensorFlow 2.21 does (the .json says what that is)."""
    spec = json.loads(doc.read_text())
    _check_expectation(native, doc.with_suffix(".bin").read_bytes(), spec["expect"])


if __name__ == "__main__" and sys.argv[1:] == ["child"]:
    _child_main(json.load(sys.stdin))
