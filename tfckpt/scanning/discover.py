"""From the items of a directory to tasks: checkpoints to open, and the records that
need no opening (half-written saves, state files, unreadable entries)."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Set, Tuple

from ..errors import NotACheckpointError
from ..files import (
    DATA_NAME_RE,
    INDEX_NAME_RE,
    INDEX_SUFFIX,
    MAX_STATE_BYTES,
    STATE_FILE,
    STATE_TEMP_NAME_RE,
    TEMP_NAME_RE,
    looks_like_v1_name,
    parse_checkpoint_state,
)
from .records import Record, describe_exception, error_record
from .tasks import Checkpoint, Done, Task
from .trees import Item, Tree, join

__all__ = ["dir_tasks", "walk_tasks", "state_record", "is_savedmodel_prefix"]

#: A sharded save (``MergeBundles``) writes its parts in ``<prefix>_temp/part-*``.
_SHARDED_TEMP_DIR = "_temp"
_SHARDED_PART = "part-"
#: Where a SavedModel keeps its variables: ``<dir>/variables/variables``.
_SAVEDMODEL_PREFIX = "variables/variables"


def is_savedmodel_prefix(prefix: str) -> bool:
    """Whether a checkpoint prefix is a SavedModel's variables."""
    return prefix.replace(os.sep, "/").endswith(_SAVEDMODEL_PREFIX)


@dataclass
class _Files:
    """The files of one checkpoint prefix in a directory."""

    index: Optional[Item] = None
    shards: Dict[str, Item] = field(default_factory=dict)  # by suffix (".data-00000-of-00001")
    temps: List[str] = field(default_factory=list)  # names of a save's temporary files


def _looks_relevant(name: str) -> bool:
    """Whether an unreadable entry of this name deserves a record (it would be part of a
    checkpoint or a state file)."""
    return bool(
        name == STATE_FILE
        or INDEX_NAME_RE.match(name)
        or DATA_NAME_RE.match(name)
        or TEMP_NAME_RE.match(name)
        or STATE_TEMP_NAME_RE.match(name)
    )


def dir_tasks(tree: Tree, rel: str, items: List[Item]) -> List[Task]:
    """The tasks for one directory's own files, in name order."""
    base = posixpath.basename(rel)
    if base.endswith(_SHARDED_TEMP_DIR) and any(i.name.startswith(_SHARDED_PART) for i in items):
        return [
            Done(
                [
                    error_record(
                        "checkpoint",
                        tree.location(rel),
                        rel,
                        f"half-written checkpoint: {base} is the temporary directory of an "
                        f"interrupted sharded save of {base[: -len(_SHARDED_TEMP_DIR)]} (its "
                        "parts were never merged)",
                    )
                ]
            )
        ]

    out: List[Tuple[str, Task]] = []
    groups: Dict[str, _Files] = {}
    states: List[Item] = []
    others: List[str] = []  # files of no V2 checkpoint: perhaps format V1

    def files_of(prefix: str) -> _Files:
        g = groups.get(prefix)
        if g is None:
            g = groups[prefix] = _Files()
        return g

    for item in items:
        if item.type == "dir":
            continue
        name = item.name
        if item.type == "error":
            # Loops are worth a record wherever they are; other unreadable entries only
            # where a checkpoint file or a state file would be.
            if "loop" in (item.error or "") or _looks_relevant(name):
                loc = join(rel, name)
                out.append(
                    (name, Done([error_record("path", tree.location(loc), loc, item.error or "")]))
                )
            continue
        if name.endswith(INDEX_SUFFIX) and len(name) > len(INDEX_SUFFIX):  # INDEX_NAME_RE
            files_of(name[: -len(INDEX_SUFFIX)]).index = item
            continue
        m = DATA_NAME_RE.match(name)
        if m:
            prefix = m.group("prefix")
            files_of(prefix).shards[name[len(prefix) :]] = item
            continue
        m = TEMP_NAME_RE.match(name)
        if m:
            files_of(m.group("prefix")).temps.append(name)
            continue
        if name == STATE_FILE:
            states.append(item)
        elif not STATE_TEMP_NAME_RE.match(name):
            others.append(name)
        if STATE_TEMP_NAME_RE.match(name):
            loc = join(rel, name)
            out.append(
                (
                    name,
                    Done(
                        [
                            error_record(
                                "state",
                                tree.location(loc),
                                loc,
                                "half-written state file: a temporary file of an interrupted "
                                "update of "
                                f"'{STATE_FILE}'",
                            )
                        ]
                    ),
                )
            )

    for p, g in groups.items():
        out.extend(_group_tasks(tree, rel, base, p, g))
    present = {p for p, g in groups.items() if g.index is not None}
    # Format V1 files have no suffix to tell them by: where a state file or their names
    # suggest a saver wrote them, their footers are read.
    candidates = others if states else [n for n in others if looks_like_v1_name(n)]
    for name, spec in tree.v1_checkpoints(rel, candidates).items():
        out.append((name, Checkpoint(tree.location(join(rel, name)), join(rel, name), None, spec)))
        present.add(name)
    for item in states:
        out.append((item.name, Done([state_record(tree, rel, item, present)])))
    out.sort(key=lambda t: t[0])
    return [t for _, t in out]


