"""The reader against TensorFlow: every key, dtype, shape and value of real checkpoints."""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest

import tfckpt
from tfckpt import _native

V2_KINDS = {"raw_savev2", "tf2_object", "tf2_sharded", "tf1_name_based", "savedmodel"}
V2_CASES = [
    "big_key_count",
    "data_iterator",
    "dtypes",
    "keras_adam",
    "keras_model_only",
    "lookup_table",
    "module_nested",
    "multi_device",
    "multi_device_default",
    "multi_device_tf1",
    "name_based_v1_saver_scalar",
    "savedmodel",
    "sharded_policy",
    "strings",
    "tf1_partitioned",
    "tf1_savedmodel",
    "tf2_optimizer_slots",
]


def test_corpus_cases_are_all_covered(corpus):
    assert sorted(n for n, c in corpus.items() if c.kind in V2_KINDS) == sorted(V2_CASES)


def _same_value(ours, theirs) -> None:
    """Bit-exact equality with what TensorFlow's get_tensor returned."""
    if isinstance(theirs, bytes):  # TF returns a scalar string as bytes
        assert ours.shape == () and ours.item() == theirs
        return
    theirs = np.asarray(theirs)
    assert ours.shape == theirs.shape
    if theirs.dtype == object:
        assert ours.dtype == object
        assert ours.tolist() == theirs.tolist()
        return
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    assert ours.tobytes() == theirs.tobytes()


@pytest.mark.parametrize("case", V2_CASES)
def test_keys_dtypes_shapes_match_tensorflow(corpus, oracles, case):
    o = oracles[case]
    assert o["open_error"] is None
    with tfckpt.open(corpus[case].prefix) as r:
        assert r.keys() == [k for k, _ in o["list_variables"]]
        assert len(r) == len(o["list_variables"])
        for key, shape in o["list_variables"]:
            assert key in r
            e = r.entry(key)
            assert list(e.shape) == shape, key
            assert e.dtype_name == o["dtypes"][key], key


@pytest.mark.parametrize("case", V2_CASES)
def test_values_bit_exact_with_tensorflow(corpus, oracles, case):
    o = oracles[case]
    with tfckpt.open(corpus[case].prefix) as r:
        for key, theirs in o["values"].items():
            _same_value(r.read(key), theirs)
            _same_value(r[key], theirs)
        # Everything TensorFlow refuses, tfckpt reads, with the values TensorFlow's own
        # pieces give (each slice restored alone, or each variant element parsed).
        assert {k: err[0] for k, err in o["errors"].items()} == REFUSED_BY_TF.get(case, {})
        for key in o["errors"]:
            e = r.entry(key)
            ours = r.read(key)
            if e.slices:
                theirs = _tf_restore_slicewise(corpus[case].prefix, key, e)
                assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, key
                assert (
                    ours.tolist() == theirs.tolist()
                    if ours.dtype == object
                    else ours.tobytes() == theirs.tobytes()
                )
            else:
                assert e.dtype_name == "variant", key
                _same_variants(ours, _tf_parse_variants(r, e))


#: the keys of V2_CASES that TensorFlow's get_tensor refuses, with the exception it raises
REFUSED_BY_TF = {
    "data_iterator": {"it/.ATTRIBUTES/ITERATOR_STATE": "InternalError"},  # not convertible
    "sharded_policy": {
        f"{v}/.ATTRIBUTES/VARIABLE_VALUE": "ValueError"  # Dtype ... not supported
        for v in ("half", "text", "u16")
    },
}


