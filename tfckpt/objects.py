"""The TrackableObjectGraph of an object-based checkpoint, as a tree people can walk.

Every object has a canonical path (the breadth-first path TensorFlow uses to build keys)
and every other path that reaches it: Keras 3, for one, tracks a model's variables under
the optimizer too, so one value sits under several paths. Optimizer slot variables know
which variable and which optimizer they belong to.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterable, Iterator, List, Optional, Tuple

from .errors import CorruptCheckpointError
from .keys import (
    ATTRIBUTES,
    OPTIMIZER_SLOT,
    VARIABLE_VALUE,
    escape_local_name,
    parse_object_key,
    parse_slot_key,
    split_object_path,
    unescape_local_name,
)

__all__ = ["ObjectGraph", "Node", "Attribute", "SlotVariable", "escape_local_name"]

_MAX_PATHS_PER_NODE = 16  # enough to show every alias people meet; bounds hostile graphs


@dataclass(frozen=True)
class Attribute:
    name: str  # e.g. VARIABLE_VALUE
    full_name: str  # the variable's TF1 name, e.g. dense/kernel
    checkpoint_key: str  # the bundle key holding the value


@dataclass(frozen=True)
class SlotVariable:
    original_node_id: int
    slot_name: str
    slot_node_id: int


@dataclass
class Node:
    id: int
    children: List[Tuple[str, int]]
    attributes: List[Attribute]
    slot_variables: List[SlotVariable]
    registered_saver: Optional[Tuple[str, str]] = None
    has_checkpoint_values: Optional[bool] = None
    #: The canonical path (escaped local names joined by "/"); "" for the root, None if
    #: nothing reaches the node.
    path: Optional[str] = None
    #: Every path found that reaches this node (the canonical one first).
    paths: List[str] = field(default_factory=list)
    #: For a slot variable: (original variable node id, optimizer node id, slot name).
    slot_of: Optional[Tuple[int, int, str]] = None

    @property
    def keys(self) -> List[str]:
        return [a.checkpoint_key for a in self.attributes]


class ObjectGraph:
    """The decoded graph. ``nodes[0]`` is the root (usually the tf.train.Checkpoint)."""

    def __init__(self, nodes: List[Node], problems: List[str]) -> None:
        self.nodes = nodes
        #: Things that are wrong with the graph (dangling node ids, say); empty when sound.
        self.problems = problems
        self._by_key: Dict[str, List[int]] = {}
        for n in nodes:
            for a in n.attributes:
                self._by_key.setdefault(a.checkpoint_key, []).append(n.id)
        self._assign_paths()

    @classmethod
    def parse(cls, data: bytes, reader=None) -> "ObjectGraph":
        """Decodes a serialized TrackableObjectGraph."""
        from .proto import TrackableObjectGraph

        msg = TrackableObjectGraph()
        try:
            msg.ParseFromString(data)
        except Exception as e:
            where = f"{reader.index_path}: " if reader is not None else ""
            raise CorruptCheckpointError(
                f"{where}the object graph (_CHECKPOINTABLE_OBJECT_GRAPH) does not parse: {e}"
            ) from None
        nodes = []
        for i, obj in enumerate(msg.nodes):
            saver = None
            if obj.HasField("registered_saver"):
                saver = (obj.registered_saver.name, obj.registered_saver.object_name)
            nodes.append(
                Node(
                    id=i,
                    children=[(c.local_name, c.node_id) for c in obj.children],
                    attributes=[
                        Attribute(a.name, a.full_name, a.checkpoint_key) for a in obj.attributes
                    ],
                    slot_variables=[
                        SlotVariable(
                            s.original_variable_node_id, s.slot_name, s.slot_variable_node_id
                        )
                        for s in obj.slot_variables
                    ],
                    registered_saver=saver,
                    has_checkpoint_values=(
                        obj.has_checkpoint_values.value
                        if obj.HasField("has_checkpoint_values")
                        else None
                    ),
                )
            )
        return cls(nodes, [])

    @classmethod
    def from_keys(cls, keys: Iterable[str]) -> "ObjectGraph":
        """The graph that object-based `keys` imply, for a model known only by its keys
        (a JSON list of them): a node per object path, children in the order first met,
        slot keys as slot variables of their optimizer. What keys cannot say (aliases,
        objects without values) is not there; keys that are not object-based are left out.
        """
        nodes = [Node(0, [], [], [])]
        ids: Dict[Tuple[str, ...], int] = {(): 0}

        def new_node() -> int:
            nodes.append(Node(len(nodes), [], [], []))
            return len(nodes) - 1

        def node_at(escaped_path: str) -> int:
            parts = tuple(split_object_path(escaped_path))
            for i in range(1, len(parts) + 1):
                if parts[:i] not in ids:
                    ids[parts[:i]] = new_node()
                    nodes[ids[parts[: i - 1]]].children.append((parts[i - 1], ids[parts[:i]]))
            return ids[parts]

        slot_ids: Dict[Tuple[int, int, str], int] = {}
        for key in keys:
            slot = parse_slot_key(key)
            if slot is not None:
                var, opt, name, attr = slot
                v, o, name = node_at(var), node_at(opt), unescape_local_name(name)
                if (v, o, name) not in slot_ids:
                    slot_ids[v, o, name] = new_node()
                    nodes[o].slot_variables.append(SlotVariable(v, name, slot_ids[v, o, name]))
                full_name = "/".join(split_object_path(var) + [name])
                nodes[slot_ids[v, o, name]].attributes.append(Attribute(attr, full_name, key))
                continue
            parsed = parse_object_key(key)
            if parsed is not None:
                n = node_at(parsed[0])
                nodes[n].attributes.append(
                    Attribute(parsed[1], "/".join(split_object_path(parsed[0])), key)
                )
        return cls(nodes, [])

    # -- paths ------------------------------------------------------------------------
    def _valid(self, node_id: int, context: str) -> bool:
        if 0 <= node_id < len(self.nodes):
            return True
        self.problems.append(
            f"{context} refers to node {node_id}, but the graph has {len(self.nodes)} nodes"
        )
        return False

    def _assign_paths(self) -> None:
        if not self.nodes:
            return
        root = self.nodes[0]
        root.path = ""
        root.paths = [""]
        # Each path carries the nodes it passed through: an edge back to one of them (Keras'
        # save_weights gives the model a child "root" that is the model itself) closes a
        # cycle, and a path around a cycle names nothing new.
        queue: "deque[Tuple[int, str, FrozenSet[int]]]" = deque([(0, "", frozenset([0]))])
        while queue:
            nid, path, through = queue.popleft()
            for name, cid in self.nodes[nid].children:
                if not self._valid(cid, f"child {name!r} of node {nid}") or cid in through:
                    continue
                child = self.nodes[cid]
                cpath = f"{path}/{escape_local_name(name)}" if path else escape_local_name(name)
                if len(child.paths) >= _MAX_PATHS_PER_NODE or cpath in child.paths:
                    continue
                if child.path is None:
                    child.path = cpath
                child.paths.append(cpath)
                queue.append((cid, cpath, through | {cid}))
        # Slot variables hang off their original variable, under the optimizer's path.
        for opt in self.nodes:
            for s in opt.slot_variables:
                if not (
                    self._valid(s.slot_node_id, f"slot {s.slot_name!r} of node {opt.id}")
                    and self._valid(s.original_node_id, f"slot {s.slot_name!r} of node {opt.id}")
                ):
                    continue
                slot = self.nodes[s.slot_node_id]
                slot.slot_of = (s.original_node_id, opt.id, s.slot_name)
                original = self.nodes[s.original_node_id]
                if slot.path is None and original.path is not None and opt.path is not None:
                    slot.path = (
                        f"{original.path}/{OPTIMIZER_SLOT}/{opt.path}/"
                        f"{escape_local_name(s.slot_name)}"
                    )
                    slot.paths.append(slot.path)

    # -- queries ------------------------------------------------------------------------
    @property
    def root(self) -> Node:
        return self.nodes[0]

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, path: str) -> Node:
        """The node at an escaped path such as ``model/dense/kernel``."""
        for n in self.nodes:
            if path in n.paths:
                return n
        raise KeyError(f"no object at path {path!r}")

    def child(self, node_id: int, local_name: str) -> Optional[int]:
        """The id of the child of `node_id` named `local_name` (unescaped), as restore looks
        a dependency up by name; None if it has none."""
        for name, cid in self.nodes[node_id].children:
            if name == local_name and 0 <= cid < len(self.nodes):
                return cid
        return None

    def nodes_for_key(self, key: str) -> List[Node]:
        """The objects whose value is stored under checkpoint `key`."""
        return [self.nodes[i] for i in self._by_key.get(key, [])]

    def paths_for_key(self, key: str) -> List[str]:
        """Every object path that reaches the value stored under `key`."""
        out: List[str] = []
        for n in self.nodes_for_key(key):
            out.extend(p for p in n.paths if p not in out)
        return out

    def walk(self) -> Iterator[Node]:
        """Nodes reachable from the root, in breadth-first order, then slot variables."""
        reached = [n for n in self.nodes if n.path is not None]
        return iter(sorted(reached, key=lambda n: (n.slot_of is not None, n.id)))

    def variables(self) -> List[dict]:
        """One record per stored value: key, attribute, canonical path, all paths, TF1 name,
        and for slots the variable and optimizer they belong to."""
        out = []
        for n in self.nodes:
            for a in n.attributes:
                rec = {
                    "key": a.checkpoint_key,
                    "attribute": a.name,
                    "node": n.id,
                    "path": n.path,
                    "paths": list(n.paths),
                    "full_name": a.full_name,
                }
                if n.slot_of is not None:
                    orig, opt, slot = n.slot_of
                    rec["slot"] = {
                        "name": slot,
                        "variable": self.nodes[orig].path,
                        "optimizer": self.nodes[opt].path,
                    }
                out.append(rec)
        return out

    def to_json(self) -> dict:
        return {
            "nodes": [
                {
                    "id": n.id,
                    "path": n.path,
                    "paths": n.paths,
                    "children": [{"name": c, "node": i} for c, i in n.children],
                    "attributes": [
                        {
                            "name": a.name,
                            "full_name": a.full_name,
                            "checkpoint_key": a.checkpoint_key,
                        }
                        for a in n.attributes
                    ],
                    "slot_variables": [
                        {
                            "original": s.original_node_id,
                            "slot": s.slot_name,
                            "node": s.slot_node_id,
                        }
                        for s in n.slot_variables
                    ],
                    **(
                        {
                            "registered_saver": {
                                "name": n.registered_saver[0],
                                "object_name": n.registered_saver[1],
                            }
                        }
                        if n.registered_saver
                        else {}
                    ),
                }
                for n in self.nodes
            ],
            "problems": list(self.problems),
        }

    # -- rendering ----------------------------------------------------------------------
    def render(self, describe=None) -> str:
        """A text tree. `describe(key)` may return a short text for a value (dtype, shape)."""
        lines: List[str] = ["(root)" + self._node_suffix(self.root, describe)]
        placed = {0}
        slots_by_original: Dict[int, List[Node]] = {}
        for n in self.nodes:
            if n.slot_of is not None:
                slots_by_original.setdefault(n.slot_of[0], []).append(n)

        def emit(nid: int, indent: str, path: str) -> None:
            node = self.nodes[nid]
            items: List[Tuple[str, Optional[int], Optional[Node]]] = []
            for name, cid in node.children:
                items.append((name, cid, None))
            for slot in slots_by_original.get(nid, []):
                items.append(("", None, slot))
            for i, (name, cid_or_none, slot_node) in enumerate(items):
                last = i == len(items) - 1
                branch = "└── " if last else "├── "
                deeper = indent + ("    " if last else "│   ")
                if slot_node is not None:
                    _, opt, slot_name = slot_node.slot_of  # type: ignore[misc]
                    opt_path = self.nodes[opt].path or f"node {opt}"
                    lines.append(
                        f"{indent}{branch}[slot {slot_name} of {opt_path}]"
                        + self._node_suffix(slot_node, describe)
                    )
                    continue
                if cid_or_none is None or not 0 <= cid_or_none < len(self.nodes):
                    lines.append(f"{indent}{branch}{name} -> missing node {cid_or_none}")
                    continue
                cid = cid_or_none
                child = self.nodes[cid]
                edge_path = f"{path}/{escape_local_name(name)}" if path else escape_local_name(name)
                # Each object is shown once, under its canonical path (the one its keys use);
                # every other edge to it is an alias.
                if cid in placed or (child.path is not None and child.path != edge_path):
                    lines.append(
                        f"{indent}{branch}{name} = same object as {child.path or '(root)'}"
                    )
                    continue
                placed.add(cid)
                lines.append(f"{indent}{branch}{name}" + self._node_suffix(child, describe))
                emit(cid, deeper, edge_path)

        emit(0, "", "")
        for p in self.problems:
            lines.append(f"problem: {p}")
        return "\n".join(lines)

    @staticmethod
    def _node_suffix(node: Node, describe) -> str:
        parts = []
        for a in node.attributes:
            text = describe(a.checkpoint_key) if describe else ""
            attr = "" if a.name == VARIABLE_VALUE else f" {a.name}"
            parts.append(f"{attr}{(' ' + text) if text else ''} <- {a.checkpoint_key}")
        if node.registered_saver:
            parts.append(f" (registered saver {node.registered_saver[0]})")
        if len(node.paths) > 1:
            parts.append("  (also " + ", ".join(node.paths[1:]) + ")")
        return ("  " + "".join(parts).strip()) if parts else ""


def _split_path(path) -> Tuple[str, ...]:
    if isinstance(path, str):
        parts = tuple(path.split("/"))
    else:
        parts = tuple(path)
    if not parts or any(not p for p in parts):
        raise ValueError(f"bad object path {path!r}: empty local name")
    return parts


def build_object_graph(variables, slots=()) -> Tuple[bytes, Dict]:
    """Builds a serialized TrackableObjectGraph for variables at plain object paths.

    `variables` are paths (``"model/dense/kernel"`` or tuples of local names); `slots` are
    (variable path, optimizer path, slot name) triples. Nodes are numbered breadth-first with
    slot variables last, as TensorFlow numbers them. Returns the bytes and a dict from each
    given path / slot triple to its checkpoint key.
    """
    from .proto import TrackableObjectGraph

    # The tree of local names, children in the order first given.
    tree: Dict[Tuple[str, ...], Dict[str, None]] = {(): {}}
    values = set()

    def ensure(parts: Tuple[str, ...]) -> None:
        for i in range(1, len(parts) + 1):
            parent, child = parts[: i - 1], parts[i - 1]
            tree.setdefault(parent, {})[child] = None
            tree.setdefault(parts[:i], {})

    var_parts = [_split_path(v) for v in variables]
    for parts in var_parts:
        if parts in values:
            raise ValueError(f"object path {'/'.join(parts)!r} given twice")
        ensure(parts)
        values.add(parts)
    slot_specs = []
    for var, opt, name in slots:
        vp, op = _split_path(var), _split_path(opt)
        if vp not in values:
            raise ValueError(f"slot {name!r} belongs to {var!r}, which is not among the variables")
        ensure(op)
        slot_specs.append((vp, op, name))

    order: List[Tuple[str, ...]] = []
    queue: "deque[Tuple[str, ...]]" = deque([()])
    while queue:
        parts = queue.popleft()
        order.append(parts)
        for child in tree[parts]:
            queue.append(parts + (child,))
    ids = {parts: i for i, parts in enumerate(order)}

    def path_of(parts: Tuple[str, ...]) -> str:
        return "/".join(escape_local_name(p) for p in parts)

    msg = TrackableObjectGraph()
    key_of: Dict = {}
    for parts in order:
        node = msg.nodes.add()
        for child in tree[parts]:
            node.children.add(node_id=ids[parts + (child,)], local_name=child)
        if parts in values:
            key = f"{path_of(parts)}/{ATTRIBUTES}/{VARIABLE_VALUE}"
            node.attributes.add(name=VARIABLE_VALUE, full_name="/".join(parts), checkpoint_key=key)
            key_of[variables[var_parts.index(parts)]] = key
    for (vp, op, name), spec in zip(slot_specs, slots):
        slot_id = len(msg.nodes)
        slot = msg.nodes.add()
        key = (
            f"{path_of(vp)}/{OPTIMIZER_SLOT}/{path_of(op)}/{escape_local_name(name)}"
            f"/{ATTRIBUTES}/{VARIABLE_VALUE}"
        )
        slot.attributes.add(
            name=VARIABLE_VALUE, full_name=f"{'/'.join(vp)}/{name}", checkpoint_key=key
        )
        msg.nodes[ids[op]].slot_variables.add(
            original_variable_node_id=ids[vp], slot_name=name, slot_variable_node_id=slot_id
        )
        key_of[tuple(spec)] = key

    # has_checkpoint_values: the node or a descendant holds something.
    has = [bool(n.attributes or n.slot_variables) for n in msg.nodes]
    for parts in reversed(order):
        if any(has[ids[parts + (c,)]] for c in tree[parts]):
            has[ids[parts]] = True
    for n, h in zip(msg.nodes, has):
        n.has_checkpoint_values.value = h
    return msg.SerializeToString(), key_of
