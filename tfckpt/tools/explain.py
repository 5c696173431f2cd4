"""explain: which checkpoint value each variable of a new model receives on restore, which
variables silently keep their initial values, and why, without TensorFlow.

A checkpoint holds values, never initializers. ``tf.train.Checkpoint.restore()`` matches the
checkpoint's objects to the new model's by walking the checkpoint's object graph, breadth
first from the root, children in stored order, looking up each child by its local name in the
new model; the first match wins both ways. A variable the walk does not reach keeps its
initial value, and only ``assert_consumed()`` says so. This module runs that walk on the two
object graphs (docs/format.md, 9.3); name-based checkpoints and TF1 graphs are
matched by variable name, as a ``Saver`` does.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, DefaultDict, Dict, List, Optional, Set, Tuple

from ..keys import escape_local_name, parse_object_key, parse_slot_key, split_object_path
from ..objects import ObjectGraph
from ..reader import open as open_checkpoint
from .expected import Spec, read_expected, specs_of
from .matching import ObjectWalk, match_names

__all__ = ["explain_restore", "RestoreReport", "Mismatch"]

#: How alike two object paths must be (difflib's ratio) for a rename to be suggested.
ALIKE = 0.5
#: Above this many same-shaped pairs, only pairs whose last names agree are compared.
MAX_COMPARED_PAIRS = 20000
#: Children named when saying where two graphs part.
SHOWN_CHILDREN = 8


@dataclass(frozen=True)
class Mismatch:
    """A pair TensorFlow matches but refuses to restore: the dtype or shape differs."""

    key: str
    checkpoint_key: str
    checkpoint: Spec
    expected: Spec

    def to_dict(self) -> Dict[str, Any]:
        return {
            "key": self.key,
            "checkpoint_key": self.checkpoint_key,
            "checkpoint": self.checkpoint.to_dict(),
            "expected": self.expected.to_dict(),
        }


@dataclass
class RestoreReport:
    """What restoring `checkpoint` into the model `expected` describes does (see
    :func:`explain_restore`). Keys are keys as ``tf.train.list_variables`` lists them; an
    expected key is the key the variable has in the new model's own checkpoint."""

    checkpoint: str
    expected: str
    #: "object graph" (``tf.train.Checkpoint``) or "names" (a TF1 ``Saver``)
    matching: str
    #: expected key -> the checkpoint key whose value it receives
    restored: Dict[str, str] = field(default_factory=dict)
    #: expected keys that receive nothing: those variables keep their initial values
    missing: List[str] = field(default_factory=list)
    #: checkpoint keys whose values nothing consumes
    unused: List[str] = field(default_factory=list)
    #: pairs TensorFlow matches but refuses (also in `restored`)
    mismatched: List[Mismatch] = field(default_factory=list)
    #: checkpoint key -> expected key: an unused value for a missing variable, alike in
    #: name, dtype and shape
    renames: Dict[str, str] = field(default_factory=dict)
    #: a missing or unused key -> why, in words: where the two graphs part
    why: Dict[str, str] = field(default_factory=dict)
    #: dtype and shape of every key on either side, for the report
    specs: Dict[str, Spec] = field(default_factory=dict, repr=False)
    #: expected key -> the key a rename must give its value (its variable name, where a
    #: name-based checkpoint is restored into an object-based model); else the key itself
    rename_targets: Dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """Every variable of the new model gets a value it accepts."""
        return not (self.missing or self.mismatched)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "restored": dict(self.restored),
            "missing": list(self.missing),
            "unused": list(self.unused),
            "mismatched": [m.to_dict() for m in self.mismatched],
            "renames": dict(self.renames),
            "ok": self.ok,
        }

    def to_json(self) -> Dict[str, Any]:
        return self.to_dict()

    def fix(self, out: Any, **edit_kwargs: Any) -> Any:
        """Writes a copy of the checkpoint with the suggested renames applied (through
        :func:`tfckpt.edit`, which keeps the object graph consistent), so that the renamed
        values restore; returns the :class:`tfckpt.EditPlan`."""
        from ..editing import edit

        rename = {c: self.rename_targets.get(e, e) for c, e in self.renames.items()}
        return edit(self.checkpoint, out, rename=rename, **edit_kwargs)

    def describe(self) -> str:
        lines = [
            f"restoring {self.checkpoint}",
            f"     into {self.expected} (matched by {self.matching})",
        ]
        moved = {e: c for e, c in self.restored.items() if e != c}
        lines.append(
            f"restored: {_count(len(self.restored), 'value')}"
            + (f", {len(moved)} from another key:" if moved else "")
        )
        lines += [f"  {e} <- {c}" for e, c in moved.items()]
        for title, keys in (
            ("keeps its initial value (missing)", self.missing),
            ("unused checkpoint values", self.unused),
        ):
            if keys:
                lines.append(f"{title}: {len(keys)}")
            for k in keys:
                lines.append(f"  {k}  {self.specs.get(k, '')}".rstrip())
                if k in self.why:
                    lines.append(f"    {self.why[k]}")
        if self.mismatched:
            lines.append(f"mismatched (restore fails): {len(self.mismatched)}")
        for m in self.mismatched:
            lines.append(
                f"  {m.key} <- {m.checkpoint_key}: the checkpoint holds "
                f"{m.checkpoint}, the new model's variable is {m.expected}"
            )
        if self.renames:
            lines.append("suggested renames (--fix OUT applies them):")
            lines += [f"  {c} -> {e}" for c, e in self.renames.items()]
        lines.append(self.verdict())
        return "\n".join(lines)

    def verdict(self) -> str:
        if self.ok:
            return "OK: every variable of the new model receives a checkpoint value"
        parts = []
        if self.missing:
            n = len(self.missing)
            parts.append(
                "1 variable keeps its initial value"
                if n == 1
                else f"{n} variables keep their initial values"
            )
        if self.mismatched:
            parts.append(f"{_count(len(self.mismatched), 'value')} do not fit (dtype or shape)")
        return "NOT OK: " + ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def explain_restore(checkpoint: Any, expected: Any, *, save_counter: bool = True) -> RestoreReport:
    """Says what restoring `checkpoint` into a new model does, without running either::

        r = tfckpt.explain_restore("run/ckpt-9", "fresh/ckpt-1")
        r.missing    # variables that would silently keep their initial values
        r.renames    # unused values that look like theirs; r.fix("fixed/ckpt-9") applies

    `expected` describes the new model: a checkpoint it wrote
    (``tf.train.Checkpoint(model=model).write(path)`` right after building it), a SavedModel
    directory, a TF1 MetaGraph ``.meta`` file, a JSON file ``{key: {"dtype": name,
    "shape": [...]}}`` or such a mapping. Two object graphs are matched as TensorFlow 2.21's
    ``restore()`` matches them; a name-based side is matched by variable names. Slot
    variables a TF1 optimizer creates during the restore, and ``save_counter``, which
    ``tf.train.Checkpoint.restore()`` creates (``read()`` does not: pass
    ``save_counter=False``), are reported under the keys they then get.
    """
    exp = read_expected(expected)
    with open_checkpoint(checkpoint) as reader:
        ckpt_specs = specs_of(reader)
        saved = reader.object_graph
        report = RestoreReport(
            checkpoint=reader.prefix,
            expected=exp.source,
            matching="object graph" if saved is not None and exp.graph is not None else "names",
        )
    report.specs.update(exp.specs)
    report.specs.update(ckpt_specs)
    walk = None
    if saved is not None and exp.graph is not None:
        walk = ObjectWalk(saved, exp.graph, save_counter)
        pairs = walk.run()
    else:
        pairs = match_names(ckpt_specs, saved, exp, report.rename_targets)
    consumed: Set[str] = set()
    for exp_key, ckpt_key in pairs:
        report.restored[exp_key] = ckpt_key
        consumed.add(ckpt_key)
        have = ckpt_specs[ckpt_key]
        want = exp.specs.get(exp_key, have)  # what the restore creates fits its value
        if want != have:
            report.mismatched.append(Mismatch(exp_key, ckpt_key, have, want))
        report.specs.setdefault(exp_key, want)
    report.missing = [k for k in exp.specs if k not in report.restored]
    report.unused = [k for k in ckpt_specs if k not in consumed]
    if walk is not None and saved is not None and exp.graph is not None:
        _why_objects(report, saved, exp.graph, walk)
    else:
        _why_names(report)
    report.renames = _suggest_renames(report, set(ckpt_specs))
    return report