def _tf_parse_variants(r, e):
    """The elements of a variant tensor as TensorFlow's own protos parse them: the payload
    framed by hand (varint length, element, 4-byte checksum; FORMAT.md), each element a
    tensorflow VariantTensorDataProto whose tensors tf.make_ndarray converts."""
    import tensorflow as tf
    from tensorflow.core.framework.tensor_pb2 import VariantTensorDataProto

    with open(r.shard_path(e.shard_id), "rb") as f:
        f.seek(e.offset)
        payload = f.read(e.size)
    out, pos = [], 0
    for _ in range(e.num_elements):
        length = shift = 0
        while True:
            b = payload[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        msg = VariantTensorDataProto()
        msg.ParseFromString(payload[pos : pos + length])
        pos += length + 4
        out.append(_tf_variant(tf, msg))
    assert pos == len(payload)
    return out


def _tf_variant(tf, msg):
    """(type_name, metadata, tensors) of a VariantTensorDataProto; a tensor of variants
    (an iterator's nested state) becomes a list of such triples, others tf.make_ndarray's."""
    tensors = []
    for t in msg.tensors:
        if t.dtype == tf.variant.as_datatype_enum:
            tensors.append([_tf_variant(tf, v) for v in t.variant_val])
        else:
            tensors.append(tf.make_ndarray(t))
    return msg.type_name, msg.metadata, tensors


def _same_variants(ours, theirs) -> None:
    assert ours.dtype == object and ours.size == len(theirs)
    for got, (type_name, metadata, tensors) in zip(ours.reshape(-1), theirs):
        assert isinstance(got, tfckpt.Variant)
        assert (got.type_name, got.metadata) == (type_name, metadata)
        assert len(got.tensors) == len(tensors)
        for a, b in zip(got.tensors, tensors):
            if isinstance(b, list):  # a tensor of variants
                _same_variants(a, b)
                continue
            assert a.dtype == b.dtype and a.shape == b.shape
            assert a.tolist() == b.tolist() if a.dtype == object else a.tobytes() == b.tobytes()


def test_every_dtype_tensorflow_saves(corpus, oracles):
    """dtype and numpy type of each of the 31 memcpy/string dtypes, incl. float8, int4, int2,
    float4, quantized, complex, bool, bfloat16 and half."""
    o = oracles["dtypes"]
    with tfckpt.open(corpus["dtypes"].prefix) as r:
        seen = {r.entry(k).dtype_name for k in r}
        # Exactly the dtypes the corpus saved, and exactly those TensorFlow reports.
        assert seen == set(corpus["dtypes"].extra["dtype_names"])
        assert seen == set(o["dtypes"].values())
        assert len(seen) == 31
        for key in r:
            e = r.entry(key)
            v = r.read(key)
            if e.dtype_name == "string":  # TF gives bytes for a scalar, else an object array
                assert v.dtype == object
            else:
                assert v.dtype == np.asarray(o["values"][key]).dtype, key
            if e.dtype_name.startswith(("int4", "uint4", "int2", "uint2", "float8", "float4")):
                assert v.dtype.itemsize == 1  # unpacked, one byte per element
            if e.dtype_name.startswith(("qint", "quint")):
                assert v.dtype == np.dtype(e.dtype_name[1:])  # qint8 -> int8, as TF returns


def test_numeric_values_are_zero_copy_read_only_views(corpus):
    with tfckpt.open(corpus["dtypes"].prefix) as r:
        key = next(k for k in r if r.entry(k).dtype_name == "float32" and r.entry(k).size)
        v = r.read(key)
        assert not v.flags.writeable
        assert not v.flags.owndata
    # The mapping outlives the reader: the array stays valid after close.
    assert v.copy().tobytes() == v.tobytes()


def test_variant_iterator_state_decoded(corpus, oracles):
    key = "it/.ATTRIBUTES/ITERATOR_STATE"
    o = oracles["data_iterator"]
    assert "not convertible to numpy" in o["errors"][key][1]  # TF's own reader cannot show it
    with tfckpt.open(corpus["data_iterator"].prefix) as r:
        e = r.entry(key)
        assert e.dtype_name == "variant"
        v = r.read(key)
        assert v.shape == tuple(e.shape) and v.dtype == object
        for element in v:
            assert isinstance(element, tfckpt.Variant)
            assert element.type_name == "tensorflow::Iterator"
            assert element.metadata
            for t in element.tensors:
                assert isinstance(t, np.ndarray)


def _tf_restore_slicewise(prefix, key, entry):
    """TensorFlow's own bytes for a partitioned tensor it cannot assemble: each stored slice
    restored by RestoreV2 on exactly its own extent, placed by numpy."""
    import tensorflow as tf

    dtype = tf.as_dtype(entry.dtype_name if entry.dtype_name != "string" else tf.string)
    out = np.empty(entry.shape, dtype=object if entry.dtype_name == "string" else entry.dtype)
    for s in entry.slices:
        spec = " ".join(str(d) for d in entry.shape) + " " + s.spec
        (part,) = tf.raw_ops.RestoreV2(
            prefix=prefix, tensor_names=[key], shape_and_slices=[spec], dtypes=[dtype]
        )
        out[tuple(slice(a, b) for a, b in s.bounds(entry.shape))] = part.numpy()
    return out


@pytest.mark.parametrize("var", ["half", "u16", "text", "big", "bf16", "c64"])
def test_partitioned_assembles_every_dtype(corpus, oracles, var):
    prefix = corpus["sharded_policy"].prefix
    key = f"{var}/.ATTRIBUTES/VARIABLE_VALUE"
    o = oracles["sharded_policy"]
    with tfckpt.open(prefix) as r:
        e = r.entry(key)
        assert len(e.slices) > 1
        ours = r.read(key)
    if key in o["errors"]:
        assert "not supported" in o["errors"][key][1]  # e.g. "Dtype half not supported."
    else:
        _same_value(ours, o["values"][key])
    expected = _tf_restore_slicewise(prefix, key, e)
    if ours.dtype == object:
        assert ours.tolist() == expected.tolist()
    else:
        assert ours.tobytes() == expected.tobytes()


def test_slice_keys_hidden_but_readable(corpus):
    with tfckpt.open(corpus["tf1_partitioned"].prefix) as r:
        raw = r.raw_keys
        slice_keys = [k for k in raw if k.startswith(b"\x00")]
        assert slice_keys and all(
            k.decode("utf-8", "surrogateescape") not in r.keys() for k in slice_keys
        )
        for k in slice_keys:
            name, extents = _native.decode_slice_key(k)
            assert name.decode() in r
            full = r.entry(name.decode())
            assert _native.slice_key(name, extents) == k  # re-encoding is byte-exact
            assert r.read(k).shape == tuple(
                full.shape[d] if ln < 0 else ln for d, (st, ln) in enumerate(extents)
            )


def test_read_slice_rows_of_a_tensor(corpus):
    with tfckpt.open(corpus["sharded_policy"].prefix) as r:
        for var in ("big", "half", "text", "small"):
            key = f"{var}/.ATTRIBUTES/VARIABLE_VALUE"
            full = r.read(key)
            n = full.shape[0]
            for index in (np.s_[3 : n - 2], np.s_[n // 2], np.s_[0:0], np.s_[1:4, ...]):
                got = r.read_slice(key, index)
                want = full[index]
                if not isinstance(want, np.ndarray):  # an element of a 1-D array
                    want = np.array(want, dtype=full.dtype)
                assert got.shape == want.shape
                assert (
                    got.tolist() == want.tolist()
                    if full.dtype == object
                    else got.tobytes() == np.ascontiguousarray(want).tobytes()
                )
        big = r.read("big/.ATTRIBUTES/VARIABLE_VALUE")
        assert (
            r.read_slice("big/.ATTRIBUTES/VARIABLE_VALUE", "10,20:5,3").tobytes()
            == np.ascontiguousarray(big[10:30, 5:8]).tobytes()
        )
        with pytest.raises(tfckpt.InvalidArgumentError):
            r.read_slice("big/.ATTRIBUTES/VARIABLE_VALUE", "0,1")


def test_read_slice_touches_only_needed_bytes(tmp_path):
    """Rows 1000-2000 of a 64 MiB embedding come back even when every other byte of the
    shard is garbage: nothing else was read."""
    import tensorflow as tf

    emb = np.arange(16384 * 1024, dtype=np.float32).reshape(16384, 1024)
    prefix = str(tmp_path / "emb")
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=["emb"], shape_and_slices=[""], tensors=[tf.constant(emb)]
    )
    shard = prefix + ".data-00000-of-00001"
    with open(shard, "r+b") as f:
        data = bytearray(f.read())
        row = 1024 * 4
        keep = bytes(data[1000 * row : 2000 * row])
        data[:] = b"\xff" * len(data)
        data[1000 * row : 2000 * row] = keep
        f.seek(0)
        f.write(data)
    with tfckpt.open(prefix) as r:
        got = r.read_slice("emb", np.s_[1000:2000])
        assert np.array_equal(got, emb[1000:2000])
        with pytest.raises(tfckpt.ChecksumMismatchError):
            r.read("emb")


def test_entry_checksums_match_crcmod(corpus):
    import crcmod.predefined

    crc = crcmod.predefined.mkCrcFun("crc-32c")
    with tfckpt.open(corpus["dtypes"].prefix) as r:
        with open(r.shard_path(0), "rb") as f:
            data = f.read()
        for key in r:
            e = r.entry(key)
            if e.dtype_name == "string":
                continue  # its CRC covers fixed-width lengths, not the varints stored
            assert e.checksum == crc(data[e.offset : e.offset + e.size]), key
            assert _native.mask_crc(e.checksum) == e.crc32c


def test_header(corpus):
    with tfckpt.open(corpus["multi_device"].prefix) as r:
        assert r.header.num_shards == corpus["multi_device"].extra["expected_num_shards"] > 1
        assert r.header.endianness == "little"
        assert (r.header.producer, r.header.min_consumer) == (1, 0)


def test_object_graph_keras_kernel_under_optimizer(corpus):
    with tfckpt.open(corpus["keras_adam"].prefix) as r:
        g = r.object_graph
        keys = {v["key"] for v in g.variables()}
        assert keys <= set(r.keys())
        # Every stored variable value is reached from the object graph.
        assert keys == {k for k in r.keys() if k != tfckpt.OBJECT_GRAPH_KEY}
        trainable = [v for v in g.variables() if v["key"].startswith("optimizer/_trainable")]
        assert trainable
        for v in trainable:
            # The kernel is the model's too: a path under "model" reaches the same object.
            assert any(p.startswith("model/") for p in v["paths"]), v


def test_object_graph_slot_variables(corpus):
    with tfckpt.open(corpus["tf2_optimizer_slots"].prefix) as r:
        g = r.object_graph
        slots = [v for v in g.variables() if "slot" in v]
        assert slots
        for v in slots:
            s = v["slot"]
            assert (
                v["key"] == f"{s['variable']}/.OPTIMIZER_SLOT/{s['optimizer']}/"
                f"{s['name']}/.ATTRIBUTES/VARIABLE_VALUE"
            )
            assert v["key"] in r
        text = g.render()
        assert "[slot m of" in text and "[slot v of" in text


def test_object_graph_escaped_names(corpus):
    with tfckpt.open(corpus["module_nested"].prefix) as r:
        g = r.object_graph
        for v in g.variables():
            assert v["key"] == f"{v['path']}/.ATTRIBUTES/{v['attribute']}"
        assert any("k..x.Sy" in v["path"] for v in g.variables())
        assert "k.x/y" in g.render()


def test_name_based_checkpoint_has_no_object_graph(corpus):
    with tfckpt.open(corpus["tf1_partitioned"].prefix) as r:
        assert r.object_graph is None


# -- what the user points at ------------------------------------------------------------


def test_paths_resolve_like_latest_checkpoint(corpus):
    c = corpus["keras_adam"]
    d = os.path.dirname(c.prefix)
    assert tfckpt.open(d).prefix == c.prefix  # the newest, ckpt-2
    assert tfckpt.open(os.path.join(d, "checkpoint")).prefix == c.prefix
    assert tfckpt.open(c.prefix + ".index").prefix == c.prefix
    assert tfckpt.open(c.prefix + ".data-00000-of-00001").prefix == c.prefix
    sm = corpus["savedmodel"]
    assert tfckpt.open(sm.extra["savedmodel_dir"]).prefix == sm.prefix


def test_moved_tf1_directory_with_absolute_state_paths(corpus, tmp_path):
    src = os.path.dirname(corpus["tf1_partitioned"].prefix)
    dst = tmp_path / "moved"
    shutil.copytree(src, dst)
    with open(dst / "checkpoint") as f:
        assert src in f.read()  # absolute paths to the old place
    assert tfckpt.open(str(dst)).prefix == str(
        dst / os.path.basename(corpus["tf1_partitioned"].prefix)
    )


@pytest.mark.parametrize(
    "case, words",
    [
        ("keras_weights", "HDF5"),
        ("keras_archive", "Keras v3 archive"),
    ],
)
def test_not_a_checkpoint_says_what_it_is(corpus, case, words):
    with pytest.raises(tfckpt.NotACheckpointError, match=words):
        tfckpt.open(corpus[case].prefix)


def test_v1_checkpoint_opens_as_v1(corpus):
    """tfckpt.open reads format V1 (tests/test_v1.py); the V2-only Reader names it."""
    with tfckpt.open(corpus["v1_format"].prefix) as r:
        assert r.header.format == "V1" and len(r) == 10
    with pytest.raises(tfckpt.UnsupportedCheckpointError, match="V1"):
        tfckpt.Reader(corpus["v1_format"].prefix)


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty file"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n", "git-lfs"),
        (b"hello, this is text\n", "text file"),
    ],
)
def test_other_files_named(tmp_path, content, words):
    p = tmp_path / "thing.ckpt"
    p.write_bytes(content)
    with pytest.raises(tfckpt.NotACheckpointError, match=words):
        tfckpt.open(str(p))


