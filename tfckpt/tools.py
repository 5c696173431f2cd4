"""Whole-checkpoint tools: diff, average, migrate name-based keys, convert to and from
``.npz`` and ``.safetensors``, and format V1 checkpoints to V2.

Every tool streams tensor by tensor (large tensors in chunks along their first axis) and
copies bytes it does not change without decoding them, as :func:`tfckpt.edit` does.

::

    tfckpt.diff("old/ckpt-9", "fresh/ckpt-1")            # why "Key not found"?
    tfckpt.average(["r/ckpt-8", "r/ckpt-9", "r/ckpt-10"], "avg/ckpt-10")
    tfckpt.migrate("tf1/model.ckpt-500", like="tf2/ckpt-1", out="migrated/ckpt-1")
    tfckpt.to_safetensors("run/ckpt-9", "weights.safetensors")
    tfckpt.from_npz("weights.npz", "port/ckpt-1", object_graph=True)
    tfckpt.tools.to_v2("old/model.ckpt-?????-of-00004", "new/model.ckpt")  # V1 -> V2
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import struct
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .dtypes import by_code, by_name, numpy_dtype
from .errors import CheckpointError, CorruptCheckpointError, InvalidArgumentError
from .keys import OBJECT_GRAPH_KEY
from .reader import Entry, Reader

__all__ = [
    "diff", "DiffResult", "ValueChange",
    "average",
    "migrate", "MigrationReport",
    "optimizer_keys",
    "to_npz", "from_npz", "to_safetensors", "from_safetensors", "ConversionReport",
    "to_v2",
]

#: Elements compared or averaged per step; bounds the float64 temporaries (32 MiB each).
_CHUNK_ELEMENTS = 1 << 22

#: Dtypes averaged in float64 (real) or complex128 (complex) and cast back.
_FLOAT_CODES = frozenset({1, 2, 14, 19, 24, 25, 26, 27, 28, 33})
_COMPLEX_CODES = frozenset({8, 18})
_STRING, _VARIANT = 7, 21
#: Dtypes TensorFlow cannot assemble from slices ("Dtype half not supported.", FORMAT.md 6).
_TF_CANNOT_ASSEMBLE = frozenset({19, 17, 7})


def _np():
    import numpy as np

    return np


@contextlib.contextmanager
def _opened(*sources):
    """Readers for paths (closed afterwards) or Reader objects (left open)."""
    readers, owned = [], []
    try:
        for s in sources:
            if isinstance(s, Reader):
                readers.append(s)
            else:
                r = Reader(s)
                owned.append(r)
                readers.append(r)
        yield readers
    finally:
        for r in owned:
            r.close()


def _shape_text(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _slice_entry(reader: Reader, entry: Entry, s) -> Entry:
    return reader.slice_entry(entry.key, s)


def _stored_size(reader: Reader, key: str) -> int:
    """Bytes `key` takes in the data files (all slices of a partitioned tensor)."""
    e = reader.entry(key)
    if not e.slices:
        return e.size
    return sum(_slice_entry(reader, e, s).size for s in e.slices)


def _copy_entry(w, reader: Reader, key: str, new_key: Optional[str] = None) -> None:
    """Copies `key` of `reader` byte for byte (every slice of a partitioned tensor) into
    Writer `w` under `new_key`; CRCs are re-checked on the way."""
    w.copy(reader, key, as_=new_key)


def _file_order(reader: Reader):
    """Sort key: sequential reads of the source shards."""
    def location(k):
        e = reader.entry(k)
        return (e.shard_id, e.offset) if not e.slices else (-1, 0)
    return location


def _verify_slices(reader: Reader, e: Entry) -> None:
    """Checks the CRC of every stored slice of a partitioned tensor without assembling it."""
    for s in e.slices:
        reader.verify_entry(_slice_entry(reader, e, s))


class _Source:
    """One tensor of one checkpoint, read region by region: a whole tensor through its
    memory-mapped view (its CRC checked once), a partitioned one slice by slice (each
    stored slice's CRC checked once), so no region needs the whole tensor in memory."""

    def __init__(self, reader: Reader, key: str, verify: bool = True) -> None:
        self.reader, self.key = reader, key
        e = reader.entry(key)
        if e.slices:
            if verify:
                _verify_slices(reader, e)
            self.whole = None
        else:
            self.whole = reader.read(key, verify=verify)

    def region(self, bounds: Tuple[Tuple[int, int], ...]):
        """The values in per-dimension [start, stop) `bounds`."""
        index = tuple(slice(lo, hi) for lo, hi in bounds)
        if self.whole is not None:
            return _np().asarray(self.whole[index])
        return self.reader.read_slice(self.key, index)


def _chunks(bounds: Tuple[Tuple[int, int], ...]) -> Iterator[Tuple[Tuple[int, int], ...]]:
    """`bounds` cut along the first axis into pieces of about _CHUNK_ELEMENTS elements."""
    if not bounds:
        yield bounds
        return
    (lo, hi), rest = bounds[0], bounds[1:]
    per_row = 1
    for a, b in rest:
        per_row *= b - a
    step = max(1, _CHUNK_ELEMENTS // max(per_row, 1))
    if hi <= lo:
        yield bounds
        return
    for start in range(lo, hi, step):
        yield ((start, min(hi, start + step)),) + rest


def _full(shape: Sequence[int]) -> Tuple[Tuple[int, int], ...]:
    return tuple((0, d) for d in shape)


def _dtype_arg(arr, code: int) -> Optional[str]:
    """The dtype name to pass to Writer.add for `arr` to be written as DataType `code`, or
    None when the array's own dtype says so (then the Writer makes no converted copy)."""
    from .writer import dtype_code_of

    try:
        if dtype_code_of(arr) == code:
            return None
    except InvalidArgumentError:
        pass
    return by_code(code).name


# ==========================================================================================
# diff


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
        return not (self.only_a or self.only_b or self.dtype_changes or self.shape_changes
                    or self.value_changes or self.object_graph_changed)

    def lines(self) -> List[str]:
        """One line per difference, in the order: keys only in A, only in B, dtype, shape,
        value changes, object graph."""
        out = [f"only in A: {k}" for k in self.only_a]
        out += [f"only in B: {k}" for k in self.only_b]
        out += [f"dtype: {k}: {a} -> {b}" for k, (a, b) in self.dtype_changes.items()]
        out += [f"shape: {k}: {_shape_text(a)} -> {_shape_text(b)}"
                for k, (a, b) in self.shape_changes.items()]
        out += [f"value: {k}: {c.describe()}" for k, c in self.value_changes.items()]
        if self.object_graph_changed and OBJECT_GRAPH_KEY not in self.only_a + self.only_b:
            out.append(f"object graph: {OBJECT_GRAPH_KEY} differs")
        return out

    def verdict(self) -> str:
        if self.equal:
            tol = f" within rtol={self.rtol:g} atol={self.atol:g}" if (self.rtol or self.atol) \
                else ""
            return f"equal: {self.compared} tensors compared{tol}"
        parts = []
        for n, what in ((len(self.only_a), "only in A"), (len(self.only_b), "only in B"),
                        (len(self.dtype_changes), "dtype changed"),
                        (len(self.shape_changes), "shape changed"),
                        (len(self.value_changes), "values differ")):
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
            "a": self.a, "b": self.b, "equal": self.equal,
            "only_a": self.only_a, "only_b": self.only_b,
            "dtype_changes": {k: {"a": a, "b": b} for k, (a, b) in self.dtype_changes.items()},
            "shape_changes": {k: {"a": list(a), "b": list(b)}
                              for k, (a, b) in self.shape_changes.items()},
            "value_changes": {k: {"count": c.count, "total": c.total,
                                  "max_abs": num(c.max_abs), "max_rel": num(c.max_rel)}
                              for k, c in self.value_changes.items()},
            "object_graph_changed": self.object_graph_changed,
            "compared": self.compared, "rtol": self.rtol, "atol": self.atol,
        }


def diff(a, b, *, rtol: float = 0.0, atol: float = 0.0) -> DiffResult:
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
    axis, so a 1 GiB tensor does not need 2 GiB.
    """
    if rtol < 0 or atol < 0:
        raise InvalidArgumentError("rtol and atol must not be negative")
    with _opened(a, b) as (ra, rb):
        res = DiffResult(a=ra.prefix, b=rb.prefix, rtol=float(rtol), atol=float(atol))
        ka, kb = set(ra.keys()), set(rb.keys())
        res.only_a = sorted(ka - kb)
        res.only_b = sorted(kb - ka)
        if (OBJECT_GRAPH_KEY in ka) != (OBJECT_GRAPH_KEY in kb):
            res.object_graph_changed = True
        for key in sorted(ka & kb):
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
    from .proto import TrackableObjectGraph

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


def _compare_values(ra: Reader, rb: Reader, key: str, e: Entry, rtol: float,
                    atol: float) -> Optional[ValueChange]:
    np = _np()
    code = e.dtype_code
    total = e.num_elements
    if code == _STRING:
        x, y = ra.read(key).reshape(-1), rb.read(key).reshape(-1)
        n = int(sum(1 for p, q in zip(x.tolist(), y.tolist()) if p != q))
        return ValueChange(n, total) if n else None
    if code == _VARIANT:
        x, y = _variant_items(ra, key), _variant_items(rb, key)
        n = sum(1 for p, q in zip(x, y) if p != q)
        return ValueChange(n, total) if n else None
    ca, cb = _Source(ra, key), _Source(rb, key)
    count, max_abs, max_rel = 0, 0.0, 0.0
    for bounds in _chunks(_full(e.shape)):
        x = ca.region(bounds).reshape(-1)
        y = cb.region(bounds).reshape(-1)
        if code in _FLOAT_CODES or code in _COMPLEX_CODES:
            n, m_abs, m_rel = _compare_floats(x, y, code in _COMPLEX_CODES, rtol, atol)
        elif code == 10:
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


def _compare_floats(x, y, is_complex: bool, rtol: float, atol: float):
    np = _np()
    if is_complex:
        x = x.astype(np.complex128)
        y = y.astype(np.complex128)
        nan_x = np.isnan(x.real) | np.isnan(x.imag)
        nan_y = np.isnan(y.real) | np.isnan(y.imag)
        # NaN parts equal NaN parts, component by component.
        same = (((x.real == y.real) | (np.isnan(x.real) & np.isnan(y.real)))
                & ((x.imag == y.imag) | (np.isnan(x.imag) & np.isnan(y.imag))))
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


def _compare_ints(x, y):
    np = _np()
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
    e = reader.entry(key)
    if e.slices:  # TensorFlow never partitions variants; compare the decoded values
        return [repr(v).encode() for v in reader.read(key).reshape(-1).tolist()]
    return reader.variant_payloads(key)


# ==========================================================================================
# average


def average(paths: Sequence, out, **write_kwargs) -> str:
    """Writes the element-wise mean of several checkpoints of one model to `out`.

    ::

        tfckpt.average(["run/ckpt-8", "run/ckpt-9", "run/ckpt-10"], "avg/ckpt-10")

    Float tensors (float16/32/64, bfloat16, float8, complex) are summed in float64
    (complex128 for complex) in the order given, divided by their number and cast back, as
    ``np.mean(np.stack(values).astype(np.float64), axis=0).astype(dtype)``. Every other
    tensor (integers such as ``save_counter`` and optimizer iterations, strings, the object
    graph) is copied byte for byte from the LAST checkpoint. Every input must have the same
    keys, dtypes and shapes. A partitioned tensor is averaged as assembled values and written
    with the slices of the last input. `write_kwargs` go to :class:`tfckpt.Writer`
    (``overwrite``, ``max_shard_bytes``, ``update_state``). Returns the prefix written.
    """
    from .writer import Writer

    np = _np()
    paths = list(paths)
    if not paths:
        raise InvalidArgumentError("average needs at least one checkpoint")
    with _opened(*paths) as readers:
        last = readers[-1]
        keys = last.keys()
        _check_same_layout(readers, keys)
        n = len(readers)
        with Writer(out, **write_kwargs) as w:
            for key in sorted(keys, key=_file_order(last)):
                e = last.entry(key)
                code = e.dtype_code
                if key == OBJECT_GRAPH_KEY or (code not in _FLOAT_CODES
                                               and code not in _COMPLEX_CODES):
                    _copy_entry(w, last, key)
                    continue
                acc_dtype = np.complex128 if code in _COMPLEX_CODES else np.float64
                out_dtype = numpy_dtype(code)
                sources = [_Source(r, key) for r in readers]
                # A partitioned tensor is written with the last input's slices (their specs
                # as stored, so the slice keys stay the same); each region is averaged in
                # chunks, so only the region being written is held whole.
                regions = [(s.spec, s.bounds(e.shape)) for s in e.slices] if e.slices \
                    else [(None, _full(e.shape))]
                for spec, region in regions:
                    result = np.empty(tuple(hi - lo for lo, hi in region), dtype=out_dtype)
                    for sub in _chunks(region):
                        acc = np.array(sources[0].region(sub), dtype=acc_dtype)
                        for src in sources[1:]:
                            acc += np.asarray(src.region(sub), dtype=acc_dtype)
                        acc /= n
                        at = tuple(slice(a - r0, b - r0) for (a, b), (r0, _) in zip(sub, region))
                        result[at] = acc.astype(out_dtype)
                    if spec is None:
                        w.add(key, result, dtype=_dtype_arg(result, code))
                    else:
                        w.add_slice(key, e.shape, spec, result, dtype=_dtype_arg(result, code))
    return os.fspath(out)


def _check_same_layout(readers: Sequence[Reader], keys: Sequence[str]) -> None:
    last = readers[-1]
    want = set(keys)
    for r in readers[:-1]:
        have = set(r.keys())
        if have != want:
            missing = sorted(want - have)
            extra = sorted(have - want)
            what = (f"lacks key {missing[0]}" if missing else f"has key {extra[0]}")
            raise InvalidArgumentError(
                f"cannot average: {r.prefix} {what}, which {last.prefix} (the last "
                f"checkpoint) {'has' if missing else 'lacks'}; all checkpoints must hold the "
                f"same keys ({len(missing)} missing, {len(extra)} extra)")
    for key in sorted(keys):
        el = last.entry(key)
        for r in readers[:-1]:
            e = r.entry(key)
            if e.dtype_code != el.dtype_code or tuple(e.shape) != tuple(el.shape):
                raise InvalidArgumentError(
                    f"cannot average: key {key} is {e.dtype_name}{_shape_text(e.shape)} in "
                    f"{r.prefix} but {el.dtype_name}{_shape_text(el.shape)} in {last.prefix}")


# ==========================================================================================
# optimizer state


_TF1_SLOT_RE = re.compile(
    r"^(Adam|Adam_1|AdamW|AdamW_1|Adagrad|AdagradDA|AdagradDA_1|Adadelta|Adadelta_1|"
    r"Momentum|RMSProp|RMSProp_1|Ftrl|Ftrl_1|ProximalAdagrad|LazyAdam|LazyAdam_1|"
    r"ExponentialMovingAverage_optimizer)$")
_TF1_OPTIMIZER_KEYS = re.compile(r"^(.*/)?(beta1_power|beta2_power)$")
_OPTIMIZER_NAME_RE = re.compile(r"optimi[sz]er|^opt$", re.IGNORECASE)
_OPTIMIZER_CHILDREN = ({"_iterations", "_variables"}, {"iter"}, {"iterations"})


def optimizer_keys(ckpt) -> List[str]:
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
    with _opened(ckpt) as (reader,):
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
        model_keys = set()
        for n in nodes:
            if n.id in reached and n.slot_of is None:
                model_keys.update(a.checkpoint_key for a in n.attributes)
        return sorted(k for k in keys if k not in model_keys
                      and (".OPTIMIZER_SLOT/" in k or graph.nodes_for_key(k)))


def _tf1_optimizer_keys(reader: Reader, keys: Sequence[str]) -> List[str]:
    keyset = set(keys)
    out = []
    for k in keys:
        if _TF1_OPTIMIZER_KEYS.match(k) or ".OPTIMIZER_SLOT/" in k:
            out.append(k)
            continue
        var, sep, slot = k.rpartition("/")
        if sep and var in keyset and _TF1_SLOT_RE.match(slot) and \
                tuple(reader.entry(var).shape) == tuple(reader.entry(k).shape):
            out.append(k)
    return sorted(out)


# ==========================================================================================
# migrate


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


def migrate(old, like, out, *, name_map: Optional[Mapping[str, str]] = None,
            strict: bool = False, fill_from_like: bool = True, dry_run: bool = False,
            **write_kwargs) -> MigrationReport:
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
    from .writer import Writer

    name_map = dict(name_map or {})
    with _opened(old, like) as (ro, rl):
        graph = rl.object_graph
        if graph is None:
            raise InvalidArgumentError(
                f"{rl.prefix} has no object graph ({OBJECT_GRAPH_KEY}): 'like' must be an "
                "object-based checkpoint of the new model, e.g. from "
                "tf.train.Checkpoint(model=model).write(path)")
        report = MigrationReport(old=ro.prefix, like=rl.prefix, out=os.fspath(out),
                                 filled_from_like=fill_from_like)
        old_keys = [k for k in ro.keys() if k != OBJECT_GRAPH_KEY]
        old_set = set(old_keys)
        new_keys = [k for k in rl.keys() if k != OBJECT_GRAPH_KEY]
        new_set = set(new_keys)
        for o, n in list(name_map.items()):
            if o not in old_set:
                raise InvalidArgumentError(f"name_map: {o} is not a key of {ro.prefix}")
            if n not in new_set:
                from .writer import object_key

                if object_key(n) not in new_set:  # an object path: model/dense/kernel
                    raise InvalidArgumentError(f"name_map: {n} is not a key of {rl.prefix}")
                name_map[o] = object_key(n)

        # Old values by name: the key itself, or for an object-based old checkpoint the
        # variable names its graph records.
        old_by_name: Dict[str, str] = {k: k for k in old_keys}
        old_graph = ro.object_graph
        if old_graph is not None:
            names: Dict[str, List[str]] = {}
            for n in old_graph.nodes:
                for a in n.attributes:
                    if a.full_name and a.checkpoint_key in old_set:
                        names.setdefault(a.full_name, [])
                        if a.checkpoint_key not in names[a.full_name]:
                            names[a.full_name].append(a.checkpoint_key)
            for name, ks in names.items():
                if len(ks) == 1:
                    old_by_name.setdefault(name, ks[0])

        # New keys by the variable name their graph records.
        new_names: Dict[str, List[str]] = {}
        for n in graph.nodes:
            for a in n.attributes:
                if a.full_name and a.checkpoint_key in new_set:
                    lst = new_names.setdefault(a.full_name, [])
                    if a.checkpoint_key not in lst:
                        lst.append(a.checkpoint_key)
        source: Dict[str, str] = {}
        for name, ks in new_names.items():
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
            eo, en = ro.entry(src), rl.entry(key)
            if eo.dtype_code != en.dtype_code or tuple(eo.shape) != tuple(en.shape):
                report.mismatched[key] = (
                    f"old {src} is {eo.dtype_name}{_shape_text(eo.shape)}, the new model's "
                    f"variable is {en.dtype_name}{_shape_text(en.shape)}")
                used.add(src)
                continue
            report.mapped[key] = src
            used.add(src)
        report.unmapped_old = sorted(k for k in old_keys if k not in used)
        report.unfilled = sorted(k for k in new_keys
                                 if k not in report.mapped)
        if strict and not report.complete:
            raise InvalidArgumentError(
                "migration is incomplete (strict):\n" + report.describe())
        if dry_run:
            return report

        written = set(report.mapped)
        if fill_from_like:
            written.update(report.unfilled)
        left_out = set(new_keys) - written
        with Writer(out, **write_kwargs) as w:
            for key in sorted(report.mapped, key=lambda k: _file_order(ro)(report.mapped[k])):
                src = report.mapped[key]
                eo = ro.entry(src)
                if eo.slices and eo.dtype_code in _TF_CANNOT_ASSEMBLE \
                        and not rl.entry(key).slices:
                    w.add(key, ro.read(src), dtype=eo.dtype_name)
                else:
                    _copy_entry(w, ro, src, key)
            if fill_from_like:
                for key in sorted(report.unfilled, key=_file_order(rl)):
                    _copy_entry(w, rl, key)
            if left_out:
                from .editing import _edit_graph

                w.add(OBJECT_GRAPH_KEY, _edit_graph(rl, left_out, {k: k for k in written}, {}))
            else:
                _copy_entry(w, rl, OBJECT_GRAPH_KEY)
        return report


# ==========================================================================================
# conversion: .npz and .safetensors


@dataclass
class ConversionReport:
    """What a conversion wrote, and what it skipped and why."""

    src: str
    dst: str
    written: List[str] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"skipped {k}: {why}" for k, why in self.skipped.items()]
        lines.append(f"# {len(self.written)} tensors written to {self.dst}, "
                     f"{len(self.skipped)} skipped")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def _atomic_file(path, overwrite: bool):
    """A temporary file beside `path`, renamed onto it when the block ends without error."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise CheckpointError(f"{path} exists; pass overwrite=True to replace it")
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{uuid.uuid4().hex}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _unsupported(report: ConversionReport, problems: Dict[str, str], what: str,
                 skip_unsupported: bool) -> None:
    if not problems:
        return
    if not skip_unsupported:
        listing = "\n".join(f"  {k}: {why}" for k, why in problems.items())
        raise InvalidArgumentError(
            f"{len(problems)} tensors cannot be stored in {what}:\n{listing}\n"
            "pass skip_unsupported=True (--skip-unsupported) to convert the rest")
    report.skipped.update(problems)


# -- format V1 -> V2 -----------------------------------------------------------------------

def to_v2(ckpt, out, **write_kwargs) -> ConversionReport:
    """Writes checkpoint `ckpt` as a format V2 bundle at prefix `out`; meant for format V1
    checkpoints (a V1 file, a sharded pattern such as ``model.ckpt-?????-of-00003``, a
    directory naming one), and takes any checkpoint :func:`tfckpt.open` reads.

    Keys and dtypes are kept, and partitioned tensors stay partitioned with the same slices
    (same extents, so the same slice keys TensorFlow's V2 saver writes): a
    ``tf.compat.v1.train.Saver`` restores the result into the graph that wrote the V1 file.
    Slices are read one at a time. `write_kwargs` go to :class:`tfckpt.Writer` (e.g.
    ``overwrite=True``, ``max_shard_bytes``).
    """
    from .reader import open as open_checkpoint
    from .writer import Writer

    reader = ckpt if hasattr(ckpt, "listing") else open_checkpoint(ckpt)
    try:
        report = ConversionReport(src=reader.prefix, dst=os.fspath(out))
        with Writer(out, **write_kwargs) as w:
            for key in reader.keys():
                e = reader.entry(key)
                if not e.slices:
                    value = reader.read(key)
                    w.add(key, value, dtype=_dtype_arg(value, e.dtype_code))
                else:
                    for s in e.slices:
                        part = reader.read_slice(key, s.spec)
                        w.add_slice(key, e.shape, s.spec, part,
                                    dtype=_dtype_arg(part, e.dtype_code))
                report.written.append(key)
    finally:
        if reader is not ckpt:
            reader.close()
    return report


# -- npz ----------------------------------------------------------------------------------

_NPZ_MANIFEST = "__tfckpt__"
_NPZ_LENGTHS = "__tfckpt__/lengths/"
_NPZ_FORMAT = "tfckpt-npz"


def _npz_storage(code: int):
    """How a dtype is stored in .npz: (numpy dtype stored, needs a manifest entry) or None.
    numpy's .npy has no bfloat16/float8/int4 (np.save writes them as opaque '|V2' void):
    they are stored as the unsigned integers of their bytes, and the manifest says what
    they are. Quantized types are stored as their integer base type."""
    np = _np()
    d = by_code(code)
    if d.numpy is None or code == _VARIANT:
        return None
    if d.numpy.startswith("ml:"):
        return np.dtype(f"u{numpy_dtype(code).itemsize}"), True
    if d.numpy.startswith("q:"):
        return numpy_dtype(code), True
    if code == _STRING:
        return np.dtype("S"), False
    return numpy_dtype(code), False


def to_npz(ckpt, path, *, compressed: bool = False, object_graph: bool = False,
           skip_unsupported: bool = False, overwrite: bool = False) -> ConversionReport:
    """Writes every tensor of checkpoint `ckpt` into a ``.npz`` file, one array per key
    (partitioned tensors assembled), readable with ``np.load(path)`` (no pickles).

    numpy cannot hold everything a checkpoint can, so:

    * strings are stored as fixed-width bytes arrays (numpy ``S``, padded to the longest
      element); numpy drops trailing NUL bytes from ``S`` elements, so for a tensor with
      such elements the exact lengths are stored beside it (``__tfckpt__/lengths/<key>``);
    * bfloat16, float8, int4/uint4/int2/uint2 and float4 arrays are stored as the unsigned
      integers of their bytes (``view(ml_dtypes.bfloat16)`` gives them back), quantized types
      as their integer base type;
    * the entry ``__tfckpt__`` (a bytes scalar of JSON) records each such key's TensorFlow
      dtype, so :func:`from_npz` writes back exactly what was read;
    * variants cannot be stored: an error lists them, or with `skip_unsupported` they are
      skipped and the report says so.

    The object graph is left out unless `object_graph`. Arrays are written one at a time.
    """
    np = _np()
    with _opened(ckpt) as (reader,):
        report = ConversionReport(src=reader.prefix, dst=os.fspath(path))
        keys = [k for k in reader.keys() if object_graph or k != OBJECT_GRAPH_KEY]
        problems = {}
        for k in keys:
            if k.startswith(_NPZ_MANIFEST):
                problems[k] = f"the name {_NPZ_MANIFEST} is reserved for tfckpt's manifest"
            elif _npz_storage(reader.entry(k).dtype_code) is None:
                problems[k] = f"dtype {reader.entry(k).dtype_name} has no numpy equivalent"
        _unsupported(report, problems, ".npz", skip_unsupported)
        manifest = {"format": _NPZ_FORMAT, "version": 1, "dtypes": {}, "string_lengths": []}
        mode = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
        with _atomic_file(path, overwrite) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=mode, allowZip64=True) as zf:
                for k in keys:
                    if k in problems:
                        continue
                    e = reader.entry(k)
                    stored, noted = _npz_storage(e.dtype_code)
                    value = reader.read(k)
                    if e.dtype_code == _STRING:
                        items = value.reshape(-1).tolist()
                        arr = np.array(items, dtype="S").reshape(value.shape) if items else \
                            np.zeros(value.shape, dtype="S1")
                        if any(x.endswith(b"\x00") for x in items):
                            lengths = np.array([len(x) for x in items], dtype=np.int64)
                            _zip_array(zf, _NPZ_LENGTHS + k, lengths.reshape(value.shape))
                            manifest["string_lengths"].append(k)
                    elif stored != value.dtype:
                        arr = value.view(stored) if stored.itemsize == value.dtype.itemsize \
                            else value.astype(stored)
                    else:
                        arr = value
                    if noted:
                        manifest["dtypes"][k] = e.dtype_name
                    _zip_array(zf, k, arr)
                    report.written.append(k)
                _zip_array(zf, _NPZ_MANIFEST, np.array(json.dumps(manifest).encode()))
    return report