def _children_text(names: List[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:SHOWN_CHILDREN])
    more = f" and {len(names) - SHOWN_CHILDREN} more" if len(names) > SHOWN_CHILDREN else ""
    return f"it has {shown}{more}" if names else "it has no children"


def _path_text(path: Optional[str]) -> str:
    return "the root" if not path else path


def _why_objects(
    report: RestoreReport, saved: ObjectGraph, live: ObjectGraph, walk: ObjectWalk
) -> None:
    """Where the two graphs part, for each missing and unused key."""
    first_of = walk.source
    live_node_of = {a.checkpoint_key: n for n in live.nodes for a in n.attributes}
    saved_node_of = {a.checkpoint_key: n for n in saved.nodes for a in n.attributes}

    def part(
        walk_from: ObjectGraph,
        other: ObjectGraph,
        path: str,
        step: Callable[[int], Optional[int]],
        side: str,
    ) -> Optional[str]:
        """Follows `path` in `walk_from` while the walk matched it; says where it stops."""
        cur, prefix = 0, ""
        for name in split_object_path(path):
            mate = step(cur)
            if mate is None:
                return f"nothing matched {_path_text(prefix)}"
            if mate >= len(other.nodes):
                return None  # a value the restore creates: a leaf
            nxt = walk_from.child(cur, name)
            if nxt is None:
                return None
            if other.child(mate, name) is None:
                names = [n for n, _ in other.nodes[mate].children]
                other_side = "checkpoint" if side == "new model" else "new model"
                return (
                    f"the graphs part at {_path_text(prefix)}: the {side} has "
                    f"{name!r} there, the {other_side}'s object has not "
                    f"({_children_text(names)})"
                )
            cur, prefix = nxt, f"{prefix}/{escape_local_name(name)}".lstrip("/")
        return None

    for key in report.missing:
        node = live_node_of.get(key)
        if node is None:
            report.why[key] = "the new model's object graph does not hold this key"
        elif node.id in first_of:
            s = saved.nodes[first_of[node.id]]
            attr = (parse_object_key(key) or ("", key))[1]
            report.why[key] = (
                f"the checkpoint's object at {_path_text(s.path)} is matched to "
                f"it but holds no {attr}"
            )
        elif node.slot_of is not None:
            var, opt, name = node.slot_of
            report.why[key] = (
                f"the checkpoint has no slot {name!r} of "
                f"{_path_text(live.nodes[var].path)} for the optimizer at "
                f"{_path_text(live.nodes[opt].path)}"
            )
        else:
            report.why[key] = (
                part(live, saved, node.path or "", lambda n: first_of.get(n), "new model")
                or "the checkpoint's object there is matched to another variable first"
            )
    for key in report.unused:
        node = saved_node_of.get(key)
        if node is None:
            report.why[key] = "no object of the checkpoint's graph holds this key"
        elif node.id in walk.bound:
            live_id = walk.bound[node.id]
            first = saved.nodes[first_of[live_id]]
            if first.id != node.id:
                report.why[key] = (
                    f"the new model's variable it is matched to takes the "
                    f"value of {', '.join(first.keys) or first.path} first "
                    "(two checkpoint objects reach one variable)"
                )
            else:
                report.why[key] = "the new model's object it is matched to has no such value"
        elif node.slot_of is not None:
            var, opt, name = node.slot_of
            unmatched = [
                p for p, i in (("variable", var), ("optimizer", opt)) if i not in walk.bound
            ]
            report.why[key] = (
                f"a slot whose {' and '.join(unmatched) or 'optimizer'} "
                "the new model does not match"
            )
        else:
            report.why[key] = (
                part(saved, live, node.path or "", lambda n: walk.bound.get(n), "checkpoint")
                or "another path of the checkpoint reaches the new model's object first"
            )