def test_missing_prefix_suggests_candidates(corpus):
    prefix = corpus["keras_adam"].prefix
    with pytest.raises(tfckpt.NotACheckpointError, match="did you mean") as ei:
        tfckpt.open(prefix[:-2])
    assert prefix in str(ei.value)


def test_missing_key_is_a_key_error(corpus):
    with tfckpt.open(corpus["strings"].prefix) as r:
        with pytest.raises(KeyError):
            r["nope"]
        with pytest.raises(tfckpt.KeyNotFoundError, match="Key nope not found in checkpoint"):
            r.read("nope")
        assert "nope" not in r
        assert r.get("nope") is None


# -- concurrency ------------------------------------------------------------------------


def test_threads_read_at_once(corpus, oracles):
    o = oracles["dtypes"]
    r = tfckpt.open(corpus["dtypes"].prefix)
    errors = []

    def work():
        try:
            for _ in range(5):
                for key, theirs in o["values"].items():
                    _same_value(r.read(key), theirs)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# -- big-endian ---------------------------------------------------------------------------


def _entry_bytes(dtype, shape, offset, size, crc, shard=0):
    from tfckpt.proto import BundleEntryProto

    e = BundleEntryProto(dtype=dtype, shard_id=shard, offset=offset, size=size, crc32c=crc)
    for d in shape:
        e.shape.dim.add(size=d)
    if not shape:
        e.shape.SetInParent()
    return e.SerializeToString()