def _zip_array(zf: zipfile.ZipFile, name: str, arr) -> None:
    np = _np()
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, arr, allow_pickle=False)


def from_npz(path, out, *, object_graph: bool = False, skip_unsupported: bool = False,
             **write_kwargs) -> ConversionReport:
    """Writes the arrays of a ``.npz`` file as a checkpoint at prefix `out`.

    Reads any ``.npz`` of plain numpy arrays (``np.savez``), and exactly undoes
    :func:`to_npz` (dtypes from its manifest, trailing NULs of strings). Names are written
    as given, unless `object_graph`: then names are object paths (``model/dense/kernel``,
    local names separated by ``/``) and an object graph is built so that
    ``tf.train.Checkpoint(model=...).restore(out)`` finds them, as
    ``tfckpt.write(..., object_graph=True)`` does; names already in key form
    (``.../.ATTRIBUTES/VARIABLE_VALUE``, ``.../.OPTIMIZER_SLOT/...``) are understood.
    Arrays numpy cannot describe without pickles (object arrays, void) are refused, or
    skipped with `skip_unsupported`. Arrays are read one at a time. `write_kwargs` go to
    :class:`tfckpt.Writer`.
    """
    np = _np()
    report = ConversionReport(src=os.fspath(path), dst=os.fspath(out))
    with np.load(os.fspath(path), allow_pickle=False) as npz:
        names = list(npz.files)
        manifest = {}
        if _NPZ_MANIFEST in names:
            try:
                manifest = json.loads(npz[_NPZ_MANIFEST].item().decode("utf-8"))
            except Exception as e:
                raise InvalidArgumentError(f"{path}: bad {_NPZ_MANIFEST} entry: {e}") from None
            if not isinstance(manifest, dict) or manifest.get("format") != _NPZ_FORMAT:
                raise InvalidArgumentError(f"{path}: {_NPZ_MANIFEST} is not a tfckpt manifest")
        tf_dtypes = dict(manifest.get("dtypes", {}))
        with_lengths = set(manifest.get("string_lengths", []))
        keys = [n for n in names if not n.startswith(_NPZ_MANIFEST)]
        problems = {}
        for name in keys:
            dt = _npz_member_dtype(npz, name)
            if name in tf_dtypes:
                try:
                    by_name(tf_dtypes[name])
                except ValueError as e:
                    problems[name] = str(e)
            elif dt.kind in "OV" or dt.byteorder == ">" or dt.kind == "M" or dt.kind == "m":
                problems[name] = f"numpy dtype {dt} has no TensorFlow equivalent"
        _unsupported(report, problems, "a checkpoint", skip_unsupported)
        keys = [n for n in keys if n not in problems]

        def convert(name, arr):
            if name in tf_dtypes:
                d = by_name(tf_dtypes[name])
                target = numpy_dtype(d.code)
                if d.numpy.startswith("ml:") and arr.dtype.itemsize == target.itemsize \
                        and arr.dtype.kind == "u":
                    arr = arr.view(target)
                return arr, d.name
            if arr.dtype.kind == "S":
                items = arr.reshape(-1).tolist()
                if name in with_lengths:
                    lengths = npz[_NPZ_LENGTHS + name].reshape(-1).tolist()
                    items = [x.ljust(n, b"\x00") for x, n in zip(items, lengths)]
                value = np.empty(len(items), dtype=object)
                value[:] = items
                return value.reshape(arr.shape), "string"
            if arr.dtype.kind == "U":
                value = np.empty(arr.size, dtype=object)
                value[:] = [x.encode("utf-8") for x in arr.reshape(-1).tolist()]
                return value.reshape(arr.shape), "string"
            return arr, None

        def values():
            for name in keys:
                arr, dtype = convert(name, npz[name])
                yield name, arr, dtype

        _write_stream(values(), keys, out, object_graph, report, write_kwargs)
    return report


