"""How TensorFlow 2.21 pairs a checkpoint's values with a new model's variables on restore.

``tf.train.Checkpoint.restore()`` walks the checkpoint's object graph breadth first from the
root, children in stored order, binding each saved node to the new model's dependency of the
same local name; a saved node already bound is not bound again, and a live object takes the
values of the saved node bound to it first. TF1 optimizers restore slot variables once both
the variable and the optimizer are bound, creating them from the saved values if need be.
A ``Saver`` (and a TF2 model reading a name-based checkpoint) pairs by variable name.
(docs/format.md, 9.3 "How a restore matches values to variables"; every rule is checked
against TensorFlow by tests/test_explain.py.)
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import DefaultDict, Dict, List, Optional, Tuple

from ..keys import ATTRIBUTES, OPTIMIZER_SLOT, escape_local_name, object_key
from ..objects import ObjectGraph
from .expected import Expected, Spec

__all__ = ["ObjectWalk", "match_names", "SAVE_COUNTER"]

#: The root child ``tf.train.Checkpoint.restore()`` creates after matching (``read()`` not).
SAVE_COUNTER = "save_counter"


class ObjectWalk:
    """Restore's breadth-first walk over the checkpoint's graph (`saved`) binding its nodes
    to the new model's (`live`): ``bound`` saved node -> live object, ``source`` live object
    -> the saved node whose values it takes (the first bound). Slot variables a TF1 optimizer
    creates while restoring, and ``save_counter``, get live ids past the end of `live`."""

    def __init__(self, saved: ObjectGraph, live: ObjectGraph, save_counter: bool) -> None:
        self.saved, self.live, self.save_counter = saved, live, save_counter
        self.bound: Dict[int, int] = {}
        self.source: Dict[int, int] = {}
        #: attributes (name -> key) of live objects the restore creates
        self.created: Dict[int, Dict[str, str]] = {}
        self.live_slots = {n.slot_of: n.id for n in live.nodes if n.slot_of is not None}
        self.queue: "deque[int]" = deque()

    def run(self) -> List[Tuple[str, str]]:
        """Walks; returns (expected key, checkpoint key) for every value restored."""
        if not self.saved.nodes or not self.live.nodes:
            return []
        # Slot restorations wait for their variable, then for their optimizer.
        pending: DefaultDict[int, List[Tuple[int, int, str]]] = defaultdict(list)
        for opt in self.saved.nodes:
            for ref in opt.slot_variables:
                if self._valid(ref.original_node_id) and self._valid(ref.slot_node_id):
                    pending[ref.original_node_id].append((opt.id, ref.slot_node_id, ref.slot_name))
        deferred: DefaultDict[int, List[Tuple[int, int, str]]] = defaultdict(list)
        self._bind(0, 0)
        while True:
            while self.queue:
                s = self.queue.popleft()
                live_id = self.bound[s]
                self.source.setdefault(live_id, s)
                if live_id < len(self.live.nodes):
                    for name, child in self.saved.nodes[s].children:
                        if not self._valid(child) or child in self.bound:
                            continue
                        found = self.live.child(live_id, name)
                        if found is not None:
                            self._bind(child, found)
                for var, slot, name in deferred.pop(s, ()):
                    self._slot(live_id, var, slot, name)
                for opt_id, slot, name in pending.pop(s, ()):
                    if opt_id in self.bound:
                        self._slot(self.bound[opt_id], live_id, slot, name)
                    else:
                        deferred[opt_id].append((live_id, slot, name))
            if not self._create_save_counter():
                break
        return self.restored()

    def _valid(self, node_id: int) -> bool:
        return 0 <= node_id < len(self.saved.nodes)

    def _bind(self, saved_id: int, live_id: int) -> None:
        self.bound[saved_id] = live_id
        self.queue.append(saved_id)

    def _new_live(self, attrs: Dict[str, str]) -> int:
        live_id = len(self.live.nodes) + len(self.created)
        self.created[live_id] = attrs
        return live_id

    def _slot(self, opt: int, var: int, slot_node: int, name: str) -> None:
        """The optimizer bound to `opt` restores slot `name` of the live variable `var`,
        creating it from the saved value if the new model has not made it yet."""
        if slot_node in self.bound or opt >= len(self.live.nodes) or var >= len(self.live.nodes):
            return
        live_id = self.live_slots.get((var, opt, name))
        if live_id is None:
            var_path, opt_path = self.live.nodes[var].path, self.live.nodes[opt].path
            if var_path is None or opt_path is None:
                return
            base = f"{var_path}/{OPTIMIZER_SLOT}/{opt_path}/{escape_local_name(name)}"
            live_id = self._new_live(
                {
                    a.name: f"{base}/{ATTRIBUTES}/{a.name}"
                    for a in self.saved.nodes[slot_node].attributes
                }
            )
            self.live_slots[(var, opt, name)] = live_id
        self._bind(slot_node, live_id)

    def _create_save_counter(self) -> bool:
        """``restore()`` creates the root's save_counter after matching; the saved one then
        binds to it. True if that happened (so the walk goes on)."""
        if not self.save_counter:
            return False
        self.save_counter = False
        node = self.saved.child(0, SAVE_COUNTER)
        if node is None or node in self.bound or self.live.child(0, SAVE_COUNTER) is not None:
            return False
        self._bind(
            node,
            self._new_live(
                {
                    a.name: object_key([SAVE_COUNTER], a.name)
                    for a in self.saved.nodes[node].attributes
                }
            ),
        )
        return True

    def attributes(self, live_id: int) -> Dict[str, str]:
        """Attribute name -> expected key of a live object."""
        if live_id in self.created:
            return self.created[live_id]
        return {a.name: a.checkpoint_key for a in self.live.nodes[live_id].attributes}

    def restored(self) -> List[Tuple[str, str]]:
        """(expected key, checkpoint key) for every value restored, in walk order: each live
        object takes the values of the saved node it was bound to first."""
        out = []
        for live_id, s in self.source.items():
            attrs = self.attributes(live_id)
            for a in self.saved.nodes[s].attributes:
                if a.name in attrs:
                    out.append((attrs[a.name], a.checkpoint_key))
        return out


def match_names(
    ckpt_specs: Dict[str, Spec],
    saved: Optional[ObjectGraph],
    exp: Expected,
    targets: Dict[str, str],
) -> List[Tuple[str, str]]:
    """A ``Saver`` looks each variable up by its name; an object-based model restoring a
    name-based checkpoint uses the names its graph records; a ``Saver`` restoring an
    object-based checkpoint whose keys lack a name maps names through the checkpoint graph's
    recorded names (the last recorded wins, as ``object_graph_key_mapping`` builds it)."""
    if exp.graph is not None:
        wanted = {
            a.checkpoint_key: a.full_name
            for n in exp.graph.nodes
            for a in n.attributes
            if a.checkpoint_key in exp.specs and a.full_name
        }
        targets.update((k, n) for k, n in wanted.items() if n != k)
    else:
        wanted = {k: k for k in exp.specs}
    by_full_name = saved is not None and not all(n in ckpt_specs for n in wanted.values())
    lookup: Dict[str, str] = {n: n for n in ckpt_specs}
    if by_full_name and saved is not None:
        lookup = {a.full_name: a.checkpoint_key for n in saved.nodes for a in n.attributes}
    return [(k, lookup[n]) for k, n in wanted.items() if lookup.get(n) in ckpt_specs]