def test_big_endian_bundle_reads_byteswapped(tmp_path):
    """A hand-built bundle marked BIG, its payloads written big-endian: values come back
    right, CRCs checked on the bytes as stored (FORMAT.md 5.6)."""
    from tfckpt.proto import BundleHeaderProto

    values = {
        "f32": np.array([1.5, -2.0, 3.25], dtype=np.float32),
        "i64": np.array([[1, -2], [3, 2**40]], dtype=np.int64),
        "c64": np.array([1 + 2j, -3.5j], dtype=np.complex64),
        "f16": np.array([0.5, -1.0], dtype=np.float16),
        "u8": np.array([1, 255], dtype=np.uint8),
        "bf16": np.array([1.0, -0.5], dtype=tfckpt.dtypes.numpy_dtype(14)),
    }
    codes = {"f32": 1, "i64": 9, "c64": 8, "f16": 19, "u8": 4, "bf16": 14}
    units = {"f32": 4, "i64": 8, "c64": 4, "f16": 2, "u8": 1, "bf16": 2}
    data = bytearray()
    items = []
    header = BundleHeaderProto(num_shards=1, endianness=BundleHeaderProto.BIG)
    header.version.producer = 1
    items.append((b"", header.SerializeToString()))
    # Strings: the CRC covers lengths as the writer's (big-endian) uint32s.
    strings = [b"hi", b"", b"xyz"]
    entries = {}
    for name in sorted(values):
        v = values[name]
        u = units[name]
        raw = v.view(np.uint8) if u == 1 else v.view(f"u{u}").byteswap().view(np.uint8)
        raw = raw.tobytes()
        entries[name.encode()] = _entry_bytes(
            codes[name], v.shape, len(data), len(raw), _native.mask_crc(_native.crc32c(raw))
        )
        data += raw
    lens = b"".join(bytes([len(s)]) for s in strings)
    c = _native.crc32c(b"".join(len(s).to_bytes(4, "big") for s in strings))
    checksum = _native.mask_crc(c).to_bytes(4, "big")
    c = _native.crc32c(checksum, c)
    c = _native.crc32c(b"".join(strings), c)
    payload = lens + checksum + b"".join(strings)
    entries[b"str"] = _entry_bytes(7, [3], len(data), len(payload), _native.mask_crc(c))
    data += payload
    items += sorted(entries.items())
    prefix = str(tmp_path / "be")
    with open(prefix + ".index", "wb") as f:
        f.write(_native.build_table(items))
    with open(prefix + ".data-00000-of-00001", "wb") as f:
        f.write(bytes(data))
    with tfckpt.open(prefix) as r:
        assert r.header.endianness == "big"
        for name, v in values.items():
            got = r.read(name)
            assert got.dtype == v.dtype and got.tobytes() == v.tobytes(), name
        assert r.read("str").tolist() == strings


