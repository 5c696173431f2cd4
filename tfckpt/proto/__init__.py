"""Protobuf message classes for the TensorFlow checkpoint format.

The classes are built at import time from the table in ``_schema.py``: no
generated ``_pb2`` modules and no ``protoc``, so they work with any protobuf
runtime from 3.20 on (upb or pure Python; checked with 3.20, 4.21, 4.25,
5.29, 6.33 and 7.36).

Full names, field numbers and types are TensorFlow's (``tensorflow.BundleEntryProto``
and so on), so the wire format and text format are identical to TensorFlow's.
The descriptors live in a private ``DescriptorPool``, not the default pool,
so this module and TensorFlow's own generated modules can be imported in the
same process without a "duplicate file name" conflict.  The flip side is
that our classes are not TensorFlow's: convert between them by serializing
(``TheirClass.FromString(ours.SerializeToString())``).
"""

from typing import Any, Dict

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2
from google.protobuf.internal import enum_type_wrapper

from tfckpt.proto import _schema

__all__ = [
    "VersionDef",
    "BundleHeaderProto",
    "BundleEntryProto",
    "TensorShapeProto",
    "TensorSliceProto",
    "DataType",
    "ResourceHandleProto",
    "TensorProto",
    "VariantTensorDataProto",
    "TrackableObjectGraph",
    "TrackableObject",
    "RegisteredSaver",
    "CheckpointState",
    "SavedSliceMeta",
    "SavedTensorSliceMeta",
    "SavedSlice",
    "SavedTensorSlices",
]

_FieldProto = descriptor_pb2.FieldDescriptorProto
_LABELS = {
    _schema.OPT: _FieldProto.LABEL_OPTIONAL,
    _schema.REP: _FieldProto.LABEL_REPEATED,
    _schema.PACKED: _FieldProto.LABEL_REPEATED,
}


def _fill_enum(enum_proto, spec):
    enum_proto.name = spec["name"]
    for name, number in spec["values"]:
        enum_proto.value.add(name=name, number=number)


def _fill_message(msg_proto, spec):
    """Fill a ``DescriptorProto`` from a ``_schema.message`` spec."""
    msg_proto.name = spec["name"]
    oneofs = []
    for row in spec["fields"]:
        name, number, ftype, label, type_name = row[:5]
        field = msg_proto.field.add(
            name=name,
            number=number,
            type=getattr(_FieldProto, "TYPE_" + ftype.upper()),
            label=_LABELS[label],
        )
        if type_name:
            field.type_name = type_name
        if label == _schema.PACKED:
            field.options.packed = True
        if len(row) > 5:
            if row[5] not in oneofs:
                oneofs.append(row[5])
            field.oneof_index = oneofs.index(row[5])
    for oneof in oneofs:
        msg_proto.oneof_decl.add(name=oneof)
    for nested in spec["nested"]:
        _fill_message(msg_proto.nested_type.add(), nested)
    for enum in spec["enums"]:
        _fill_enum(msg_proto.enum_type.add(), enum)
    for number in spec["reserved"]:
        msg_proto.reserved_range.add(start=number, end=number + 1)
    msg_proto.reserved_name.extend(spec["reserved_names"])
    if spec.get("map_entry"):
        msg_proto.options.map_entry = True


def _file_proto(name, dependencies, messages, enums):
    file_proto = descriptor_pb2.FileDescriptorProto(
        name=name, package="tensorflow", syntax="proto3"
    )
    file_proto.dependency.extend(dependencies)
    for spec in messages:
        _fill_message(file_proto.message_type.add(), spec)
    for spec in enums:
        _fill_enum(file_proto.enum_type.add(), spec)
    return file_proto


def _build_pool():
    # Never the default pool: TensorFlow registers these same file and
    # message names there.
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    for entry in _schema.FILES:
        pool.AddSerializedFile(_file_proto(*entry).SerializeToString())
    return pool


_POOL = _build_pool()

if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
    _message_class = message_factory.GetMessageClass
else:  # protobuf 3.20 - 4.21
    _message_class = message_factory.MessageFactory(_POOL).GetPrototype