def _why_names(report: RestoreReport) -> None:
    for key in report.missing:
        name = report.rename_targets.get(key, key)
        report.why[key] = f"the checkpoint holds no value named {name!r}"
    for key in report.unused:
        report.why[key] = "no variable of the new model has this name"


# -- renames ----------------------------------------------------------------------------


def _kind(key: str) -> Tuple[str, str]:
    """What a rename must keep (the slot name and attribute, the attribute, or nothing for
    a plain name) and the path compared for likeness."""
    slot = parse_slot_key(key)
    if slot is not None:
        return f"slot {slot[2]} {slot[3]}", slot[0]
    parsed = parse_object_key(key)
    if parsed is not None:
        return parsed[1], parsed[0]
    return "", key


def _suggest_renames(report: RestoreReport, ckpt_keys: Set[str]) -> Dict[str, str]:
    """Pairs each missing key with the unused value most alike in name that has its dtype
    and shape (and attribute, and slot name), best pairs first, each used once."""
    groups: DefaultDict[Any, Tuple[List[str], List[str]]] = defaultdict(lambda: ([], []))
    for k in report.missing:
        if report.rename_targets.get(k, k) in ckpt_keys:
            continue  # the name is taken: a rename cannot free it
        groups[report.specs.get(k)][0].append(k)
    for k in report.unused:
        groups[report.specs.get(k)][1].append(k)
    scored = []
    for missing, unused in groups.values():
        many = len(missing) * len(unused) > MAX_COMPARED_PAIRS
        for i, m in enumerate(missing):
            m_kind, m_path = _kind(report.rename_targets.get(m, m))
            for j, u in enumerate(unused):
                u_kind, u_path = _kind(u)
                if m_kind != u_kind and m_kind and u_kind:
                    continue
                if many and m_path.rsplit("/", 1)[-1] != u_path.rsplit("/", 1)[-1]:
                    continue
                score = difflib.SequenceMatcher(None, u_path, m_path).ratio()
                if score >= ALIKE:
                    scored.append((-score, i, j, u, m))
    scored.sort(key=lambda t: t[:3])
    renames: Dict[str, str] = {}
    taken: Set[str] = set()
    for _, _, _, u, m in scored:
        if u not in renames and m not in taken:
            renames[u] = m
            taken.add(m)
    return renames