def _npz_member_dtype(npz, name: str):
    """The dtype of one array of an open NpzFile, from its .npy header alone."""
    np = _np()
    member = name if name in npz.zip.namelist() else name + ".npy"
    with npz.zip.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            _, _, dtype = np.lib.format.read_array_header_2_0(f)
    return dtype


def _write_stream(values, names: Sequence[str], out, object_graph: bool,
                  report: ConversionReport, write_kwargs) -> None:
    """Writes (name, array, tf dtype name or None) triples with a Writer, building an object
    graph for path-like names first when asked."""
    from .writer import Writer

    key_of: Dict[str, str] = {}
    graph_bytes = None
    if object_graph:
        if OBJECT_GRAPH_KEY in names:
            raise InvalidArgumentError(
                f"the input already holds {OBJECT_GRAPH_KEY}: write it as given "
                "(object_graph=False) to keep that graph")
        graph_bytes, key_of = _graph_for_names(list(names))
    with Writer(out, **write_kwargs) as w:
        for name, arr, dtype in values:
            if dtype is not None:
                dtype = _dtype_arg(arr, by_name(dtype).code)
            w.add(key_of.get(name, name), arr, dtype=dtype)
            report.written.append(name)
        if graph_bytes is not None:
            w.add(OBJECT_GRAPH_KEY, graph_bytes)


