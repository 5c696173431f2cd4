"""Editing checkpoints: set, rename, drop and add values without TensorFlow.

Untouched tensors are copied byte for byte (their CRC re-checked on the way), never decoded.
The object graph of an object-based checkpoint is kept consistent: renamed values move to the
object path their new key names, dropped values leave it, added ones join it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Container,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from .casting import cast_value
from .dtypes import STRING, by_code
from .errors import InvalidArgumentError, KeyNotFoundError
from .keys import (
    OBJECT_GRAPH_KEY,
    is_slot_key,
    missing_key_hint,
    parse_object_key,
    split_object_path,
    unescape_local_name,
)
from .reader import Reader
from .reader import open as open_checkpoint
from .writer import Writer, as_array

__all__ = ["edit", "EditPlan", "edit_object_graph", "cast_value"]


@dataclass
class EditPlan:
    """What an edit does (or did): key lists by action, the output prefix."""

    src: str
    dst: str
    kept: List[str] = field(default_factory=list)
    renamed: Dict[str, str] = field(default_factory=dict)
    dropped: List[str] = field(default_factory=list)
    set: Dict[str, str] = field(default_factory=dict)  # key -> "dtype[shape] -> dtype[shape]"
    added: List[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0

    def describe(self) -> str:
        lines = []
        for k in self.dropped:
            lines.append(f"drop    {k}")
        for old, new in self.renamed.items():
            lines.append(f"rename  {old} -> {new}")
        for k, what in self.set.items():
            lines.append(f"set     {k}: {what}")
        for k in self.added:
            lines.append(f"add     {k}")
        lines.append(
            f"# {len(self.kept)} kept, {len(self.renamed)} renamed, "
            f"{len(self.dropped)} dropped, {len(self.set)} set, {len(self.added)} "
            f"added; data {self.bytes_before} -> {self.bytes_after} bytes"
        )
        return "\n".join(lines)


def edit(
    src,
    dst=None,
    *,
    set: Optional[Mapping[str, Any]] = None,  # noqa: A002
    rename: Optional[Mapping[str, str]] = None,
    drop: Iterable[str] = (),
    add: Optional[Mapping[str, Any]] = None,
    rename_regex: Sequence[Tuple[str, str]] = (),
    drop_regex: Sequence[str] = (),
    allow_dtype_change: bool = False,
    allow_shape_change: bool = False,
    allow_cast: bool = False,
    in_place: bool = False,
    overwrite: bool = False,
    dry_run: bool = False,
    update_state: bool = False,
    progress: Optional[Callable[[int], None]] = None,
) -> EditPlan:
    """Writes a copy of checkpoint `src` to `dst` with values set, renamed, dropped or added.

    ::

        tfckpt.edit("run/ckpt-9", "slim/ckpt-9", drop_regex=[r"\\.OPTIMIZER_SLOT|^optimizer/"])

    `set` maps existing keys to new values; their dtype and shape must stay unless
    `allow_dtype_change` / `allow_shape_change`. A value of another dtype is cast to the
    stored one only when the cast is exact for every element (see :func:`cast_value`);
    `allow_cast` lets it round, never overflow. `rename` maps old keys to new ones;
    `rename_regex` applies ``re.sub(pattern, repl, key)`` to every key. `drop` and
    `drop_regex` remove keys. `add` maps new keys to values. Editing `src` in place needs
    ``in_place=True`` (and is atomic: the old checkpoint stays whole until the new index
    replaces it). With `dry_run` nothing is written; the returned plan says what would be.
    `progress(nbytes)` is called with the stored bytes of each source key as it is written.
    """
    set_values = dict(set or {})
    add_values = dict(add or {})
    rename_map = dict(rename or {})
    reader = open_checkpoint(src)
    if dst is None:
        if not in_place:
            raise InvalidArgumentError(
                "give a destination (-o DST), or in_place=True (--in-place) to edit in place"
            )
        if reader.header.format == "V1":
            raise InvalidArgumentError(
                f"{reader.prefix} is a format V1 checkpoint; an edit "
                "writes format V2: give a destination (-o DST)"
            )
        dst = reader.prefix
    dst = os.fspath(dst)
    same = os.path.abspath(dst) == os.path.abspath(reader.prefix)
    if same and not in_place:
        raise InvalidArgumentError(
            f"{dst} is the source checkpoint; pass in_place=True (--in-place) to edit it in place"
        )
    keys = [k for k in reader.keys() if k != OBJECT_GRAPH_KEY]
    keyset = frozenset(keys)
    plan = EditPlan(src=reader.prefix, dst=dst)

    for k in list(drop) + list(rename_map) + list(set_values):
        if k not in keyset:
            raise KeyNotFoundError(
                f"Key {k} not found in checkpoint {reader.prefix}{missing_key_hint(k, keys)}", key=k
            )
    dropped = {k for k in drop}
    for pattern in drop_regex:
        rx = re.compile(pattern)
        dropped.update(k for k in keys if rx.search(k))
    for pattern, repl in rename_regex:
        rx = re.compile(pattern)
        for k in keys:
            if k not in rename_map and k not in dropped:
                new = rx.sub(repl, k)
                if new != k:
                    rename_map[k] = new
    final: Dict[str, str] = {}
    for k in keys:
        if k in dropped:
            continue
        new = rename_map.get(k, k)
        if not new:
            raise InvalidArgumentError(f"renaming {k} gives an empty key")
        if new in final.values():
            other = next(o for o, n in final.items() if n == new)
            raise InvalidArgumentError(f"{k} and {other} would both be named {new}")
        final[k] = new
    for k in add_values:
        if k in final.values() or k == OBJECT_GRAPH_KEY:
            raise InvalidArgumentError(f"cannot add {k}: the key exists")

    set_arrays = {}
    for k, v in set_values.items():
        e = reader.entry(k)
        arr, code = as_array(k, v, None)
        given = arr.dtype
        if code != e.dtype_code and not allow_dtype_change:
            arr, code = _to_stored_dtype(k, arr, code, e, allow_cast), e.dtype_code
        if tuple(arr.shape) != tuple(e.shape) and not allow_shape_change:
            raise InvalidArgumentError(
                f"{k}: the value has shape {list(arr.shape)}, the checkpoint holds "
                f"{list(e.shape)}; pass allow_shape_change (--allow-shape-change) to change "
                "the shape"
            )
        set_arrays[k] = (arr, code)
        cast = f" (cast from {given})" if arr.dtype != given and code != STRING else ""
        plan.set[k] = (
            f"{e.dtype_name}{list(e.shape)} -> {by_code(code).name}{list(arr.shape)}{cast}"
        )
    add_arrays = {k: as_array(k, v, None) for k, v in add_values.items()}

    plan.dropped = sorted(dropped)
    plan.renamed = {k: n for k, n in final.items() if n != k}
    plan.kept = [k for k in final if k not in set_arrays and final[k] == k]
    plan.added = sorted(add_arrays)
    plan.bytes_before = sum(reader.stored_size(k) for k in keys)
    plan.bytes_after = (
        sum(reader.stored_size(k) for k in final if k not in set_arrays)
        + sum(a.nbytes for a, _ in set_arrays.values())
        + sum(a.nbytes for a, _ in add_arrays.values())
    )
    if dry_run:
        return plan

    graph = None
    if OBJECT_GRAPH_KEY in reader:
        graph = edit_object_graph(reader, dropped, final, add_arrays)

    # Copied payloads keep their byte order, so the output keeps the source's.
    with Writer(
        dst,
        overwrite=overwrite or same,
        update_state=update_state,
        big_endian=reader.header.endianness == "big",
    ) as w:
        for k in sorted(final, key=reader.location):
            if progress is not None:
                progress(reader.stored_size(k))
            new = final[k]
            if k in set_arrays:
                arr, code = set_arrays[k]
                w.add(new, arr, dtype=code)
            else:
                w.copy(reader, k, as_=new)
        for k, (arr, code) in add_arrays.items():
            w.add(k, arr, dtype=code)
        if graph is not None:
            w.add(OBJECT_GRAPH_KEY, graph)
    return plan


def _to_stored_dtype(key: str, arr: Any, code: int, entry: Any, allow_cast: bool) -> Any:
    """`arr` (of DataType `code`) as the dtype `entry` stores, or the error saying why not:
    strings and numbers never turn into each other; numbers are cast by :func:`cast_value`."""
    target = entry.dtype
    if target is None or (code == STRING) != (entry.dtype_code == STRING):
        raise InvalidArgumentError(
            f"{key}: the value is {arr.dtype}, the checkpoint holds {entry.dtype_name}; "
            "pass allow_dtype_change (--allow-dtype-change) to change the dtype"
        )
    return cast_value(key, arr, target, allow_cast=allow_cast)


def edit_object_graph(
    reader: Reader, dropped: Container[str], final: Mapping[str, str], added: Iterable[str]
) -> bytes:
    """The object graph of `reader` with the `dropped` keys' values removed, renamed ones
    (`final`: old key -> new key) moved to the path their new key names, and `added` object
    keys attached; public so that other writers (``tools.migrate``) keep graphs as edit does."""
    from .proto import TrackableObjectGraph

    msg = TrackableObjectGraph()
    msg.ParseFromString(reader.read(OBJECT_GRAPH_KEY).item())
    nodes = msg.nodes
    # Canonical paths, to find where a renamed key should live.
    from .objects import ObjectGraph

    view = ObjectGraph.parse(msg.SerializeToString())
    path_to_id: Dict[str, int] = {}
    for n in view.nodes:
        for p in n.paths:
            path_to_id.setdefault(p, n.id)

    def node_at(escaped_path: str) -> int:
        if escaped_path in path_to_id:
            return path_to_id[escaped_path]
        parts = escaped_path.split("/")
        parent = 0
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub in path_to_id:
                parent = path_to_id[sub]
                continue
            new_id = len(nodes)
            nodes.add()
            nodes[parent].children.add(node_id=new_id, local_name=unescape_local_name(parts[i - 1]))
            path_to_id[sub] = new_id
            parent = new_id
        return parent

    slot_nodes = {s.slot_variable_node_id for n in nodes for s in n.slot_variables}
    moved: Dict[int, int] = {}
    for nid in range(len(nodes)):
        node = nodes[nid]
        keep = []
        for a in node.attributes:
            key = a.checkpoint_key
            if key in dropped:
                continue
            new = final.get(key, key)
            if new != key:
                m = parse_object_key(new)
                old_m = parse_object_key(key)
                a.checkpoint_key = new
                if (
                    m
                    and nid not in slot_nodes
                    and not is_slot_key(new)
                    and old_m
                    and m[0] != old_m[0]
                ):
                    target = node_at(m[0])
                    a.name = m[1]
                    nodes[target].attributes.add().CopyFrom(a)
                    moved[nid] = target
                    continue
            keep.append(a)
        del node.attributes[:]
        node.attributes.extend(keep)
    # Slots follow their variable to its new node; slots whose value was dropped go.
    for node in nodes:
        keep = []
        for s in node.slot_variables:
            if (
                s.original_variable_node_id in moved
                and not nodes[s.original_variable_node_id].attributes
            ):
                s.original_variable_node_id = moved[s.original_variable_node_id]
            if nodes[s.slot_variable_node_id].attributes:
                keep.append(s)
        del node.slot_variables[:]
        node.slot_variables.extend(keep)
    for key in added:
        m = parse_object_key(key)
        if m and not is_slot_key(key):
            a = nodes[node_at(m[0])].attributes.add()
            a.name, a.checkpoint_key = m[1], key
            a.full_name = "/".join(split_object_path(m[0]))
    # has_checkpoint_values, recomputed to a fixed point (graphs may share nodes).
    has = [bool(n.attributes or n.slot_variables or n.HasField("registered_saver")) for n in nodes]
    changed = True
    while changed:
        changed = False
        for i, n in enumerate(nodes):
            if not has[i] and any(
                0 <= c.node_id < len(nodes) and has[c.node_id] for c in n.children
            ):
                has[i] = changed = True
    for n, h in zip(nodes, has):
        n.has_checkpoint_values.value = h
    return msg.SerializeToString()
