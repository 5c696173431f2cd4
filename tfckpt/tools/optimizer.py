"""optimizer_keys: which keys of a checkpoint hold optimizer state only."""

from __future__ import annotations

import re
from typing import Any, List, Sequence, Set

from ..keys import OBJECT_GRAPH_KEY, is_slot_key
from ..reader import Reader
from ._common import opened

__all__ = ["optimizer_keys"]

#: Names TF1 optimizers give the slots they save beside a variable ``<var>``: ``<var>/Adam``.
_TF1_SLOT_RE = re.compile(
    r"^(Adam|Adam_1|AdamW|AdamW_1|Adagrad|AdagradDA|AdagradDA_1|Adadelta|Adadelta_1|"
    r"Momentum|RMSProp|RMSProp_1|Ftrl|Ftrl_1|ProximalAdagrad|LazyAdam|LazyAdam_1|"
    r"ExponentialMovingAverage_optimizer)$"
)
#: Optimizer state of TF1 Adam that belongs to no one variable.
_TF1_OPTIMIZER_KEYS = re.compile(r"^(.*/)?(beta1_power|beta2_power)$")
#: Edge names that lead to an optimizer object.
_OPTIMIZER_NAME_RE = re.compile(r"optimi[sz]er|^opt$", re.IGNORECASE)
#: Sets of children that mark a Keras optimizer object (any one set suffices).
_OPTIMIZER_CHILDREN = ({"_iterations", "_variables"}, {"iter"}, {"iterations"})


def optimizer_keys(ckpt: Any) -> List[str]:
    """The keys that hold optimizer state only: what ``tfckpt edit --drop-optimizer`` drops.

    For an object-based checkpoint the object graph decides. Optimizer objects are those
    with slot variables, those reached by an edge named like ``optimizer`` / ``opt`` and
    those with the children Keras optimizers have (``_iterations`` and ``_variables``, or
    ``iter``). A value is optimizer state when no path from the root reaches its object
    without passing through an optimizer object: Keras 3 stores a model's kernels under
    ``optimizer/_trainable_variables/N`` keys when the optimizer is reached first, but they
    are reachable from ``model/...`` too, so they stay. Slot variables
    (``.OPTIMIZER_SLOT``) are always optimizer state.

    A name-based (TF1 Saver) checkpoint has no graph; there the slots are keys
    ``<var>/<Optimizer>[_1]`` beside a key ``<var>`` of the same shape (``w/Adam``,
    ``w/Adam_1``, ``w/Momentum``, ...) and ``beta1_power`` / ``beta2_power``.
    """
    with opened(ckpt) as (reader,):
        graph = reader.object_graph
        keys = [k for k in reader.keys() if k != OBJECT_GRAPH_KEY]
        if graph is None:
            return _tf1_optimizer_keys(reader, keys)
        nodes = graph.nodes
        optimizer_ids = set()
        for n in nodes:
            names = {c for c, _ in n.children}
            if n.slot_variables or any(req <= names for req in _OPTIMIZER_CHILDREN):
                optimizer_ids.add(n.id)
            for name, cid in n.children:
                if _OPTIMIZER_NAME_RE.search(name) and 0 <= cid < len(nodes):
                    optimizer_ids.add(cid)
        optimizer_ids.discard(0)
        # Breadth-first from the root, never entering an optimizer object.
        reached = {0}
        queue = [0]
        while queue:
            nid = queue.pop()
            for _, cid in nodes[nid].children:
                if 0 <= cid < len(nodes) and cid not in reached and cid not in optimizer_ids:
                    reached.add(cid)
                    queue.append(cid)
        model_keys: Set[str] = set()
        for n in nodes:
            if n.id in reached and n.slot_of is None:
                model_keys.update(a.checkpoint_key for a in n.attributes)
        return sorted(
            k for k in keys if k not in model_keys and (is_slot_key(k) or graph.nodes_for_key(k))
        )


def _tf1_optimizer_keys(reader: Reader, keys: Sequence[str]) -> List[str]:
    """Optimizer keys of a name-based checkpoint, found by TF1's slot naming."""
    keyset = set(keys)
    out = []
    for k in keys:
        if _TF1_OPTIMIZER_KEYS.match(k) or is_slot_key(k):
            out.append(k)
            continue
        var, sep, slot = k.rpartition("/")
        if (
            sep
            and var in keyset
            and _TF1_SLOT_RE.match(slot)
            and tuple(reader.entry(var).shape) == tuple(reader.entry(k).shape)
        ):
            out.append(k)
    return sorted(out)
