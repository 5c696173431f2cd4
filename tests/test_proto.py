"""tfckpt.proto against TensorFlow's own generated protobuf modules.

TensorFlow is the test oracle here: for every exported message the
descriptor structure must equal TensorFlow's, and bytes must round-trip
both ways, both for synthetic fully-populated messages and for bytes taken
from checkpoints written by TensorFlow.
"""

import json
import os
import pickle
import struct
import subprocess
import sys

import pytest

# Imported before TensorFlow on purpose: ours must not clash with TF's
# registrations in the default descriptor pool, whichever comes first.
import tfckpt.proto as P

tf = pytest.importorskip("tensorflow")

from google.protobuf import (  # noqa: E402
    descriptor_pool,
    text_format,
    wrappers_pb2,  # noqa: E402
)
from google.protobuf.descriptor import FieldDescriptor  # noqa: E402
from tensorflow.core.framework import (  # noqa: E402
    resource_handle_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    tensor_slice_pb2,
    types_pb2,
    versions_pb2,
)
from tensorflow.core.protobuf import (  # noqa: E402
    tensor_bundle_pb2,
    trackable_object_graph_pb2,
)
from tensorflow.core.util import saved_tensor_slice_pb2  # noqa: E402
from tensorflow.python.training import checkpoint_state_pb2  # noqa: E402

# (our class, TensorFlow's class) for every exported message.
MESSAGE_PAIRS = [
    (P.VersionDef, versions_pb2.VersionDef),
    (P.BundleHeaderProto, tensor_bundle_pb2.BundleHeaderProto),
    (P.BundleEntryProto, tensor_bundle_pb2.BundleEntryProto),
    (P.TensorShapeProto, tensor_shape_pb2.TensorShapeProto),
    (P.TensorSliceProto, tensor_slice_pb2.TensorSliceProto),
    (P.ResourceHandleProto, resource_handle_pb2.ResourceHandleProto),
    (P.TensorProto, tensor_pb2.TensorProto),
    (P.VariantTensorDataProto, tensor_pb2.VariantTensorDataProto),
    (P.TrackableObjectGraph, trackable_object_graph_pb2.TrackableObjectGraph),
    (P.TrackableObject, trackable_object_graph_pb2.TrackableObjectGraph.TrackableObject),
    (P.RegisteredSaver, trackable_object_graph_pb2.RegisteredSaver),
    (P.CheckpointState, checkpoint_state_pb2.CheckpointState),
    (P.SavedSliceMeta, saved_tensor_slice_pb2.SavedSliceMeta),
    (P.SavedTensorSliceMeta, saved_tensor_slice_pb2.SavedTensorSliceMeta),
    (P.SavedSlice, saved_tensor_slice_pb2.SavedSlice),
    (P.SavedTensorSlices, saved_tensor_slice_pb2.SavedTensorSlices),
]
PAIR_IDS = [ours.DESCRIPTOR.full_name for ours, _ in MESSAGE_PAIRS]


def test_every_export_is_covered():
    covered = {ours.DESCRIPTOR.full_name for ours, _ in MESSAGE_PAIRS}
    for name in P.__all__:
        obj = getattr(P, name)
        if name == "DataType":
            continue
        assert obj.DESCRIPTOR.full_name in covered, name
    assert sorted(P.__all__) == sorted(
        [ours.DESCRIPTOR.name for ours, _ in MESSAGE_PAIRS] + ["DataType"]
    )


# ---------------------------------------------------------------------------
# Descriptor structure


def _label(field):
    if hasattr(field, "is_repeated"):  # protobuf >= 5.x; `label` is gone in 7.x
        if field.is_repeated:
            return "repeated"
        return "required" if field.is_required else "optional"
    return {1: "optional", 2: "required", 3: "repeated"}[field.label]


def _packed(field):
    if hasattr(field, "is_packed"):
        return field.is_packed
    return field.GetOptions().packed


def _assert_same_enum(ours, theirs):
    assert ours.full_name == theirs.full_name
    assert [(v.name, v.number) for v in ours.values] == [(v.name, v.number) for v in theirs.values]


