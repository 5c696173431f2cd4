"""Format V1 checkpoints (FORMAT.md 9), against TensorFlow 2.21 as the oracle.

TensorFlow writes the checkpoints here: a graph-mode ``Saver(write_version=V1)`` (one file,
and ``sharded=True`` over three CPU devices), partitioned variables, and the ``Save`` /
``SaveSlices`` ops. Values must be bit-exact with what TensorFlow's CheckpointReader reads;
where it refuses (half, complex, uint16: "Data type not supported"; partitioned tensors:
"Sliced checkpoints are not supported") they must equal the values given to TensorFlow and
what its ``Restore`` op reads. Hand-built files cover what TensorFlow no longer writes
(Snappy blocks, uint32/uint64, out-of-range int_val) and hostile declarations.
"""

from __future__ import annotations

import io
import os
import pathlib
import re
import shutil
import subprocess
import sys

import make_fixtures as mf
import numpy as np
import pytest
from test_fixtures import digest

import tfckpt
from tfckpt import _native, cli
from tfckpt.proto import SavedTensorSlices
from tfckpt.v1 import V1Reader

# What TensorFlow's CheckpointReader refuses in the single-file checkpoint, and its words.
TF_REFUSES = {
    "half": "Data type not supported",
    "c64": "Data type not supported",
    "c128": "Data type not supported",
    "u16": "Data type not supported",
    "part": "Sliced checkpoints are not supported",
    "scope/part3": "Sliced checkpoints are not supported",
    "part_half": "Sliced checkpoints are not supported",
    "part_str": "Sliced checkpoints are not supported",
}


@pytest.fixture(scope="module")
def tf():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mf.tf_module()


@pytest.fixture(scope="module")
def ckpts(tf, tmp_path_factory):
    """The V1 checkpoints TensorFlow writes: {name: (path or pattern, given values)}."""
    root = tmp_path_factory.mktemp("v1")
    out = {}
    single = str(root / "single" / "model.ckpt")
    out["single"] = (single, mf.build_v1_single(tf, single))
    sharded = str(root / "sharded" / "model.ckpt")
    values = mf.build_sharded(tf, sharded)
    out["sharded"] = (sharded + "-?????-of-00003", values)
    snappy = root / "snappy" / "model.ckpt"
    snappy.parent.mkdir()
    snappy.write_bytes(mf.snappy_table(pathlib.Path(single).read_bytes()))
    out["snappy"] = (str(snappy), out["single"][1])
    out["ops"] = _save_ops(tf, root / "ops")
    return out


def _save_ops(tf, d):
    """tf.raw_ops.Save (whole tensors) and SaveSlices (a 2x2 grid of one tensor, split over
    two files that one glob names, as TensorSliceReader reads them)."""
    d.mkdir()
    grid = np.arange(24, dtype=np.float32).reshape(4, 6)
    whole = {
        "w": np.array([[1.5, 2.5]], np.float64),
        "n": np.array([b"a", b"bc"], dtype=object),
        "k": np.array(-3, np.int8),
    }
    names = sorted(whole)
    tf.raw_ops.Save(
        filename=str(d / "whole.ckpt"),
        tensor_names=names,
        data=[tf.constant(whole[n]) for n in names],
    )
    specs = [
        ("4 6 0,2:0,3", np.s_[0:2, 0:3]),
        ("4 6 0,2:3,3", np.s_[0:2, 3:6]),
        ("4 6 2,2:0,3", np.s_[2:4, 0:3]),
        ("4 6 2,2:3,3", np.s_[2:4, 3:6]),
    ]
    for i, half in enumerate((specs[:2], specs[2:])):
        tf.raw_ops.SaveSlices(
            filename=str(d / f"grid{i}.ckpt"),
            tensor_names=["g", "g"],
            shapes_and_slices=[spec for spec, _ in half],
            data=[tf.constant(grid[idx]) for _, idx in half],
        )
    return {"whole": (str(d / "whole.ckpt"), whole), "grid": (str(d / "grid?.ckpt"), {"g": grid})}


