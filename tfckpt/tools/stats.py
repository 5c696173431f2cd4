"""stats: what the values of a checkpoint look like (NaN and Inf counts, range, mean, spread,
L2 norm per tensor), and the first checkpoint of a run whose values are not finite.

A checkpoint is often the only record of a run that diverged; these answer "where did it blow
up" without TensorFlow and without a decoded copy of any tensor: the core's kernel summarizes
the stored bytes (:mod:`tfckpt.moments`).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Pattern, Tuple, Union

from ..dtypes import by_code
from ..errors import CheckpointError
from ..moments import Moments, checkpoint_moments, has_moments
from ._common import opened

__all__ = ["TensorStats", "stats", "stats_of", "NonFinite", "first_nonfinite"]

Match = Union[str, Pattern[str], None]


@dataclass(frozen=True)
class TensorStats:
    """Statistics of one tensor. Counts are over every element; min, max, mean, std
    (population, ddof=0) and l2 over the finite values, accumulated in float64, None when
    there are none. Bools count as 0/1, quantized values as their integers, complex values
    by their modulus."""

    dtype: str
    shape: Tuple[int, ...]
    count: int
    nan: int
    posinf: int
    neginf: int
    zeros: int
    min: Optional[float]
    max: Optional[float]
    mean: Optional[float]
    std: Optional[float]
    l2: Optional[float]

    @property
    def nonfinite(self) -> int:
        """Elements that are NaN, +Inf or -Inf."""
        return self.nan + self.posinf + self.neginf

    @property
    def max_abs(self) -> Optional[float]:
        """The largest finite magnitude, None without finite values."""
        if self.min is None or self.max is None:
            return None
        return max(abs(self.min), abs(self.max))

    def to_dict(self) -> Dict[str, Any]:
        """The fields as JSON takes them (the shape as a list)."""
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_moments(cls, dtype: str, shape: Tuple[int, ...], m: Moments) -> "TensorStats":
        counts = (m.elements, m.nan, m.posinf, m.neginf, m.zeros)
        if m.finite == 0:
            return cls(dtype, tuple(shape), *counts, None, None, None, None, None)
        return cls(dtype, tuple(shape), *counts, m.min, m.max, m.mean, m.std, m.l2)


def _pattern(match: Match) -> Optional[Pattern[str]]:
    return re.compile(match) if isinstance(match, str) else match


def numeric_keys(reader: Any, match: Match = None) -> List[str]:
    """The keys :func:`stats` summarizes: numeric ones that `match` finds, in key order."""
    pattern = _pattern(match)
    return [
        k
        for k in reader.keys()
        if (pattern is None or pattern.search(k)) and has_moments(reader.entry(k).dtype_code)
    ]


def stats_of(
    reader: Any,
    match: Match = None,
    workers: Optional[int] = None,
    progress: Optional[Callable[[int], None]] = None,
) -> Dict[str, TensorStats]:
    """:func:`stats` of an open reader; `progress(nbytes)` is called as bytes are done."""
    keys = numeric_keys(reader, match)
    moments = checkpoint_moments(reader, keys, workers=workers, progress=progress)
    out = {}
    for k in keys:
        e = reader.entry(k)
        out[k] = TensorStats.from_moments(by_code(e.dtype_code).name, e.shape, moments[k])
    return out


def stats(
    path: Any,
    match: Match = None,
    *,
    workers: Optional[int] = None,
    progress: Optional[Callable[[int], None]] = None,
) -> Dict[str, TensorStats]:
    """``{key: TensorStats}`` for every numeric tensor of the checkpoint at `path` (or an open
    reader), in key order; strings and variants are left out. `match` (a regular expression)
    is searched in each key. Partitioned tensors cover all their slices::

        bad = {k: s for k, s in tfckpt.stats("run/ckpt-40").items() if s.nonfinite}

    The stored bytes are read once, in chunks, their checksums checked on the way (damage is
    a :class:`ChecksumMismatchError`, never statistics of damaged bytes), and summarized in
    float64 on `workers` threads (default: every CPU) without the GIL. `progress(nbytes)` is
    called as stored bytes are done (for a progress line)."""
    with opened(path) as (reader,):
        return stats_of(reader, match, workers, progress)


@dataclass(frozen=True)
class NonFinite:
    """The first checkpoint of a run holding NaN or Inf: its step, its path, the keys that
    hold them, and how many tensors were looked at."""

    step: Optional[int]
    path: str
    keys: Dict[str, TensorStats]
    tensors: int

    def to_dict(self) -> Dict[str, Any]:
        return {
            "step": self.step,
            "path": self.path,
            "tensors": self.tensors,
            "keys": {k: s.to_dict() for k, s in self.keys.items()},
        }


def run_order(checkpoints: Iterable[Tuple[Optional[int], Any]]) -> List[Tuple[Optional[int], Any]]:
    """``(step, path)`` pairs in the order of a training run: by step, unknown steps last,
    then by path."""
    return sorted(checkpoints, key=lambda sp: (sp[0] is None, sp[0] or 0, os.fspath(sp[1])))


def first_nonfinite(
    checkpoints: Iterable[Tuple[Optional[int], Any]],
    match: Match = None,
    *,
    workers: Optional[int] = None,
    on_error: Optional[Callable[[Optional[int], Any, CheckpointError], None]] = None,
    progress: Optional[Callable[[int], None]] = None,
) -> Optional[NonFinite]:
    """The first of `checkpoints` (``(step, path)`` pairs, taken in :func:`run_order`) whose
    tensors (those `match` finds) hold NaN or Inf, or None. Checkpoints are read in that order
    and the search stops at the first hit. A checkpoint that cannot be read raises, or with
    `on_error` is passed to ``on_error(step, path, error)`` and the search goes on."""
    for step, path in run_order(checkpoints):
        try:
            with opened(path) as (reader,):
                result = stats_of(reader, match, workers, progress)
        except CheckpointError as err:
            if on_error is None:
                raise
            on_error(step, path, err)
            continue
        bad = {k: s for k, s in result.items() if s.nonfinite}
        if bad:
            return NonFinite(step, os.fspath(path), bad, len(result))
    return None