def _assert_same_message(ours, theirs, seen):
    assert ours is not theirs
    assert ours.full_name == theirs.full_name
    if ours.full_name in seen:
        return
    seen.add(ours.full_name)
    assert ours.file.name == theirs.file.name
    assert ours.file.package == theirs.file.package
    assert [f.name for f in ours.fields] == [f.name for f in theirs.fields]
    for f, g in zip(ours.fields, theirs.fields):
        where = ours.full_name + "." + f.name
        assert f.number == g.number, where
        assert f.type == g.type, where
        assert f.cpp_type == g.cpp_type, where
        assert _label(f) == _label(g), where
        assert _packed(f) == _packed(g), where
        if hasattr(f, "has_presence"):
            assert f.has_presence == g.has_presence, where
        if not _label(f) == "repeated" and f.message_type is None:
            assert f.default_value == g.default_value, where
        assert (f.containing_oneof and f.containing_oneof.name) == (
            g.containing_oneof and g.containing_oneof.name
        ), where
        assert (f.message_type is None) == (g.message_type is None), where
        assert (f.enum_type is None) == (g.enum_type is None), where
        if f.message_type is not None:
            _assert_same_message(f.message_type, g.message_type, seen)
        if f.enum_type is not None:
            _assert_same_enum(f.enum_type, g.enum_type)
    assert [(o.name, [f.name for f in o.fields]) for o in ours.oneofs] == [
        (o.name, [f.name for f in o.fields]) for o in theirs.oneofs
    ]
    assert [n.name for n in ours.nested_types] == [n.name for n in theirs.nested_types]
    for n, m in zip(ours.nested_types, theirs.nested_types):
        _assert_same_message(n, m, seen)
    assert [e.name for e in ours.enum_types] == [e.name for e in theirs.enum_types]
    for e, d in zip(ours.enum_types, theirs.enum_types):
        _assert_same_enum(e, d)
    assert not ours.extensions and not theirs.extensions


@pytest.mark.parametrize("ours, theirs", MESSAGE_PAIRS, ids=PAIR_IDS)
def test_descriptor_structure(ours, theirs):
    _assert_same_message(ours.DESCRIPTOR, theirs.DESCRIPTOR, set())


@pytest.mark.parametrize("ours, theirs", MESSAGE_PAIRS, ids=PAIR_IDS)
def test_descriptor_proto_identical(ours, theirs):
    # DescriptorProto covers what the live descriptor API does not expose,
    # e.g. reserved ranges and names, and explicit [packed = true].
    from google.protobuf import descriptor_pb2

    a, b = descriptor_pb2.DescriptorProto(), descriptor_pb2.DescriptorProto()
    ours.DESCRIPTOR.CopyToProto(a)
    theirs.DESCRIPTOR.CopyToProto(b)
    assert text_format.MessageToString(a) == text_format.MessageToString(b)
    assert a == b


def test_data_type_enum():
    _assert_same_enum(P.DataType.DESCRIPTOR, types_pb2.DataType.DESCRIPTOR)
    assert P.DataType.DESCRIPTOR is not types_pb2.DataType.DESCRIPTOR
    assert [P.DataType.Name(i) for i in (0, 1, 7, 21, 33)] == [
        "DT_INVALID",
        "DT_FLOAT",
        "DT_STRING",
        "DT_VARIANT",
        "DT_FLOAT4_E2M1FN",
    ]
    assert P.DataType.Value("DT_FLOAT_REF") == 101
    assert P.DataType.Value("DT_FLOAT4_E2M1FN_REF") == 133
    numbers = sorted(P.DataType.values())
    assert numbers == list(range(34)) + list(range(101, 134))
    assert P.DataType.DT_BFLOAT16 == 14


def test_endianness_enum():
    assert P.BundleHeaderProto.LITTLE == 0
    assert P.BundleHeaderProto.BIG == 1
    assert P.BundleHeaderProto.Endianness.Name(1) == "BIG"


def test_private_pool_and_coexistence():
    default = descriptor_pool.Default()
    for ours, theirs in MESSAGE_PAIRS:
        assert ours is not theirs
        # The default pool holds TensorFlow's descriptors, not ours.
        found = default.FindMessageTypeByName(ours.DESCRIPTOR.full_name)
        assert found is theirs.DESCRIPTOR
        assert ours.DESCRIPTOR.file.pool is not default