def test_editing_a_big_endian_bundle_keeps_its_byte_order(tmp_path):
    """Copied payloads keep their bytes; new values are swapped to match the header."""
    test_big_endian_bundle_reads_byteswapped(tmp_path)
    out = str(tmp_path / "edited")
    tfckpt.edit(
        str(tmp_path / "be"),
        out,
        set={"f32": np.array([7, 8, 9], np.float32)},
        add={"new": np.arange(3, dtype=np.int64)},
    )
    with tfckpt.open(out) as r, tfckpt.open(str(tmp_path / "be")) as src:
        assert r.header.endianness == "big"
        assert r.read("f32").tolist() == [7, 8, 9]
        assert r.read("new").tolist() == [0, 1, 2]
        for key in ("i64", "c64", "f16", "bf16", "u8", "str"):
            assert (
                r.read(key).tobytes() == src.read(key).tobytes()
                if key != "str"
                else r.read(key).tolist() == src.read(key).tolist()
            )
        assert r.entry("i64").crc32c == src.entry("i64").crc32c


FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
BE_FIXTURE = os.path.join(FIXTURES, "v2_big_endian", "be")


def _tf_restore_region(prefix, key, dtype_name, shape, bounds):
    """TensorFlow's RestoreV2 of the region `bounds` ((start, stop) per dimension) of `key`."""
    import tensorflow as tf

    spec = " ".join(str(d) for d in shape) + " " + ":".join(f"{a},{b - a}" for a, b in bounds)
    (part,) = tf.raw_ops.RestoreV2(
        prefix=prefix, tensor_names=[key], shape_and_slices=[spec], dtypes=[tf.as_dtype(dtype_name)]
    )
    return part.numpy()


def test_big_endian_read_slice_matches_tensorflow():
    """read_slice on a big-endian bundle swaps the bytes as read does: every region of every
    numeric tensor of the committed fixture equals TensorFlow's RestoreV2 of that region
    (TF byte-swaps big-endian bundles on read; it restores no half from a slice spec, so for
    float16 its whole value, sliced, is the reference)."""
    import tensorflow as tf

    tf_values = tf.train.load_checkpoint(BE_FIXTURE)
    with tfckpt.open(BE_FIXTURE) as r:
        assert r.header.endianness == "big"
        checked = 0
        for key in r.keys():
            e = r.entry(key)
            whole = r.read(key)
            if e.dtype_name == "string":
                assert (
                    r.read_slice(key, np.s_[1:3]).tolist() == whole[1:3].tolist() == [b"", b"xyz"]
                )
                continue
            n = e.shape[0]
            regions = [((0, n),), ((1, n),), ((0, 1),)]
            if len(e.shape) == 2:
                regions = [(a, (0, e.shape[1])) for (a,) in regions] + [((1, 2), (1, 2))]
            for bounds in regions:
                index = tuple(slice(a, b) for a, b in bounds)
                for verify in (False, True):
                    got = r.read_slice(key, index, verify=verify)
                    want = (
                        tf_values.get_tensor(key)[index]
                        if e.dtype_name == "float16"
                        else _tf_restore_region(BE_FIXTURE, key, e.dtype_name, e.shape, bounds)
                    )
                    assert got.dtype == want.dtype and got.shape == want.shape, (key, bounds)
                    assert got.tobytes() == want.tobytes(), (key, bounds, got, want)
                    assert got.tobytes() == np.ascontiguousarray(whole[index]).tobytes()
                    checked += 1
            # an integer index drops the dimension, the value still swapped
            assert (
                r.read_slice(key, n - 1).tobytes() == np.ascontiguousarray(whole[n - 1]).tobytes()
            )
        assert checked == 2 * (5 * 3 + 4)  # f32, c64, f16, u8, bf16 1-D; i64 2-D
    # the values themselves, as the fixture's generator gave them
    with tfckpt.open(BE_FIXTURE) as r:
        assert r.read_slice("f32", np.s_[1:]).tolist() == [-2.0, 3.25]
        assert r.read_slice("i64", np.s_[1:, 1:]).tolist() == [[2**40]]
        assert r.read_slice("c64", np.s_[0:1]).tolist() == [1 + 2j]


def _partitioned_pair(tmp_path):
    """The same tensors written little- and big-endian by tfckpt's writer: partitioned
    float32 (rows), int64 (columns), float16 and a whole float32 [0, 1, 2]."""
    values = {
        "rows": np.arange(40, dtype=np.float32).reshape(8, 5) * 1.5 - 7,
        "cols": (np.arange(24, dtype=np.int64).reshape(4, 6) - 12) * (1 << 33),
        "half": np.linspace(-2, 2, 12).astype(np.float16).reshape(6, 2),
        "whole": np.arange(3, dtype=np.float32),
    }
    prefixes = {}
    for order in ("little", "big"):
        prefix = str(tmp_path / order)
        with tfckpt.Writer(prefix, big_endian=order == "big") as w:
            w.add_slice("rows", (8, 5), np.s_[0:3], values["rows"][0:3])
            w.add_slice("rows", (8, 5), np.s_[3:8], values["rows"][3:8])
            w.add_slice("cols", (4, 6), "-:0,2", values["cols"][:, 0:2])
            w.add_slice("cols", (4, 6), "-:2,4", values["cols"][:, 2:6])
            w.add_slice("half", (6, 2), np.s_[0:4], values["half"][0:4])
            w.add_slice("half", (6, 2), np.s_[4:6], values["half"][4:6])
            w.add("whole", values["whole"])
        prefixes[order] = prefix
    return values, prefixes


