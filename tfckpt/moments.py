"""The moments of stored values: the core's streaming statistics kernel run over the payloads
of a checkpoint, chunk by chunk on a pool of threads, and the rule that merges the results of
chunks and slices.

It sits on the core beside the reader, and uses a reader only through its public operations
(``header``, ``entry``, ``stored``, ``payload``, ``verify_entry``, ``read``). Payloads are cut
into ranges that threads take in turn; a thread reads its range in chunks into memory tfckpt
owns (pread, as checksums are: a file truncated meanwhile is an error, never a SIGBUS), and
runs the CRC32C and the kernel on each chunk while it is in the cache, both without the GIL.
So a checkpoint is read once, its checksums are checked on the way, and no decoded copy of a
tensor is made. ``tools/stats.py`` turns moments into ``TensorStats``; the scanner sums them
per checkpoint.
"""

from __future__ import annotations

import math
import os
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
)

from ._core import core
from .dtypes import by_code
from .errors import CorruptCheckpointError

__all__ = [
    "Moments",
    "EMPTY",
    "has_moments",
    "payload_moments",
    "merge",
    "checkpoint_moments",
    "CHUNK_BYTES",
    "RANGE_BYTES",
]

#: Payload bytes read and summarized at a time by one thread: small enough to stay in the
#: cache between the read, the CRC and the kernel.
CHUNK_BYTES = 1 << 20
#: Payload bytes a thread takes at a time: a big tensor is shared between threads.
RANGE_BYTES = 16 << 20


class Moments(NamedTuple):
    """Counts over every element, and min, max, mean and m2 (summed squared deviations from
    the mean) over the finite ones (0.0 while there are none)."""

    elements: int
    nan: int
    posinf: int
    neginf: int
    zeros: int
    min: float
    max: float
    mean: float
    m2: float

    @property
    def finite(self) -> int:
        return self.elements - self.nan - self.posinf - self.neginf

    @property
    def nonfinite(self) -> int:
        return self.nan + self.posinf + self.neginf

    @property
    def std(self) -> float:
        """The population standard deviation (ddof=0) of the finite values (0.0 without)."""
        n = self.finite
        return math.sqrt(max(self.m2, 0.0) / n) if n else 0.0

    @property
    def l2(self) -> float:
        """The L2 norm of the finite values: sum(x^2) = n (std^2 + mean^2), through hypot so
        large values do not overflow on the way."""
        return math.sqrt(self.finite) * math.hypot(self.std, self.mean)


EMPTY = Moments(0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)


def has_moments(dtype_code: int) -> bool:
    """Whether values of this dtype are numbers: every fixed-size type (bool as 0/1,
    quantized types as their integers, complex numbers by their modulus); not strings,
    variants or resources."""
    return by_code(dtype_code).is_numeric


def payload_moments(data: Any, dtype_code: int, swap: bool = False) -> Moments:
    """The moments of one payload (any buffer of whole elements, in the checkpoint's byte
    order: `swap` when that is not the host's). Runs without the GIL in the native core."""
    return Moments(*core.tensor_stats(data, dtype_code, swap))


def merge(parts: Iterable[Moments]) -> Moments:
    """The moments of the union of disjoint runs of values (Chan, Golub and LeVeque's
    pairwise update, as the kernel merges its blocks)."""
    count = nan = posinf = neginf = zeros = n = 0
    lo, hi, mean, m2 = math.inf, -math.inf, 0.0, 0.0
    for p in parts:
        count, nan, posinf = count + p.elements, nan + p.nan, posinf + p.posinf
        neginf, zeros = neginf + p.neginf, zeros + p.zeros
        k = p.finite
        if k == 0:
            continue
        lo, hi = min(lo, p.min), max(hi, p.max)
        if n == 0:
            mean, m2, n = p.mean, p.m2, k
            continue
        total = n + k
        delta = p.mean - mean
        # The weighted sum of the two means only where delta overflows (values near the
        # float64 limits): otherwise it would round equal means.
        if math.isinf(delta):
            mean = mean * (n / total) + p.mean * (k / total)
        else:
            mean += delta * (k / total)
        m2 += p.m2 + delta * delta * (n / total) * k
        n = total
    if n == 0:
        lo = hi = 0.0
    return Moments(count, nan, posinf, neginf, zeros, lo, hi, mean, m2)


# -- a checkpoint's payloads, range by range, on threads ----------------------------------


class _Range(NamedTuple):
    key: str
    entry: Any  # the stored entry (a whole tensor or one slice of a partitioned one)
    start: int
    size: int
    last: bool  # the payload's last range: its CRC is then complete


