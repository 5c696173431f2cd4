"""Slices of partitioned tensors and their geometry.

A partitioned variable (TF1 partitioners, ``MaxShardSizePolicy``) is stored as one entry that
lists its slices plus one entry per slice under a slice key (OrderedCode of the name and the
extents). This module knows a slice's extents, its key, and how stored slices are planned into
a requested region: the overlap check, intersections, coverage and placement. It is shared by
the V2 reader, the V1 reader and the writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Protocol, Sequence, Set, Tuple, TypeVar, Union

from ._core import core
from .errors import CorruptCheckpointError, InvalidArgumentError

__all__ = [
    "TensorSlice",
    "Bounds",
    "slice_key",
    "parse_slice_key",
    "plan_assembly",
    "check_coverage",
    "place",
    "normalize_index",
    "volume",
    "full_bounds",
]

#: Per dimension (start, stop).
Bounds = Tuple[Tuple[int, int], ...]
#: What read_slice accepts: numpy basic indexing or a TensorFlow slice spec.
Index = Union[str, Tuple[Any, ...], slice, int]


class SliceLike(Protocol):
    """What slice planning needs of a stored slice (TensorSlice, or a V1 reader's own)."""

    @property
    def spec(self) -> str: ...

    def bounds(self, shape: Sequence[int]) -> Bounds: ...


_S = TypeVar("_S", bound=SliceLike)


@dataclass(frozen=True)
class TensorSlice:
    """One stored slice of a partitioned tensor: per dimension (start, length), None = whole."""

    extents: Tuple[Tuple[int, Optional[int]], ...]

    @classmethod
    def from_core(cls, extents: Sequence[Tuple[int, int]]) -> "TensorSlice":
        """From the core's (start, length) pairs, where length -1 is the whole dimension."""
        return cls(tuple((s, None if ln < 0 else ln) for s, ln in extents))

    def core_extents(self) -> List[Tuple[int, int]]:
        """The (start, length) pairs the core takes, length -1 for a whole dimension."""
        return [(0, -1) if length is None else (start, length) for start, length in self.extents]

    def bounds(self, shape: Sequence[int]) -> Bounds:
        """Per dimension (start, stop) within a tensor of `shape`."""
        return tuple(
            (0, dim) if length is None else (start, start + length)
            for (start, length), dim in zip(self.extents, shape)
        )

    @property
    def spec(self) -> str:
        """TensorFlow's text form, e.g. ``0,3:-``."""
        return ":".join(
            "-" if length is None else f"{start},{length}" for start, length in self.extents
        )

    def __str__(self) -> str:
        return self.spec


def slice_key(name: Union[str, bytes], s: Union[TensorSlice, Sequence[Tuple[int, int]]]) -> bytes:
    """The index key of one stored slice of tensor `name` (EncodeTensorNameSlice)."""
    extents = s.core_extents() if isinstance(s, TensorSlice) else list(s)
    return core.slice_key(name, extents)


def parse_slice_key(key: bytes) -> Optional[Tuple[str, TensorSlice]]:
    """(tensor name, slice) of a slice key, or None when `key` is not one."""
    decoded = core.decode_slice_key(key)
    if decoded is None:
        return None
    name, extents = decoded
    return name.decode("utf-8", "surrogateescape"), TensorSlice.from_core(extents)


def full_bounds(shape: Sequence[int]) -> Bounds:
    return tuple((0, d) for d in shape)


def volume(bounds: Bounds) -> int:
    n = 1
    for lo, hi in bounds:
        n *= max(0, hi - lo)
    return n


def _intersect(a: Bounds, b: Bounds) -> Bounds:
    return tuple((max(x0, y0), min(x1, y1)) for (x0, x1), (y0, y1) in zip(a, b))


def plan_assembly(
    where: str, key: str, slices: Sequence[_S], shape: Sequence[int], bounds: Bounds
) -> List[Tuple[_S, Bounds, Bounds]]:
    """(slice, its bounds, its intersection with `bounds`) for each stored slice of a
    partitioned tensor, after checking that no two overlap (TensorFlow's
    RegisterTensorSlice rule)."""
    stored = [s.bounds(shape) for s in slices]
    clash = _first_overlap(stored)
    if clash is not None:
        i, j = clash
        raise CorruptCheckpointError(
            f"{where}: partitioned tensor {key}: slices {slices[i].spec} and "
            f"{slices[j].spec} overlap",
            path=where,
            key=key,
        )
    return [(s, b, _intersect(b, bounds)) for s, b in zip(slices, stored)]


def check_coverage(
    where: str, key: str, slices: Sequence[SliceLike], plan: Any, bounds: Bounds
) -> None:
    """Raises unless the planned intersections cover `bounds` exactly (they cannot overlap)."""
    covered = sum(volume(inter) for _, _, inter in plan)
    if covered != volume(bounds):
        raise CorruptCheckpointError(
            f"{where}: Does not have sufficient slices for partitioned tensor {key} to restore "
            f"the requested region {list(bounds)}: the stored slices "
            f"({', '.join(s.spec for s in slices)}) cover {covered} of {volume(bounds)} "
            "elements",
            path=where,
            key=key,
        )


def place(out: Any, bounds: Bounds, src: Any, src_bounds: Bounds, inter: Bounds) -> None:
    """Copies the intersection `inter` from `src` (holding `src_bounds`) into `out` (holding
    `bounds`)."""
    src_idx = tuple(slice(lo - blo, hi - blo) for (lo, hi), (blo, _) in zip(inter, src_bounds))
    dst_idx = tuple(slice(lo - rlo, hi - rlo) for (lo, hi), (rlo, _) in zip(inter, bounds))
    out[dst_idx] = src[src_idx]


def _first_overlap(boxes: Sequence[Bounds]) -> Optional[Tuple[int, int]]:
    """A pair of boxes that overlap, or None. Sweeps along the dimension with the most
    distinct starts, so partitions along one dimension cost n log n, not n^2."""
    import heapq

    nonempty = [i for i, b in enumerate(boxes) if volume(b) > 0]
    if len(nonempty) < 2:
        return None
    rank = len(boxes[nonempty[0]])
    if rank == 0:
        return nonempty[0], nonempty[1]
    dim = max(range(rank), key=lambda d: len({boxes[i][d][0] for i in nonempty}))
    order = sorted(nonempty, key=lambda i: boxes[i][dim][0])
    active: List[Tuple[int, int]] = []  # heap of (end along dim, box index)
    for i in order:
        start = boxes[i][dim][0]
        while active and active[0][0] <= start:
            heapq.heappop(active)
        for _, j in active:
            if volume(_intersect(boxes[i], boxes[j])) > 0:
                return (min(i, j), max(i, j))
        heapq.heappush(active, (boxes[i][dim][1], i))
    return None


def normalize_index(key: str, shape: Sequence[int], index: Index) -> Tuple[Bounds, Set[int]]:
    """(per-dimension (start, stop), dimensions indexed by an integer) of `index` into a
    tensor `key` of `shape`: numpy basic indexing or a TensorFlow slice spec (``"0,3:-"``)."""
    if isinstance(index, str):
        parts = index.split(":") if index else []
        if len(parts) != len(shape):
            raise InvalidArgumentError(
                f"slice spec {index!r} has {len(parts)} dimensions; {key} has shape {list(shape)}",
                key=key,
            )
        spec_bounds = []
        for part, dim in zip(parts, shape):
            if part == "-":
                spec_bounds.append((0, dim))
                continue
            try:
                start, length = (int(x) for x in part.split(","))
            except ValueError:
                raise InvalidArgumentError(f"bad slice spec {index!r}", key=key) from None
            spec_bounds.append((start, start + length))
        index = tuple(slice(a, b) for a, b in spec_bounds)
    if not isinstance(index, tuple):
        index = (index,)
    if any(item is Ellipsis for item in index):
        at = next(i for i, item in enumerate(index) if item is Ellipsis)
        fill = (slice(None),) * max(0, len(shape) - len(index) + 1)
        index = index[:at] + fill + index[at + 1 :]
    if len(index) > len(shape):
        raise InvalidArgumentError(
            f"too many indices for {key} of shape {list(shape)}: {index!r}", key=key
        )
    bounds = []
    squeeze = set()
    for i, dim in enumerate(shape):
        item = index[i] if i < len(index) else slice(None)
        if isinstance(item, slice):
            start, stop, step = item.indices(dim)
            if step != 1:
                raise InvalidArgumentError("read_slice supports only contiguous ranges", key=key)
            bounds.append((start, max(start, stop)))
        else:
            try:
                j = int(item)
            except TypeError:
                raise InvalidArgumentError(f"unsupported index {item!r}", key=key) from None
            if j < 0:
                j += dim
            if not 0 <= j < dim:
                raise InvalidArgumentError(
                    f"index {item} is out of bounds for dimension {i} of size {dim}", key=key
                )
            bounds.append((j, j + 1))
            squeeze.add(i)
    return tuple(bounds), squeeze
