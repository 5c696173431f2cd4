"""migrate: a TF1 name-based checkpoint rewritten to the object-based keys of a TF2 model."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Set

from ..dtypes import by_name
from ..editing import edit_object_graph
from ..errors import InvalidArgumentError
from ..keys import OBJECT_GRAPH_KEY, object_key
from ..writer import Writer
from ._common import opened, shape_text

__all__ = ["migrate", "MigrationReport"]

#: Dtypes TensorFlow cannot assemble from slices ("Dtype half not supported.", FORMAT.md 6).
_TF_CANNOT_ASSEMBLE = frozenset(by_name(n).code for n in ("float16", "uint16", "string"))


@dataclass
class MigrationReport:
    """What :func:`migrate` did (or, with ``dry_run``, would do)."""

    old: str
    like: str
    out: str
    #: new key -> the old key whose bytes it got
    mapped: Dict[str, str] = field(default_factory=dict)
    #: old keys whose values went nowhere (TF1 optimizer slots for a Keras 3 model, say)
    unmapped_old: List[str] = field(default_factory=list)
    #: new keys that got no value from the old checkpoint
    unfilled: List[str] = field(default_factory=list)
    #: whether the unfilled keys were filled from `like` (else they were left out)
    filled_from_like: bool = True
    #: new key -> why the old value it was mapped to could not be used
    mismatched: Dict[str, str] = field(default_factory=dict)
    #: variable name -> new keys that share it (TF2 names every unnamed variable
    #: "Variable"); such names are not mapped automatically: use name_map
    ambiguous: Dict[str, List[str]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every old value found a new key and every new key got an old value."""
        return not (self.unmapped_old or self.unfilled or self.mismatched)

    def describe(self) -> str:
        lines = [f"mapped  {old} -> {new}" for new, old in self.mapped.items()]
        lines += [f"mismatch {new}: {why}" for new, why in self.mismatched.items()]
        lines += [f"unmapped old {k}" for k in self.unmapped_old]
        verb = "filled from like" if self.filled_from_like else "left out"
        lines += [f"no value {k} ({verb})" for k in self.unfilled]
        lines += [f"ambiguous name {name!r}: {', '.join(keys)}"
                  for name, keys in self.ambiguous.items()]
        lines.append(f"# {len(self.mapped)} mapped, {len(self.unmapped_old)} old keys unmapped, "
                     f"{len(self.unfilled)} new keys without an old value ({verb}), "
                     f"{len(self.mismatched)} mismatched")
        return "\n".join(lines)

    def to_json(self) -> dict:
        d = asdict(self)
        d["complete"] = self.complete
        return d


def migrate(old: Any, like: Any, out: "str | os.PathLike[str]", *,
            name_map: Optional[Mapping[str, str]] = None, strict: bool = False,
            fill_from_like: bool = True, dry_run: bool = False,
            **write_kwargs: Any) -> MigrationReport:
    """Migrates a TF1 name-based checkpoint to the object-based keys of a TF2 model.

    `like` is any object-based checkpoint of the NEW model (``tf.train.Checkpoint(
    model=new_model).write(...)`` right after building it). Its object graph records, beside
    each new key, the variable's name (``SerializedTensor.full_name``: ``dense/kernel``), the
    very key a TF1 Saver used. Each old key is rewritten to the new key with that name::

        r = tfckpt.migrate("tf1/model.ckpt-500", like="fresh/ckpt", out="tf2/ckpt-1")
        print(r.describe())
        # then, in TF2: tf.train.Checkpoint(model=m).restore("tf2/ckpt-1").assert_consumed()

    The output holds `like`'s object graph, so TensorFlow restores it object-based. Old
    bytes are copied through without decoding; a partitioned old variable is copied as its
    slices (TensorFlow assembles them on restore) except for float16, uint16 and strings,
    which TensorFlow cannot assemble, so they are assembled here.

    `name_map` adds manual mappings ``{old key: new key or object path}`` and wins over
    names. When the old
    checkpoint is itself object-based, its variables' recorded names are matched too.
    A value whose dtype or shape does not match the new key's is not used (reported as
    mismatched). New keys that get no old value are filled from `like` when
    `fill_from_like` (the default: the result restores with ``assert_consumed()``, and those
    variables get the values `like` holds, usually their initial values); otherwise they are
    left out, with their entries removed from the object graph. With `strict`, anything
    unmapped, unfilled or mismatched is an error and nothing is written. With `dry_run`,
    nothing is written either way. `write_kwargs` go to :class:`tfckpt.Writer`.
    """
    with opened(old, like) as (ro, rl):
        if rl.object_graph is None:
            raise InvalidArgumentError(
                f"{rl.prefix} has no object graph ({OBJECT_GRAPH_KEY}): 'like' must be an "
                "object-based checkpoint of the new model, e.g. from "
                "tf.train.Checkpoint(model=model).write(path)")
        report = MigrationReport(old=ro.prefix, like=rl.prefix, out=os.fspath(out),
                                 filled_from_like=fill_from_like)
        _match(ro, rl, dict(name_map or {}), report)
        if strict and not report.complete:
            raise InvalidArgumentError(
                "migration is incomplete (strict):\n" + report.describe())
        if not dry_run:
            _write(ro, rl, out, report, write_kwargs)
        return report


