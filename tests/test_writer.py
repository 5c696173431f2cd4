"""The writer against TensorFlow: byte-identical files, atomic replacement, clear errors.

* Byte for byte: the same tensors given to ``tf.raw_ops.SaveV2`` and to ``tfckpt.Writer`` in
  the same order give identical ``.index`` and ``.data`` files (every dtype, strings, slices,
  an index of several 256 KiB blocks). ``tf.train.Checkpoint.write``/``save`` go through
  MergeBundles; replaying their tensors in data-file order gives identical files too, also
  for MaxShardSizePolicy shards where the shard cuts coincide. Where no replay can be
  identical is pinned down by tests below (``test_where_replays_differ_*``).
* Atomic: an exception, a full disk (RLIMIT_FSIZE in a child process; a small tmpfs where
  mounting is allowed) or SIGKILL at any moment leave either the old or the new checkpoint,
  whole, and no half-written one.
* The Python API: ``write``, streaming ``Writer`` with slices and shard limits, a partitioned
  tensor written from memory-mapped pieces in bounded memory, errors before anything is
  written, the ``checkpoint`` state file.

TensorFlow is the oracle, imported in-process; child processes are used only where the
behaviour is about processes (kills, resource limits, peak memory).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tf_corpus

import tfckpt
from tfckpt import _native


@pytest.fixture(scope="module")
def tf():
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


# ---------------------------------------------------------------------------------------
# helpers


def _files(prefix: str):
    """Suffixes of the files of checkpoint `prefix` (``.index``, ``.data-…``)."""
    base = os.path.basename(prefix)
    return sorted(
        os.path.basename(p)[len(base) :]
        for p in glob.glob(glob.escape(prefix) + ".*")
        if p.endswith(".index") or ".data-" in os.path.basename(p)[len(base) :]
    )


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def assert_same_files(theirs: str, ours: str) -> None:
    """The checkpoints have the same files with the same bytes; on a difference, says where."""
    assert _files(theirs) == _files(ours)
    for suffix in _files(theirs):
        a = _read(theirs + suffix)
        b = _read(ours + suffix)
        if a != b:
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            pytest.fail(
                f"{suffix}: {len(a)} bytes from TensorFlow, {len(b)} from tfckpt; first "
                f"difference at byte {at}: TF {a[at : at + 16].hex()} vs "
                f"tfckpt {b[at : at + 16].hex()}"
            )


def _tensor(tf, name: str, arr: np.ndarray):
    return tf_corpus._to_tensor(tf, name, arr)


def _writer_dtype(name: str):
    """The dtype= tfckpt needs for values of corpus dtype `name` (quantized by name)."""
    return name if name in tf_corpus.QUANT_TYPES else None


def _dtype_cases():
    """(key, array, dtype name) for every saveable dtype: values, a scalar, zero-size and
    rank-3 tensors, as the corpus' dtypes case has them."""
    out = []
    for name, arr in tf_corpus.dtype_test_arrays().items():
        if name == "string":
            empty = np.zeros((0, 3), dtype=object)
            rank3 = np.array([b"%d" % i for i in range(24)], dtype=object).reshape(2, 3, 4)
        else:
            empty = arr[:0].reshape((0, 3))
            rank3 = np.resize(arr, (2, 3, 4))
        for key, a in (
            (f"dt/{name}", arr),
            (f"scalar/{name}", arr[2:3].reshape(())),
            (f"empty/{name}", empty),
            (f"rank3/{name}", rank3),
        ):
            out.append((key, a, name))
    return out


def _savev2(tf, prefix, items):
    """tf.raw_ops.SaveV2 of (key, array, dtype name, shape_and_slice) items, in order."""
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=[k for k, _, _, _ in items],
        shape_and_slices=[s for _, _, _, s in items],
        tensors=[_tensor(tf, n, a) for _, a, n, _ in items],
    )