# -- values against TensorFlow ----------------------------------------------------------


def _tf_reader(tf, path):
    return tf.train.load_checkpoint(path)


def _tf_restore(tf, pattern, key, dtype_name):
    return tf.raw_ops.Restore(
        file_pattern=pattern, tensor_name=key, dt=tf.as_dtype(dtype_name)
    ).numpy()


def _same_bits(ours, theirs):
    theirs = np.array(theirs, dtype=object) if isinstance(theirs, bytes) else np.asarray(theirs)
    assert ours.shape == theirs.shape
    if ours.dtype != object:
        assert ours.dtype == theirs.dtype
    assert digest(ours) == digest(theirs)


@pytest.mark.parametrize("name", ["single", "sharded"])
def test_values_bit_exact_with_tensorflow(tf, ckpts, name):
    path, given = ckpts[name]
    reader = _tf_reader(tf, path)
    refused = {}
    with tfckpt.open(path) as r:
        assert isinstance(r, V1Reader) and r.header.format == "V1"
        assert r.keys() == sorted(reader.get_variable_to_shape_map())
        assert [(k, list(s)) for k, s in tf.train.list_variables(path)] == [
            (k, list(r.entry(k).shape)) for k in r.keys()
        ]
        dtypes = reader.get_variable_to_dtype_map()
        for key in r.keys():
            ours = r.read(key)
            assert r.entry(key).dtype_name == dtypes[key].name, key
            _same_bits(ours, given[key])
            try:
                theirs = reader.get_tensor(key)
            except Exception as e:  # noqa: BLE001 - collected, checked below
                refused[key] = (type(e).__name__, str(e))
                theirs = _tf_restore(tf, path, key, dtypes[key].name)
            _same_bits(ours, theirs)
    if name == "single":
        assert refused == {k: ("UnimplementedError", msg) for k, msg in TF_REFUSES.items()}
    else:
        assert refused == {
            "dev1/pv": ("UnimplementedError", "Sliced checkpoints are not supported")
        }


def test_sharded_v1_is_three_files_opened_any_way(ckpts):
    pattern, given = ckpts["sharded"]
    d = os.path.dirname(pattern)
    files = [pattern.replace("?????", "%05d" % i) for i in range(3)]
    for how in (pattern, files[1], d, os.path.join(d, "checkpoint")):
        with tfckpt.open(how) as r:
            assert r.prefix == pattern and list(r.files) == files, how
            assert r.header.num_shards == 3
            assert r.shard_path(2) == files[2]
            # each variable lives in the file of its device
            assert r.entry("dev2/w").shard_id == 2 and r.entry("dev0/name").shard_id == 0
            assert r.read("dev1/pv").tolist() == given["dev1/pv"].tolist()
            # the record of a key in pieces, as a V2 reader gives payloads
            e = r.entry("dev2/w")
            record = r.payload(e)
            assert b"".join(r.payload_chunks(e, 3, len(record) - 3, 7)) == record[3:]
            with pytest.raises(ValueError, match="outside"):
                list(r.payload_chunks(e, 0, len(record) + 1, 7))


def test_partitioned_assembled_and_read_by_region(ckpts):
    path, given = ckpts["single"]
    with tfckpt.open(path) as r:
        e = r.entry("scope/part3")
        assert [s.spec for s in e.slices] == ["0,3:0,4", "3,2:0,4", "5,2:0,4"]
        assert e.is_partitioned and e.num_elements == 28
        full = given["scope/part3"]
        for index in (np.s_[2:6], np.s_[4, 1:3], np.s_[..., -1], "1,5:-"):
            want = full[index] if not isinstance(index, str) else full[1:6]
            assert r.read_slice("scope/part3", index).tolist() == want.tolist()
        assert r.read("part_str").tolist() == given["part_str"].tolist()
        assert r.read("part_half").tobytes() == given["part_half"].tobytes()
        # the hidden listing names each stored slice; its raw key reads that slice alone
        hidden = [row for row in r.listing(hidden=True) if row[0].startswith("\x00part_half")]
        assert [row[2] for row in hidden] == [(2, 2), (2, 2)]
        assert r.read(hidden[1][0]).tobytes() == given["part_half"][2:].tobytes()