def _values(reader: Any) -> List[str]:
    """The keys of `reader` that hold values (all but the object graph)."""
    return [k for k in reader.keys() if k != OBJECT_GRAPH_KEY]


def _keys_by_name(graph: Any, keys: Set[str]) -> Dict[str, List[str]]:
    """Variable name (``SerializedTensor.full_name``) -> the `keys` the graph records it for."""
    names: Dict[str, List[str]] = {}
    for n in graph.nodes:
        for a in n.attributes:
            if a.full_name and a.checkpoint_key in keys:
                lst = names.setdefault(a.full_name, [])
                if a.checkpoint_key not in lst:
                    lst.append(a.checkpoint_key)
    return names


def _match(ro: Any, rl: Any, name_map: Dict[str, str], report: MigrationReport) -> None:
    """Fills `report`: which old key each new key gets (by recorded variable names, then
    `name_map`), and what found no partner or does not fit."""
    old_keys, new_keys = _values(ro), _values(rl)
    old_set, new_set = set(old_keys), set(new_keys)
    for o, n in list(name_map.items()):
        if o not in old_set:
            raise InvalidArgumentError(f"name_map: {o} is not a key of {ro.prefix}")
        if n not in new_set:
            if object_key(n) not in new_set:  # an object path: model/dense/kernel
                raise InvalidArgumentError(f"name_map: {n} is not a key of {rl.prefix}")
            name_map[o] = object_key(n)

    # Old values by name: the key itself, or for an object-based old checkpoint the
    # variable names its graph records.
    old_by_name: Dict[str, str] = {k: k for k in old_keys}
    if ro.object_graph is not None:
        for name, ks in _keys_by_name(ro.object_graph, old_set).items():
            if len(ks) == 1:
                old_by_name.setdefault(name, ks[0])

    # New keys by the variable name their graph records.
    source: Dict[str, str] = {}
    for name, ks in _keys_by_name(rl.object_graph, new_set).items():
        if len(ks) > 1:
            if name in old_by_name:
                report.ambiguous[name] = sorted(ks)
            continue
        if name in old_by_name:
            source[ks[0]] = old_by_name[name]
    for o, n in name_map.items():
        source[n] = o

    used = set()
    for key in new_keys:
        src = source.get(key)
        if src is None:
            continue
        used.add(src)
        eo, en = ro.entry(src), rl.entry(key)
        if eo.dtype_code != en.dtype_code or tuple(eo.shape) != tuple(en.shape):
            report.mismatched[key] = (
                f"old {src} is {eo.dtype_name}{shape_text(eo.shape)}, the new model's "
                f"variable is {en.dtype_name}{shape_text(en.shape)}")
            continue
        report.mapped[key] = src
    report.unmapped_old = sorted(k for k in old_keys if k not in used)
    report.unfilled = sorted(k for k in new_keys if k not in report.mapped)


def _write(ro: Any, rl: Any, out: Any, report: MigrationReport,
           write_kwargs: Dict[str, Any]) -> None:
    """Writes what `report` planned: mapped old values, then `like`'s unfilled values (if
    asked) and its object graph, less the entries of keys left out."""
    written = set(report.mapped)
    if report.filled_from_like:
        written.update(report.unfilled)
    left_out = set(_values(rl)) - written
    with Writer(out, **write_kwargs) as w:
        for key in sorted(report.mapped, key=lambda k: ro.location(report.mapped[k])):
            src = report.mapped[key]
            eo = ro.entry(src)
            if eo.slices and eo.dtype_code in _TF_CANNOT_ASSEMBLE \
                    and not rl.entry(key).slices:
                w.add(key, ro.read(src), dtype=eo.dtype_code)
            else:
                w.copy(ro, src, as_=key)
        if report.filled_from_like:
            for key in sorted(report.unfilled, key=rl.location):
                w.copy(rl, key)
        if left_out:
            w.add(OBJECT_GRAPH_KEY, edit_object_graph(rl, left_out, {k: k for k in written}, {}))
        else:
            w.copy(rl, OBJECT_GRAPH_KEY)