def test_big_endian_partitioned_read_and_read_slice(tmp_path):
    """Partitioned and whole tensors of a big-endian bundle, read whole and region by region:
    the values of the little-endian twin, and TensorFlow's where it restores slices."""
    values, prefixes = _partitioned_pair(tmp_path)
    with open(prefixes["big"] + ".data-00000-of-00001", "rb") as f:
        raw = f.read()
    # the payloads really are big-endian: float32 1.0 is 3f 80 00 00
    assert np.float32(1).tobytes()[::-1] in raw
    with tfckpt.open(prefixes["big"]) as be, tfckpt.open(prefixes["little"]) as le:
        assert (be.header.endianness, le.header.endianness) == ("big", "little")
        assert be.read("whole").tolist() == [0.0, 1.0, 2.0]
        assert be.read_slice("whole", np.s_[0:3]).tolist() == [0.0, 1.0, 2.0]
        assert be.read_slice("whole", np.s_[1:]).tolist() == [1.0, 2.0]
        for key, v in values.items():
            assert be.read(key).tobytes() == le.read(key).tobytes() == v.tobytes(), key
            n = v.shape[0]
            for index in (np.s_[0:n], np.s_[1 : n - 1], np.s_[n - 1], np.s_[2:3, ...]):
                want = np.array(v[index])  # C order; 0-d for an integer index
                for verify in (False, True):
                    got = be.read_slice(key, index, verify=verify)
                    assert got.dtype == want.dtype and got.shape == want.shape
                    assert got.tobytes() == want.tobytes(), (key, index, verify)
                    assert got.tobytes() == le.read_slice(key, index, verify=verify).tobytes()
        cols = be.read_slice("cols", np.s_[:, 1:3])  # crosses the two stored slices
        assert cols.tobytes() == np.ascontiguousarray(values["cols"][:, 1:3]).tobytes()
    # TensorFlow restores the float32 and int64 slices (it refuses half from slices)
    for key, bounds in (
        ("rows", ((2, 5), (1, 4))),
        ("cols", ((0, 4), (1, 3))),
        ("whole", ((1, 3),)),
    ):
        want = _tf_restore_region(
            prefixes["big"], key, values[key].dtype.name, values[key].shape, bounds
        )
        with tfckpt.open(prefixes["big"]) as be:
            got = be.read_slice(key, tuple(slice(a, b) for a, b in bounds))
        assert got.tobytes() == want.tobytes(), key


def _flip_payload_byte(r, entry, at=0):
    path = r.shard_path(entry.shard_id)
    with open(path, "r+b") as f:
        f.seek(entry.offset + at)
        b = f.read(1)
        f.seek(entry.offset + at)
        f.write(bytes([b[0] ^ 0x10]))
    return path


def test_partitioned_read_checks_each_slice_crc(tmp_path):
    """A flipped byte in one stored slice of a partitioned tensor: read and verify_key raise
    ChecksumMismatchError naming the tensor, the slice and the shard (TensorFlow raises
    DataLoss too); read(verify=False) and regions outside the damaged slice still read."""
    import tensorflow as tf

    values, prefixes = _partitioned_pair(tmp_path)
    prefix = prefixes["little"]
    with tfckpt.open(prefix) as r:
        sl = r.entry("rows").slices[1]  # rows 3..7
        assert sl.bounds((8, 5)) == ((3, 8), (0, 5))
        sub = r.slice_entry("rows", sl)
        path = _flip_payload_byte(r, sub, at=4 * 7)  # row 4, column 2
    messages = []
    with tfckpt.open(prefix) as r:
        for call in (
            lambda: r.read("rows"),
            lambda: r["rows"],
            lambda: r.verify_key("rows"),
            lambda: r.read_slice("rows", np.s_[4:6], verify=True),
        ):
            with pytest.raises(tfckpt.ChecksumMismatchError) as info:
                call()
            err = info.value
            messages.append(str(err))
            assert "Checksum does not match" in str(err)
            assert f"rows (slice {sl.spec})" in str(err) and path in str(err)
            assert (err.shard, err.offset) == (0, sub.offset)
            assert err.stored == _native.unmask_crc(sub.crc32c) != err.computed
        # unverified reads see the damage; the undamaged slice reads and verifies
        damaged = r.read("rows", verify=False)
        assert damaged[4, 2] != values["rows"][4, 2]
        assert (
            np.delete(damaged.reshape(-1), 4 * 5 + 2).tobytes()
            == np.delete(values["rows"].reshape(-1), 4 * 5 + 2).tobytes()
        )
        assert (
            r.read_slice("rows", np.s_[0:3], verify=True).tobytes() == values["rows"][0:3].tobytes()
        )
        assert r.read("cols").tobytes() == values["cols"].tobytes()
    with pytest.raises(tf.errors.OpError, match="Checksum does not match") as tf_info:
        tf.train.load_checkpoint(prefix).get_tensor("rows")
    assert messages[0].startswith(str(tf_info.value))  # TensorFlow's words, then where


def test_latest_checkpoint_is_the_state_files_model_checkpoint_path(tmp_path):
    """A directory opens at the checkpoint its state file's model_checkpoint_path names, as
    tf.train.latest_checkpoint finds it: not the first or last of
    all_model_checkpoint_paths, not the highest number, not the newest file."""
    import tensorflow as tf

    d = tmp_path / "train"
    for step in (1, 2, 3):
        tfckpt.write(str(d / f"ckpt-{step}"), {"step": np.int64(step)})
    newest = time.time() + 100
    os.utime(d / "ckpt-1.index", (newest, newest))
    for path in ("ckpt-2", str(d / "ckpt-2")):  # relative, absolute
        (d / "checkpoint").write_text(
            f'model_checkpoint_path: "{path}"\n'
            'all_model_checkpoint_paths: "ckpt-3"\n'
            'all_model_checkpoint_paths: "ckpt-2"\n'
            'all_model_checkpoint_paths: "ckpt-1"\n'
        )
        assert tf.train.latest_checkpoint(str(d)) == str(d / "ckpt-2")
        for where in (d, d / "checkpoint"):
            with tfckpt.open(str(where)) as r:
                assert r.prefix == str(d / "ckpt-2")
                assert r["step"] == 2