_VALUE_KEY_RE = re.compile(r"^(?P<path>.+)/\.ATTRIBUTES/VARIABLE_VALUE$")
_SLOT_KEY_RE = re.compile(
    r"^(?P<var>.+)/\.OPTIMIZER_SLOT/(?P<opt>.+)/(?P<slot>[^/]+)/\.ATTRIBUTES/VARIABLE_VALUE$")


def _graph_for_names(names: Sequence[str]):
    """(object graph bytes, name -> checkpoint key) for object paths or object keys."""
    from .keys import split_object_path as _split_escaped_path, unescape_local_name as _unescape
    from .objects import build_object_graph

    variables: List[Tuple[str, ...]] = []
    slots: List[Tuple[Tuple[str, ...], Tuple[str, ...], str]] = []
    origin: Dict[Any, str] = {}
    for name in names:
        m = _SLOT_KEY_RE.match(name)
        if m:
            spec = (tuple(_split_escaped_path(m.group("var"))),
                    tuple(_split_escaped_path(m.group("opt"))), _unescape(m.group("slot")))
            slots.append(spec)
            origin[spec] = name
            continue
        m = _VALUE_KEY_RE.match(name)
        parts = tuple(_split_escaped_path(m.group("path"))) if m else tuple(name.split("/"))
        if any(not p for p in parts):
            raise InvalidArgumentError(f"{name!r} is not an object path (an empty local name)")
        variables.append(parts)
        origin[parts] = name
    try:
        graph, key_of = build_object_graph(variables, slots)
    except ValueError as e:
        raise InvalidArgumentError(f"cannot build an object graph: {e}") from None
    return graph, {origin[k]: v for k, v in key_of.items()}


