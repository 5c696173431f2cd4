"""Keras 2 weights into Keras 3, and back: a TensorFlow-format checkpoint that Keras 2 wrote
(``model.save_weights("path")``, ``tf.train.Checkpoint(model=m)``) becomes the
``.weights.h5`` that Keras 3's ``model.load_weights`` reads, without TensorFlow or Keras.

Neither names nor sorted keys can pair the variables: layer names agree between the versions
only when the user named the layers (auto-names such as ``dense_8`` shift), sorted keys put
``layer_with_weights-10`` before ``-2``, and shapes cannot order BatchNormalization's four
vectors or an LSTM's two kernels. Order can: Keras 2 lists a model's weights depth-first
through its object graph (children in tracking order, own variables first), and Keras 3 lists
the same weights layer by layer in its config's order, each layer's ``vars/0..n`` before its
sub-objects. So the target model (a ``.keras`` archive Keras 3 saved) supplies the layout, and
the two orders are paired one to one; anything that does not line up (count, shape, dtype) is
an error naming both sides. Without a layer list (a subclassed model, or a bare
``.weights.h5``) layers are paired by attribute path, then by their order within one
container, then by layer name, and the result must keep each container's order.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import InvalidArgumentError
from ..keys import OBJECT_GRAPH_KEY, VARIABLE_VALUE, split_object_path
from ..objects import Node, ObjectGraph
from ..reader import Reader
from ..reader import open as open_checkpoint
from ..writer import Writer
from ._common import opened, shape_text
from .convert import atomic_file
from .keras_h5 import VarsGroup, WeightsFile, numbered

__all__ = ["to_keras", "from_keras", "KerasConversion", "WeightPair", "LayoutMismatchError"]

#: A model's children that are not its layers: Keras 2 tracks the optimizer on the model.
_NOT_LAYERS = ("optimizer",)
#: A tf.train.Checkpoint's children that are not the model.
_CHECKPOINT_EXTRAS = ("optimizer", "save_counter")
#: The edges save_weights gives a model to its layers (and the aliases of those).
_LAYER_EDGE = re.compile(r"^layer(_with_weights)?-\d+$")
#: Where a Keras 3 weights file keeps what is not the model's layers.
_H5_OUTSIDE = ("optimizer",)


class LayoutMismatchError(InvalidArgumentError):
    """The old weights and the new model's layout do not line up (count, shape or dtype);
    the message names both sides."""


@dataclass(frozen=True)
class WeightPair:
    """One variable: its checkpoint key and Keras 2 name, its dataset and Keras 3 layer."""

    key: str
    full_name: str
    dataset: str
    layer: str
    dtype: str
    shape: Tuple[int, ...]


@dataclass
class KerasConversion:
    """What a conversion paired, and what it left alone."""

    src: str
    dst: str
    like: str
    #: ``to_keras`` (checkpoint -> .weights.h5) or ``from_keras`` (the reverse).
    direction: str
    #: The model's place in the checkpoint: "" (save_weights) or a tf.train.Checkpoint keyword.
    model: str
    #: How layers were paired: "layer order" or "attribute paths, container order, names".
    matched_by: str
    pairs: List[WeightPair] = field(default_factory=list)
    #: Checkpoint keys outside the model, counted by top-level object (optimizer, ...).
    outside: Dict[str, int] = field(default_factory=dict)
    #: Datasets of the weights file outside the model's layers (the optimizer's, ...).
    h5_outside: List[str] = field(default_factory=list)
    dry_run: bool = False

    def mapping(self) -> List[str]:
        """One line per variable: checkpoint key -> dataset, dtype and shape, both names."""
        return [
            f"{p.key} -> {p.dataset}  {p.dtype}{shape_text(p.shape)}  ({p.full_name} -> {p.layer})"
            for p in self.pairs
        ]

    def describe(self) -> str:
        lines = self.mapping() if self.dry_run else []
        where = (
            f"under {self.model!r} of the tf.train.Checkpoint"
            if self.model
            else "at the checkpoint's root"
        )
        lines.append(f"model found {where}; layers paired by {self.matched_by}")
        to_keras = self.direction == "to_keras"
        ckpt, h5 = (self.src, self.like) if to_keras else (self.like, self.src)
        for top, n in self.outside.items():
            what = "ignored" if to_keras else f"kept as in {ckpt}:"
            lines.append(f"{what} {n} keys under {top} (not model weights)")
        if self.h5_outside:
            what = f"kept as in {h5}:" if to_keras else "not carried over:"
            lines.append(
                f"{what} {len(self.h5_outside)} values outside the model's layers "
                f"({', '.join(self.h5_outside[:4])}"
                f"{', ...' if len(self.h5_outside) > 4 else ''})"
            )
        verb = "would be written" if self.dry_run else "written"
        lines.append(f"# {len(self.pairs)} weights {verb} to {self.dst}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class _OldLayer:
    """A Keras 2 object holding variables of its own (a layer, an RNN cell)."""

    path: str  # its object path from the model, escaped
    name: str  # its Keras 2 name (from its variables' names)
    keys: List[Tuple[str, str]] = field(default_factory=list)  # (checkpoint key, full name)


def to_keras(
    checkpoint: Any,
    out_path: "str | os.PathLike[str]",
    like: "str | os.PathLike[str]",
    *,
    model: Optional[str] = None,
    dry_run: bool = False,
    overwrite: bool = False,
) -> KerasConversion:
    """Writes the model weights of a Keras 2 TensorFlow-format checkpoint as a Keras 3
    ``.weights.h5`` at `out_path`, laid out like `like`.

    `like` is the new model saved by Keras 3: a ``.keras`` archive (its ``config.json`` gives
    the layer order) or a ``.weights.h5``. The output is a copy of `like`'s weights file with
    the old values in place of the model's, so ``model.load_weights(out_path)`` gives the
    old weights; the checkpoint's optimizer state and other objects are left out and listed.
    `model` names the model's keyword in a ``tf.train.Checkpoint`` (found by itself when
    only one object there holds variables). :class:`LayoutMismatchError` when the two do not
    line up; with `dry_run` nothing is written and the report lists the mapping.
    """
    with opened(checkpoint, open_with=open_checkpoint) as (reader,), WeightsFile(like) as h5:
        report = _plan(
            reader,
            h5,
            model,
            src=reader.prefix,
            dst=os.fspath(out_path),
            like=h5.path,
            direction="to_keras",
            dry_run=dry_run,
        )
        if not dry_run:
            with atomic_file(out_path, overwrite) as tmp:
                h5.copy_with(tmp, ((p.dataset, reader.read(p.key)) for p in report.pairs))
    return report


def from_keras(
    weights: "str | os.PathLike[str]",
    out: "str | os.PathLike[str]",
    like: Any,
    *,
    model: Optional[str] = None,
    dry_run: bool = False,
    overwrite: bool = False,
) -> KerasConversion:
    """The reverse of :func:`to_keras`: the weights of a Keras 3 ``.weights.h5`` (or
    ``.keras``) written as a TensorFlow checkpoint at prefix `out` that
    ``tf.train.Checkpoint(model=m).read`` restores in Keras 2.

    `like` is a checkpoint of the model that Keras 2 wrote (a fresh one will do): its keys,
    object graph and everything outside the model are kept as they are, the model's values
    replaced by the weights file's.
    """
    with opened(like, open_with=open_checkpoint) as (reader,), WeightsFile(weights) as h5:
        report = _plan(
            reader,
            h5,
            model,
            src=h5.path,
            dst=os.fspath(out),
            like=reader.prefix,
            direction="from_keras",
            dry_run=dry_run,
        )
        if not dry_run:
            by_key = {p.key: p.dataset for p in report.pairs}
            with Writer(out, overwrite=overwrite) as w:
                for key in reader.keys():
                    if key in by_key:
                        w.add(key, h5.read(by_key[key]), dtype=reader.entry(key).dtype_code)
                    else:
                        w.copy(reader, key)
    return report


# -- the plan -------------------------------------------------------------------------------


def _plan(reader: Reader, h5: WeightsFile, model: Optional[str], **report: Any) -> KerasConversion:
    graph = reader.object_graph
    if graph is None:
        raise InvalidArgumentError(
            f"{reader.prefix}: a name-based (TF1) checkpoint; Keras 2 "
            "weights are object-based checkpoints"
        )
    start, keyword = _find_model(graph, model, reader.prefix)
    old = _old_layers(graph, start)
    if h5.has_layer_list():
        new = h5.ordered_groups()
        units = _pair_in_order(old, new, reader.prefix, h5.path)
        matched_by = "layer order (config.json)"
    else:
        units = _pair_by_paths(old, h5, reader.prefix)
        matched_by = "attribute paths, container order and layer names"
    pairs = []
    for o, n in units:
        if len(o.keys) != len(n.datasets):
            raise LayoutMismatchError(
                f"{reader.prefix}: {o.path} ({o.name}) holds {len(o.keys)} variables, "
                f"{h5.path}: {n.path} ({n.name}) holds {len(n.datasets)}:\n"
                + _side_by_side([k for k, _ in o.keys], [d.path for d in n.datasets])
            )
        for (key, full_name), ds in zip(o.keys, n.datasets):
            entry = reader.entry(key)
            dtype = entry.dtype_name
            if tuple(entry.shape) != ds.shape or dtype != ds.dtype:
                what = "shapes" if tuple(entry.shape) != ds.shape else "dtypes"
                raise LayoutMismatchError(
                    f"{what} differ: {reader.prefix}: {key} ({full_name}) is "
                    f"{dtype}{shape_text(entry.shape)}, {h5.path}: {ds.path} ({n.name}) is "
                    f"{ds.dtype}{shape_text(ds.shape)}"
                )
            pairs.append(WeightPair(key, full_name, ds.path, n.name, dtype, ds.shape))
    paired = {p.key for p in pairs}
    outside: Dict[str, int] = {}
    for key in reader.keys():
        if key != OBJECT_GRAPH_KEY and key not in paired:
            top = key.split("/", 1)[0]
            outside[top] = outside.get(top, 0) + 1
    used = {n.path for _, n in units}
    h5_outside = [d.path for g in h5.groups.values() if g.path not in used for d in g.datasets]
    return KerasConversion(
        model=keyword,
        matched_by=matched_by,
        pairs=pairs,
        outside=outside,
        h5_outside=sorted(h5_outside),
        **report,
    )


def _find_model(graph: ObjectGraph, model: Optional[str], where: str) -> Tuple[Node, str]:
    """The model's node and keyword: the root for ``save_weights`` (which gives the root a
    child ``root``, itself, and ``layer-K`` children), else the one child of the
    ``tf.train.Checkpoint`` that holds variables (or the one named `model`)."""
    root = graph.root
    if model is not None:
        for name, cid in root.children:
            if name == model and 0 <= cid < len(graph.nodes):
                return graph.nodes[cid], model
        raise InvalidArgumentError(
            f"{where}: the checkpoint has no object {model!r} at its root (it has "
            f"{', '.join(n for n, _ in root.children) or 'none'})"
        )
    if any(cid == root.id or _LAYER_EDGE.match(name) for name, cid in root.children):
        return root, ""
    candidates = [
        (name, cid)
        for name, cid in root.children
        if name not in _CHECKPOINT_EXTRAS and _holds_variables(graph, cid)
    ]
    if len(candidates) == 1:
        name, cid = candidates[0]
        return graph.nodes[cid], name
    if not candidates:
        return root, ""
    raise InvalidArgumentError(
        f"{where}: {len(candidates)} objects hold variables "
        f"({', '.join(n for n, _ in candidates)}); say which is the model (model=, --model)"
    )


def _holds_variables(graph: ObjectGraph, nid: int) -> bool:
    seen, stack = {nid}, [nid]
    while stack:
        node = graph.nodes[stack.pop()]
        if any(a.name == VARIABLE_VALUE for a in node.attributes):
            return True
        for _, cid in node.children:
            if cid not in seen and 0 <= cid < len(graph.nodes):
                seen.add(cid)
                stack.append(cid)
    return False


def _old_layers(graph: ObjectGraph, start: Node) -> List[_OldLayer]:
    """The objects holding variables, in Keras 2's ``model.weights`` order: depth-first
    from the model in stored (tracking) order, each object's own variables before its
    sub-objects; an edge to a node already reached (``layer-K`` aliases, the ``root``
    self-link) is skipped, and so is the optimizer the model tracks."""
    out: List[_OldLayer] = []
    seen = {start.id, graph.root.id}

    def is_variable(node: Node) -> bool:
        return any(a.name == VARIABLE_VALUE for a in node.attributes)

    def visit(node: Node, path: str) -> None:
        children = [
            (name, cid)
            for name, cid in node.children
            if 0 <= cid < len(graph.nodes) and not (node is start and name in _NOT_LAYERS)
        ]
        own = _OldLayer(path, "")
        for _, cid in children:
            child = graph.nodes[cid]
            if cid not in seen and is_variable(child):
                seen.add(cid)
                own.keys.extend(
                    (a.checkpoint_key, a.full_name)
                    for a in child.attributes
                    if a.name == VARIABLE_VALUE
                )
        if own.keys:
            parts = own.keys[0][1].split("/")
            own.name = parts[-2] if len(parts) > 1 else ""
            out.append(own)
        for name, cid in children:
            if cid not in seen:
                seen.add(cid)
                visit(graph.nodes[cid], f"{path}/{name}" if path else name)

    visit(start, "")
    return out


def _pair_in_order(
    old: List[_OldLayer], new: List[VarsGroup], src: str, like: str
) -> List[Tuple[_OldLayer, VarsGroup]]:
    counts = [len(o.keys) for o in old], [len(n.datasets) for n in new]
    if counts[0] != counts[1]:
        mark = next((i for i, (a, b) in enumerate(zip(*counts)) if a != b), min(len(old), len(new)))
        raise LayoutMismatchError(
            f"the layers with weights do not line up: {src} has {len(old)}, {like} has "
            f"{len(new)} (checkpoint path (Keras 2 name, variables) | target path (Keras 3 "
            "name, variables)):\n"
            + _side_by_side(
                [f"{o.path or '(model)'} ({o.name}, {len(o.keys)})" for o in old],
                [f"{n.path or '(model)'} ({n.name}, {len(n.datasets)})" for n in new],
                mark,
            )
        )
    return list(zip(old, new))


def _pair_by_paths(
    old: List[_OldLayer], h5: WeightsFile, src: str
) -> List[Tuple[_OldLayer, VarsGroup]]:
    """Pairs layers without a layer list: the same attribute path first (a subclassed
    model's ``self.head`` is ``head`` in both), then what is left of one container of one
    class in that container's order, then equal layer names; every pairing must keep each
    container's order, and nothing may be left over."""
    new = {
        g.path: g
        for g in h5.groups.values()
        if g.datasets and g.path.split("/", 1)[0] not in _H5_OUTSIDE
    }
    pairs: Dict[int, VarsGroup] = {}
    for i, o in enumerate(old):
        path = "/".join(split_object_path(o.path)) if o.path else ""
        if path in new:
            pairs[i] = new.pop(path)
    rest = [i for i in range(len(old)) if i not in pairs]
    containers = {(parent(p), numbered(leaf(p))[0]) for p in new}
    if rest and len(containers) == 1 and len(rest) == len(new):
        for i, g in zip(rest, sorted(new.values(), key=lambda g: numbered(leaf(g.path))[1])):
            pairs[i] = g
        new.clear()
    by_name: Dict[str, List[VarsGroup]] = {}
    for g in new.values():
        by_name.setdefault(g.name, []).append(g)
    old_names = [old[i].name for i in range(len(old)) if i not in pairs]
    for i, o in enumerate(old):
        match = by_name.get(o.name, [])
        if i not in pairs and len(match) == 1 and old_names.count(o.name) == 1:
            pairs[i] = match[0]
            del new[match[0].path]
    left = [old[i] for i in range(len(old)) if i not in pairs]
    if left or new:
        raise LayoutMismatchError(
            f"the layers with weights do not line up by path, container order or name "
            f"(a .keras target of a Sequential or Functional model pairs them by order): "
            f"unpaired in {src} (path, Keras 2 name) | in {h5.path} (path, Keras 3 name):\n"
            + _side_by_side(
                [f"{o.path} ({o.name})" for o in left],
                [f"{g.path} ({g.name})" for g in new.values()],
            )
        )
    _check_container_order(old, pairs, h5.path)
    return [(old[i], pairs[i]) for i in sorted(pairs)]


def _check_container_order(old: List[_OldLayer], pairs: Dict[int, VarsGroup], like: str) -> None:
    """Keras 3 numbers a container's layers of one class in model order (``dense``,
    ``dense_1``): a pairing that reverses two of them has matched names, not layers."""
    runs: Dict[Tuple[str, str], List[Tuple[int, int]]] = {}
    for i, g in pairs.items():
        base, k = numbered(leaf(g.path))
        runs.setdefault((parent(g.path), base), []).append((k, i))
    for (_, _), items in runs.items():
        order = [i for _, i in sorted(items)]
        if order != sorted(order):
            raise LayoutMismatchError(
                "pairing by layer name would reorder layers: "
                + "; ".join(f"{old[i].path} ({old[i].name}) -> {pairs[i].path}" for i in order)
                + f" (give a .keras target, whose config.json orders the layers, instead of "
                f"{like})"
            )


def parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def leaf(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _side_by_side(left: Sequence[str], right: Sequence[str], mark: int = -1) -> str:
    """Two lists as columns, row `mark` (the first that does not line up) marked."""
    width = max([len(s) for s in left] + [12])
    rows = []
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else "-"
        b = right[i] if i < len(right) else "-"
        rows.append(f"  {a:<{width}} | {b}" + ("   <- here" if i == mark else ""))
    return "\n".join(rows)