def _ranges(reader: Any, keys: Sequence[str], range_bytes: int) -> Iterator[_Range]:
    for key in keys:
        for st in reader.stored(key):
            e = st.entry
            itemsize = by_code(e.dtype_code).itemsize
            if e.size != e.num_elements * itemsize:
                raise CorruptCheckpointError(
                    f"{reader.index_path}: Invalid size in bundle entry: key {e.key}; stored "
                    f"size {e.size}; expected size {e.num_elements * itemsize}",
                    path=reader.index_path,
                    key=e.key,
                )
            step = max(1, range_bytes // itemsize) * itemsize
            starts = range(0, e.size, step) if e.size else [0]
            for start in starts:
                size = min(step, e.size - start)
                yield _Range(key, e, start, size, start + size >= e.size)


def _summarize(reader: Any, r: _Range, swap: bool, chunk_bytes: int) -> Tuple[Moments, int]:
    """The moments and the CRC32C of one range, read in chunks into memory tfckpt owns (the
    kernel and the CRC run without the GIL, on bytes still in the cache)."""
    itemsize = by_code(r.entry.dtype_code).itemsize
    step = max(1, chunk_bytes // itemsize) * itemsize
    parts, crc = [], 0
    for buf in reader.payload_chunks(r.entry, r.start, r.size, step):
        crc = core.crc32c(buf, crc)
        parts.append(payload_moments(buf, r.entry.dtype_code, swap))
    return merge(parts), crc


def _check_crc(reader: Any, e: Any, crc: int) -> None:
    if crc != core.unmask_crc(e.crc32c):
        reader.verify_entry(e)  # raises the reader's own checksum error
        raise CorruptCheckpointError(  # the bytes read twice differ: the file changed
            f"{reader.shard_path(e.shard_id)}: the bytes of {e.key} changed while they were "
            "read; open the checkpoint again",
            path=reader.shard_path(e.shard_id),
            key=e.key,
            shard=e.shard_id,
            offset=e.offset,
        )


def _v1_moments(reader: Any, key: str) -> Moments:
    """Format V1 keeps no raw tensor bytes: the reader decodes (and checks) the values,
    which are then summarized in the host's byte order."""
    import numpy as np

    code = reader.entry(key).dtype_code
    raw = np.ascontiguousarray(reader.read(key)).reshape(-1).view(np.uint8)
    return payload_moments(raw, code)


def _workers(workers: Optional[int]) -> int:
    if workers:
        return max(1, int(workers))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def checkpoint_moments(
    reader: Any,
    keys: Sequence[str],
    workers: Optional[int] = None,
    progress: Optional[Callable[[int], None]] = None,
    chunk_bytes: int = CHUNK_BYTES,
    range_bytes: int = RANGE_BYTES,
) -> Dict[str, Moments]:
    """``{key: Moments}`` of the numeric `keys` of an open reader, every stored slice of a
    partitioned tensor included, every checksum checked. Payloads are cut into ranges of
    `range_bytes`; `workers` threads (default: every CPU this process may use) each read a
    range in chunks of `chunk_bytes` and summarize and checksum it, a bounded number of
    ranges ahead. `progress(nbytes)` is called as ranges are done."""
    parts: Dict[str, List[Moments]] = {k: [] for k in keys}
    if reader.header.format == "V1":
        for key in keys:
            parts[key].append(_v1_moments(reader, key))
            if progress is not None:
                progress(reader.stored_size(key))
        return {k: merge(v) for k, v in parts.items()}
    swap = reader.header.endianness != sys.byteorder
    n_workers = _workers(workers)
    pending: Deque[Tuple[_Range, "Future[Tuple[Moments, int]]"]] = deque()
    crc: Dict[Tuple[str, int, int], int] = {}

    def settle(limit: int) -> None:
        while len(pending) > limit:
            r, fut = pending.popleft()
            m, range_crc = fut.result()
            parts[r.key].append(m)
            where = (r.key, r.entry.shard_id, r.entry.offset)
            # Ranges of one payload are checked on different threads; their CRCs are
            # joined by the core (crc(A + B) from crc(A), crc(B) and len(B)).
            joined = (
                core.crc32c_combine(crc.pop(where), range_crc, r.size) if r.start else range_crc
            )
            if r.last:
                _check_crc(reader, r.entry, joined)
            else:
                crc[where] = joined
            if progress is not None:
                progress(r.size)

    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="tfckpt-stats") as pool:
        try:
            for r in _ranges(reader, keys, range_bytes):
                pending.append((r, pool.submit(_summarize, reader, r, swap, chunk_bytes)))
                settle(2 * n_workers)
            settle(0)
        finally:
            for _, fut in pending:
                fut.cancel()
    return {k: merge(v) for k, v in parts.items()}
