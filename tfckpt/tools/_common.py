"""What every tool shares: readers opened for the length of a call, the order that reads the
source shards sequentially, and tensors read region by region in chunks along their first
axis, so no tool needs a whole tensor (or a float64 copy of one) in memory."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, List, Sequence

from ..reader import Reader
from ..reader import open as open_checkpoint
from ..slices import Bounds

#: Elements compared or averaged per step; bounds the float64 temporaries (32 MiB each).
CHUNK_ELEMENTS = 1 << 22


@contextlib.contextmanager
def opened(*sources: Any, open_with: Callable[[Any], Any] = open_checkpoint) -> Iterator[List[Any]]:
    """Readers for `sources`: paths are opened with `open_with` (and closed afterwards),
    by default :func:`tfckpt.open`, so format V1 checkpoints are read as V2 ones are;
    readers (anything with a ``listing``) are used as they are and left open."""
    readers, owned = [], []
    try:
        for s in sources:
            if hasattr(s, "listing"):
                readers.append(s)
            else:
                r = open_with(s)
                owned.append(r)
                readers.append(r)
        yield readers
    finally:
        for r in owned:
            r.close()


def shape_text(shape: Sequence[int]) -> str:
    """A shape as messages spell it: ``[3,4]``."""
    return "[" + ",".join(str(d) for d in shape) + "]"


class Source:
    """One tensor of one checkpoint, read region by region: a whole tensor through its
    memory-mapped view (its CRC checked once), a partitioned one slice by slice (each
    stored slice's CRC checked once), so no region needs the whole tensor in memory."""

    def __init__(self, reader: Reader, key: str, verify: bool = True) -> None:
        self.reader, self.key = reader, key
        self.whole = None
        if reader.entry(key).slices:
            if verify:
                for st in reader.stored(key):
                    reader.verify_entry(st.entry)
        else:
            self.whole = reader.read(key, verify=verify)

    def region(self, bounds: Bounds) -> Any:
        """The values in per-dimension [start, stop) `bounds`."""
        import numpy as np

        index = tuple(slice(lo, hi) for lo, hi in bounds)
        if self.whole is not None:
            return np.asarray(self.whole[index])
        return self.reader.read_slice(self.key, index)


def chunks(bounds: Bounds) -> Iterator[Bounds]:
    """`bounds` cut along the first axis into pieces of about CHUNK_ELEMENTS elements."""
    if not bounds:
        yield bounds
        return
    (lo, hi), rest = bounds[0], bounds[1:]
    per_row = 1
    for a, b in rest:
        per_row *= b - a
    step = max(1, CHUNK_ELEMENTS // max(per_row, 1))
    if hi <= lo:
        yield bounds
        return
    for start in range(lo, hi, step):
        yield ((start, min(hi, start + step)),) + rest