def _group_tasks(tree: Tree, rel: str, base: str, p: str, g: _Files) -> List[Tuple[str, Task]]:
    """The tasks for the files of one prefix `p` of directory `rel`, each with the name it
    sorts by: the checkpoint (or its data without an index), its leftover temporary files."""
    out: List[Tuple[str, Task]] = []
    rel_prefix = join(rel, p)
    if g.index is not None:
        kind = (
            "savedmodel"
            if rel_prefix.endswith(_SAVEDMODEL_PREFIX) or (p == "variables" and base == "variables")
            else None
        )
        out.append(
            (
                p + INDEX_SUFFIX,
                Checkpoint(
                    tree.location(rel_prefix),
                    rel_prefix,
                    kind,
                    tree.checkpoint_spec(rel_prefix, g.index, g.shards),
                ),
            )
        )
    elif g.shards:
        names = ", ".join(sorted(i.name for i in g.shards.values()))
        out.append(
            (
                p + INDEX_SUFFIX,
                Done(
                    [
                        error_record(
                            "checkpoint",
                            tree.location(rel_prefix),
                            rel_prefix,
                            f"half-written checkpoint: data shard(s) {names} without the index "
                            f"{p}{INDEX_SUFFIX} (a save writes the index last: interrupted, or "
                            "the index was "
                            "deleted)",
                        )
                    ]
                ),
            )
        )
    if g.temps:
        temps = sorted(g.temps)
        loc = join(rel, temps[0])
        out.append(
            (
                temps[0],
                Done(
                    [
                        error_record(
                            "checkpoint",
                            tree.location(loc),
                            loc,
                            f"half-written checkpoint: temporary file(s) {', '.join(temps)} of an "
                            f"interrupted save of {p}",
                        )
                    ]
                ),
            )
        )
    return out


def state_record(tree: Tree, rel: str, item: Item, present: Set[str]) -> Record:
    """What a ``checkpoint`` state file says: the latest checkpoint, and whether every
    checkpoint it names is there (resolved as tf.train.latest_checkpoint does; an absolute
    path from a moved directory is looked for beside the state file too). `present` are
    the prefixes with an index in the same directory."""
    loc_rel = join(rel, item.name)
    location = tree.location(loc_rel)
    if item.type == "error":
        return error_record("path", location, loc_rel, item.error or "")
    try:
        data = tree.read_bytes(loc_rel, item)
        if len(data) > MAX_STATE_BYTES:
            return error_record(
                "state",
                location,
                loc_rel,
                f"not a checkpoint state file: more than {MAX_STATE_BYTES} bytes",
            )
        state = parse_checkpoint_state(data, location)
    except Exception as e:  # noqa: BLE001 - a parse error is the state file's status
        # The parser's own complaint (the record names the file already).
        cause = e.__context__ if isinstance(e, NotACheckpointError) and e.__context__ else e
        return error_record(
            "state",
            location,
            loc_rel,
            f"not a valid checkpoint state file: {describe_exception(cause)}",
        )

    def resolve(p: str) -> Optional[str]:
        if not posixpath.isabs(p) and not os.path.isabs(p):
            target = posixpath.normpath(join(rel, p))
            if (posixpath.dirname(target) == rel and posixpath.basename(target) in present) or (
                not target.startswith("..") and tree.has_index(target)
            ):
                return tree.location(target)
            return None
        base = posixpath.basename(p)
        if base in present:
            return tree.location(join(rel, base))
        return tree.find_absolute(p)

    names = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path and state.model_checkpoint_path not in names:
        names.append(state.model_checkpoint_path)
    rec = Record("state", location, loc_rel, checkpoints=len(names))
    if not state.model_checkpoint_path:
        rec.status, rec.error = "error", "invalid checkpoint state: model_checkpoint_path is empty"
        return rec
    rec.latest = resolve(state.model_checkpoint_path)
    missing = [p for p in names if resolve(p) is None]
    if missing:
        rec.status = "error"
        rec.error = (
            "names checkpoint(s) that are not there: "
            + ", ".join(missing)
            + ("" if rec.latest else " (including the latest)")
        )
    return rec


def walk_tasks(tree: Tree) -> Iterator[Task]:
    """The tasks of every directory of `tree`, in the order of its walk."""
    for rel, items, error in tree.walk():
        if items is None:
            yield Done([error_record("path", tree.location(rel), rel, error or "")])
            continue
        yield from dir_tasks(tree, rel, items)
