"""Tests of the TensorFlow-written test corpus itself (no tfckpt involved).

They make sure every checkpoint kind the reader will be tested against really
exists with the properties it is meant to have (several shards, several index
blocks, every dtype, a variant tensor, ...), and pin down what TensorFlow 2.21
itself reads from them.
"""

from __future__ import annotations

import pathlib
import struct
import zipfile

import ml_dtypes
import numpy as np
import pytest
import tf_corpus
from tf_corpus import ALL_CASES, BUNDLE_KINDS

MAGIC = bytes.fromhex("57fb808b247547db")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


# ---------------------------------------------------------------------------
# a minimal independent SSTable peek (test-only; footer, index block, header)


def _varint(buf: bytes, pos: int):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _footer(data: bytes):
    assert len(data) >= 48 and data[-8:] == MAGIC, "not an sstable"
    f = data[-48:]
    mo, p = _varint(f, 0)
    ms, p = _varint(f, p)
    io, p = _varint(f, p)
    isz, p = _varint(f, p)
    return (mo, ms), (io, isz)


def _block_entries(block: bytes):
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + vlen]
        pos += vlen


def index_blocks(index_path: str):
    """[(separator key, (offset, size))] of the table's index block."""
    data = pathlib.Path(index_path).read_bytes()
    _, (io, isz) = _footer(data)
    out = []
    for k, v in _block_entries(data[io : io + isz]):
        off, p = _varint(v, 0)
        size, _ = _varint(v, p)
        out.append((k, (off, size)))
    return out


def header_num_shards(prefix: str) -> int:
    data = pathlib.Path(prefix + ".index").read_bytes()
    (_, (off, size)) = index_blocks(prefix + ".index")[0]
    key, value = next(_block_entries(data[off : off + size]))
    assert key == b""
    assert value[:1] == b"\x08", value  # field 1 (num_shards), varint
    return _varint(value, 1)[0]


# ---------------------------------------------------------------------------


def test_every_case_built(corpus):
    assert set(corpus) == set(ALL_CASES)
    for name, case in corpus.items():
        assert case.name == name
        assert case.notes


@pytest.mark.parametrize("name", ALL_CASES)
def test_case_files_exist(corpus, name):
    case = corpus[name]
    if case.kind in BUNDLE_KINDS:
        index = pathlib.Path(case.prefix + ".index")
        assert index.is_file()
        assert index.read_bytes()[-8:] == MAGIC
        n = header_num_shards(case.prefix)
        assert n >= 1
        for i in range(n):
            assert pathlib.Path(f"{case.prefix}.data-{i:05d}-of-{n:05d}").is_file()
        assert tf_corpus.num_shards_on_disk(case.prefix) == n
    elif case.kind == "v1":
        p = pathlib.Path(case.prefix)
        assert p.read_bytes()[-8:] == MAGIC  # V1 files are one SSTable too
        assert not pathlib.Path(case.prefix + ".index").exists()
    elif case.kind == "not_checkpoint_h5":
        assert pathlib.Path(case.prefix).read_bytes()[:8] == HDF5_MAGIC
    elif case.kind == "not_checkpoint_keras":
        assert zipfile.is_zipfile(case.prefix)
        assert "model.weights.h5" in zipfile.ZipFile(case.prefix).namelist()
    else:
        pytest.fail(f"unknown kind {case.kind}")


@pytest.mark.parametrize(
    "name,expected", [("sharded_policy", None), ("multi_device", 3), ("multi_device_tf1", 3)]
)
def test_sharded_cases_have_several_data_shards(corpus, name, expected):
    prefix = corpus[name].prefix
    n = header_num_shards(prefix)
    assert n > 1
    if expected is not None:
        assert n == expected
    assert corpus[name].extra.get("expected_num_shards", n) == n


def test_default_policy_writes_one_shard_despite_devices(corpus):
    # TF 2.21's default ShardByTaskPolicy: one shard per task, not per device.
    assert header_num_shards(corpus["multi_device_default"].prefix) == 1


def test_sharded_policy_slices_and_tf_refusals(oracles):
    o = oracles["sharded_policy"]
    ds = o["debug_string"]
    # the [64,32] float32 variable is stored as several slices
    assert ds.count("\x00big/.ATTRIBUTES/VARIABLE_VALUE\x00") >= 3
    assert "big/.ATTRIBUTES/VARIABLE_VALUE (DT_FLOAT)" not in ds  # full entry hidden
    assert o["shapes"]["big/.ATTRIBUTES/VARIABLE_VALUE"] == [64, 32]
    assert o["values"]["big/.ATTRIBUTES/VARIABLE_VALUE"].shape == (64, 32)
    assert o["errors"]["half/.ATTRIBUTES/VARIABLE_VALUE"] == (
        "ValueError",
        "Dtype half not supported.",
    )
    assert o["errors"]["u16/.ATTRIBUTES/VARIABLE_VALUE"] == (
        "ValueError",
        "Dtype uint16 not supported.",
    )
    assert o["errors"]["text/.ATTRIBUTES/VARIABLE_VALUE"] == (
        "ValueError",
        "Dtype string not supported.",
    )


def test_tf1_partitioned(corpus, oracles):
    case = corpus["tf1_partitioned"]
    o = oracles["tf1_partitioned"]
    names = {k for k, _ in o["list_variables"]}
    assert {"pv2", "scope/pv3", "w", "w/Adam", "w/Adam_1", "beta1_power", "global_step"} <= names
    assert o["debug_string"].count("\x00pv2\x00") == 2
    assert o["debug_string"].count("\x00scope/pv3\x00") == 3
    np.testing.assert_array_equal(o["values"]["scope/pv3"].shape, (7, 4))
    state = pathlib.Path(case.extra["state_file"]).read_text()
    assert f'model_checkpoint_path: "{case.prefix}"' in state  # absolute path