# -- safetensors --------------------------------------------------------------------------

# The safetensors format (huggingface/safetensors): 8 bytes, the little-endian u64 length N
# of a UTF-8 JSON header; the header; then the data buffer. The header maps each tensor name
# to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the buffer, which the
# tensors must cover exactly, back to back) plus an optional "__metadata__" map of strings.
# Data is little-endian, C order. The reference writer orders tensors by dtype alignment
# (largest first), then name, and pads the header with spaces to a multiple of 8 bytes so
# every tensor is aligned; this writer does the same, so its files are byte-identical.

_ST_MAX_HEADER = 100_000_000
#: safetensors dtypes in the reference library's order (sorting by it, descending, aligns)
_ST_ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
             "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
             "C64", "F64", "I64", "U64"]
_ST_RANK = {name: i for i, name in enumerate(_ST_ORDER)}
#: TF DataType code -> safetensors dtype
_TF_TO_ST = {1: "F32", 2: "F64", 3: "I32", 4: "U8", 5: "I16", 6: "I8", 8: "C64", 9: "I64",
             10: "BOOL", 14: "BF16", 17: "U16", 19: "F16", 22: "U32", 23: "U64",
             24: "F8_E5M2", 25: "F8_E4M3", 26: "F8_E4M3FNUZ", 28: "F8_E5M2FNUZ",
             # Stored as the integers they hold; the metadata records the TensorFlow dtype.
             11: "I8", 12: "U8", 13: "I32", 15: "I16", 16: "U16",
             29: "I8", 30: "U8", 31: "I8", 32: "U8"}
