"""The vocabulary of checkpoint keys, in one place.

An object-based checkpoint (``tf.train.Checkpoint``) keys each value by the path of its object
in the object graph, each local name escaped (``.`` -> ``..``, ``/`` -> ``.S``), then
``/.ATTRIBUTES/<attribute>``; an optimizer slot sits under
``<variable path>/.OPTIMIZER_SLOT/<optimizer path>/<slot name>/.ATTRIBUTES/...``. The object
graph itself is stored under :data:`OBJECT_GRAPH_KEY`. A name-based (TF1 ``Saver``) checkpoint
keys values by variable name. See docs/format.md, "Object-based keys".
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple, Union

__all__ = [
    "OBJECT_GRAPH_KEY",
    "ATTRIBUTES",
    "OPTIMIZER_SLOT",
    "VARIABLE_VALUE",
    "VALUE_SUFFIX",
    "SAVE_COUNTER_KEY",
    "escape_local_name",
    "unescape_local_name",
    "split_object_path",
    "object_key",
    "parse_object_key",
    "is_slot_key",
    "parse_slot_key",
    "missing_key_hint",
]

#: The key of the serialized TrackableObjectGraph in an object-based checkpoint.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
#: The path segment that introduces an object's attributes.
ATTRIBUTES = ".ATTRIBUTES"
#: The path segment that introduces an optimizer slot of a variable.
OPTIMIZER_SLOT = ".OPTIMIZER_SLOT"
#: The attribute name of a variable's value.
VARIABLE_VALUE = "VARIABLE_VALUE"
#: What every variable value key ends with.
VALUE_SUFFIX = f"/{ATTRIBUTES}/{VARIABLE_VALUE}"
#: The key of ``tf.train.Checkpoint``'s save counter.
SAVE_COUNTER_KEY = "save_counter" + VALUE_SUFFIX

_ATTRIBUTE_KEY_RE = re.compile(r"^(?P<path>.+)/\.ATTRIBUTES/(?P<attr>[^/]+)$")
_SLOT_KEY_RE = re.compile(
    rf"^(?P<var>.+)/{re.escape(OPTIMIZER_SLOT)}/(?P<opt>.+)/(?P<slot>[^/]+)"
    rf"/{re.escape(ATTRIBUTES)}/(?P<attr>[^/]+)$"
)


def escape_local_name(name: str) -> str:
    """Escapes an edge name as checkpoint keys do: ``.`` -> ``..``, then ``/`` -> ``.S``."""
    return name.replace(".", "..").replace("/", ".S")


def unescape_local_name(segment: str) -> str:
    """The inverse of :func:`escape_local_name` (an unknown escape is kept as it is)."""
    out, i = [], 0
    while i < len(segment):
        c = segment[i]
        if c == "." and i + 1 < len(segment):
            nxt = segment[i + 1]
            out.append("." if nxt == "." else "/" if nxt == "S" else c + nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def split_object_path(path: str) -> List[str]:
    """The local names of an escaped object path (``a/b..c`` -> ``["a", "b.c"]``)."""
    return [unescape_local_name(p) for p in path.split("/")]


def object_key(path: Union[str, Sequence[str]], attribute: str = VARIABLE_VALUE) -> str:
    """The checkpoint key of an object path: ``model/dense/kernel`` ->
    ``model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE`` (local names escaped)."""
    parts = path.split("/") if isinstance(path, str) else list(path)
    return "/".join(escape_local_name(p) for p in parts) + f"/{ATTRIBUTES}/{attribute}"


def parse_object_key(key: str) -> Optional[Tuple[str, str]]:
    """(escaped object path, attribute name) of an attribute key, or None for other keys."""
    m = _ATTRIBUTE_KEY_RE.match(key)
    return (m.group("path"), m.group("attr")) if m else None


def is_slot_key(key: str) -> bool:
    """Whether `key` is an optimizer slot's value (``.../.OPTIMIZER_SLOT/...``)."""
    return f"{OPTIMIZER_SLOT}/" in key


def parse_slot_key(key: str) -> Optional[Tuple[str, str, str, str]]:
    """(escaped variable path, escaped optimizer path, escaped slot name, attribute name) of
    an optimizer slot's attribute key, or None for other keys::

        parse_slot_key("w/.OPTIMIZER_SLOT/opt/m/.ATTRIBUTES/VARIABLE_VALUE")
        # ("w", "opt", "m", "VARIABLE_VALUE")
    """
    m = _SLOT_KEY_RE.match(key)
    return (m.group("var"), m.group("opt"), m.group("slot"), m.group("attr")) if m else None


def missing_key_hint(key: str, keys: Sequence[str]) -> str:
    """What to say after "key not found": the ``.ATTRIBUTES/VARIABLE_VALUE`` key when `key`
    is an object path as ``dump --tree`` shows it, else the closest keys, if any are
    close (``"; did you mean ..."``, or "" when nothing is)."""
    import difflib

    as_object = object_key(key)
    if as_object != key and as_object in keys:
        return f"; it is an object path: its value is the key {as_object}"
    near = difflib.get_close_matches(key, list(keys), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(near)}?" if near else ""