def _snapshot(directory) -> dict:
    out = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def _run_child(code: str, *args, timeout: float = 120) -> dict:
    """Runs `code` in a fresh Python; it prints one JSON line last."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# byte for byte against SaveV2


@pytest.mark.parametrize("name", tf_corpus.ALL_SAVEABLE_DTYPE_NAMES)
def test_savev2_byte_identical_per_dtype(tf, tmp_path, name):
    items = [(k, a, n, "") for k, a, n in _dtype_cases() if n == name]
    _savev2(tf, str(tmp_path / "tf"), items)
    with tfckpt.Writer(tmp_path / "ours") as w:
        for key, a, n, _ in items:
            w.add(key, a, dtype=_writer_dtype(n))
    assert_same_files(str(tmp_path / "tf"), str(tmp_path / "ours"))


def test_savev2_byte_identical_all_dtypes_and_strings_in_one(tf, tmp_path):
    """Every dtype (float8s, int4/uint4/int2/uint2, float4, quantized, complex, bool,
    bfloat16, half), scalars, zero-size tensors and every kind of string (empty, > 1 MiB,
    binary, unicode, 1/2/3-byte length varints) in one bundle, interleaved."""
    items = [(k, a, n, "") for k, a, n in _dtype_cases()]
    for i, (key, arr) in enumerate(tf_corpus.string_test_arrays().items()):
        items.insert(3 * i + 1, (key, arr, "string", ""))
    assert any(len(x) > (1 << 20) for x in tf_corpus.string_test_arrays()["str/long"])
    _savev2(tf, str(tmp_path / "tf"), items)
    with tfckpt.Writer(tmp_path / "ours") as w:
        for key, a, n, _ in items:
            w.add(key, a, dtype=_writer_dtype(n))
    assert_same_files(str(tmp_path / "tf"), str(tmp_path / "ours"))
    # ... and TensorFlow reads back exactly what was given.
    reader = tf.train.load_checkpoint(str(tmp_path / "ours"))
    for key, a, n, _ in items:
        got = reader.get_tensor(key)
        if n == "string":
            assert np.asarray(got, dtype=object).tolist() == a.tolist(), key
        else:
            assert np.asarray(got).tobytes() == np.ascontiguousarray(a).tobytes(), key


SLICE_CASES = [
    # key, dtype name, full shape, [TF slice spec per slice]
    ("pv", "float32", (5, 3), ["0,3:0,3", "3,2:0,3"]),  # TF1 fixed_size_partitioner
    ("cols", "int64", (4, 6), ["-:0,2", "-:2,4"]),  # "-": a whole dimension
    ("cube", "bool", (2, 3, 4), ["0,1:-:0,4", "1,1:0,3:-"]),
    ("bytes", "uint8", (20000,), ["0,64", "64,8128", "8192,11808"]),  # 1-, 2- and 3-byte starts
    ("c128", "complex128", (6, 2), ["0,1:-", "1,5:-"]),
    ("bf16", "bfloat16", (7, 5), ["0,4:0,5", "4,3:0,5"]),
    ("i4", "int4", (8,), ["4,4", "0,4"]),  # added out of order
    ("q8", "qint8", (6,), ["0,2", "2,4"]),
    ("txt", "string", (3,), ["0,1", "1,2"]),
    ("full", "float32", (2,), ["0,2"]),  # a full slice: a plain key
]


def _slice_value(name, shape, spec, seed):
    bounds = [
        (0, d)
        if part == "-"
        else (int(part.split(",")[0]), int(part.split(",")[0]) + int(part.split(",")[1]))
        for part, d in zip(spec.split(":"), shape)
    ]
    sub = tuple(b - a for a, b in bounds)
    n = int(np.prod(sub))
    if name == "string":
        return np.array([b"s%d-%d" % (seed, i) for i in range(n)], dtype=object).reshape(sub)
    if name == "bool":
        return (np.arange(n) % 3 == seed % 3).reshape(sub)
    if name == "complex128":
        return (np.arange(n) + 1j * seed).reshape(sub)
    base = (
        tf_corpus.QUANT_TYPES.get(name)
        or tf_corpus.FLOAT_TYPES.get(name)
        or tf_corpus.INT_TYPES.get(name)
        or np.float32
    )
    return ((np.arange(n) + seed) % 7).astype(base).reshape(sub)


def test_savev2_slices_byte_identical(tf, tmp_path):
    items, ours = [], []
    for s, (key, name, shape, specs) in enumerate(SLICE_CASES):
        for i, spec in enumerate(specs):
            a = _slice_value(name, shape, spec, 10 * s + i)
            items.append((key, a, name, " ".join(map(str, shape)) + " " + spec))
            ours.append((key, name, shape, spec, a))
        items.append((f"whole{s}", np.float32(s), "float32", ""))
        ours.append((f"whole{s}", "float32", None, None, np.float32(s)))
    _savev2(tf, str(tmp_path / "tf"), items)
    with tfckpt.Writer(tmp_path / "ours") as w:
        for key, name, shape, spec, a in ours:
            if spec is None:
                w.add(key, a)
            else:
                w.add_slice(key, shape, spec, a, dtype=_writer_dtype(name))
    assert_same_files(str(tmp_path / "tf"), str(tmp_path / "ours"))
    r = tfckpt.open(tmp_path / "ours")
    assert not r.entry("full").slices and len(r.entry("bytes").slices) == 3


def test_add_slice_with_numpy_index_is_what_tf1_saver_passes(tf, tmp_path):
    """``np.s_[0:3]`` of a [5,3] tensor gives explicit extents ``0,3:0,3``, exactly the spec
    the TF1 Saver passes for a fixed_size_partitioner partition."""
    full = np.arange(15, dtype=np.float32).reshape(5, 3)
    _savev2(
        tf,
        str(tmp_path / "tf"),
        [("pv", full[:3], "float32", "5 3 0,3:0,3"), ("pv", full[3:], "float32", "5 3 3,2:0,3")],
    )
    with tfckpt.Writer(tmp_path / "ours") as w:
        w.add_slice("pv", (5, 3), np.s_[0:3], full[:3])
        w.add_slice("pv", (5, 3), np.s_[3:], full[3:])
    assert_same_files(str(tmp_path / "tf"), str(tmp_path / "ours"))


def test_savev2_index_of_several_blocks_byte_identical(tf, tmp_path):
    """4000 long keys: data blocks cut at 256 KiB, shortest separators between blocks; plus
    a key of 600 000 bytes, which flushes the block before it (key+value >= 2 block sizes)."""
    names = tf_corpus.big_key_names()
    huge = "m" + "x" * 600_000
    items = [(k, np.float32(i), "float32", "") for i, k in enumerate(names)]
    items.insert(1234, (huge, np.arange(3, dtype=np.int16), "int16", ""))
    _savev2(tf, str(tmp_path / "tf"), items)
    with tfckpt.Writer(tmp_path / "ours") as w:
        for key, a, _, _ in items:
            w.add(key, a)
    assert_same_files(str(tmp_path / "tf"), str(tmp_path / "ours"))
    index = _native.Index(_native.MappedFile(str(tmp_path / "ours.index")), "ours")
    assert index.table_stats["data_blocks"] >= 5


def _crc32c(data: bytes) -> int:
    import crcmod.predefined

    f = crcmod.predefined.mkPredefinedCrcFun("crc-32c")
    return f(data)


def _masked(data: bytes) -> bytes:
    c = _crc32c(data)
    return struct.pack("<I", (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def test_savev2_byte_identical_around_the_buffer_and_hashing_sizes(tf, tmp_path):
    """Payloads below 1 MiB are gathered in the writer's buffer, larger ones are written
    from the array; from 4 MiB on the CRC32C is computed by a second thread beside the
    write. Sizes on each side of both limits, between small ones and in no order of size,
    give the files SaveV2 writes (offsets, CRCs, bytes)."""
    rng = np.random.default_rng(7)
    mib = 1 << 20
    sizes = [3, mib - 4, 5, mib, mib + 4, 7, 4 * mib - 4, 4 * mib, 11, 4 * mib + 4, 9 * mib, 1]
    items = []
    for i, n in enumerate(sizes):
        a = rng.integers(0, 255, size=n, dtype=np.uint8)
        if n % 4 == 0:
            a = a.view(np.float32)
        items.append((f"t{i:02d}", a, "float32" if a.dtype == np.float32 else "uint8", ""))
    _savev2(tf, str(tmp_path / "tf"), items)
    with tfckpt.Writer(tmp_path / "ours") as w:
        for key, a, _, _ in items:
            w.add(key, a)
    assert_same_files(str(tmp_path / "tf"), str(tmp_path / "ours"))


def test_empty_checkpoint(tf, tmp_path):
    """SaveV2 cannot write an empty bundle (its dtypes attribute needs one element), so the
    expectation is assembled by hand from FORMAT.md with an independent CRC32C: one data
    file of 0 bytes (BundleWriter always creates it) and an index holding only the header.
    TensorFlow opens it and lists nothing."""
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="Length for attr 'dtypes' of 0 must be at least minimum 1",
    ):
        tf.raw_ops.SaveV2(
            prefix=str(tmp_path / "tf"),
            tensor_names=tf.constant([], tf.string),
            shape_and_slices=tf.constant([], tf.string),
            tensors=[],
        )
    with tfckpt.Writer(tmp_path / "empty"):
        pass
    assert sorted(os.listdir(tmp_path)) == ["empty.data-00000-of-00001", "empty.index"]
    assert os.path.getsize(tmp_path / "empty.data-00000-of-00001") == 0

    header = bytes.fromhex("08011a020801")  # num_shards 1, version {producer 1}
    data_block = b"\x00\x00\x06" + header + struct.pack("<II", 0, 1)
    meta_block = struct.pack("<II", 0, 1)
    index_block = b"\x00\x00\x02" + bytes([0, len(data_block)]) + struct.pack("<II", 0, 1)
    out = b""
    for block in (data_block, meta_block, index_block):
        out += block + b"\x00" + _masked(block + b"\x00")
    meta_at, index_at = len(data_block) + 5, len(data_block) + 5 + len(meta_block) + 5
    handles = bytes([meta_at, len(meta_block), index_at, len(index_block)])
    out += handles + b"\x00" * (40 - len(handles)) + bytes.fromhex("57fb808b247547db")
    assert _read(tmp_path / "empty.index") == out
    assert tf.train.list_variables(str(tmp_path / "empty")) == []
    assert len(tfckpt.open(tmp_path / "empty")) == 0


# ---------------------------------------------------------------------------------------
# byte for byte against tf.train.Checkpoint (MergeBundles), by replay


def _replay(src: str, dst: str, max_shard_bytes: int = 0) -> None:
    """Writes every tensor of `src` to `dst` in the order of src's data files (slices too),
    from the values tfckpt reads."""
    r = tfckpt.open(src)
    items = []
    for k in r.keys():
        e = r.entry(k)
        if e.slices:
            for s in e.slices:
                sub = r.slice_entry(k, s)
                items.append(((sub.shard_id, sub.offset), k, s))
        else:
            items.append(((e.shard_id, e.offset), k, None))
    items.sort(key=lambda t: t[0])
    with tfckpt.Writer(dst, max_shard_bytes=max_shard_bytes) as w:
        for _, k, s in items:
            e = r.entry(k)
            if s is None:
                w.add(k, r[k], dtype=e.dtype_name)
            else:
                region = tuple(slice(a, b) for a, b in s.bounds(e.shape))
                w.add_slice(k, e.shape, s.spec, r.read_slice(k, region), dtype=e.dtype_name)


def test_checkpoint_write_of_module_byte_identical(tf, tmp_path):
    """tf.train.Checkpoint.write goes through a temporary bundle and MergeBundles; the result
    is what one BundleWriter writes for the same tensors in the same order."""

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
            self.b = tf.Variable(np.zeros(3))
            self.text = tf.Variable("hello")
            self.layers = [
                tf.Variable(np.int64(3)),
                tf.Variable([True, False]),
                {"k.x/y": tf.Variable(np.float16(1.5))},
            ]

    ckpt = tf.train.Checkpoint(model=Model(), step=tf.Variable(np.int32(7)))
    written = ckpt.write(str(tmp_path / "tf"))
    saved = ckpt.save(str(tmp_path / "saved"))  # save(): save_counter and the state file too
    for theirs, name in ((written, "ours_write"), (saved, "ours_save")):
        _replay(theirs, str(tmp_path / name))
        assert_same_files(theirs, str(tmp_path / name))


@pytest.mark.parametrize("variables", ["one_sliced", "sliced_between"])
def test_checkpoint_with_max_shard_size_policy_byte_identical(tf, tmp_path, variables):
    """MaxShardSizePolicy splits tensors into slices over several shards, merged by
    MergeBundles. With the same slices and max_shard_bytes equal to the policy's limit the
    files are identical, including the full entry's shard_id, which MergeBundles leaves at
    the first shard holding one of its slices (``18 04`` for `c` in the second case)."""
    if variables == "one_sliced":
        vs = dict(
            big=tf.Variable(np.arange(2048, dtype=np.float32).reshape(64, 32)),
            small=tf.Variable([1.0, 2.0]),
        )
    else:
        vs = dict(
            a=tf.Variable([1.0, 2.0]),
            big=tf.Variable(np.arange(2048, dtype=np.float32).reshape(64, 32)),
            c=tf.Variable(np.arange(700, dtype=np.float32)),
        )
    opts = tf.train.CheckpointOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(max_shard_size=2048)
    )
    theirs = tf.train.Checkpoint(**vs).write(str(tmp_path / "tf"), options=opts)
    assert tfckpt.open(theirs).header.num_shards >= 5
    _replay(theirs, str(tmp_path / "ours"), max_shard_bytes=2048)
    assert_same_files(theirs, str(tmp_path / "ours"))


REPLAYED_CASES = [
    "dtypes",
    "strings",
    "module_nested",
    "keras_adam",
    "keras_model_only",
    "tf2_optimizer_slots",
    "tf1_partitioned",
    "savedmodel",
    "tf1_savedmodel",
    "lookup_table",
    "big_key_count",
    "name_based_v1_saver_scalar",
    "multi_device_default",
]


@pytest.mark.parametrize("case", REPLAYED_CASES)
def test_corpus_checkpoints_replayed_byte_identical(corpus, tmp_path, case):
    """Every single-shard checkpoint of the corpus (SaveV2, tf.train.Checkpoint.save, TF1
    Saver with partitioned variables, SavedModels, Keras 3, lookup tables) is reproduced
    byte for byte from the values tfckpt reads, added in data-file order."""
    prefix = corpus[case].prefix
    _replay(prefix, str(tmp_path / case))
    assert_same_files(prefix, str(tmp_path / case))


def test_variant_replay_byte_identical(corpus, tmp_path):
    prefix = corpus["data_iterator"].prefix
    _replay(prefix, str(tmp_path / "it"))
    assert_same_files(prefix, str(tmp_path / "it"))


def test_where_replays_differ_max_shard_size_policy_overfills(corpus, tmp_path):
    """Not reproducible by a byte limit: the corpus' MaxShardSizePolicy(2048) checkpoint has
    a shard larger than 2048 bytes (the policy sizes string tensors by an estimate), while
    max_shard_bytes is a strict limit. The shards before it are identical."""
    case = corpus["sharded_policy"]
    theirs = tfckpt.open(case.prefix)
    sizes = [os.path.getsize(theirs.shard_path(i)) for i in range(theirs.header.num_shards)]
    over = [i for i, s in enumerate(sizes) if s > case.extra["max_shard_size"]]
    assert over, sizes
    _replay(case.prefix, str(tmp_path / "ours"), max_shard_bytes=case.extra["max_shard_size"])
    ours = tfckpt.open(tmp_path / "ours")
    assert ours.header.num_shards != len(sizes)
    for i in range(over[0]):
        assert _read(theirs.shard_path(i)) == _read(ours.shard_path(i))
    _assert_same_values(theirs, ours)


def _assert_same_values(theirs, ours) -> None:
    assert theirs.keys() == ours.keys()
    for k in theirs.keys():
        a, b = theirs[k], ours[k]
        assert a.dtype == b.dtype and a.shape == b.shape, k
        assert (a.tolist() == b.tolist()) if a.dtype == object else a.tobytes() == b.tobytes(), k


def test_where_replays_differ_device_shards(corpus, tmp_path):
    """Not reproducible: shards cut by device (a custom ShardingCallback, TF1
    Saver(sharded=True)) follow placement, not size, and the Writer has no "start a shard
    here" call; the replay holds the same values in one shard."""
    for case in ("multi_device", "multi_device_tf1"):
        prefix = corpus[case].prefix
        _replay(prefix, str(tmp_path / case))
        theirs, ours = tfckpt.open(prefix), tfckpt.open(tmp_path / case)
        assert theirs.header.num_shards == 3 and ours.header.num_shards == 1
        _assert_same_values(theirs, ours)