#: safetensors dtype -> (TF dtype name, numpy dtype name), for those TensorFlow has
_ST_TO_TF = {"F32": "float32", "F64": "float64", "I32": "int32", "U8": "uint8", "I16": "int16",
             "I8": "int8", "C64": "complex64", "I64": "int64", "BOOL": "bool",
             "BF16": "bfloat16", "U16": "uint16", "F16": "float16", "U32": "uint32",
             "U64": "uint64", "F8_E5M2": "float8_e5m2", "F8_E4M3": "float8_e4m3fn",
             "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz"}
_ST_SIZE_BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
                 "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
                 "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32,
                 "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64}
#: __metadata__ entry naming the TensorFlow dtype of tensors stored as another type
_ST_DTYPES_META = "tfckpt.dtypes"


def to_safetensors(ckpt, path, *, skip_unsupported: bool = False,
                   metadata: Optional[Mapping[str, str]] = None,
                   overwrite: bool = False) -> ConversionReport:
    """Writes the tensors of checkpoint `ckpt` as a ``.safetensors`` file (partitioned
    tensors assembled), for PyTorch, JAX or anyone with the safetensors library.

    dtypes map to F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL C64 F8_E4M3 F8_E5M2
    F8_E4M3FNUZ F8_E5M2FNUZ. Quantized types (qint8, ...) and int4/uint4/int2/uint2 (one
    value per byte in a checkpoint) are stored as the integers they hold (I8, U8, ...), and
    ``__metadata__["tfckpt.dtypes"]`` (JSON) records their TensorFlow dtype so
    :func:`from_safetensors` restores it. Strings, variants, complex128,
    float8_e4m3b11fnuz and float4_e2m1fn have no safetensors type: an error lists them, or
    with `skip_unsupported` they are skipped and the report says so. The object graph is
    never written. `metadata` adds string entries to ``__metadata__``. The header is
    written first from the index alone, then the tensors one at a time.
    """
    np = _np()
    with _opened(ckpt) as (reader,):
        report = ConversionReport(src=reader.prefix, dst=os.fspath(path))
        keys = [k for k in reader.keys() if k != OBJECT_GRAPH_KEY]
        problems = {}
        plan = []
        tf_dtypes = {}
        for k in keys:
            e = reader.entry(k)
            st = _TF_TO_ST.get(e.dtype_code)
            if st is None:
                problems[k] = f"dtype {e.dtype_name} has no safetensors equivalent"
                continue
            try:
                k.encode("utf-8")
            except UnicodeEncodeError:
                problems[k] = "the key is not valid UTF-8"
                continue
            if k == "__metadata__":
                problems[k] = "the name __metadata__ is reserved by safetensors"
                continue
            if _ST_TO_TF[st] != e.dtype_name:
                tf_dtypes[k] = e.dtype_name
            plan.append((k, e, st))
        _unsupported(report, problems, ".safetensors", skip_unsupported)
        meta = {}
        for mk, mv in (metadata or {}).items():
            if not isinstance(mk, str) or not isinstance(mv, str):
                raise InvalidArgumentError("safetensors metadata maps strings to strings")
            meta[mk] = mv
        if tf_dtypes:
            meta[_ST_DTYPES_META] = json.dumps(tf_dtypes, sort_keys=True)
        plan.sort(key=lambda t: (-_ST_RANK[t[2]], t[0]))
        header: Dict[str, Any] = {}
        if meta:
            header["__metadata__"] = meta
        offset = 0
        for k, e, st in plan:
            nbytes = e.num_elements * _ST_SIZE_BITS[st] // 8
            header[k] = {"dtype": st, "shape": list(e.shape),
                         "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        raw += b" " * ((8 - len(raw) % 8) % 8)
        if len(raw) > _ST_MAX_HEADER:
            raise InvalidArgumentError(f"the safetensors header would be {len(raw)} bytes, "
                                       f"over the format's limit of {_ST_MAX_HEADER}")
        with _atomic_file(path, overwrite) as tmp:
            with open(tmp, "wb") as f:
                f.write(struct.pack("<Q", len(raw)))
                f.write(raw)
                for k, e, st in plan:
                    value = reader.read(k)
                    want = np.dtype(_st_numpy(st))
                    if value.dtype != want:
                        value = value.view(want) if value.dtype.itemsize == want.itemsize \
                            and e.dtype_code not in (29, 30, 31, 32) else value.astype(want)
                    if value.size:  # the mapped bytes, not a copy of them
                        f.write(np.ascontiguousarray(value).reshape(-1).view(np.uint8))
                    report.written.append(k)
    return report


def _st_numpy(st: str):
    name = _ST_TO_TF[st]
    return numpy_dtype(by_name(name).code)


def read_safetensors_header(path) -> Tuple[int, Dict[str, Any], Dict[str, str]]:
    """(data start offset, {name: {dtype, shape, data_offsets}}, metadata) of a
    ``.safetensors`` file, checked as the reference reader checks it."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CorruptCheckpointError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > _ST_MAX_HEADER:
            raise CorruptCheckpointError(f"{path}: safetensors header length {n} is over the "
                                         f"limit of {_ST_MAX_HEADER}")
        if 8 + n > size:
            raise CorruptCheckpointError(f"{path}: safetensors header length {n} runs past the "
                                         f"end of the file ({size} bytes)")
        raw = f.read(n)

    def no_duplicates(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                raise ValueError(f"duplicate key {k!r}")
            d[k] = v
        return d

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise CorruptCheckpointError(f"{path}: bad safetensors header: {e}") from None
    if not isinstance(header, dict):
        raise CorruptCheckpointError(f"{path}: the safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CorruptCheckpointError(f"{path}: __metadata__ must map strings to strings")
    tensors = {}
    spans = []
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            ok = (isinstance(dtype, str) and isinstance(shape, list)
                  and all(isinstance(d, int) and d >= 0 for d in shape)
                  and isinstance(begin, int) and isinstance(end, int))
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise CorruptCheckpointError(f"{path}: bad safetensors entry for {name!r}: {info!r}")
        if dtype not in _ST_SIZE_BITS:
            raise CorruptCheckpointError(f"{path}: {name}: unknown safetensors dtype {dtype!r}")
        count = 1
        for d in shape:
            count *= d
        if (end - begin) * 8 != count * _ST_SIZE_BITS[dtype]:
            raise CorruptCheckpointError(
                f"{path}: {name}: {dtype}{shape} needs {count * _ST_SIZE_BITS[dtype] / 8:g} "
                f"bytes, data_offsets give {end - begin}")
        tensors[name] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
        spans.append((begin, end, name))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise CorruptCheckpointError(f"{path}: {name}: data_offsets [{begin}, {end}] leave "
                                         f"a gap or overlap at byte {pos} of the buffer")
        pos = end
    if 8 + n + pos != size:
        raise CorruptCheckpointError(f"{path}: the tensors cover {pos} bytes of data, the file "
                                     f"holds {size - 8 - n}")
    return 8 + n, tensors, metadata


def from_safetensors(path, out, *, object_graph: bool = False,
                     skip_unsupported: bool = False, **write_kwargs) -> ConversionReport:
    """Writes the tensors of a ``.safetensors`` file as a checkpoint at prefix `out`.

    The file is checked as the reference reader checks it (header size, JSON, offsets that
    cover the buffer exactly) and memory-mapped; tensors are written one at a time. Names
    are written as given, or with `object_graph` taken as object paths and given an object
    graph (see :func:`from_npz`). TensorFlow dtypes recorded by :func:`to_safetensors` are
    restored. safetensors types TensorFlow has no type for (F4, F6_*, F8_E8M0) are refused,
    or skipped with `skip_unsupported`. `write_kwargs` go to :class:`tfckpt.Writer`.
    """
    np = _np()
    report = ConversionReport(src=os.fspath(path), dst=os.fspath(out))
    start, tensors, metadata = read_safetensors_header(path)
    tf_dtypes = {}
    if _ST_DTYPES_META in metadata:
        try:
            tf_dtypes = dict(json.loads(metadata[_ST_DTYPES_META]))
        except ValueError as e:
            raise CorruptCheckpointError(f"{path}: bad {_ST_DTYPES_META} metadata: {e}") \
                from None
    problems = {name: f"safetensors dtype {info['dtype']} has no TensorFlow equivalent"
                for name, info in tensors.items() if info["dtype"] not in _ST_TO_TF}
    _unsupported(report, problems, "a checkpoint", skip_unsupported)
    names = sorted(tensors, key=lambda n: tensors[n]["data_offsets"][0])
    buf = np.memmap(os.fspath(path), dtype=np.uint8, mode="r") if os.path.getsize(path) \
        else np.zeros(0, np.uint8)

    def values():
        for name in names:
            if name in report.skipped:
                continue
            info = tensors[name]
            begin, end = info["data_offsets"]
            dt = np.dtype(_st_numpy(info["dtype"]))
            arr = buf[start + begin:start + end].view(dt).reshape(info["shape"])
            tf_name = tf_dtypes.get(name, _ST_TO_TF[info["dtype"]])
            yield name, arr, tf_name

    try:
        _write_stream(values(), [n for n in names if n not in report.skipped], out,
                      object_graph, report, write_kwargs)
    finally:
        del buf
    return report