def test_save_ops_files_and_a_glob_of_two(ckpts, tf):
    path, whole = ckpts["ops"]["whole"]
    with tfckpt.open(path) as r:
        for k, v in whole.items():
            _same_bits(r.read(k), v)
            _same_bits(r.read(k), _tf_reader(tf, path).get_tensor(k))
    pattern, grid = ckpts["ops"]["grid"]
    with tfckpt.open(pattern) as r:
        assert r.prefix == pattern and r.header.num_shards == 2
        assert sorted(s.spec for s in r.entry("g").slices) == [
            "0,2:0,3",
            "0,2:3,3",
            "2,2:0,3",
            "2,2:3,3",
        ]
        assert r.read("g").tolist() == grid["g"].tolist()
        assert r.read_slice("g", np.s_[1:3, 2:4]).tolist() == grid["g"][1:3, 2:4].tolist()
        _same_bits(r.read("g"), _tf_restore(tf, pattern, "g", "float32"))
    with pytest.raises(tfckpt.CheckpointError, match="closed"):
        r.read("g")


# -- Snappy blocks (TF 0.x) ---------------------------------------------------------------


def test_snappy_compressor_round_trips_with_every_copy_form():
    data = (
        b"tensor" * 40 + bytes(range(256)) + b"ab" * 300 + b"\x00" * 5000 + bytes(range(7, 250)) * 3
    )
    packed = mf.snappy_compress(data)
    assert len(packed) < len(data) // 3
    assert _native.snappy_decompress(packed, len(data)) == data
    tags = _snappy_tags(packed)
    assert {0, 1, 2, 3} <= tags  # literals and copies with 1-, 2- and 4-byte offsets


def _snappy_tags(packed: bytes):
    pos = 0
    while packed[pos] & 0x80:
        pos += 1
    pos += 1
    seen = set()
    while pos < len(packed):
        tag = packed[pos]
        kind = tag & 3
        seen.add(kind)
        if kind == 0:
            n = tag >> 2
            if n < 60:
                pos += 1 + n + 1
            else:
                extra = n - 59
                pos += 1 + extra + int.from_bytes(packed[pos + 1 : pos + 1 + extra], "little") + 1
        else:
            pos += 1 + {1: 1, 2: 2, 3: 4}[kind]
    return seen


def test_snappy_v1_reads_identically_and_tensorflow_reads_it(tf, ckpts):
    plain, given = ckpts["single"]
    path, _ = ckpts["snappy"]
    assert pathlib.Path(path).read_bytes() != pathlib.Path(plain).read_bytes()
    reader = _tf_reader(tf, path)
    dtypes = reader.get_variable_to_dtype_map()
    with tfckpt.open(path) as r, tfckpt.open(plain) as p:
        assert r.keys() == p.keys() == sorted(dtypes)
        for key in r.keys():
            _same_bits(r.read(key), p.read(key))
            theirs = (
                _tf_restore(tf, path, key, dtypes[key].name)
                if key in TF_REFUSES
                else reader.get_tensor(key)
            )
            _same_bits(r.read(key), theirs)


# -- hand-built files: casts, dtypes TF cannot write, versions, hostile shapes ------------