def test_read_slice_negative_indices_count_from_the_end(tmp_path):
    """Negative integers and slice bounds index from the end, as numpy does, on plain and
    partitioned tensors; out-of-range integers are refused."""
    values, prefixes = _partitioned_pair(tmp_path)
    with tfckpt.open(prefixes["little"]) as r:
        for key, v in values.items():
            for index in (-1, -v.shape[0], np.s_[-2:], np.s_[-3:-1], (-1, ...)):
                got = r.read_slice(key, index)
                want = np.array(v[index])
                assert got.shape == want.shape and got.tobytes() == want.tobytes(), (key, index)
            with pytest.raises(tfckpt.InvalidArgumentError, match="out of bounds"):
                r.read_slice(key, -v.shape[0] - 1)
        assert r.read_slice("rows", (-1, -2)).tolist() == values["rows"][-1, -2]
        assert r.read_slice("cols", np.s_[:, -1]).tolist() == values["cols"][:, -1].tolist()


def test_slices_overlapping_in_one_element_are_refused(tmp_path):
    """Two stored slices that share a single element: TensorFlow refuses the tensor
    ("Overlapping slices"), and so does tfckpt, naming both slices."""
    import sys

    import tensorflow as tf

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import craft as C

    a = np.arange(20, dtype=np.float32).reshape(4, 5)
    parts = {
        (0, 2, 0, 3): a[0:2, 0:3],
        (1, 3, 2, 3): a[1:4, 2:5],  # share a[1, 2]
        (2, 2, 0, 2): a[2:4, 0:2],
        (0, 1, 3, 2): a[0:1, 3:5],
    }
    entries, data = [], b""
    specs = [[(r0, rn), (c0, cn)] for r0, rn, c0, cn in parts]
    for spec, value in zip(specs, parts.values()):
        raw = value.tobytes()
        entries.append(
            (C.slice_key("p", spec), C.entry(1, list(value.shape), data=raw, offset=len(data)))
        )
        data += raw
    entries.append(("p", C.entry(1, [4, 5], slices=specs)))
    prefix = C.write_bundle(tmp_path, "ck", entries, data)
    with pytest.raises(tf.errors.OpError, match="Overlapping slices"):
        tf.train.load_checkpoint(prefix).get_tensor("p")
    with tfckpt.open(prefix) as r:
        for call in (
            lambda: r.read("p"),
            lambda: r.read_slice("p", np.s_[3:4]),
            lambda: r.verify_key("p"),
        ):
            with pytest.raises(
                tfckpt.CorruptCheckpointError,
                match=r"partitioned tensor p: slices 0,2:0,3 and 1,3:2,3 "
                "overlap",
            ):
                call()


def test_reference_dtypes_named_as_tensorflow_names_them(tmp_path):
    """Entries of reference dtypes (DT_FLOAT_REF = 101 ...; old graphs' variables) are listed
    with TensorFlow's names for them (float32_ref) and refused on read: they hold no values
    (TensorFlow's get_tensor aborts the process on them, so only its dtype map is asked)."""
    import sys

    import tensorflow as tf

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import craft as C

    data = np.arange(3, dtype=np.float32).tobytes()
    codes = [101, 102, 107, 109, 114, 119, 121, 133]
    prefix = C.write_bundle(
        tmp_path, "ck", [(f"k{c}", C.entry(c, [3], data=data)) for c in codes], data
    )
    names = {
        k: v.name for k, v in tf.train.load_checkpoint(prefix).get_variable_to_dtype_map().items()
    }
    with tfckpt.open(prefix) as r:
        for c in codes:
            e = r.entry(f"k{c}")
            assert e.dtype_name == names[f"k{c}"] == tfckpt.dtypes.by_code(c - 100).name + "_ref"
            with pytest.raises(
                tfckpt.UnsupportedCheckpointError,
                match=f"key k{c} has dtype {e.dtype_name}, which has no values",
            ):
                r.read(f"k{c}")


def test_entries_of_a_large_index_one_by_one_then_whole(tmp_path):
    """Above 4096 entries an index is decoded key by key, then whole once a script has
    asked for 1024: every Entry is the same either way (and equal to one made by hand),
    bytes keys included, and a missing key is still KeyNotFoundError."""
    import pickle

    import tfckpt.reader as reader_module
    from tfckpt.entries import Entry

    n = reader_module._DECODE_ALL_UP_TO + 500
    prefix = str(tmp_path / "big")
    values = {f"v{i:05d}": np.full(i % 7 + 1, i, np.int32) for i in range(n)}
    tfckpt.write(prefix, values)
    with tfckpt.open(prefix) as r:
        rows = {row[0]: row for row in r.listing()}
        first = r.entry(b"v00003")  # by bytes, before anything is decoded whole
        assert first.key == "v00003" and not r._all_decoded
        seen = []
        for i, k in enumerate(r.keys()):
            e = r.entry(k)
            # (the bytes key asked for first counts among the entries decoded one by one)
            assert r._all_decoded == (i >= reader_module._DECODE_ALL_AFTER - 1), i
            _, dtype, shape, size, n_elements, _, _ = rows[k]
            assert (e.key, e.dtype_code, e.shape, e.size, e.num_elements) == (
                k,
                dtype,
                shape,
                size,
                n_elements,
            )
            seen.append(e)
        assert r.entry(b"v00003") is first and r.entry("v00003") == first
        e = seen[-1]
        by_hand = Entry(
            e.key, e.dtype_code, e.shape, e.shard_id, e.offset, e.size, e.crc32c, (), e.num_elements
        )
        assert e == by_hand and hash(e) == hash(by_hand) and repr(e) == repr(by_hand)
        assert pickle.loads(pickle.dumps(e)) == e
        with pytest.raises(tfckpt.KeyNotFoundError):
            r.entry("v99999")