# ---------------------------------------------------------------------------------------
# atomicity: exceptions, full disks, kills


def test_exception_inside_with_leaves_no_files(tmp_path):
    d = tmp_path / "fresh"
    d.mkdir()
    with pytest.raises(RuntimeError, match="boom"):
        with tfckpt.Writer(d / "ckpt", max_shard_bytes=1000) as w:
            for i in range(5):
                w.add(f"t{i}", np.zeros(400, np.float32))  # several temporary shards
            assert len(os.listdir(d)) >= 2
            raise RuntimeError("boom")
    assert os.listdir(d) == []


def test_exception_inside_with_keeps_existing_checkpoint(tmp_path):
    old = {"a": np.arange(10, dtype=np.float32), "s": np.array([b"old"], dtype=object)}
    tfckpt.write(tmp_path / "ckpt", old)
    before = _snapshot(tmp_path)
    with pytest.raises(KeyError):
        with tfckpt.Writer(tmp_path / "ckpt", overwrite=True) as w:
            w.add("a", np.ones(10, np.float32))
            {}["missing"]
    assert _snapshot(tmp_path) == before


def test_overwrite_false_refuses_existing_prefix(tmp_path):
    p = tfckpt.write(tmp_path / "ckpt", {"a": np.float32(1)})
    other = tfckpt.write(tmp_path / "other", {"a": np.float32(3)})
    before = _snapshot(tmp_path)
    with pytest.raises(tfckpt.CheckpointError, match="ckpt.index exists; pass overwrite=True"):
        tfckpt.Writer(p)
    with pytest.raises(tfckpt.CheckpointError, match="exists; pass overwrite=True"):
        tfckpt.write(p, {"a": np.float32(2)})
    with pytest.raises(tfckpt.CheckpointError, match="exists; pass overwrite=True"):
        tfckpt.edit(other, p, set={"a": np.float32(4)})
    assert _snapshot(tmp_path) == before
    assert tfckpt.open(p)["a"] == 1
    tfckpt.write(p, {"a": np.float32(2)}, overwrite=True)
    assert tfckpt.open(p)["a"] == 2
    # The replaced checkpoint's data file is gone; nothing temporary is left.
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["ckpt" + s for s in _files(p)] + ["other.data-00000-of-00001", "other.index"]
    )


