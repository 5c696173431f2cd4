"""What a new model expects from a checkpoint: its keys, their dtypes and shapes, and (for a
TF2 model) its object graph, read from whatever describes the model without running it.

A model is described by a checkpoint it wrote (any path :func:`tfckpt.open` takes), a
SavedModel directory, a TF1 MetaGraph (``.meta``) or a JSON file
``{key: {"dtype": name, "shape": [...]}}``. The keys are those the model's own fresh
checkpoint would list. A model with an object graph is matched object by object; one without
(a TF1 graph, a name-based checkpoint, JSON with plain names) by variable name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..dtypes import by_code, by_name
from ..errors import InvalidArgumentError, NotACheckpointError
from ..keys import OBJECT_GRAPH_KEY, parse_object_key
from ..objects import ObjectGraph
from ..reader import open as open_checkpoint

__all__ = ["Spec", "Expected", "read_expected", "specs_of", "variables_of_meta_graph"]

#: The collection a TF1 Saver saves by default (``tf.GraphKeys.GLOBAL_VARIABLES``).
GLOBAL_VARIABLES = "variables"
#: Graph ops that hold a variable (their ``dtype`` and ``shape`` attributes describe it).
VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp"})
SAVED_MODEL_PB = "saved_model.pb"


@dataclass(frozen=True)
class Spec:
    """The dtype (``tf.DType.name``) and shape of one value."""

    dtype: str
    shape: Tuple[int, ...]

    def to_dict(self) -> Dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"


@dataclass
class Expected:
    """A model as a restore sees it: `specs` by key, and `graph` (None: matched by name)."""

    source: str
    form: str  # "checkpoint", "savedmodel", "metagraph" or "json"
    specs: Dict[str, Spec]
    graph: Optional[ObjectGraph]


def read_expected(expected: Any) -> Expected:
    """Reads `expected`: a checkpoint path, a SavedModel directory, a ``.meta`` file, a
    ``.json`` file, or a mapping in the JSON form."""
    if isinstance(expected, Mapping):
        return _from_specs("(mapping)", expected)
    path = os.fspath(expected)
    if path.endswith(".json") and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            try:
                doc = json.load(f)
            except ValueError as e:
                raise InvalidArgumentError(f"{path}: not JSON: {e}", path=path) from None
        return _from_specs(path, doc)
    if path.endswith(".meta") and os.path.isfile(path):
        from ..proto import MetaGraphDef

        with open(path, "rb") as f:
            meta = _parse(MetaGraphDef, f.read(), path)
        return Expected(path, "metagraph", variables_of_meta_graph(meta), None)
    if os.path.isfile(os.path.join(path, SAVED_MODEL_PB)):
        return _from_saved_model(path)
    return _from_checkpoint(path, "checkpoint")


def specs_of(reader: Any) -> Dict[str, Spec]:
    """The dtype and shape of every value of an open checkpoint (not its object graph)."""
    return {
        k: Spec(e.dtype_name, tuple(e.shape))
        for k in reader.keys()
        if k != OBJECT_GRAPH_KEY
        for e in [reader.entry(k)]
    }


def _from_checkpoint(path: str, form: str) -> Expected:
    with open_checkpoint(path) as r:
        return Expected(r.prefix, form, specs_of(r), r.object_graph)


def _from_saved_model(path: str) -> Expected:
    """A SavedModel's variables checkpoint holds the model's object graph and values (a TF1
    SavedModel's holds them by name); without one, its first MetaGraph names the variables."""
    try:
        return _from_checkpoint(path, "savedmodel")
    except NotACheckpointError:
        pass
    from ..proto import SavedModel

    pb = os.path.join(path, SAVED_MODEL_PB)
    with open(pb, "rb") as f:
        saved = _parse(SavedModel, f.read(), pb)
    specs = variables_of_meta_graph(saved.meta_graphs[0]) if saved.meta_graphs else {}
    return Expected(path, "savedmodel", specs, None)


def _parse(cls: Any, data: bytes, path: str) -> Any:
    msg = cls()
    try:
        msg.ParseFromString(data)
    except Exception as e:  # noqa: BLE001 - any protobuf decode error
        raise InvalidArgumentError(f"{path}: not a {cls.DESCRIPTOR.name}: {e}", path=path) from None
    return msg


def variables_of_meta_graph(meta: Any) -> Dict[str, Spec]:
    """The values a TF1 ``Saver`` of this graph saves, by the names it saves them under: the
    global variables (their op name, or a partitioned variable's full name and full shape),
    or every variable op when the graph records no collection."""
    from ..proto import VariableDef

    ops = {n.name: n for n in meta.graph_def.node if n.op in VARIABLE_OPS}
    # (op name, key it is saved under, full shape of a partitioned variable's whole)
    variables: List[Tuple[str, str, Optional[Tuple[int, ...]]]] = []
    collection = (
        meta.collection_def[GLOBAL_VARIABLES] if GLOBAL_VARIABLES in meta.collection_def else None
    )
    if collection is not None and collection.HasField("bytes_list"):
        for raw in collection.bytes_list.value:
            var = VariableDef.FromString(raw)
            op_name = var.variable_name.split(":")[0]
            info = var.save_slice_info_def
            if info.full_name:
                variables.append((op_name, info.full_name, tuple(info.full_shape)))
            else:
                variables.append((op_name, op_name, None))
    else:
        variables = [(n, n, None) for n in ops]
    specs: Dict[str, Spec] = {}
    for op_name, key, full_shape in variables:
        op = ops.get(op_name)
        if op is None:
            continue
        shape = (
            full_shape
            if full_shape is not None
            else tuple(d.size for d in op.attr["shape"].shape.dim)
        )
        specs.setdefault(key, Spec(by_code(op.attr["dtype"].type).name, shape))
    return specs


def _from_specs(source: str, doc: Any) -> Expected:
    """The JSON form: object-based keys get the graph they imply, plain names none."""
    if not isinstance(doc, Mapping):
        raise InvalidArgumentError(
            f'{source}: expected a JSON object {{key: {{"dtype": name, "shape": [...]}}}}',
            path=source,
        )
    specs: Dict[str, Spec] = {}
    for key, value in doc.items():
        try:
            specs[str(key)] = Spec(
                by_name(str(value["dtype"])).name, tuple(int(d) for d in value["shape"])
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidArgumentError(
                f'{source}: {key}: expected {{"dtype": name, "shape": [...]}}, got {value!r} ({e})',
                path=source,
                key=str(key),
            ) from None
    specs.pop(OBJECT_GRAPH_KEY, None)
    object_based = any(parse_object_key(k) for k in specs)
    graph = ObjectGraph.from_keys(specs) if object_based else None
    return Expected(source, "json", specs, graph)