def v1_table(tensors, producer=1, min_consumer=0, bad_consumers=()) -> bytes:
    """A V1 file: tensors = [(name, dtype, shape, [(extents, fill(TensorProto))...])],
    extents (start, length) per dimension, length -1 for the whole dimension."""
    meta = SavedTensorSlices()
    meta.meta.versions.producer = producer
    meta.meta.versions.min_consumer = min_consumer
    meta.meta.versions.bad_consumers.extend(bad_consumers)
    items = []
    for name, dtype, shape, slices in tensors:
        m = meta.meta.tensor.add(name=name, type=dtype)
        m.shape.SetInParent()
        for d in shape:
            m.shape.dim.add(size=d)
        for extents, fill in slices:
            sl = m.slice.add()
            for start, length in extents:
                ext = sl.extent.add()
                if length >= 0:
                    ext.start, ext.length = start, length
            d = SavedTensorSlices()
            d.data.name = name
            d.data.slice.CopyFrom(sl)
            fill(d.data.data)
            items.append((_native.slice_key(name, list(extents)), d.SerializeToString()))
    items.sort()
    return _native.build_table([(b"", meta.SerializeToString())] + items)


def _whole(values_field, values):
    def fill(tp):
        getattr(tp, values_field).extend(values)

    return fill


CASTS = [  # name, dtype code, field, stored values, what TensorFlow reads (its C++ casts)
    ("u8", 4, "int_val", [257, -1, 255, 1000], np.array([1, 255, 255, 232], np.uint8)),
    ("i8", 6, "int_val", [200, -129, 5], np.array([-56, 127, 5], np.int8)),
    ("i16", 5, "int_val", [40000, -40000], np.array([-25536, 25536], np.int16)),
    ("u16", 17, "int_val", [70000, -1], np.array([4464, 65535], np.uint16)),
    ("i32", 3, "int_val", [2**31 - 1, -(2**31)], np.array([2**31 - 1, -(2**31)], np.int32)),
    (
        "h",
        19,
        "half_val",
        [70000, 15360, 0x7C01],
        np.array([4464, 15360, 0x7C01], np.uint16).view(np.float16),
    ),
    ("q8", 11, "int_val", [300, -3], np.array([44, -3], np.int8)),
    ("qi32", 13, "int_val", [-7], np.array([-7], np.int32)),
    ("u32", 22, "uint32_val", [2**32 - 1, 5], np.array([2**32 - 1, 5], np.uint32)),
    ("u64", 23, "uint64_val", [2**64 - 1, 5], np.array([2**64 - 1, 5], np.uint64)),
    ("b", 10, "bool_val", [True, False], np.array([True, False])),
]
# Read by tfckpt the same way; TensorFlow's Restore op refuses them.
CASTS_TF_REFUSES = [
    ("qu16", 16, "int_val", [70000, 3], np.array([4464, 3], np.uint16)),
    ("qi16", 15, "int_val", [70000, -3], np.array([4464, -3], np.int16)),
]


def test_int_fields_cast_and_wrap_as_tensorflow_reads_them(tf, tmp_path):
    """int_val is truncated to int32 then cast (uint8 from 257 is 1), half_val keeps the low
    16 bits; uint32/uint64 (which TF 2.21 cannot save in V1) from their own fields. All
    equal what TensorFlow's Restore op reads from the same file."""
    path = str(tmp_path / "casts.ckpt")
    with open(path, "wb") as f:
        f.write(
            v1_table(
                [
                    (n, code, [len(stored)], [([(0, -1)], _whole(field, stored))])
                    for n, code, field, stored, _ in CASTS + CASTS_TF_REFUSES
                ]
            )
        )
    with tfckpt.open(path) as r:
        for name, code, _, _, want in CASTS:
            ours = r.read(name)
            _same_bits(ours, want)
            _same_bits(ours, _tf_restore(tf, path, name, tfckpt.dtypes.by_code(code).name))
        for name, code, _, _, want in CASTS_TF_REFUSES:
            _same_bits(r.read(name), want)
            dtype = tfckpt.dtypes.by_code(code).name
            with pytest.raises(Exception, match=f"Restoring data type {dtype} not yet supported"):
                _tf_restore(tf, path, name, dtype)


