"""migrate: a TF1 name-based checkpoint rewritten to the object-based keys of a TF2 model."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ..dtypes import by_name
from ..editing import edit_object_graph
from ..errors import InvalidArgumentError
from ..keys import OBJECT_GRAPH_KEY, object_key
from ..writer import Writer
from ._common import opened, shape_text
from .optimizer import optimizer_keys

__all__ = ["migrate", "MigrationReport"]

#: The TF1 training step counter: state of the training loop, not of the model.
_TRAINING_COUNTERS = frozenset({"global_step"})

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
    #: the unmapped old keys that are model values, not optimizer state or the step
    #: counter: values the migration loses
    lost: List[str] = field(default_factory=list)
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

    @property
    def succeeded(self) -> bool:
        """Something was mapped and no old model value was left behind (optimizer state
        and the step counter may be)."""
        return bool(self.mapped) and not self.lost

    def describe(self) -> str:
        lines = []
        if not self.mapped:
            lines.append(
                "FAILED: no old value was mapped to a new key; nothing was written "
                "(use --map REGEX=REPLACEMENT)"
            )
        if self.lost:
            lines.append(
                f"FAILED: {len(self.lost)} old model values were not mapped and "
                "would be lost (use --map REGEX=REPLACEMENT):"
            )
            lines += [f"lost    {k}" for k in self.lost]
        lines += [f"mapped  {old} -> {new}" for new, old in self.mapped.items()]
        lines += [f"mismatch {new}: {why}" for new, why in self.mismatched.items()]
        lines += [f"unmapped old {k}" for k in self.unmapped_old]
        verb = "filled from like" if self.filled_from_like else "left out"
        lines += [f"no value {k} ({verb})" for k in self.unfilled]
        lines += [
            f"ambiguous name {name!r}: {', '.join(keys)}" for name, keys in self.ambiguous.items()
        ]
        lines.append(
            f"# {len(self.mapped)} mapped, {len(self.unmapped_old)} old keys unmapped, "
            f"{len(self.unfilled)} new keys without an old value ({verb}), "
            f"{len(self.mismatched)} mismatched"
        )
        return "\n".join(lines)

    def to_json(self) -> dict:
        d = asdict(self)
        d["complete"] = self.complete
        d["succeeded"] = self.succeeded
        return d


def migrate(
    old: Any,
    like: Any,
    out: "str | os.PathLike[str]",
    *,
    name_map: Optional[Mapping[str, str]] = None,
    name_rules: Sequence[Tuple[str, str]] = (),
    strict: bool = False,
    fill_from_like: bool = True,
    dry_run: bool = False,
    **write_kwargs: Any,
) -> MigrationReport:
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
    names; `name_rules` are ``(pattern, replacement)`` pairs: an old key `pattern` matches
    (``re.search``) is rewritten by ``re.sub`` and looked up among the new variable names,
    keys and object paths. Names that match neither exactly nor by a rule are matched by
    suffix when that pairing is the only one: Keras records ``sequential/dense/kernel``
    where TF1 saved ``dense/kernel``. When the old checkpoint is itself object-based, its
    variables' recorded names are matched too. ``report.lost`` lists the old model values
    (not optimizer state, not ``global_step``) that went nowhere; ``report.succeeded`` is
    False when there are any, or when nothing was mapped (then nothing is written).
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
                "tf.train.Checkpoint(model=model).write(path)"
            )
        report = MigrationReport(
            old=ro.prefix, like=rl.prefix, out=os.fspath(out), filled_from_like=fill_from_like
        )
        _match(ro, rl, dict(name_map or {}), list(name_rules), report)
        if strict and not report.complete:
            raise InvalidArgumentError("migration is incomplete (strict):\n" + report.describe())
        if not dry_run and report.mapped:  # else the output would hold no old value
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


def _match(
    ro: Any,
    rl: Any,
    name_map: Dict[str, str],
    rules: List[Tuple[str, str]],
    report: MigrationReport,
) -> None:
    """Fills `report`: which old key each new key gets (by `name_map`, then `rules`, then
    recorded variable names, then the same key, then unique name suffixes), and what found
    no partner or does not fit."""
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
    new_by_name: Dict[str, str] = {}
    for name, ks in _keys_by_name(rl.object_graph, new_set).items():
        if len(ks) > 1:
            if name in old_by_name:
                report.ambiguous[name] = sorted(ks)
            continue
        new_by_name[name] = ks[0]
    source: Dict[str, str] = {}
    for name, key in new_by_name.items():
        if name in old_by_name:
            source[key] = old_by_name[name]
    # The same key on both sides (an object-based old checkpoint of the same structure,
    # whose unnamed variables all record the name "Variable").
    taken = set(source.values())
    for key in new_keys:
        if key not in source and key in old_set and key not in taken:
            source[key] = key
    _match_suffixes(old_by_name, new_by_name, source)
    for o, n in _apply_rules(rules, old_keys, new_set, new_by_name, ro.prefix).items():
        source[n] = o
    for o, n in name_map.items():
        source[n] = o
    # A manual mapping wins over the automatic one that gave its old value elsewhere.
    manual = set(name_map.values())
    taken = {source[n] for n in manual}
    for n in [n for n in source if n not in manual and source[n] in taken]:
        del source[n]

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
                f"variable is {en.dtype_name}{shape_text(en.shape)}"
            )
            continue
        report.mapped[key] = src
    report.unmapped_old = sorted(k for k in old_keys if k not in used)
    report.unfilled = sorted(k for k in new_keys if k not in report.mapped)
    training = set(optimizer_keys(ro)) if report.unmapped_old else set()
    report.lost = [
        k
        for k in report.unmapped_old
        if k not in training and k.rpartition("/")[2] not in _TRAINING_COUNTERS
    ]


def _match_suffixes(
    old_by_name: Dict[str, str], new_by_name: Dict[str, str], source: Dict[str, str]
) -> None:
    """Pairs the names still unmatched when one ends with ``/`` and the other (Keras adds
    its model's scope: ``sequential/dense/kernel`` for TF1's ``dense/kernel``), and only
    where each side has that one partner."""
    taken = set(source.values())
    free_old = {name: key for name, key in old_by_name.items() if key not in taken}
    pairs: Dict[str, List[str]] = {}
    for name, key in new_by_name.items():
        if key in source:
            continue
        for old_name in free_old:
            if name.endswith("/" + old_name) or old_name.endswith("/" + name):
                pairs.setdefault(key, []).append(old_name)
    claims: Dict[str, int] = {}
    for names in pairs.values():
        for old_name in names:
            claims[old_name] = claims.get(old_name, 0) + 1
    for key, names in pairs.items():
        if len(names) == 1 and claims[names[0]] == 1:
            source[key] = free_old[names[0]]


def _apply_rules(
    rules: List[Tuple[str, str]],
    old_keys: List[str],
    new_set: Set[str],
    new_by_name: Dict[str, str],
    where: str,
) -> Dict[str, str]:
    """Old key -> new key by the ``(pattern, replacement)`` `rules` (the first rule whose
    pattern matches an old key rewrites it); the result names a new variable, key or object
    path. A rule that matches no old key is an error: it is surely mistyped."""
    found: Dict[str, str] = {}
    for pattern, repl in rules:
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise InvalidArgumentError(
                f"--map {pattern}={repl}: not a regular expression ({e})"
            ) from None
        hits = [k for k in old_keys if rx.search(k)]
        if not hits:
            raise InvalidArgumentError(
                f"--map {pattern}={repl}: the pattern matches no key of {where}"
            )
        for k in hits:
            if k in found:
                continue
            name = rx.sub(repl, k)
            new = (
                new_by_name.get(name)
                or (name if name in new_set else None)
                or (object_key(name) if object_key(name) in new_set else None)
            )
            if new is not None:
                found[k] = new
    return found


def _write(
    ro: Any, rl: Any, out: Any, report: MigrationReport, write_kwargs: Dict[str, Any]
) -> None:
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
            if eo.slices and eo.dtype_code in _TF_CANNOT_ASSEMBLE and not rl.entry(key).slices:
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
