"""average: the element-wise mean of several checkpoints of one model."""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence

from ..dtypes import by_code
from ..entries import Entry
from ..errors import InvalidArgumentError
from ..keys import OBJECT_GRAPH_KEY
from ..reader import Reader
from ..slices import Bounds, full_bounds
from ..writer import Writer
from . import _common
from ._common import Source, opened, shape_text

__all__ = ["average"]


def average(
    paths: Sequence[Any],
    out: "str | os.PathLike[str]",
    progress: Optional[Callable[[int], None]] = None,
    **write_kwargs: Any,
) -> str:
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
    (``overwrite``, ``max_shard_bytes``, ``update_state``). `progress(nbytes)` is called with
    the stored bytes of each key of the last input as it is done. Returns the prefix written.
    """
    paths = list(paths)
    if not paths:
        raise InvalidArgumentError("average needs at least one checkpoint")
    with opened(*paths) as readers:
        last = readers[-1]
        keys = last.keys()
        _check_same_layout(readers, keys)
        with Writer(out, **write_kwargs) as w:
            for key in sorted(keys, key=last.location):
                if progress is not None:
                    progress(last.stored_size(key))
                e = last.entry(key)
                if key == OBJECT_GRAPH_KEY or not by_code(e.dtype_code).is_floating:
                    w.copy(last, key)
                    continue
                sources = [Source(r, key) for r in readers]
                # A partitioned tensor is written with the last input's slices (their specs
                # as stored, so the slice keys stay the same); each region is averaged in
                # chunks, so only the region being written is held whole.
                if not e.slices:
                    w.add(key, _mean(sources, full_bounds(e.shape), e), dtype=e.dtype_code)
                for s in e.slices:
                    w.add_slice(
                        key,
                        e.shape,
                        s.spec,
                        _mean(sources, s.bounds(e.shape), e),
                        dtype=e.dtype_code,
                    )
    return os.fspath(out)


def _mean(sources: Sequence[Source], region: Bounds, e: Entry) -> Any:
    """The mean of `sources` over `region`, summed chunk by chunk in float64 (complex128),
    cast back to the dtype of `e`."""
    import numpy as np

    acc_dtype = np.complex128 if by_code(e.dtype_code).kind == "complex" else np.float64
    result = np.empty(tuple(hi - lo for lo, hi in region), dtype=e.dtype)
    for sub in _common.chunks(region):
        acc = np.array(sources[0].region(sub), dtype=acc_dtype)
        for src in sources[1:]:
            acc += np.asarray(src.region(sub), dtype=acc_dtype)
        acc /= len(sources)
        at = tuple(slice(a - r0, b - r0) for (a, b), (r0, _) in zip(sub, region))
        result[at] = acc.astype(e.dtype)
    return result


def _check_same_layout(readers: Sequence[Reader], keys: Sequence[str]) -> None:
    """Raises unless every reader holds the keys, dtypes and shapes of the last one."""
    last = readers[-1]
    want = set(keys)
    for r in readers[:-1]:
        have = set(r.keys())
        if have != want:
            missing = sorted(want - have)
            extra = sorted(have - want)
            what = f"lacks key {missing[0]}" if missing else f"has key {extra[0]}"
            raise InvalidArgumentError(
                f"cannot average: {r.prefix} {what}, which {last.prefix} (the last "
                f"checkpoint) {'has' if missing else 'lacks'}; all checkpoints must hold the "
                f"same keys ({len(missing)} missing, {len(extra)} extra)"
            )
    for key in sorted(keys):
        el = last.entry(key)
        for r in readers[:-1]:
            e = r.entry(key)
            if e.dtype_code != el.dtype_code or tuple(e.shape) != tuple(el.shape):
                raise InvalidArgumentError(
                    f"cannot average: key {key} is {e.dtype_name}{shape_text(e.shape)} in "
                    f"{r.prefix} but {el.dtype_name}{shape_text(el.shape)} in {last.prefix}"
                )