_NESTED: Dict[str, Any] = {}  # full name -> class, for nested messages


def _unpickle_nested(full_name, data):
    return _NESTED[full_name].FromString(data)


def _reduce_nested(self):
    # protobuf pickles nested messages by full name looked up in the
    # *default* pool, which would give TensorFlow's class (or fail).
    return _unpickle_nested, (self.DESCRIPTOR.full_name, self.SerializePartialToString())


def _attach_nested(cls):
    # upb attaches nested classes (TrackableObjectGraph.TrackableObject) by
    # itself; the pure-Python runtime (and protobuf 3.x's MessageFactory)
    # only does it for generated code.
    for nested in cls.DESCRIPTOR.nested_types:
        if not hasattr(cls, nested.name):
            setattr(cls, nested.name, _message_class(nested))
        nested_cls = getattr(cls, nested.name)
        _NESTED[nested.full_name] = nested_cls
        try:
            nested_cls.__reduce__ = _reduce_nested
        except (AttributeError, TypeError):  # keep protobuf's own pickling
            pass
        _attach_nested(nested_cls)
    return cls


def _cls(full_name):
    return _attach_nested(_message_class(_POOL.FindMessageTypeByName(full_name)))


VersionDef = _cls("tensorflow.VersionDef")
BundleHeaderProto = _cls("tensorflow.BundleHeaderProto")
BundleEntryProto = _cls("tensorflow.BundleEntryProto")
TensorShapeProto = _cls("tensorflow.TensorShapeProto")
TensorSliceProto = _cls("tensorflow.TensorSliceProto")
DataType = enum_type_wrapper.EnumTypeWrapper(_POOL.FindEnumTypeByName("tensorflow.DataType"))
ResourceHandleProto = _cls("tensorflow.ResourceHandleProto")
TensorProto = _cls("tensorflow.TensorProto")
VariantTensorDataProto = _cls("tensorflow.VariantTensorDataProto")
TrackableObjectGraph = _cls("tensorflow.TrackableObjectGraph")
TrackableObject = TrackableObjectGraph.TrackableObject
RegisteredSaver = _cls("tensorflow.RegisteredSaver")
CheckpointState = _cls("tensorflow.CheckpointState")
SavedSliceMeta = _cls("tensorflow.SavedSliceMeta")
SavedTensorSliceMeta = _cls("tensorflow.SavedTensorSliceMeta")
SavedSlice = _cls("tensorflow.SavedSlice")
SavedTensorSlices = _cls("tensorflow.SavedTensorSlices")

# Partial messages: only the fields tfckpt reads from a TF1 MetaGraph (``.meta``) and a
# SavedModel (``saved_model.pb``), each with TensorFlow's name, number and type. They are
# not in ``__all__``, which lists the messages identical to TensorFlow's.
AttrValue = _cls("tensorflow.AttrValue")
NodeDef = _cls("tensorflow.NodeDef")
GraphDef = _cls("tensorflow.GraphDef")
VariableDef = _cls("tensorflow.VariableDef")
SaveSliceInfoDef = _cls("tensorflow.SaveSliceInfoDef")
CollectionDef = _cls("tensorflow.CollectionDef")
MetaGraphDef = _cls("tensorflow.MetaGraphDef")
SavedModel = _cls("tensorflow.SavedModel")
#: The partial messages above, for tests that hold them against TensorFlow's.
PARTIAL = (
    "AttrValue",
    "NodeDef",
    "GraphDef",
    "VariableDef",
    "SaveSliceInfoDef",
    "CollectionDef",
    "MetaGraphDef",
    "SavedModel",
)

# Dynamically built classes have no (or a protobuf-internal) ``__module__``;
# point it here so that repr() and pickle find the top-level classes.
for _name in (*__all__, *PARTIAL):
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.DESCRIPTOR.containing_type is None:  # type: ignore[attr-defined]
        try:
            _obj.__module__ = __name__
        except (AttributeError, TypeError):
            pass

del _cls, _name, _obj