def test_float_bits_kept_packed_or_not(tf, tmp_path):
    """Values are decoded from the wire bytes: a signalling NaN keeps its bits, and
    unpacked repeated fields (legal protobuf) read like packed ones."""
    snan = np.array([0x7FA00001, 0x3FC00000], np.uint32).view(np.float32)
    from tfckpt.proto import TensorProto

    def unpacked(tp):
        # each float as its own field-5 fixed32 record, as a proto2-era writer could emit
        raw = b"".join(b"\x2d" + x.tobytes() for x in snan.view(np.uint32))
        tp.MergeFromString(raw)

    path = str(tmp_path / "bits.ckpt")
    with open(path, "wb") as f:
        f.write(
            v1_table(
                [
                    ("snan", 1, [2], [([(0, -1)], unpacked)]),
                    (
                        "packed",
                        1,
                        [2],
                        [
                            (
                                [(0, -1)],
                                lambda tp: tp.MergeFromString(
                                    TensorProto(float_val=[1.5, -2.0]).SerializeToString()
                                ),
                            )
                        ],
                    ),
                ]
            )
        )
    with tfckpt.open(path) as r:
        assert r.read("snan").view(np.uint32).tolist() == [0x7FA00001, 0x3FC00000]
        assert r.read("snan").tobytes() == _tf_reader(tf, path).get_tensor("snan").tobytes()
        assert r.read("packed").tolist() == [1.5, -2.0]


@pytest.mark.parametrize(
    "versions, words",
    [
        ({"min_consumer": 2}, "min consumer version 2 above current version 1"),
        ({"bad_consumers": (1,)}, "disallows consumer version 1"),
        ({"producer": -1}, "producer version -1 below min producer 0"),
    ],
)
def test_versions_checked(tmp_path, versions, words):
    path = tmp_path / "v.ckpt"
    path.write_bytes(
        v1_table([("x", 1, [1], [([(0, -1)], _whole("float_val", [1.0]))])], **versions)
    )
    with pytest.raises(tfckpt.UnsupportedCheckpointError, match=words):
        tfckpt.open(path)


def test_file_without_versions_is_accepted(tmp_path):
    path = tmp_path / "old.ckpt"
    path.write_bytes(
        v1_table([("x", 1, [1], [([(0, -1)], _whole("float_val", [1.0]))])], producer=0)
    )
    with tfckpt.open(path) as r:
        assert r.header.producer == 0 and r.read("x").tolist() == [1.0]