def _full_disk_child(limit: int, prefix: str, what: str) -> dict:
    code = """
    import json, resource, signal, sys
    import numpy as np
    import tfckpt
    limit, prefix, what = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        if what == "data":
            tfckpt.write(prefix, {"a": np.ones(10, np.float32),
                                  "big": np.ones(4 * limit, np.uint8)}, overwrite=True)
        elif what == "data-hashed":   # 8 MiB: its CRC computed by a thread beside the write
            tfckpt.write(prefix, {"a": np.ones(10, np.float32),
                                  "big": np.ones(2 << 20, np.float32)}, overwrite=True)
        elif what == "index":
            keys = ["k%05d/" % i + "x" * 200 for i in range(3000)]
            tfckpt.write(prefix, {k: np.float32(1) for k in keys}, overwrite=True)
        elif what == "edit":
            r = tfckpt.open(prefix)
            tfckpt.edit(prefix, in_place=True,
                        set={k: np.zeros(r.entry(k).shape, r.entry(k).dtype) for k in r.keys()})
        print(json.dumps({"ok": True}))
    except Exception as e:
        print(json.dumps({"ok": False, "mro": [c.__name__ for c in type(e).__mro__],
                          "message": str(e)}))
    """
    return _run_child(code, limit, prefix, what)


