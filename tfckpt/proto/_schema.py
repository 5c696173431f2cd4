"""The protobuf schema of the checkpoint format, as plain Python data.

This module is pure data (it imports nothing); ``tfckpt.proto`` turns it into
``FileDescriptorProto`` messages in a private descriptor pool.

Every message, field name, field number, type and label is the one
TensorFlow uses (checked against TensorFlow 2.21's descriptors by
``tests/test_proto.py``), and the files keep TensorFlow's file names,
package (``tensorflow``) and syntax (``proto3``), so full names, text format
and wire format are identical to TensorFlow's.

Field rows are ``(name, number, type, label, type_name)`` with an optional
sixth column naming the oneof the field belongs to:

* ``type`` is the lower-case protobuf type (``"int32"``, ``"message"``, ...);
* ``label`` is ``OPT`` (singular), ``REP`` (repeated) or ``PACKED`` (repeated
  with an explicit ``[packed = true]``, as TensorFlow's ``TensorProto`` says);
* ``type_name`` is the fully qualified message or enum name, with the leading
  dot, for ``message`` and ``enum`` fields, else ``None``.
"""

OPT = "optional"
REP = "repeated"
PACKED = "packed"

WRAPPERS = "google/protobuf/wrappers.proto"


def message(name, fields, nested=(), enums=(), reserved=(), reserved_names=(), map_entry=False):
    """One message: ``reserved`` holds inclusive field numbers; ``map_entry`` marks the
    nested ``<Field>Entry`` message of a ``map<K, V>`` field (fields key = 1, value = 2)."""
    return {
        "name": name,
        "fields": fields,
        "nested": nested,
        "enums": enums,
        "reserved": reserved,
        "reserved_names": reserved_names,
        "map_entry": map_entry,
    }


def enum(name, values):
    """One enum: ``values`` is a sequence of ``(name, number)`` pairs."""
    return {"name": name, "values": values}


_DTYPE_NAMES = (
    "INVALID",
    "FLOAT",
    "DOUBLE",
    "INT32",
    "UINT8",
    "INT16",
    "INT8",
    "STRING",
    "COMPLEX64",
    "INT64",
    "BOOL",
    "QINT8",
    "QUINT8",
    "QINT32",
    "BFLOAT16",
    "QINT16",
    "QUINT16",
    "UINT16",
    "COMPLEX128",
    "HALF",
    "RESOURCE",
    "VARIANT",
    "UINT32",
    "UINT64",
    "FLOAT8_E5M2",
    "FLOAT8_E4M3FN",
    "FLOAT8_E4M3FNUZ",
    "FLOAT8_E4M3B11FNUZ",
    "FLOAT8_E5M2FNUZ",
    "INT4",
    "UINT4",
    "INT2",
    "UINT2",
    "FLOAT4_E2M1FN",
)  # DT_<name> = index; DT_<name>_REF = index + 100 (not for DT_INVALID)

DATA_TYPE_VALUES = tuple(
    [("DT_" + n, i) for i, n in enumerate(_DTYPE_NAMES)]
    + [("DT_%s_REF" % n, i + 100) for i, n in enumerate(_DTYPE_NAMES) if i]
)