def test_iterator_has_variant(oracles):
    o = oracles["data_iterator"]
    assert o["dtypes"]["it/.ATTRIBUTES/ITERATOR_STATE"] == "variant"
    assert "variant" in set(o["dtypes"].values())


def _all_saveable_dtype_names():
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    names = set()
    for enum_name, value in types_pb2.DataType.items():
        if value >= 100 or enum_name in ("DT_INVALID", "DT_RESOURCE", "DT_VARIANT"):
            continue
        names.add(tf.as_dtype(value).name)
    return names


def test_dtypes_case_lists_every_dtype(oracles):
    o = oracles["dtypes"]
    expected = _all_saveable_dtype_names()
    assert expected == set(tf_corpus.DTYPES_CASE_DTYPE_NAMES)
    for group in ("dt", "scalar", "empty", "rank3"):
        got = {k.split("/", 1)[1]: v for k, v in o["dtypes"].items() if k.startswith(group + "/")}
        assert set(got) == expected, group
        assert all(k == v for k, v in got.items()), group
    for name in expected:
        assert o["shapes"][f"scalar/{name}"] == []
        assert o["shapes"][f"empty/{name}"] == [0, 3]
        assert o["shapes"][f"rank3/{name}"] == [2, 3, 4]
    assert not o["errors"], o["errors"]


def _bits(a: np.ndarray) -> bytes:
    a = np.asarray(a)
    if a.dtype == object:
        return repr(a.tolist()).encode()
    return np.ascontiguousarray(a).tobytes()


def test_dtypes_values_read_back_by_tf(oracles):
    o = oracles["dtypes"]
    for name, arr in tf_corpus.dtype_test_arrays().items():
        got = o["values"][f"dt/{name}"]
        if name in tf_corpus.QUANT_TYPES:  # TF hands quantized values back as the base int type
            assert got.dtype == arr.dtype
        elif name != "string":
            assert got.dtype == arr.dtype, name
        assert _bits(got) == _bits(arr), name
    assert o["values"]["dt/float4_e2m1fn"].dtype == ml_dtypes.float4_e2m1fn


def test_strings_read_back_by_tf(oracles):
    o = oracles["strings"]
    for key, arr in tf_corpus.string_test_arrays().items():
        got = o["values"][key]
        if arr.shape == ():
            assert got == arr.item(), key
        else:
            assert got.shape == arr.shape and got.tolist() == arr.tolist(), key
    assert len(o["values"]["str/long"][0]) > 1 << 20


def test_big_index_has_several_blocks(corpus, oracles):
    case = corpus["big_key_count"]
    blocks = index_blocks(case.prefix + ".index")
    assert len(blocks) >= 3
    assert pathlib.Path(case.prefix + ".index").stat().st_size > 3 * 262144
    assert len(oracles["big_key_count"]["list_variables"]) == tf_corpus.BIG_KEY_COUNT


def test_keras_adam_state_file_lists_two(corpus, oracles):
    case = corpus["keras_adam"]
    state = pathlib.Path(case.extra["state_file"]).read_text()
    assert state.count("all_model_checkpoint_paths:") == 2
    assert 'model_checkpoint_path: "ckpt-2"' in state
    o = oracles["keras_adam"]
    assert o["values"]["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"] == 2


def test_module_nested_escaping(oracles):
    names = {k for k, _ in oracles["module_nested"]["list_variables"]}
    assert "model/table/k..x.Sy/.ATTRIBUTES/VARIABLE_VALUE" in names
    assert "model/attr..with..dots/.ATTRIBUTES/VARIABLE_VALUE" in names
    assert "model/attr.Swith.Sslash/.ATTRIBUTES/VARIABLE_VALUE" in names


def test_optimizer_slot_naming(oracles):
    names = {k for k, _ in oracles["tf2_optimizer_slots"]["list_variables"]}
    assert "model/hidden/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE" in names


def test_savedmodels(corpus):
    for name in ("savedmodel", "tf1_savedmodel"):
        sm = pathlib.Path(corpus[name].extra["savedmodel_dir"])
        assert (sm / "saved_model.pb").is_file()
        assert corpus[name].prefix == str(sm / "variables" / "variables")


def test_v1_format_and_non_checkpoints(oracles):
    o = oracles["v1_format"]
    assert o["open_error"] is None
    assert len(o["list_variables"]) == 10
    assert o["errors"]["half"] == ("UnimplementedError", "Data type not supported")
    assert o["errors"]["part"] == ("UnimplementedError", "Sliced checkpoints are not supported")
    for name in ("keras_weights", "keras_archive"):
        err = oracles[name]["open_error"]
        assert err is not None and "not an sstable (bad magic number)" in err[1]


def test_inspect_checkpoint_default_mode(corpus, oracles):
    # one subprocess (~3 s): TF's inspect_checkpoint prints debug_string + params
    from tf_oracle import inspect_output

    out = inspect_output(corpus["module_nested"].prefix)
    o = oracles["module_nested"]
    assert out.startswith(o["debug_string"])
    n_params = sum(int(np.prod(s)) for _, s in o["list_variables"])
    assert out.rstrip("\n").endswith(f"# Total number of params: {n_params}")