@pytest.mark.parametrize("what", ["data", "data-hashed", "index", "edit"])
def test_full_disk_rlimit(tmp_path, what):
    """A file size limit makes every write past it fail with EFBIG, as a full disk fails
    with ENOSPC: the data shard (`data`; `data-hashed`, a payload whose CRC a second thread
    computes meanwhile), the index (`index`: 3000 long keys, little data) or an in-place
    edit (`edit`). The error is a CheckpointError naming the checkpoint and
    the file; nothing is left behind; the previous checkpoint is untouched."""
    old = {"a": np.arange(10, dtype=np.float32), "big": np.arange(300_000, dtype=np.int64)}
    p = tfckpt.write(tmp_path / "ckpt", old)
    before = _snapshot(tmp_path)
    res = _full_disk_child(200_000 if what != "index" else 100_000, p, what)
    assert not res["ok"], res
    assert "CheckpointError" in res["mro"]
    assert res["message"].startswith(f"cannot write checkpoint {p}: {p}")
    assert "File too large" in res["message"] and "nothing was written" in res["message"]
    assert (".index.tempstate" in res["message"]) == (what == "index")
    assert _snapshot(tmp_path) == before
    r = tfckpt.open(p)
    for k, v in old.items():
        r.verify_key(k)
        assert r[k].tobytes() == v.tobytes()


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs, where mounting is allowed (root with CAP_SYS_ADMIN); else skip."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        import gc

        gc.collect()  # readers (memory maps) kept alive by exception tracebacks
        if subprocess.run(["umount", str(mnt)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_full_disk_tmpfs(small_tmpfs):
    """A real ENOSPC on a 1 MiB tmpfs: overwriting and editing in place a 600 KB checkpoint
    (which needs room for a second copy) fail cleanly; the old checkpoint stays whole."""
    p = str(small_tmpfs / "ckpt")
    old = {"w": np.arange(150_000, dtype=np.float32), "t": np.array([b"x" * 100], dtype=object)}
    tfckpt.write(p, old)
    before = _snapshot(small_tmpfs)
    with pytest.raises(
        tfckpt.CheckpointError, match=f"cannot write checkpoint {p}: .*No space left on device"
    ):
        tfckpt.write(p, {"w": np.ones(300_000, np.float32)}, overwrite=True)
    assert _snapshot(small_tmpfs) == before
    with pytest.raises(tfckpt.CheckpointError, match="No space left on device"):
        tfckpt.edit(p, in_place=True, set={"w": np.zeros(150_000, np.float32)})
    assert _snapshot(small_tmpfs) == before
    r = tfckpt.open(p)
    assert r["w"].tobytes() == old["w"].tobytes() and r["t"].tolist() == [b"x" * 100]


_KILL_CHILD = """
import os, signal, sys, time
import numpy as np
import tfckpt
import tfckpt.writer
prefix, gen, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
N_BIG, N_SMALL = {n_big}, {n_small}
values = {{f"t{{i}}": np.full(2_000_000, gen * 100 + i, np.int32) for i in range(N_BIG)}}
values.update({{f"k{{j:04d}}/" + "y" * 150: np.int64(gen) for j in range(N_SMALL)}})
if mode == "before_commit":      # every byte written, nothing renamed yet
    close = tfckpt.writer.Writer.close
    def killing_close(self):
        os.kill(os.getpid(), signal.SIGKILL)
    tfckpt.writer.Writer.close = killing_close
elif mode == "after_commit":     # new index in place, old data files not yet removed
    def killing_unlink(path, *a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    os.unlink = killing_unlink
print("ready", flush=True)
t = time.time()
if mode == "edit":
    tfckpt.edit(prefix, in_place=True, set=values)
else:
    tfckpt.write(prefix, values, overwrite=True)
print("done %.4f" % (time.time() - t), flush=True)
"""
N_BIG, N_SMALL = 6, 2000


def _kill_child(prefix: str, gen: int, mode: str, delay=None) -> str:
    """Runs the writing child; kills it `delay` s after it is ready (None: let it finish,
    or kill itself at a commit point). Returns its last line of output."""
    code = _KILL_CHILD.format(n_big=N_BIG, n_small=N_SMALL)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, prefix, str(gen), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    assert proc.stdout.readline().strip() == "ready"
    if delay is not None:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    if delay is None and mode in ("write", "edit"):
        assert proc.returncode == 0, err[-2000:]
    elif delay is None:  # killed itself where it was told to
        assert proc.returncode == -signal.SIGKILL, err[-2000:]
    return out.strip()


def _generation(tf, prefix: str) -> int:
    """Which generation the checkpoint holds, checking that it is whole: every key read and
    CRC-checked by tfckpt and by TensorFlow, every value of the same generation."""
    r = tfckpt.open(prefix)
    assert len(r) == N_BIG + N_SMALL
    gens = set()
    tf_reader = tf.train.load_checkpoint(prefix)
    for k in r.keys():
        r.verify_key(k)
        ours, theirs = r[k], tf_reader.get_tensor(k)
        assert np.asarray(theirs).tobytes() == ours.tobytes(), k
        if k.startswith("t"):
            i = int(k[1:])
            assert ours.min() == ours.max(), k
            g, rem = divmod(int(ours[0]) - i, 100)
            assert rem == 0, k
        else:
            g = int(ours)
        gens.add(g)
    assert len(gens) == 1, f"a mix of generations {sorted(gens)}"
    return gens.pop()


def _initial(tmp_path, gen=1) -> str:
    p = str(tmp_path / "ckpt")
    values = {f"t{i}": np.full(2_000_000, gen * 100 + i, np.int32) for i in range(N_BIG)}
    values.update({f"k{j:04d}/" + "y" * 150: np.int64(gen) for j in range(N_SMALL)})
    tfckpt.write(p, values)
    return p


@pytest.mark.parametrize("mode", ["write", "edit"])
def test_sigkill_at_random_moments_leaves_old_or_new(tf, tmp_path, mode):
    """A child overwrites (or edits in place) a 48 MB checkpoint of 2006 keys and is killed
    with SIGKILL at moments spread over the length of a write; after each kill the prefix
    holds entirely the old or entirely the new generation, every CRC intact for tfckpt and
    TensorFlow. The runs chain: each starts from what the previous one left."""
    p = _initial(tmp_path)
    done = _kill_child(p, 2, mode)
    assert done.startswith("done")
    duration = float(done.split()[1])
    assert _generation(tf, p) == 2
    rng = random.Random(20240611)
    # Random moments in six strata over twice the write's length, plus one kill at once
    # and one long after the write should have finished.
    delays = (
        [0.0] + [duration * (i + rng.random()) / 3 for i in range(6)] + [max(8 * duration, 0.5)]
    )
    outcomes = []
    for gen, delay in enumerate(delays, start=3):
        old = _generation(tf, p)
        _kill_child(p, gen, mode, delay)
        now = _generation(tf, p)
        assert now in (old, gen), (delay, old, gen, now)
        outcomes.append((round(delay, 4), now == gen))
    # Whatever the kills left behind, the next write succeeds and removes every data file
    # it does not use.
    _kill_child(p, 99, mode)
    assert _generation(tf, p) == 99
    _assert_only_checkpoint_files(tmp_path, p)
    assert any(done for _, done in outcomes) and not all(done for _, done in outcomes), (
        outcomes
    )  # the kills landed both before and after the commit


def test_sigkill_at_the_commit_points(tf, tmp_path):
    """Kills at the two instants that matter: with every byte written but nothing renamed
    (the old checkpoint remains), and right after the index rename, before the old data
    files are removed (the new one is there, whole)."""
    p = _initial(tmp_path)
    _kill_child(p, 2, "before_commit", delay=None)
    assert _generation(tf, p) == 1
    assert any("tfckpt-tmp" in f for f in os.listdir(tmp_path))  # the child's temp files
    _kill_child(p, 3, "after_commit", delay=None)
    assert _generation(tf, p) == 3
    # The old data file is still there, unreferenced (the new one took other names);
    # the next write removes it with the replaced checkpoint's files.
    assert "ckpt.data-00000-of-00001" in os.listdir(tmp_path)
    assert tfckpt.open(p).header.num_shards == 2
    tfckpt.write(p, {"only": np.float32(1)}, overwrite=True)
    _assert_only_checkpoint_files(tmp_path, p)


def _assert_only_checkpoint_files(directory, prefix) -> None:
    """Apart from a killed writer's temporary files (which never take checkpoint names),
    the directory holds the index and exactly the data files it references."""
    r = tfckpt.open(prefix)
    expected = {"ckpt.index"} | {
        os.path.basename(r.shard_path(i)) for i in range(r.header.num_shards)
    }
    names = {
        f for f in os.listdir(directory) if "tfckpt-tmp" not in f and ".index.tempstate" not in f
    }
    assert names == expected


def test_in_place_edit_refusing_damaged_source_keeps_it(tmp_path):
    """An in-place edit that fails half-way (a copied tensor fails its CRC) leaves the
    checkpoint exactly as it was and no temporary files."""
    p = tfckpt.write(
        tmp_path / "ckpt",
        {
            "a": np.arange(1000, dtype=np.float32),
            "b": np.arange(1000, dtype=np.float32),
            "s": np.array([b"x", b"yz"], dtype=object),
        },
    )
    import tfckpt.testing as ct

    ct.corrupt(p, "s", at=-1)
    before = _snapshot(tmp_path)
    with pytest.raises(tfckpt.ChecksumMismatchError, match="refusing to copy damaged data"):
        tfckpt.edit(p, in_place=True, set={"a": np.zeros(1000, np.float32)})
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------------------------------
# the Python API


def test_write_mapping_values_as_tensorflow_reads_them(tf, tmp_path):
    values = {
        "f32": np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3),
        "py_int": 7,  # int64, as np.asarray makes it
        "py_float": 2.5,
        "nested": [[1, 2], [3, 4]],
        "text": "héllo",  # str -> UTF-8 bytes
        "raw": b"\x00\xff",
        "strings": np.array(["a", "bc"]),  # numpy unicode -> bytes
        "flag": np.array([True, False]),
        "bf": np.array([1.5, -2.0]),  # converted by dtypes=
        "q": np.array([-3, 4]),
    }
    p = tfckpt.write(tmp_path / "ckpt", values, dtypes={"bf": "bfloat16", "q": "qint8"})
    reader = tf.train.load_checkpoint(p)
    dtypes = {k: v.name for k, v in reader.get_variable_to_dtype_map().items()}
    assert dtypes == {
        "f32": "float32",
        "py_int": "int64",
        "py_float": "float64",
        "nested": "int64",
        "text": "string",
        "raw": "string",
        "strings": "string",
        "flag": "bool",
        "bf": "bfloat16",
        "q": "qint8",
    }
    assert reader.get_tensor("text") == "héllo".encode()
    assert reader.get_tensor("strings").tolist() == [b"a", b"bc"]
    assert reader.get_tensor("bf").tolist() == [1.5, -2.0]
    assert reader.get_tensor("q").tolist() == [-3, 4]
    assert (reader.get_tensor("nested") == [[1, 2], [3, 4]]).all()


def test_big_endian_writer_as_tensorflow_reads_it(tf, tmp_path):
    """Writer(big_endian=True), every dtype and every kind of string: TensorFlow (which
    byte-swaps big-endian bundles on read) gets the values given, with every checksum
    right; each numeric payload is its little-endian twin's, byte-swapped per element (per
    component for complex types), and each string tensor's length checksum is stored
    big-endian."""
    from tfckpt.dtypes import by_code

    items = [(k, a, n) for k, a, n in _dtype_cases()]
    items += [
        (k, a, "string") for k, a in tf_corpus.string_test_arrays().items() if k != "str/long"
    ]
    for order in ("little", "big"):
        with tfckpt.Writer(tmp_path / order, big_endian=order == "big") as w:
            for key, a, n in items:
                w.add(key, a, dtype=_writer_dtype(n))
    prefix = str(tmp_path / "big")
    reader = tf.train.load_checkpoint(prefix)
    refused = set()
    for key, a, n in items:
        code = tfckpt.dtypes.by_name(n).code
        if 24 <= code <= 33:  # float8/int4/int2/float4: TF swaps none of them, one byte each
            with pytest.raises(
                tf.errors.OpError,
                match=f"Byte-swapping not supported for tensors with dtype {code}",
            ):
                reader.get_tensor(key)
            refused.add(n)
            with tfckpt.open(prefix) as r:
                assert r.read(key).tobytes() == np.ascontiguousarray(a).tobytes(), key
            continue
        got = reader.get_tensor(key)
        if n == "string":
            assert np.asarray(got, dtype=object).tolist() == a.tolist(), key
        else:
            assert np.asarray(got).tobytes() == np.ascontiguousarray(a).tobytes(), key
    be_data = _read(prefix + ".data-00000-of-00001")
    le_data = _read(str(tmp_path / "little") + ".data-00000-of-00001")
    swapped = 0
    with tfckpt.open(prefix) as be, tfckpt.open(str(tmp_path / "little")) as le:
        assert (be.header.endianness, le.header.endianness) == ("big", "little")
        for key, a, n in items:
            b, e = be.entry(key), le.entry(key)
            raw_be = be_data[b.offset : b.offset + b.size]
            raw_le = le_data[e.offset : e.offset + e.size]
            unit = by_code(e.dtype_code).swap
            if n == "string":  # the length varints, the 4-byte checksum, the bytes
                strings = a.reshape(-1).tolist()
                lengths = raw_le[: b.size - sum(len(x) for x in strings) - 4]
                assert raw_be[: len(lengths)] == lengths and len(strings) <= len(lengths)
                # the checksum of the lengths as big-endian uint32s, stored big-endian
                crc = _native.crc32c(b"".join(len(x).to_bytes(4, "big") for x in strings))
                check = _native.mask_crc(crc).to_bytes(4, "big")
                assert raw_be[len(lengths) : len(lengths) + 4] == check, key
                assert raw_be[len(lengths) + 4 :] == raw_le[len(lengths) + 4 :], key
            elif unit > 1:
                assert raw_be == np.frombuffer(raw_le, f"<u{unit}").astype(f">u{unit}").tobytes(), (
                    key
                )
                swapped += raw_be != raw_le
            else:
                assert raw_be == raw_le, key
            assert (
                be.read(key).tobytes() == le.read(key).tobytes()
                if n != "string"
                else be.read(key).tolist() == le.read(key).tolist()
            )
            be.verify_key(key)
    assert swapped >= 20 and len(refused) == 10


def test_several_data_shards_with_max_shard_bytes(tf, tmp_path):
    values = {f"v{i}": np.full(250 * (i + 1), i, np.float32) for i in range(6)}
    p = tfckpt.write(tmp_path / "ckpt", values, max_shard_bytes=3000)
    r = tfckpt.open(p)
    n = r.header.num_shards
    assert n >= 3
    assert _files(p) == [".data-%05d-of-%05d" % (i, n) for i in range(n)] + [".index"]
    for i in range(n):  # a shard passes the limit only with a single tensor bigger than it
        size = os.path.getsize(r.shard_path(i))
        keys = [k for k in r.keys() if r.entry(k).shard_id == i]
        assert size <= 3000 or len(keys) == 1, (i, size, keys)
    reader = tf.train.load_checkpoint(p)
    for k, v in values.items():
        assert reader.get_tensor(k).tobytes() == v.tobytes()


_MEMMAP_CHILD = """
import json, resource, sys
import numpy as np
import tfckpt

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

src, prefix, rows, cols, piece = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
before = hwm()
with tfckpt.Writer(prefix) as w:
    for r0 in range(0, rows, piece):
        part = np.memmap(src, dtype=np.float32, mode="r", offset=r0 * cols * 4,
                         shape=(piece, cols))
        w.add_slice("emb", (rows, cols), np.s_[r0:r0 + piece], part)
        del part                        # unmapped: its pages leave the resident set
after = hwm()
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS:")).split()[1]) * 1024
probe = np.ones(96 << 20, np.uint8)     # shows the measure sees a 96 MiB allocation
print(json.dumps({"before": before, "after": after, "rss": rss, "probe": hwm(),
                  "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def test_partitioned_tensor_larger_than_memory_budget_from_memmap_pieces(tmp_path):
    """A 512 MiB float32 [131072, 1024] tensor written slice by slice from np.memmap pieces
    of 32 MiB: the child's peak resident set (VmHWM, which starts afresh at exec, unlike
    ru_maxrss, which can carry the forking parent's peak) grows by less than 200 MiB."""
    rows, cols, piece = 1 << 17, 1024, 1 << 13
    src = tmp_path / "src.f32"
    with open(src, "wb") as f:
        for r0 in range(0, rows, piece):
            f.write((np.arange(piece * cols, dtype=np.float32) + r0).tobytes())
    p = tmp_path / "big"
    res = _run_child(_MEMMAP_CHILD, src, p, rows, cols, piece)
    growth = res["after"] - res["before"]
    assert growth < 200 << 20, res
    assert res["probe"] - res["rss"] > 90 << 20, res  # the instrument works
    assert os.path.getsize(str(p) + ".data-00000-of-00001") == rows * cols * 4
    src.unlink()
    r = tfckpt.open(p)
    assert len(r.entry("emb").slices) == rows // piece
    r.verify_key("emb")  # every slice's CRC
    got = r.read_slice("emb", np.s_[piece - 1 : piece + 1, :3])
    assert got.tolist() == [
        [(piece - 1) * cols + j for j in range(3)],
        [piece + j for j in range(3)],
    ]
    r.close()
    del r, got
    for f in glob.glob(str(p) + ".*"):  # 512 MiB not to keep in pytest's temporary dirs
        os.unlink(f)


def _assert_nothing_written(directory) -> None:
    assert os.listdir(directory) == []


@pytest.mark.parametrize(
    "what,call,match",
    [
        ("ragged list", lambda p: tfckpt.write(p, {"r": [[1, 2], [3]]}), "ragged"),
        ("ragged arrays", lambda p: tfckpt.write(p, {"r": [np.zeros(2), np.zeros(3)]}), "ragged"),
        (
            "ragged after good",
            lambda p: tfckpt.write(p, {"ok": np.zeros(3), "r": [[1], [2, 3]]}),
            "ragged",
        ),
        (
            "float128",
            lambda p: tfckpt.write(p, {"x": np.zeros(2, np.longdouble)}),
            "x: numpy dtype float128 has no TensorFlow equivalent",
        ),
        (
            "datetime",
            lambda p: tfckpt.write(p, {"x": np.array(["2024-01-01"], "datetime64[D]")}),
            "no TensorFlow equivalent",
        ),
        (
            "resource",
            lambda p: tfckpt.write(p, {"x": np.zeros(2)}, dtypes={"x": "resource"}),
            "x: dtype resource cannot be saved",
        ),
        (
            "unknown dtype",
            lambda p: tfckpt.write(p, {"x": np.zeros(2)}, dtypes={"x": "float7"}),
            "unknown TensorFlow dtype name 'float7'",
        ),
        (
            "objects in strings",
            lambda p: tfckpt.write(p, {"ok": np.zeros(3), "s": np.array([b"a", 3], dtype=object)}),
            "s: a string tensor holds int",
        ),
        (
            "path twice",
            lambda p: tfckpt.write(
                p, {"model/a/b": np.zeros(2), ("model", "a", "b"): np.ones(2)}, object_graph=True
            ),
            "given twice",
        ),
        (
            "save_counter twice",
            lambda p: tfckpt.write(
                p, {"save_counter": np.int64(1)}, object_graph=True, save_counter=2
            ),
            "given twice",
        ),
        (
            "slot of nothing",
            lambda p: tfckpt.write(
                p, {"model/w": np.zeros(2)}, slots={("model/v", "opt", "m"): np.zeros(2)}
            ),
            "not among the variables",
        ),
        (
            "non-str key",
            lambda p: tfckpt.write(p, {("a", "b"): np.zeros(2)}),
            "a key must be a non-empty str",
        ),
    ],
)
def test_errors_before_anything_is_written(tmp_path, what, call, match):
    d = tmp_path / "out"
    d.mkdir()
    with pytest.raises(tfckpt.InvalidArgumentError, match=match):
        call(str(d / "ckpt"))
    _assert_nothing_written(d)


@pytest.mark.parametrize(
    "what,bad,match",
    [
        ("duplicate key", lambda w: w.add("a", np.ones(3)), "Adding duplicate key: a"),
        ("unsupported dtype", lambda w: w.add("c", np.zeros(1, np.longdouble)), "no TensorFlow"),
        ("ragged", lambda w: w.add("c", [[1, 2], [3]]), "ragged"),
        ("string of ints", lambda w: w.add("c", np.array([1, b"x"], dtype=object)), "holds int"),
        ("slice twice", lambda w: w.add_slice("p", (4,), np.s_[0:2], np.ones(2)), "already added"),
        ("overlapping slice", lambda w: w.add_slice("p", (4,), np.s_[1:3], np.ones(2)), "overlaps"),
        ("slice shape", lambda w: w.add_slice("p", (4,), np.s_[2:4], np.ones(3)), "has shape"),
        ("slice past end", lambda w: w.add_slice("p", (4,), "3,2", np.ones(2)), "does not fit"),
        (
            "slice dtype",
            lambda w: w.add_slice("p", (4,), np.s_[2:4], np.ones(2, np.int32)),
            "disagree",
        ),
        (
            "whole then slice",
            lambda w: w.add_slice("a", (3,), np.s_[0:1], np.ones(1)),
            "duplicate key",
        ),
    ],
)
def test_streaming_writer_refuses_before_writing_and_stays_usable(tf, tmp_path, what, bad, match):
    """A refused add leaves no trace: the writer goes on, and the checkpoint holds exactly
    what was accepted (TensorFlow assembles the partitioned tensor from its two slices)."""
    with tfckpt.Writer(tmp_path / "ckpt") as w:
        w.add("a", np.zeros(3))
        w.add_slice("p", (4,), np.s_[0:2], np.zeros(2))
        with pytest.raises(tfckpt.InvalidArgumentError, match=match):
            bad(w)
        w.add_slice("p", (4,), np.s_[2:4], np.full(2, 5.0))
    reader = tf.train.load_checkpoint(str(tmp_path / "ckpt"))
    assert sorted(reader.get_variable_to_shape_map()) == ["a", "p"]
    assert reader.get_tensor("p").tolist() == [0, 0, 5, 5]
    assert reader.get_tensor("a").tolist() == [0, 0, 0]


def test_update_state_file_like_checkpoint_manager(tf, tmp_path):
    p1 = tfckpt.write(
        tmp_path / "ckpt-1",
        {"v": np.float32(1)},
        object_graph=True,
        save_counter=1,
        update_state=True,
    )
    assert tf.train.latest_checkpoint(str(tmp_path)) == p1
    time.sleep(0.01)
    p2 = tfckpt.write(
        tmp_path / "ckpt-2",
        {"v": np.float32(2)},
        object_graph=True,
        save_counter=2,
        update_state=True,
    )
    assert tf.train.latest_checkpoint(str(tmp_path)) == p2
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path == p2
    assert list(state.all_model_checkpoint_paths) == [p1, p2]
    assert len(state.all_model_checkpoint_timestamps) == 2
    assert state.all_model_checkpoint_timestamps[0] < state.all_model_checkpoint_timestamps[1]
    text = (tmp_path / "checkpoint").read_text()
    assert text.startswith(
        'model_checkpoint_path: "ckpt-2"\n'
        'all_model_checkpoint_paths: "ckpt-1"\n'
        'all_model_checkpoint_paths: "ckpt-2"\n'
    )
    # TF's own CheckpointManager takes the directory over from there.
    v = tf.Variable(0.0)
    ckpt = tf.train.Checkpoint(v=v)
    manager = tf.train.CheckpointManager(ckpt, str(tmp_path), max_to_keep=5)
    assert manager.checkpoints == [p1, p2]
    ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    assert v.numpy() == 2.0 and ckpt.save_counter.numpy() == 2
    assert manager.save() == str(tmp_path / "ckpt-3")
    assert tfckpt.open(tmp_path).prefix == str(tmp_path / "ckpt-3")


def test_replacing_a_checkpoint_removes_only_its_own_stale_data_files(tmp_path):
    """The data files removed after a replacement are exactly those named for this prefix
    (files.DATA_NAME_RE's prefix group equal to it): the replaced checkpoint's second shard
    and a shard an interrupted write left, never the files of ckpt-10, ckpt-1.5 or ckpt,
    whose names start like ckpt-1's or are a part of it (mutant W11)."""
    p = str(tmp_path / "ckpt-1")
    tfckpt.write(
        p, {"a": np.zeros(64, np.float32), "b": np.ones(64, np.float32)}, max_shard_bytes=300
    )
    assert _files(p) == [".data-00000-of-00002", ".data-00001-of-00002", ".index"]
    (tmp_path / "ckpt-1.data-00003-of-00007").write_bytes(b"left by a killed write")
    neighbours = {
        name: tfckpt.write(str(tmp_path / name), {"n": np.float32(i)})
        for i, name in enumerate(["ckpt-10", "ckpt-1.5", "ckpt"])
    }
    others = {
        n: _snapshot(tmp_path)[n]
        for n in os.listdir(tmp_path)
        if not n.startswith("ckpt-1.") or n.startswith("ckpt-1.5")
    }
    assert len(others) == 6
    tfckpt.write(p, {"a": np.full(3, 2, np.float32)}, overwrite=True)
    after = _snapshot(tmp_path)
    assert {n: after.get(n) for n in others} == others
    assert sorted(after) == sorted(list(others) + ["ckpt-1.index", "ckpt-1.data-00000-of-00001"])
    assert tfckpt.open(p)["a"].tolist() == [2, 2, 2]
    for i, name in enumerate(["ckpt-10", "ckpt-1.5", "ckpt"]):
        assert tfckpt.open(neighbours[name])["n"] == i


def test_add_with_a_dtype_rounds_but_never_overflows(tf, tmp_path):
    """`dtype=` asks for the cast: values are rounded to it as TensorFlow rounds them, and
    a value that does not fit at all is an error naming key, value and dtype, never stored
    as inf or a wrapped integer (it used to be cast silently)."""
    prefix = str(tmp_path / "c")
    with tfckpt.Writer(prefix) as w:
        w.add("lr", 0.1, dtype="float32")
        w.add("h", [0.1, 65504.0, -1.5], dtype="float16")
        w.add("b", np.array([1.1, 2.5, -3.25]), dtype="bfloat16")
        w.add("i", np.array([3.0, -7.0]), dtype="int32")
        w.add("u", np.array([255, 0], dtype=np.int64), dtype="uint8")
        refused = {}
        for key, value, dtype in [
            ("f", np.array([1.0, 1e300]), "float32"),
            ("half", [70000.0], "float16"),
            ("byte", np.array([300], dtype=np.int64), "uint8"),
            ("neg", [-1], "uint16"),
            ("nan", [float("nan")], "int32"),
            ("inf", [float("inf")], "int64"),
            ("cplx", np.array([1 + 2j]), "float32"),
            ("text", ["1.5"], "float32"),
        ]:
            with pytest.raises(tfckpt.InvalidArgumentError) as info:
                w.add(key, value, dtype=dtype)
            refused[key] = str(info.value)
    assert refused["f"] == "f: the value 1e+300 does not fit float32; nothing was cast"
    assert refused["half"] == "half: the value 70000.0 does not fit float16; nothing was cast"
    assert refused["byte"] == "byte: the value 300 does not fit uint8; nothing was cast"
    assert refused["neg"] == "neg: the value -1 does not fit uint16; nothing was cast"
    assert refused["nan"] == "nan: the value nan does not fit int32; nothing was cast"
    assert refused["inf"] == "inf: the value inf does not fit int64; nothing was cast"
    assert refused["cplx"] == "cplx: the value (1+2j) does not fit float32; nothing was cast"
    assert refused["text"] == "text: a <U3 value cannot be stored as float32"
    reader = tf.train.load_checkpoint(prefix)
    assert sorted(reader.get_variable_to_shape_map()) == ["b", "h", "i", "lr", "u"]
    expected = {
        "lr": tf.constant(0.1, tf.float32),
        "h": tf.constant([0.1, 65504.0, -1.5], tf.float16),
        "b": tf.constant([1.1, 2.5, -3.25], tf.bfloat16),
        "i": tf.constant([3, -7], tf.int32),
        "u": tf.constant([255, 0], tf.uint8),
    }
    for key, want in expected.items():
        got = reader.get_tensor(key)
        assert got.dtype == want.dtype.as_numpy_dtype, key
        assert got.tobytes() == want.numpy().tobytes(), key