def test_declared_shapes_need_stored_values(tmp_path):
    """A shape is believed only as far as the stored values back it: no huge allocation."""
    big = 1 << 40
    path = tmp_path / "lies.ckpt"
    path.write_bytes(
        v1_table(
            [
                ("whole", 1, [big], [([(0, -1)], _whole("float_val", [1.0, 2.0, 3.0]))]),
                (
                    "parts",
                    2,
                    [big, 2],
                    [
                        ([(0, big // 2), (0, -1)], _whole("double_val", [1.0])),
                        ([(big // 2, big // 2), (0, -1)], _whole("double_val", [2.0])),
                    ],
                ),
                ("short", 3, [2, 2], [([(0, 1), (0, -1)], _whole("int_val", [1, 2]))]),
                ("ok", 3, [2], [([(0, -1)], _whole("int_val", [4, 5]))]),
            ]
        )
    )
    with tfckpt.open(path) as r:
        with pytest.raises(tfckpt.CorruptCheckpointError, match="holds 3 values"):
            r.read("whole")
        with pytest.raises(tfckpt.CorruptCheckpointError, match="holds 1 values"):
            r.read("parts")
        with pytest.raises(tfckpt.CorruptCheckpointError, match="sufficient slices"):
            r.read("short")
        assert r.read_slice("short", np.s_[0]).tolist() == [1, 2]
        assert r.read("ok").tolist() == [4, 5]
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["verify", str(path)], out, err) == 1
    damaged = re.findall(r"^DAMAGED ([^\s:]+)", out.getvalue(), re.M)
    assert damaged == ["parts", "short", "whole"]
    assert "slice 0,549755813888:-: holds 1 values" in out.getvalue()


def test_bad_meta_is_a_per_tensor_error(tmp_path):
    path = tmp_path / "meta.ckpt"
    path.write_bytes(
        v1_table(
            [
                ("outside", 1, [2], [([(1, 5)], _whole("float_val", [1.0] * 5))]),
                ("fine", 1, [1], [([(0, -1)], _whole("float_val", [7.0]))]),
                ("bf16", 14, [1], [([(0, -1)], _whole("half_val", [16256]))]),  # V1 cannot hold it
                ("no_slices", 1, [3], []),  # TensorFlow registers nothing: not listed
            ]
        )
    )
    with tfckpt.open(path) as r:
        assert r.keys() == ["bf16", "fine", "outside"]
        rows = {row[0]: row for row in r.listing()}
        assert "does not fit its shape" in rows["outside"][5] and rows["fine"][5] is None
        with pytest.raises(tfckpt.CorruptCheckpointError, match="does not fit"):
            r.read("outside")
        with pytest.raises(tfckpt.UnsupportedCheckpointError, match="V1 cannot hold"):
            r.read("bf16")
        assert r.read("fine").tolist() == [7.0]


def test_damaged_block_is_found(ckpts, tmp_path):
    path = tmp_path / "model.ckpt"
    shutil.copy(ckpts["single"][0], path)
    with open(path, "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(tfckpt.ChecksumMismatchError, match="block checksum mismatch"):
        tfckpt.open(path)
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["verify", str(path)], out, err) == 1
    assert "block checksum mismatch" in err.getvalue()


# -- paths --------------------------------------------------------------------------------


def test_opened_through_directory_state_file_and_after_a_move(ckpts, tmp_path):
    path, _ = ckpts["single"]
    d = os.path.dirname(path)
    for how in (path, d, os.path.join(d, "checkpoint")):
        with tfckpt.open(how) as r:
            assert r.prefix == path and r.index_path == path
    moved = tmp_path / "moved"
    shutil.copytree(d, moved)  # the state file still names the old absolute path
    with tfckpt.open(moved) as r:
        assert r.prefix == str(moved / "model.ckpt")
    os.remove(moved / "checkpoint")  # a directory with one V1 file and no state file
    with tfckpt.open(moved) as r:
        assert r.prefix == str(moved / "model.ckpt")


def test_missing_shard_is_named(ckpts, tmp_path):
    pattern, _ = ckpts["sharded"]
    d = tmp_path / "sh"
    shutil.copytree(os.path.dirname(pattern), d)
    os.remove(d / "model.ckpt-00001-of-00003")
    for how in (str(d / "model.ckpt-?????-of-00003"), str(d / "model.ckpt-00000-of-00003")):
        with pytest.raises(tfckpt.MissingShardError, match="shard 1 of 3") as ei:
            tfckpt.open(how)
        assert ei.value.path == str(d / "model.ckpt-00001-of-00003")


def test_from_buffers_reads_files_held_in_memory(ckpts):
    """For archives and remote stores (tfckpt scan): the files' bytes, no paths."""
    pattern, given = ckpts["sharded"]
    with tfckpt.open(pattern) as on_disk:
        files = [(f"mem:{i}", pathlib.Path(f).read_bytes()) for i, f in enumerate(on_disk.files)]
    with V1Reader.from_buffers("mem:model", files) as r:
        assert r.prefix == "mem:model" and r.header.num_shards == 3
        assert r.read("dev1/pv").tolist() == given["dev1/pv"].tolist()


def test_v2_only_apis_point_to_open_and_convert(ckpts):
    with pytest.raises(tfckpt.UnsupportedCheckpointError, match="tfckpt.open reads it") as ei:
        tfckpt.Reader(ckpts["single"][0])
    assert "--to v2" in str(ei.value)


def test_same_public_interface_as_reader(ckpts, corpus):
    def public(obj):
        return {n for n in dir(obj) if not n.startswith("_")}

    with tfckpt.open(ckpts["single"][0]) as v1, tfckpt.open(corpus["tf1_partitioned"].prefix) as v2:
        assert public(v2) <= public(v1)
        e1, e2 = v1.entry("part"), v2.entry("pv2")
        assert type(e1) is type(e2) and type(v1.header) is type(v2.header)
        assert v1.object_graph is None
        assert v1.entry("part").shard_id == 0 and v1.entry("part").crc32c == 0
        assert all(isinstance(k, bytes) and k.startswith(b"\x00") for k in v1.raw_keys)
        assert len(v1.raw_keys) == len(v1) + 9 - 4  # 4 partitioned tensors, 9 slices
        assert "part" in v1 and "nope" not in v1 and len(list(v1.items())) == len(v1)
        with pytest.raises(tfckpt.KeyNotFoundError, match="nope not found"):
            v1.read("nope")


# -- convert V1 -> V2, restored by TensorFlow ------------------------------------------------


def _restore_v2(tf, g, variables, prefix):
    v1 = tf.compat.v1
    with g.as_default():
        saver = v1.train.Saver()  # format V2 restore, by name
        cfg = v1.ConfigProto(device_count={"CPU": mf.DEVICES})
        with v1.Session(graph=g, config=cfg) as s:
            saver.restore(s, prefix)
            return {
                name: s.run(v.as_tensor() if hasattr(v, "as_tensor") else v)
                for name, v in variables.items()
            }


@pytest.mark.parametrize("name", ["single", "sharded"])
def test_convert_to_v2_is_restored_by_tensorflow(tf, ckpts, tmp_path, name):
    src, given = ckpts[name]
    dst = str(tmp_path / "v2" / "model.ckpt")
    out, err = io.StringIO(), io.StringIO()
    argv = ["convert", src, dst] + (["--to", "v2"] if name == "sharded" else [])
    assert cli.run(argv, out, err) == 0, err.getvalue()
    assert f"{len(given)} tensors written" in out.getvalue()
    with tfckpt.open(src) as a, tfckpt.open(dst) as b:
        assert b.header.format == "V2" and a.keys() == b.keys()
        for key in a.keys():
            assert a.entry(key).slices == b.entry(key).slices, key  # still partitioned
            assert a.entry(key).dtype_code == b.entry(key).dtype_code
            _same_bits(b.read(key), a.read(key))
    g, variables = (mf.v1_single_graph if name == "single" else mf.sharded_graph)(tf)
    restored = _restore_v2(tf, g, variables, dst)
    for key, value in restored.items():
        _same_bits(np.asarray(value), given[key])


@pytest.mark.parametrize("name", ["single", "sharded"])
def test_diff_average_and_edit_read_v1(tf, ckpts, tmp_path, name):
    """Every command that reads works on format V1: diff compares it, average and edit
    write a V2 checkpoint whose values TensorFlow restores as the V1 one held."""
    src, given = ckpts[name]
    run = lambda *argv: cli.run([str(a) for a in argv], io.StringIO(), io.StringIO())  # noqa: E731
    assert run("diff", src, src) == 0
    v2 = str(tmp_path / "v2" / "c")
    assert run("convert", src, v2, "--to", "v2") == 0
    assert tfckpt.diff(src, v2).equal
    with tfckpt.open(src) as r:
        key = next(
            k for k in r.keys() if r.entry(k).dtype_name == "float32" and not r.entry(k).slices
        )
        shape = r.entry(key).shape
        dropped = next(k for k in r.keys() if k != key)
    edited = str(tmp_path / "edited" / "c")
    new = np.full(shape, 0.5, np.float32)
    plan = tfckpt.edit(src, edited, set={key: new}, drop=[dropped])
    assert plan.dropped == [dropped]
    reader = tf.train.load_checkpoint(edited)
    assert reader.get_tensor(key).tolist() == new.tolist()
    assert dropped not in reader.get_variable_to_shape_map()
    d = tfckpt.diff(src, edited)
    assert list(d.value_changes) == [key] and d.only_a == [dropped]
    with pytest.raises(
        tfckpt.InvalidArgumentError, match="format V1 checkpoint; an edit writes format V2"
    ):
        tfckpt.edit(src, in_place=True, drop=[dropped])
    mean = str(tmp_path / "mean" / "c")
    assert run("average", src, v2, "-o", mean) == 0
    assert tfckpt.diff(src, mean).equal
    assert (
        _tf_reader(tf, mean).get_tensor(key).tolist() == _tf_reader(tf, v2).get_tensor(key).tolist()
    )


# -- the command line ------------------------------------------------------------------------


def test_dump_and_verify(ckpts):
    path, given = ckpts["single"]
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["dump", path], out, err) == 0
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == sorted(given)
    assert any(line.startswith("part_str ") and "(2 slices)" in line for line in lines)
    assert lines[-1].startswith(f"# {len(given)} tensors") and "in 1 format V1 file" in lines[-1]
    out = io.StringIO()
    assert cli.run(["dump", "--tensor", "half", path], out, err) == 0
    assert "tensor: half (float16) [6]" in out.getvalue()
    out = io.StringIO()
    assert cli.run(["dump", "--json", ckpts["sharded"][0]], out, err) == 0
    import json

    doc = json.loads(out.getvalue())
    assert doc["header"]["format"] == "V1" and doc["header"]["num_shards"] == 3
    pv = next(t for t in doc["tensors"] if t["key"] == "dev1/pv")
    assert pv["slices"] == ["0,3:0,3", "3,2:0,3"] and pv["partitioned"]
    for p in (path, ckpts["sharded"][0], ckpts["snappy"][0]):
        out = io.StringIO()
        assert cli.run(["verify", p], out, err) == 0
        assert out.getvalue().startswith(f"{p}: OK (") and "table blocks verified" in out.getvalue()


_INSPECT_IN_TF = """
import contextlib, io, json, sys, warnings
warnings.simplefilter("ignore")
from tensorflow.python.tools import inspect_checkpoint as ic
out = {}
for file_name, all_names in json.load(sys.stdin):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ic.print_tensors_in_checkpoint_file(file_name, "", False, all_tensor_names=all_names)
    out[repr((file_name, all_names))] = buf.getvalue()
sys.stdout.write(json.dumps(out))
"""


def test_inspect_matches_tensorflow(ckpts):
    """TensorFlow's inspect_checkpoint (its print function, all cases in one process).
    Default output: TF prints tensors in hash-map order, so lines are compared as a set;
    --all_tensor_names byte for byte."""
    import json

    paths = [ckpts["single"][0], ckpts["sharded"][0], ckpts["ops"]["grid"][0]]
    jobs = [(path, all_names) for path in paths for all_names in (False, True)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-c", _INSPECT_IN_TF],
        input=json.dumps(jobs),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs_all = json.loads(proc.stdout)
    for file_name, all_names in jobs:
        theirs = theirs_all[repr((file_name, all_names))]
        out = io.StringIO()
        argv = [f"--file_name={file_name}"] + (["--all_tensor_names"] if all_names else [])
        assert cli.run(["inspect", *argv], out, io.StringIO()) == 0
        ours = out.getvalue()
        if all_names:
            assert ours == theirs, (file_name, ours, theirs)
        else:
            assert sorted(ours.splitlines()) == sorted(theirs.splitlines()), (ours, theirs)
            assert ours.endswith("\n\n" + theirs.rsplit("\n\n", 1)[1])
    single = theirs_all[repr((ckpts["single"][0], False))]
    assert "part_str (DT_STRING) [4], 2 slices" in single.splitlines()
    assert "g (DT_FLOAT) [4,6], 4 slices" in theirs_all[repr((ckpts["ops"]["grid"][0], False))]
