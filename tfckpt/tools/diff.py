"""diff: what differs between two checkpoints, key by key and element by element."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..dtypes import BOOL, by_code
from ..entries import Entry
from ..errors import InvalidArgumentError
from ..keys import OBJECT_GRAPH_KEY
from ..reader import Reader
from ..slices import full_bounds
from . import _common
from ._common import Source, opened, shape_text

__all__ = ["diff", "DiffResult", "ValueChange"]


@dataclass
class ValueChange:
    """How the values of one key differ: `count` of `total` elements, the largest absolute
    difference and the largest relative one, ``|a-b| / max(|a|,|b|)`` (symmetric, so
    ``diff(a, b)`` and ``diff(b, a)`` agree). Strings and variants have no magnitudes (None);
    for bools the absolute difference is 1."""

    count: int
    total: int
    max_abs: Optional[float] = None
    max_rel: Optional[float] = None

    def describe(self) -> str:
        text = f"{self.count} of {self.total} elements differ"
        parts = []
        if self.max_abs is not None:
            parts.append(f"max abs {self.max_abs:.6g}")
        if self.max_rel is not None:
            parts.append(f"max rel {self.max_rel:.6g}")
        return text + (f" ({', '.join(parts)})" if parts else "")


@dataclass
class DiffResult:
    """What differs between checkpoints A and B (see :func:`diff`)."""

    a: str
    b: str
    only_a: List[str] = field(default_factory=list)
    only_b: List[str] = field(default_factory=list)
    dtype_changes: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    shape_changes: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=dict)
    value_changes: Dict[str, ValueChange] = field(default_factory=dict)
    #: Both are object-based and their object graphs differ (compared as parsed messages),
    #: or only one has an object graph (then it is also in only_a / only_b).
    object_graph_changed: bool = False
    compared: int = 0  # keys whose values were compared
    rtol: float = 0.0
    atol: float = 0.0

    @property
    def equal(self) -> bool:
        return not (
            self.only_a
            or self.only_b
            or self.dtype_changes
            or self.shape_changes
            or self.value_changes
            or self.object_graph_changed
        )

    def lines(self) -> List[str]:
        """One line per difference, in the order: keys only in A, only in B, dtype, shape,
        value changes, object graph."""
        out = [f"only in A: {k}" for k in self.only_a]
        out += [f"only in B: {k}" for k in self.only_b]
        out += [f"dtype: {k}: {a} -> {b}" for k, (a, b) in self.dtype_changes.items()]
        out += [
            f"shape: {k}: {shape_text(a)} -> {shape_text(b)}"
            for k, (a, b) in self.shape_changes.items()
        ]
        out += [f"value: {k}: {c.describe()}" for k, c in self.value_changes.items()]
        if self.object_graph_changed and OBJECT_GRAPH_KEY not in self.only_a + self.only_b:
            out.append(f"object graph: {OBJECT_GRAPH_KEY} differs")
        return out

    def verdict(self) -> str:
        if self.equal:
            tol = (
                f" within rtol={self.rtol:g} atol={self.atol:g}" if (self.rtol or self.atol) else ""
            )
            return f"equal: {self.compared} tensors compared{tol}"
        parts = []
        for n, what in (
            (len(self.only_a), "only in A"),
            (len(self.only_b), "only in B"),
            (len(self.dtype_changes), "dtype changed"),
            (len(self.shape_changes), "shape changed"),
            (len(self.value_changes), "values differ"),
        ):
            if n:
                parts.append(f"{n} {what}")
        if self.object_graph_changed and OBJECT_GRAPH_KEY not in self.only_a + self.only_b:
            parts.append("object graph differs")
        return f"different: {', '.join(parts)} ({self.compared} tensors compared)"

    def describe(self) -> str:
        return "\n".join(self.lines() + [self.verdict()])

    def to_json(self) -> dict:
        def num(x):
            if x is None or math.isfinite(x):
                return x
            return str(x)

        return {
            "a": self.a,
            "b": self.b,
            "equal": self.equal,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "dtype_changes": {k: {"a": a, "b": b} for k, (a, b) in self.dtype_changes.items()},
            "shape_changes": {
                k: {"a": list(a), "b": list(b)} for k, (a, b) in self.shape_changes.items()
            },
            "value_changes": {
                k: {
                    "count": c.count,
                    "total": c.total,
                    "max_abs": num(c.max_abs),
                    "max_rel": num(c.max_rel),
                }
                for k, c in self.value_changes.items()
            },
            "object_graph_changed": self.object_graph_changed,
            "compared": self.compared,
            "rtol": self.rtol,
            "atol": self.atol,
        }


def diff(
    a: Any,
    b: Any,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    progress: Optional[Callable[[int], None]] = None,
) -> DiffResult:
    """Compares checkpoints `a` and `b` key by key: keys only in one, dtype and shape
    changes, and per common key how many elements differ and by how much.

    The answer to "Key not found" or a shape mismatch on restore: diff the checkpoint
    against one freshly saved from the new model::

        d = tfckpt.diff("run/ckpt-9", "fresh/ckpt-1")
        print(d.describe())      # only in A: model/dense/kernel/..., shape: ...
        d.equal                  # False

    Floats (float16/32/64, bfloat16, float8, complex) are compared in float64 (complex128);
    NaN equals NaN. Two elements count as equal when ``|a-b| <= atol + rtol*max(|a|,|b|)``;
    the default (0, 0) is exact. Integers, bools and strings are always compared exactly.
    Partitioned tensors are compared as assembled values, whatever their slicing. The object
    graph (``_CHECKPOINTABLE_OBJECT_GRAPH``) is compared as a parsed message, not by value.
    Memory stays bounded: tensors are compared one at a time, in chunks along their first
    axis, so a 1 GiB tensor does not need 2 GiB. `progress(nbytes)` is called with the
    stored bytes of each key of `a` as it is done (for a progress line).
    """
    if rtol < 0 or atol < 0:
        raise InvalidArgumentError("rtol and atol must not be negative")
    with opened(a, b) as (ra, rb):
        res = DiffResult(a=ra.prefix, b=rb.prefix, rtol=float(rtol), atol=float(atol))
        ka, kb = set(ra.keys()), set(rb.keys())
        res.only_a = sorted(ka - kb)
        res.only_b = sorted(kb - ka)
        if (OBJECT_GRAPH_KEY in ka) != (OBJECT_GRAPH_KEY in kb):
            res.object_graph_changed = True
        for key in sorted(ka & kb):
            if progress is not None:
                progress(ra.stored_size(key))
            if key == OBJECT_GRAPH_KEY:
                res.object_graph_changed = _graphs_differ(ra, rb)
                continue
            ea, eb = ra.entry(key), rb.entry(key)
            if ea.dtype_code != eb.dtype_code:
                res.dtype_changes[key] = (ea.dtype_name, eb.dtype_name)
            if tuple(ea.shape) != tuple(eb.shape):
                res.shape_changes[key] = (tuple(ea.shape), tuple(eb.shape))
            if key in res.dtype_changes or key in res.shape_changes:
                continue
            res.compared += 1
            change = _compare_values(ra, rb, key, ea, rtol, atol)
            if change is not None:
                res.value_changes[key] = change
        return res


def _graphs_differ(ra: Reader, rb: Reader) -> bool:
    from ..proto import TrackableObjectGraph

    ga, gb = ra.read(OBJECT_GRAPH_KEY).item(), rb.read(OBJECT_GRAPH_KEY).item()
    if ga == gb:
        return False
    ma, mb = TrackableObjectGraph(), TrackableObjectGraph()
    try:
        ma.ParseFromString(ga)
        mb.ParseFromString(gb)
    except Exception:
        return True
    return ma != mb


def _compare_values(
    ra: Reader, rb: Reader, key: str, e: Entry, rtol: float, atol: float
) -> Optional[ValueChange]:
    import numpy as np

    kind = by_code(e.dtype_code).kind
    total = e.num_elements
    if kind in ("string", "variant"):
        if kind == "string":
            x, y = ra.read(key).reshape(-1).tolist(), rb.read(key).reshape(-1).tolist()
        else:
            x, y = _variant_items(ra, key), _variant_items(rb, key)
        n = sum(1 for p, q in zip(x, y) if p != q)
        return ValueChange(n, total) if n else None
    ca, cb = Source(ra, key), Source(rb, key)
    count, max_abs, max_rel = 0, 0.0, 0.0
    for bounds in _common.chunks(full_bounds(e.shape)):
        x = ca.region(bounds).reshape(-1)
        y = cb.region(bounds).reshape(-1)
        if kind in ("float", "complex"):
            n, m_abs, m_rel = _compare_floats(x, y, kind == "complex", rtol, atol)
        elif e.dtype_code == BOOL:
            n = int(np.count_nonzero(x != y))
            m_abs, m_rel = (1.0 if n else 0.0), (1.0 if n else 0.0)
        else:
            n, m_abs, m_rel = _compare_ints(x, y)
        count += n
        max_abs = _nanmax2(max_abs, m_abs)
        max_rel = _nanmax2(max_rel, m_rel)
    if not count:
        return None
    return ValueChange(count, total, max_abs, max_rel)


def _nanmax2(p: float, q: float) -> float:
    if math.isnan(p):
        return p
    if math.isnan(q):
        return q
    return max(p, q)


def _compare_floats(
    x: Any, y: Any, is_complex: bool, rtol: float, atol: float
) -> Tuple[int, float, float]:
    """(differing elements, max abs difference, max rel difference) of two float chunks."""
    import numpy as np

    if is_complex:
        x = x.astype(np.complex128)
        y = y.astype(np.complex128)
        nan_x = np.isnan(x.real) | np.isnan(x.imag)
        nan_y = np.isnan(y.real) | np.isnan(y.imag)
        # NaN parts equal NaN parts, component by component.
        same = ((x.real == y.real) | (np.isnan(x.real) & np.isnan(y.real))) & (
            (x.imag == y.imag) | (np.isnan(x.imag) & np.isnan(y.imag))
        )
    else:
        x = x.astype(np.float64)
        y = y.astype(np.float64)
        nan_x, nan_y = np.isnan(x), np.isnan(y)
        same = (x == y) | (nan_x & nan_y)
    if same.all():
        return 0, 0.0, 0.0
    idx = ~same
    dx, dy = x[idx], y[idx]
    with np.errstate(all="ignore"):
        d = np.abs(dx - dy)
        scale = np.maximum(np.abs(dx), np.abs(dy))
        if rtol or atol:
            # An infinity is close only to itself (equal elements never get here).
            close = (d <= atol + rtol * scale) & np.isfinite(d)
            n = int(np.count_nonzero(~close))
        else:
            n = int(d.size)
        # A NaN against a number differs by NaN, reported as such; an infinity against a
        # finite number differs by inf, relatively by 1 (by 2 against the other infinity).
        one_nan = nan_x[idx] != nan_y[idx]
        finite = np.isfinite(d)
        rel = np.ones_like(d, dtype=np.float64)
        np.divide(d, scale, out=rel, where=finite & (scale > 0))
        if not is_complex:
            rel[~finite & (np.sign(dx) == -np.sign(dy))] = 2.0
        m_abs = float("nan") if one_nan.any() else float(d.max())
        m_rel = float("nan") if one_nan.any() else float(rel.max())
    return n, m_abs, m_rel


def _compare_ints(x: Any, y: Any) -> Tuple[int, float, float]:
    """The same for integers, exact even for 64-bit values."""
    import numpy as np

    idx = x != y
    n = int(np.count_nonzero(idx))
    if not n:
        return 0, 0.0, 0.0
    dx, dy = x[idx], y[idx]
    if dx.dtype.itemsize <= 4 or dx.dtype.kind not in "iu":
        ix, iy = dx.astype(np.int64), dy.astype(np.int64)
        d = np.abs(ix - iy)
        scale = np.maximum(np.abs(ix), np.abs(iy))
        return n, float(d.max()), float((d / scale).max())
    # 64-bit integers: exact differences as Python ints.
    best_abs, best_rel = 0, 0.0
    for p, q in zip(dx.tolist(), dy.tolist()):
        d = abs(p - q)
        best_abs = max(best_abs, d)
        best_rel = max(best_rel, d / max(abs(p), abs(q)))
    return n, float(best_abs), best_rel


def _variant_items(reader: Reader, key: str) -> List[bytes]:
    """The elements of variant tensor `key`, comparable as bytes."""
    e = reader.entry(key)
    if e.slices:  # TensorFlow never partitions variants; compare the decoded values
        return [repr(v).encode() for v in reader.read(key).reshape(-1).tolist()]
    return reader.variant_payloads(key)