def test_entry_dtype_filled_by_the_core_as_python_makes_it(tmp_path):
    """`Entry.dtype` is a slot the core fills when it makes an entry (no property call per
    access). An entry of a DataType without a numpy dtype (resource; a code that is no
    DataType) says so with the TypeError the property gave, in both cores and in entries
    made in Python; each such entry reads, compares, copies and pickles as an Entry."""
    import copy
    import pickle

    from tfckpt import _pycore as PY
    from tfckpt.entries import Entry
    from tfckpt.reader import _slices_of

    prefix = str(tmp_path / "ckpt")
    with tfckpt.Writer(prefix) as w:
        w.add("a", np.arange(6, dtype=np.float32).reshape(2, 3))
        w.add("s", np.array([b"x", b"yz"], dtype=object))
        w.add_raw("resource", 20, (), b"", _native.mask_crc(0))
        w.add_raw("unknown", 999, (2,), b"\0" * 8, _native.mask_crc(_native.crc32c(b"\0" * 8)))
    buffer = (tmp_path / "ckpt.index").read_bytes()
    made = {
        "native": _native.Index(buffer, prefix).entry_objects(Entry, _slices_of),
        "python": PY.Index(buffer, prefix).entry_objects(Entry, _slices_of),
        "reader": {k: tfckpt.open(prefix).entry(k) for k in ("a", "s", "resource", "unknown")},
    }
    for how, entries in made.items():
        assert entries["a"].dtype == np.float32 and entries["a"].shape == (2, 3), how
        assert entries["s"].dtype == np.dtype(object), how
        for key, name in (("resource", "resource"), ("unknown", "unknown_dtype_999")):
            e = entries[key]
            assert isinstance(e, Entry) and repr(e).startswith(f"Entry(key='{key}'"), how
            with pytest.raises(TypeError, match=f"dtype {name} has no numpy equivalent"):
                e.dtype  # noqa: B018
            by_hand = Entry(key, e.dtype_code, e.shape, e.shard_id, e.offset, e.size,
                            e.crc32c, e.slices, e.num_elements)  # fmt: skip
            for other in (by_hand, pickle.loads(pickle.dumps(e)), copy.deepcopy(e)):
                assert other == e and type(other) is type(e), how
                with pytest.raises(TypeError):
                    other.dtype  # noqa: B018
        a = entries["a"]
        for other in (pickle.loads(pickle.dumps(a)), copy.copy(a)):
            assert other == a and other.dtype == np.float32


def test_open_tries_the_index_first_but_finds_what_else_a_path_names(tmp_path):
    """tfckpt.open reads `path`.index directly when there is one; a path that is not a
    prefix is still found as before: a directory with a state file (even beside a
    directory named like its index), an .index or data file name; a NUL in the path is a
    NotACheckpointError, not a ValueError."""
    run = tmp_path / "run"
    prefix = str(run / "ckpt-1")
    tfckpt.write(prefix, {"w": np.arange(3, dtype=np.float32)}, update_state=True)
    (tmp_path / "run.index").mkdir()  # `run` + ".index" is a directory, not an index
    for path in (prefix, str(run), prefix + ".index", prefix + ".data-00000-of-00001"):
        with tfckpt.open(path) as r:
            assert r.prefix == prefix and r["w"].tolist() == [0.0, 1.0, 2.0], path
    with pytest.raises(tfckpt.NotACheckpointError):
        tfckpt.open(str(run / "ckpt-1\0x"))


def test_payload_chunks_are_the_payload_in_pieces(tmp_path):
    """Reader.payload_chunks: the bytes of payload(e)[start:start+size] in pieces of at most
    `chunk` bytes (a local file through one reused buffer, a tar member through owned
    copies); a range outside the entry is a ValueError; a file truncated since it was
    opened is a CorruptCheckpointError that says it changed, never short data."""
    import tarfile

    values = np.arange(10_000, dtype=np.float32)
    prefix = tfckpt.write(tmp_path / "ckpt", {"v": values, "w": np.ones(7, np.int16)})
    with tarfile.open(tmp_path / "a.tar", "w") as tar:
        for suffix in (".index", ".data-00000-of-00001"):
            tar.add(prefix + suffix, arcname="ckpt" + suffix)
    whole = values.tobytes()
    from tfckpt.scanning import open_location

    for r in (tfckpt.open(prefix), open_location(f"{tmp_path}/a.tar!/ckpt")):
        e = r.entry("v")
        for start, size, chunk in ((0, e.size, 4096), (12, 1000, 333), (e.size, 0, 64), (5, 1, 1)):
            pieces = [bytes(p) for p in r.payload_chunks(e, start, size, chunk)]
            assert b"".join(pieces) == whole[start : start + size]
            assert all(0 < len(p) <= chunk for p in pieces)
        with pytest.raises(ValueError, match="outside the 40000-byte entry of v"):
            list(r.payload_chunks(e, 39_990, 11, 4))
    r = tfckpt.open(prefix)
    e = r.entry("v")
    os.truncate(prefix + ".data-00000-of-00001", 20_000)
    with pytest.raises(tfckpt.CorruptCheckpointError, match="changed"):
        list(r.payload_chunks(e, 0, e.size, 4096))