# (file name, dependencies, messages, top-level enums), in dependency order.
FILES = (
    (
        "tensorflow/core/framework/versions.proto",
        (),
        (
            message(
                "VersionDef",
                (
                    ("producer", 1, "int32", OPT, None),
                    ("min_consumer", 2, "int32", OPT, None),
                    ("bad_consumers", 3, "int32", REP, None),
                ),
            ),
        ),
        (),
    ),
    (
        "tensorflow/core/framework/tensor_shape.proto",
        (),
        (
            message(
                "TensorShapeProto",
                (
                    ("dim", 2, "message", REP, ".tensorflow.TensorShapeProto.Dim"),
                    ("unknown_rank", 3, "bool", OPT, None),
                ),
                nested=(
                    message(
                        "Dim",
                        (
                            ("size", 1, "int64", OPT, None),
                            ("name", 2, "string", OPT, None),
                        ),
                    ),
                ),
            ),
        ),
        (),
    ),
    (
        "tensorflow/core/framework/tensor_slice.proto",
        (),
        (
            message(
                "TensorSliceProto",
                (("extent", 1, "message", REP, ".tensorflow.TensorSliceProto.Extent"),),
                nested=(
                    message(
                        "Extent",
                        (
                            ("start", 1, "int64", OPT, None),
                            # A real oneof: HasField("length") works and length 0 is
                            # serialized.  TensorFlow names the oneof "has_length_hack".
                            ("length", 2, "int64", OPT, None, "has_length_hack"),
                        ),
                    ),
                ),
            ),
        ),
        (),
    ),
    ("tensorflow/core/framework/types.proto", (), (), (enum("DataType", DATA_TYPE_VALUES),)),
    (
        "tensorflow/core/framework/resource_handle.proto",
        (
            "tensorflow/core/framework/tensor_shape.proto",
            "tensorflow/core/framework/types.proto",
        ),
        (
            message(
                "ResourceHandleProto",
                (
                    ("device", 1, "string", OPT, None),
                    ("container", 2, "string", OPT, None),
                    ("name", 3, "string", OPT, None),
                    ("hash_code", 4, "uint64", OPT, None),
                    ("maybe_type_name", 5, "string", OPT, None),
                    (
                        "dtypes_and_shapes",
                        6,
                        "message",
                        REP,
                        ".tensorflow.ResourceHandleProto.DtypeAndShape",
                    ),
                ),
                nested=(
                    message(
                        "DtypeAndShape",
                        (
                            ("dtype", 1, "enum", OPT, ".tensorflow.DataType"),
                            ("shape", 2, "message", OPT, ".tensorflow.TensorShapeProto"),
                        ),
                    ),
                ),
                reserved=(7,),
            ),
        ),
        (),
    ),
    (
        "tensorflow/core/framework/tensor.proto",
        (
            "tensorflow/core/framework/resource_handle.proto",
            "tensorflow/core/framework/tensor_shape.proto",
            "tensorflow/core/framework/types.proto",
        ),
        (
            # Declaration order is TensorFlow's (half_val comes before float_val).
            message(
                "TensorProto",
                (
                    ("dtype", 1, "enum", OPT, ".tensorflow.DataType"),
                    ("tensor_shape", 2, "message", OPT, ".tensorflow.TensorShapeProto"),
                    ("version_number", 3, "int32", OPT, None),
                    ("tensor_content", 4, "bytes", OPT, None),
                    ("half_val", 13, "int32", PACKED, None),
                    ("float_val", 5, "float", PACKED, None),
                    ("double_val", 6, "double", PACKED, None),
                    ("int_val", 7, "int32", PACKED, None),
                    ("string_val", 8, "bytes", REP, None),
                    ("scomplex_val", 9, "float", PACKED, None),
                    ("int64_val", 10, "int64", PACKED, None),
                    ("bool_val", 11, "bool", PACKED, None),
                    ("dcomplex_val", 12, "double", PACKED, None),
                    ("resource_handle_val", 14, "message", REP, ".tensorflow.ResourceHandleProto"),
                    ("variant_val", 15, "message", REP, ".tensorflow.VariantTensorDataProto"),
                    ("uint32_val", 16, "uint32", PACKED, None),
                    ("uint64_val", 17, "uint64", PACKED, None),
                    ("float8_val", 18, "bytes", OPT, None),
                ),
            ),
            message(
                "VariantTensorDataProto",
                (
                    ("type_name", 1, "string", OPT, None),
                    ("metadata", 2, "bytes", OPT, None),
                    ("tensors", 3, "message", REP, ".tensorflow.TensorProto"),
                ),
            ),
        ),
        (),
    ),
    (
        "tensorflow/core/protobuf/tensor_bundle.proto",
        (
            "tensorflow/core/framework/tensor_shape.proto",
            "tensorflow/core/framework/tensor_slice.proto",
            "tensorflow/core/framework/types.proto",
            "tensorflow/core/framework/versions.proto",
        ),
        (
            message(
                "BundleHeaderProto",
                (
                    ("num_shards", 1, "int32", OPT, None),
                    ("endianness", 2, "enum", OPT, ".tensorflow.BundleHeaderProto.Endianness"),
                    ("version", 3, "message", OPT, ".tensorflow.VersionDef"),
                ),
                enums=(enum("Endianness", (("LITTLE", 0), ("BIG", 1))),),
            ),
            message(
                "BundleEntryProto",
                (
                    ("dtype", 1, "enum", OPT, ".tensorflow.DataType"),
                    ("shape", 2, "message", OPT, ".tensorflow.TensorShapeProto"),
                    ("shard_id", 3, "int32", OPT, None),
                    ("offset", 4, "int64", OPT, None),
                    ("size", 5, "int64", OPT, None),
                    ("crc32c", 6, "fixed32", OPT, None),  # masked CRC32C
                    ("slices", 7, "message", REP, ".tensorflow.TensorSliceProto"),
                ),
            ),
        ),
        (),
    ),
    (
        "tensorflow/core/protobuf/trackable_object_graph.proto",
        (WRAPPERS,),
        (
            message(
                "TrackableObjectGraph",
                (("nodes", 1, "message", REP, ".tensorflow.TrackableObjectGraph.TrackableObject"),),
                nested=(
                    message(
                        "TrackableObject",
                        (
                            (
                                "children",
                                1,
                                "message",
                                REP,
                                ".tensorflow.TrackableObjectGraph.TrackableObject.ObjectReference",
                            ),
                            (
                                "attributes",
                                2,
                                "message",
                                REP,
                                ".tensorflow.TrackableObjectGraph.TrackableObject.SerializedTensor",
                            ),
                            (
                                "slot_variables",
                                3,
                                "message",
                                REP,
                                ".tensorflow.TrackableObjectGraph.TrackableObject.SlotVariableReference",
                            ),
                            ("registered_saver", 4, "message", OPT, ".tensorflow.RegisteredSaver"),
                            (
                                "has_checkpoint_values",
                                5,
                                "message",
                                OPT,
                                ".google.protobuf.BoolValue",
                            ),
                        ),
                        nested=(
                            message(
                                "ObjectReference",
                                (
                                    ("node_id", 1, "int32", OPT, None),
                                    ("local_name", 2, "string", OPT, None),
                                ),
                            ),
                            message(
                                "SerializedTensor",
                                (
                                    ("name", 1, "string", OPT, None),
                                    ("full_name", 2, "string", OPT, None),
                                    ("checkpoint_key", 3, "string", OPT, None),
                                ),
                                reserved=(4,),
                                reserved_names=("optional_restore",),
                            ),
                            message(
                                "SlotVariableReference",
                                (
                                    ("original_variable_node_id", 1, "int32", OPT, None),
                                    ("slot_name", 2, "string", OPT, None),
                                    ("slot_variable_node_id", 3, "int32", OPT, None),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
            message(
                "RegisteredSaver",
                (
                    ("name", 1, "string", OPT, None),
                    ("object_name", 2, "string", OPT, None),
                ),
            ),
        ),
        (),
    ),
    (
        "tensorflow/python/training/checkpoint_state.proto",
        (),
        (
            message(
                "CheckpointState",
                (
                    ("model_checkpoint_path", 1, "string", OPT, None),
                    ("all_model_checkpoint_paths", 2, "string", REP, None),
                    ("all_model_checkpoint_timestamps", 3, "double", REP, None),
                    ("last_preserved_timestamp", 4, "double", OPT, None),
                ),
            ),
        ),
        (),
    ),
    (
        "tensorflow/core/util/saved_tensor_slice.proto",
        (
            "tensorflow/core/framework/tensor_shape.proto",
            "tensorflow/core/framework/tensor_slice.proto",
            "tensorflow/core/framework/tensor.proto",
            "tensorflow/core/framework/types.proto",
            "tensorflow/core/framework/versions.proto",
        ),
        (
            message(
                "SavedSliceMeta",
                (
                    ("name", 1, "string", OPT, None),
                    ("shape", 2, "message", OPT, ".tensorflow.TensorShapeProto"),
                    ("type", 3, "enum", OPT, ".tensorflow.DataType"),
                    ("slice", 4, "message", REP, ".tensorflow.TensorSliceProto"),
                ),
            ),
            message(
                "SavedTensorSliceMeta",
                (
                    ("tensor", 1, "message", REP, ".tensorflow.SavedSliceMeta"),
                    ("versions", 2, "message", OPT, ".tensorflow.VersionDef"),
                ),
            ),
            message(
                "SavedSlice",
                (
                    ("name", 1, "string", OPT, None),
                    ("slice", 2, "message", OPT, ".tensorflow.TensorSliceProto"),
                    ("data", 3, "message", OPT, ".tensorflow.TensorProto"),
                ),
            ),
            message(
                "SavedTensorSlices",
                (
                    ("meta", 1, "message", OPT, ".tensorflow.SavedTensorSliceMeta"),
                    ("data", 2, "message", OPT, ".tensorflow.SavedSlice"),
                ),
            ),
        ),
        (),
    ),
    # -- Partial messages: only the fields tfckpt reads (tfckpt.tools.expected reads the
    # variables of a TF1 MetaGraph and of a SavedModel). Names, numbers and types are
    # TensorFlow's; the fields left out are skipped as unknown when parsing.
    (
        "tensorflow/core/framework/attr_value.proto",
        (
            "tensorflow/core/framework/tensor_shape.proto",
            "tensorflow/core/framework/types.proto",
        ),
        (
            message(
                "AttrValue",
                (
                    ("type", 6, "enum", OPT, ".tensorflow.DataType", "value"),
                    ("shape", 7, "message", OPT, ".tensorflow.TensorShapeProto", "value"),
                ),
            ),
        ),
        (),
    ),
    (
        "tensorflow/core/framework/node_def.proto",
        ("tensorflow/core/framework/attr_value.proto",),
        (
            message(
                "NodeDef",
                (
                    ("name", 1, "string", OPT, None),
                    ("op", 2, "string", OPT, None),
                    ("attr", 5, "message", REP, ".tensorflow.NodeDef.AttrEntry"),
                ),
                nested=(
                    message(
                        "AttrEntry",
                        (
                            ("key", 1, "string", OPT, None),
                            ("value", 2, "message", OPT, ".tensorflow.AttrValue"),
                        ),
                        map_entry=True,
                    ),
                ),
            ),
        ),
        (),
    ),
    (
        "tensorflow/core/framework/graph.proto",
        ("tensorflow/core/framework/node_def.proto",),
        (message("GraphDef", (("node", 1, "message", REP, ".tensorflow.NodeDef"),)),),
        (),
    ),
    (
        "tensorflow/core/framework/variable.proto",
        (),
        (
            message(
                "VariableDef",
                (
                    ("variable_name", 1, "string", OPT, None),
                    ("save_slice_info_def", 4, "message", OPT, ".tensorflow.SaveSliceInfoDef"),
                ),
            ),
            message(
                "SaveSliceInfoDef",
                (
                    ("full_name", 1, "string", OPT, None),
                    ("full_shape", 2, "int64", REP, None),
                ),
            ),
        ),
        (),
    ),
    (
        "tensorflow/core/protobuf/meta_graph.proto",
        ("tensorflow/core/framework/graph.proto",),
        (
            message(
                "MetaGraphDef",
                (
                    ("graph_def", 2, "message", OPT, ".tensorflow.GraphDef"),
                    (
                        "collection_def",
                        4,
                        "message",
                        REP,
                        ".tensorflow.MetaGraphDef.CollectionDefEntry",
                    ),
                ),
                nested=(
                    message(
                        "CollectionDefEntry",
                        (
                            ("key", 1, "string", OPT, None),
                            ("value", 2, "message", OPT, ".tensorflow.CollectionDef"),
                        ),
                        map_entry=True,
                    ),
                ),
            ),
            message(
                "CollectionDef",
                (
                    ("node_list", 1, "message", OPT, ".tensorflow.CollectionDef.NodeList", "kind"),
                    (
                        "bytes_list",
                        2,
                        "message",
                        OPT,
                        ".tensorflow.CollectionDef.BytesList",
                        "kind",
                    ),
                ),
                nested=(
                    message("NodeList", (("value", 1, "string", REP, None),)),
                    message("BytesList", (("value", 1, "bytes", REP, None),)),
                ),
            ),
        ),
        (),
    ),
    (
        "tensorflow/core/protobuf/saved_model.proto",
        ("tensorflow/core/protobuf/meta_graph.proto",),
        (
            message(
                "SavedModel",
                (
                    ("saved_model_schema_version", 1, "int64", OPT, None),
                    ("meta_graphs", 2, "message", REP, ".tensorflow.MetaGraphDef"),
                ),
            ),
        ),
        (),
    ),
)