def _run_python(code, stdin="", **env_extra):
    env = dict(os.environ, **env_extra)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(P.__file__))))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    out = subprocess.run(
        [sys.executable, "-c", code], input=stdin, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_pure_python_runtime():
    # upb attaches nested classes and builds descriptors differently from the
    # pure-Python runtime (and protobuf 3.20's), so check that one too.
    data = {}
    for ours_cls, theirs_cls in MESSAGE_PAIRS:
        theirs = theirs_cls()
        _fill(theirs)
        data[ours_cls.DESCRIPTOR.full_name] = theirs.SerializeToString(deterministic=True).hex()
    code = (
        "import json, pickle, sys\n"
        "from google.protobuf.internal import api_implementation\n"
        "assert api_implementation.Type() == 'python', api_implementation.Type()\n"
        "import tfckpt.proto as P\n"
        "data = json.load(sys.stdin)\n"
        "classes = {getattr(P, n).DESCRIPTOR.full_name: getattr(P, n)\n"
        "           for n in P.__all__ if n != 'DataType'}\n"
        "out = {}\n"
        "for name, hexdata in data.items():\n"
        "    m = classes[name].FromString(bytes.fromhex(hexdata))\n"
        "    assert type(pickle.loads(pickle.dumps(m))) is classes[name]\n"
        "    out[name] = m.SerializeToString(deterministic=True).hex()\n"
        "assert P.TrackableObject is P.TrackableObjectGraph.TrackableObject\n"
        "assert P.TensorSliceProto.Extent(length=0).SerializeToString() == b'\\x10\\x00'\n"
        "assert P.DataType.Name(33) == 'DT_FLOAT4_E2M1FN'\n"
        "json.dump(out, sys.stdout)\n"
    )
    out = _run_python(code, json.dumps(data), PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    assert json.loads(out) == data


def test_import_alone_does_not_touch_default_pool_or_import_tensorflow():
    code = (
        "import sys\n"
        "import tfckpt.proto as P\n"
        "from google.protobuf import descriptor_pool\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'tensorflow']\n"
        "pool = descriptor_pool.Default()\n"
        "for name in ('tensorflow/core/framework/versions.proto',\n"
        "             'tensorflow/core/protobuf/tensor_bundle.proto'):\n"
        "    try:\n"
        "        pool.FindFileByName(name)\n"
        "    except KeyError:\n"
        "        pass\n"
        "    else:\n"
        "        raise AssertionError(name + ' leaked into the default pool')\n"
        "print('ok')\n"
    )
    assert _run_python(code).strip() == "ok"


@pytest.mark.parametrize("ours_cls, theirs_cls", MESSAGE_PAIRS, ids=PAIR_IDS)
def test_pickle_gives_our_class(ours_cls, theirs_cls):
    # protobuf itself unpickles nested messages through the default pool,
    # which here would silently give TensorFlow's class.
    msg = ours_cls()
    _fill(msg)
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        back = pickle.loads(pickle.dumps(msg, protocol))
        assert type(back) is ours_cls
        assert back == msg
    dim = pickle.loads(pickle.dumps(P.TensorShapeProto.Dim(size=3)))
    assert type(dim) is P.TensorShapeProto.Dim and dim.size == 3


# ---------------------------------------------------------------------------
# Synthetic round trips: every field populated, both directions

_SAMPLES = {
    "int32": [7, -3, 2147483647],
    "int64": [1 << 40, -5, -(1 << 63)],
    "uint32": [4000000000, 1],
    "uint64": [(1 << 64) - 1, 2],
    "fixed32": [0xA282EAD8, 1],
    "float": [1.5, -0.25, float("inf")],
    "double": [1795541459.7836454, -2.5],
    "bool": [True, False, True],
    "string": ["h\u00e9llo", "x/.ATTRIBUTES/VARIABLE_VALUE"],
    "bytes": [b"\x00\xffab", b"", b"hi"],
}
_TYPE_NAMES = {getattr(FieldDescriptor, "TYPE_" + t.upper()): t for t in _SAMPLES}


def _fill(msg, depth=0):
    """Set every field of msg to non-default values (same for any runtime)."""
    for field in msg.DESCRIPTOR.fields:
        repeated = _label(field) == "repeated"
        if field.message_type is not None:
            if depth >= 3:
                continue
            if repeated:
                for _ in range(2):
                    _fill(getattr(msg, field.name).add(), depth + 1)
            else:
                getattr(msg, field.name).SetInParent()
                _fill(getattr(msg, field.name), depth + 1)
            continue
        if field.enum_type is not None:
            values = [field.enum_type.values[-1].number, 1, 0]
        else:
            values = _SAMPLES[_TYPE_NAMES[field.type]]
        if repeated:
            getattr(msg, field.name).extend(values)
        else:
            setattr(msg, field.name, values[0])


def _assert_same_bytes_both_ways(ours_cls, theirs_cls, data):
    ours = ours_cls.FromString(data)
    assert ours.SerializeToString(deterministic=True) == data
    theirs = theirs_cls.FromString(ours.SerializeToString())
    assert theirs.SerializeToString(deterministic=True) == data
    # Text format shows unknown fields nowhere, so equality also proves
    # that every field was known to us.
    assert text_format.MessageToString(ours) == text_format.MessageToString(theirs)
    return ours


@pytest.mark.parametrize("ours_cls, theirs_cls", MESSAGE_PAIRS, ids=PAIR_IDS)
def test_populated_round_trip(ours_cls, theirs_cls):
    theirs = theirs_cls()
    _fill(theirs)
    tf_bytes = theirs.SerializeToString(deterministic=True)
    assert tf_bytes
    # TF -> ours -> bytes
    _assert_same_bytes_both_ways(ours_cls, theirs_cls, tf_bytes)
    # ours (populated independently) -> bytes -> TF
    ours = ours_cls()
    _fill(ours)
    our_bytes = ours.SerializeToString(deterministic=True)
    assert our_bytes == tf_bytes
    back = theirs_cls.FromString(our_bytes)
    assert back == theirs
    assert text_format.MessageToString(ours) == text_format.MessageToString(back)
    # and text format read back by the other side
    assert text_format.Parse(text_format.MessageToString(theirs), ours_cls()) == ours


# ---------------------------------------------------------------------------
# Byte examples from FORMAT.md

H = bytes.fromhex


def test_header_bytes():
    h = _assert_same_bytes_both_ways(
        P.BundleHeaderProto, tensor_bundle_pb2.BundleHeaderProto, H("08 01 1a 02 08 01")
    )
    assert h.num_shards == 1
    assert h.endianness == P.BundleHeaderProto.LITTLE
    assert h.version.producer == 1 and h.version.min_consumer == 0
    built = P.BundleHeaderProto(num_shards=1, version=P.VersionDef(producer=1))
    assert built.SerializeToString() == H("08 01 1a 02 08 01")
    built.num_shards = 5
    assert built.SerializeToString() == H("08 05 1a 02 08 01")


def test_entry_bytes():
    e = P.BundleEntryProto(dtype=P.DataType.DT_FLOAT, offset=8, size=12, crc32c=0x12345678)
    e.shape.dim.add(size=3)
    data = H("08 01 12 04 12 02 08 03 20 08 28 0c 35 78 56 34 12")
    assert e.SerializeToString() == data
    _assert_same_bytes_both_ways(P.BundleEntryProto, tensor_bundle_pb2.BundleEntryProto, data)

    # int64 scalar at offset 0: shape is present but empty.
    e = P.BundleEntryProto(dtype=P.DataType.DT_INT64, size=8, crc32c=1)
    e.shape.SetInParent()
    assert e.SerializeToString() == H("08 09 12 00 28 08 35 01 00 00 00")

    # Empty float32[0,3], crc = Mask(0).
    data = H("08 01 12 06 12 00 12 02 08 03 20 34 35 d8 ea 82 a2")
    e = _assert_same_bytes_both_ways(P.BundleEntryProto, tensor_bundle_pb2.BundleEntryProto, data)
    assert [d.size for d in e.shape.dim] == [0, 3]
    assert e.offset == 52 and e.size == 0 and e.crc32c == 0xA282EAD8

    # The worked example of section 12, as written by TF's SaveV2.
    a = _assert_same_bytes_both_ways(
        P.BundleEntryProto,
        tensor_bundle_pb2.BundleEntryProto,
        H("08 01 12 04 12 02 08 02 28 08 35 59 3c e5 35"),
    )
    assert (a.dtype, a.offset, a.size, a.crc32c) == (1, 0, 8, 0x35E53C59)
    s = _assert_same_bytes_both_ways(
        P.BundleEntryProto,
        tensor_bundle_pb2.BundleEntryProto,
        H("08 07 12 04 12 02 08 02 20 08 28 09 35 6c 2a 4b 8d"),
    )
    assert (s.dtype, s.offset, s.size) == (P.DataType.DT_STRING, 8, 9)


def test_slice_bytes():
    ext = P.TensorSliceProto.Extent(start=0, length=12)
    assert ext.HasField("length")
    assert P.TensorSliceProto(extent=[ext]).SerializeToString() == H("0a 02 10 0c")
    # length is in a oneof: 0 is still serialized, absence means "full".
    zero = P.TensorSliceProto.Extent(length=0)
    assert zero.HasField("length") and zero.SerializeToString() == H("10 00")
    full = P.TensorSliceProto.Extent()
    assert not full.HasField("length")
    assert P.TensorSliceProto(extent=[full]).SerializeToString() == H("0a 00")
    assert zero.WhichOneof("has_length_hack") == "length"
    parsed = P.TensorSliceProto.FromString(H("0a 00 0a 02 10 00"))
    assert [x.HasField("length") for x in parsed.extent] == [False, True]
    _assert_same_bytes_both_ways(
        P.TensorSliceProto, tensor_slice_pb2.TensorSliceProto, H("0a 00 0a 02 10 00")
    )

    # The partitioned full entry of section 6.1 (scope/pv, [5,3], two slices).
    data = H(
        "08 01 12 08 12 02 08 05 12 02 08 03 3a 08 0a 02 10 03 0a 02 10 03"
        " 3a 0a 0a 04 08 03 10 02 0a 02 10 03"
    )
    e = _assert_same_bytes_both_ways(P.BundleEntryProto, tensor_bundle_pb2.BundleEntryProto, data)
    assert [[(x.start, x.length) for x in s.extent] for s in e.slices] == [
        [(0, 3), (0, 3)],
        [(3, 2), (0, 3)],
    ]


def test_has_checkpoint_values_bytes():
    obj = P.TrackableObject()
    obj.has_checkpoint_values.value = True
    assert obj.SerializeToString() == H("2a 02 08 01")
    assert obj.HasField("has_checkpoint_values")
    _assert_same_bytes_both_ways(
        P.TrackableObject,
        trackable_object_graph_pb2.TrackableObjectGraph.TrackableObject,
        H("2a 02 08 01"),
    )
    # A BoolValue(false) is present but empty.
    obj.has_checkpoint_values.value = False
    assert obj.SerializeToString() == H("2a 00")
    assert P.TrackableObject.FromString(H("2a 00")).HasField("has_checkpoint_values")
    # The wrapper is from our private pool, with the standard full name.
    bool_value = P.TrackableObject.DESCRIPTOR.fields_by_name["has_checkpoint_values"].message_type
    assert bool_value.full_name == "google.protobuf.BoolValue"
    assert bool_value is not wrappers_pb2.BoolValue.DESCRIPTOR


def test_half_val_is_packed():
    # V1 stores half as raw 16-bit patterns in int32 (1.5 -> 15872, -2 -> 49152).
    t = P.TensorProto(half_val=[15872, 49152])
    assert t.SerializeToString() == H("6a 05 80 7c 80 80 03")
    _assert_same_bytes_both_ways(P.TensorProto, tensor_pb2.TensorProto, H("6a 05 80 7c 80 80 03"))
    # Unpacked input is accepted too, as protobuf requires.
    assert list(P.TensorProto.FromString(H("68 80 7c 68 80 80 03")).half_val) == [15872, 49152]


CHECKPOINT_FILE = """\
model_checkpoint_path: "ckpt-3"
all_model_checkpoint_paths: "ckpt-2"
all_model_checkpoint_paths: "ckpt-3"
all_model_checkpoint_timestamps: 1795541459.7836454
all_model_checkpoint_timestamps: 1795541459.78635
last_preserved_timestamp: 1795541458.7587717
"""


def test_checkpoint_state_text_format():
    state = text_format.Parse(CHECKPOINT_FILE, P.CheckpointState())
    assert state.model_checkpoint_path == "ckpt-3"
    assert list(state.all_model_checkpoint_paths) == ["ckpt-2", "ckpt-3"]
    assert list(state.all_model_checkpoint_timestamps) == [1795541459.7836454, 1795541459.78635]
    assert state.last_preserved_timestamp == 1795541458.7587717
    assert text_format.MessageToString(state) == CHECKPOINT_FILE
    theirs = text_format.Parse(CHECKPOINT_FILE, checkpoint_state_pb2.CheckpointState())
    assert state.SerializeToString() == theirs.SerializeToString()
    merged = text_format.Merge('model_checkpoint_path: "/abs/model-3"\n', P.CheckpointState())
    assert merged.model_checkpoint_path == "/abs/model-3"


# ---------------------------------------------------------------------------
# Bytes from real checkpoints written by TensorFlow


def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _block_entries(data, offset, size):
    """Decode one uncompressed table block into (key, value) pairs."""
    block = data[offset : offset + size]
    assert data[offset + size] == 0  # no compression
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 * (num_restarts + 1)
    pos, key, out = 0, b"", []
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        out.append((key, block[pos : pos + vlen]))
        pos += vlen
    return out


def _read_table(path):
    """A minimal SSTable reader (test-only): all key/value pairs in order."""
    with open(path, "rb") as f:
        data = f.read()
    footer = data[-48:]
    assert footer[-8:] == H("57 fb 80 8b 24 75 47 db")
    pos = 0
    for _ in range(2):  # skip the metaindex handle
        _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    entries = []
    for _, handle in _block_entries(data, index_offset, index_size):
        off, p = _varint(handle, 0)
        size, p = _varint(handle, p)
        entries.extend(_block_entries(data, off, size))
    return entries


@pytest.fixture(scope="module")
def v2_checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("v2")
    module = tf.Module()
    module.v = tf.Variable([1.0, 2.0, 3.0])
    module.s = tf.Variable(["a", "bc", ""])
    module.k = tf.Variable(tf.zeros([0, 3], tf.bfloat16))
    it = iter(tf.data.Dataset.range(10))
    next(it)
    ckpt = tf.train.Checkpoint(model=module, it=it)
    manager = tf.train.CheckpointManager(ckpt, str(d), max_to_keep=2)
    for _ in range(3):
        prefix = manager.save()
    return d, prefix


def test_real_v2_index_round_trips(v2_checkpoint):
    d, prefix = v2_checkpoint
    entries = _read_table(prefix + ".index")
    assert entries[0][0] == b""
    header = _assert_same_bytes_both_ways(
        P.BundleHeaderProto, tensor_bundle_pb2.BundleHeaderProto, entries[0][1]
    )
    assert header.SerializeToString() == H("08 01 1a 02 08 01")
    keys = set()
    for key, value in entries[1:]:
        keys.add(key)
        _assert_same_bytes_both_ways(P.BundleEntryProto, tensor_bundle_pb2.BundleEntryProto, value)
    assert b"_CHECKPOINTABLE_OBJECT_GRAPH" in keys
    assert b"model/k/.ATTRIBUTES/VARIABLE_VALUE" in keys


def test_real_object_graph_round_trips(v2_checkpoint):
    d, prefix = v2_checkpoint
    reader = tf.train.load_checkpoint(prefix)
    data = reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
    graph = _assert_same_bytes_both_ways(
        P.TrackableObjectGraph, trackable_object_graph_pb2.TrackableObjectGraph, data
    )
    keys = {a.checkpoint_key for node in graph.nodes for a in node.attributes}
    assert "model/v/.ATTRIBUTES/VARIABLE_VALUE" in keys
    assert "save_counter/.ATTRIBUTES/VARIABLE_VALUE" in keys
    root = graph.nodes[0]
    assert {c.local_name for c in root.children} >= {"model", "it", "save_counter"}
    assert root.has_checkpoint_values.value is True
    # has_checkpoint_values is field 5, a BoolValue(true): 2a 02 08 01.
    assert P.TrackableObject(
        has_checkpoint_values=root.has_checkpoint_values
    ).SerializeToString() == H("2a 02 08 01")


def test_real_variant_round_trips(v2_checkpoint):
    d, prefix = v2_checkpoint
    entries = dict(_read_table(prefix + ".index"))
    header = P.BundleHeaderProto.FromString(entries[b""])
    variant_entries = [
        (k, P.BundleEntryProto.FromString(v))
        for k, v in entries.items()
        if k and P.BundleEntryProto.FromString(v).dtype == P.DataType.DT_VARIANT
    ]
    assert variant_entries
    count = 0
    for key, entry in variant_entries:
        path = "%s.data-%05d-of-%05d" % (prefix, entry.shard_id, header.num_shards)
        with open(path, "rb") as f:
            f.seek(entry.offset)
            payload = f.read(entry.size)
        pos = 0
        while pos < len(payload):
            n, pos = _varint(payload, pos)
            proto = _assert_same_bytes_both_ways(
                P.VariantTensorDataProto,
                tensor_pb2.VariantTensorDataProto,
                payload[pos : pos + n],
            )
            pos += n + 4  # skip the masked running CRC
            count += 1
            for t in proto.tensors:
                _assert_same_bytes_both_ways(
                    P.TensorProto, tensor_pb2.TensorProto, t.SerializeToString()
                )
    assert count >= 1


def test_real_checkpoint_state_file(v2_checkpoint):
    d, prefix = v2_checkpoint
    with open(os.path.join(str(d), "checkpoint")) as f:
        content = f.read()
    ours = text_format.Parse(content, P.CheckpointState())
    assert ours.model_checkpoint_path == os.path.basename(prefix)
    assert len(ours.all_model_checkpoint_paths) == 2
    assert len(ours.all_model_checkpoint_timestamps) == 2
    assert ours.last_preserved_timestamp > 0
    # TF writes it with text_format.MessageToString: we reproduce it exactly.
    assert text_format.MessageToString(ours) == content
    theirs = text_format.Parse(content, checkpoint_state_pb2.CheckpointState())
    _assert_same_bytes_both_ways(
        P.CheckpointState,
        checkpoint_state_pb2.CheckpointState,
        theirs.SerializeToString(),
    )


def test_real_v1_file_round_trips(tmp_path):
    path = str(tmp_path / "model.ckpt")
    tensors = {
        "f": tf.constant([[1.0, 2.0], [3.0, 4.0]]),
        "h": tf.constant([1.5, -2.0], tf.float16),
        "i": tf.constant([1, -2, 3], tf.int32),
        "l": tf.constant(-(1 << 40), tf.int64),
        "s": tf.constant([b"hi", b"x"]),
        "b": tf.constant([True, False]),
        "c": tf.constant([1 + 2j], tf.complex64),
        "d": tf.constant([0.5], tf.float64),
    }
    names = sorted(tensors)
    tf.raw_ops.Save(filename=path, tensor_names=names, data=[tensors[n] for n in names])
    entries = _read_table(path)
    assert entries[0][0] == b""
    meta = _assert_same_bytes_both_ways(
        P.SavedTensorSlices, saved_tensor_slice_pb2.SavedTensorSlices, entries[0][1]
    )
    assert [t.name for t in meta.meta.tensor] == names
    assert meta.meta.versions.producer == 1
    by_name = {}
    for key, value in entries[1:]:
        assert key[:1] == b"\x00"
        s = _assert_same_bytes_both_ways(
            P.SavedTensorSlices, saved_tensor_slice_pb2.SavedTensorSlices, value
        )
        assert not s.HasField("meta")
        by_name[s.data.name] = s.data.data
    assert sorted(by_name) == names
    assert list(by_name["h"].half_val) == [15872, 49152]
    assert list(by_name["f"].float_val) == [1.0, 2.0, 3.0, 4.0]
    assert list(by_name["s"].string_val) == [b"hi", b"x"]
    assert list(by_name["c"].scomplex_val) == [1.0, 2.0]
    assert list(by_name["l"].int64_val) == [-(1 << 40)]
