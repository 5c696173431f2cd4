"""Running a scan: tasks from discovery, run here or on worker processes or threads (or on
a Dask cluster), their records in the order of discovery."""

from __future__ import annotations

import os
import re
import time
from collections import deque
from functools import partial
from itertools import islice
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Pattern,
    Sequence,
    Tuple,
    Union,
)

from .describe import run_task
from .records import CHECKPOINT_FIELDS, KEY_FIELDS, Record
from .roots import check_root, discover, is_url
from .tasks import (
    DEFAULT_MAX_ARCHIVE_MEMBERS,
    DEFAULT_MAX_ARCHIVE_SECONDS,
    DEFAULT_MAX_MEMBER_BYTES,
    Options,
    Task,
)

__all__ = ["scan", "scan_to_dask", "dataframe_meta"]

PathArg = Union[str, "os.PathLike[str]"]

#: With jobs > 1, a scan works on its own this long before it starts its workers: starting
#: them costs more than a short scan takes (tens of milliseconds for worker processes).
_INLINE_SECONDS = 0.02
_clock = time.perf_counter


def _run_chunk(tasks: List[Task], opts: Options) -> List[Any]:
    return [r for t in tasks for r in run_task(t, opts)]


def _pool(jobs: int, remote: bool) -> Any:
    """Worker processes for checkpoints in files: reading small tensors is mostly Python
    work, which threads cannot share out (each checksum releases the GIL only briefly, and
    handing it back and forth costs more than it saves). Threads for object stores, where
    the time goes in waiting for the network, and where fork is not available."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    if not remote and "fork" in multiprocessing.get_all_start_methods():
        return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))
    return ThreadPoolExecutor(jobs, thread_name_prefix="tfckpt-scan")


def _ordered_map(
    fn: Callable, items: Iterable, jobs: int, *, remote: bool = False, chunk: int = 16
) -> Iterator:
    """fn over chunks of `chunk` items on `jobs` workers; results in input order, at most
    4 chunks per worker in flight, so memory stays bounded. The first items are done
    here, one by one, until _INLINE_SECONDS have passed: workers start only for the rest."""
    items = iter(items)
    deadline = _clock() + _INLINE_SECONDS
    for it in items:
        yield fn([it])
        if jobs > 1 and _clock() >= deadline:
            break
    else:
        return
    window = 4 * jobs
    pending: deque = deque()
    with _pool(jobs, remote) as pool:
        try:
            while True:
                batch = list(islice(items, chunk))
                if not batch:
                    break
                pending.append(pool.submit(fn, batch))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def _start(
    paths: Union[PathArg, Sequence[PathArg]],
    keys: bool,
    match: Union[str, Pattern, None],
    verify: bool,
    storage_options: Optional[Dict[str, Any]],
    max_member_bytes: int,
    stats: bool = False,
    limits: Any = None,
    max_archive_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS,
    max_archive_seconds: float = DEFAULT_MAX_ARCHIVE_SECONDS,
) -> Tuple[List[str], Options]:
    """The roots (each checked to exist) and the options of a scan."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    roots = [os.fspath(p) for p in paths]
    for p in roots:
        check_root(p)
    if isinstance(match, str):
        match = re.compile(match)
    return roots, Options(
        keys=keys,
        match=match,
        verify=verify,
        storage_options=dict(storage_options or {}),
        max_member_bytes=max_member_bytes,
        stats=stats,
        limits=limits,
        max_archive_members=max_archive_members,
        max_archive_seconds=max_archive_seconds,
    )


def scan(
    paths: Union[PathArg, Sequence[PathArg]],
    *,
    keys: bool = False,
    match: Union[str, Pattern, None] = None,
    verify: bool = False,
    jobs: int = 1,
    storage_options: Optional[Dict[str, Any]] = None,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    stats: bool = False,
    limits: Any = None,
    max_archive_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS,
    max_archive_seconds: float = DEFAULT_MAX_ARCHIVE_SECONDS,
) -> Iterator[Record]:
    """Finds every checkpoint under `paths` and yields one :class:`Record` per finding.

    `paths` are directories, checkpoint prefixes or ``.index`` files, ``checkpoint`` state
    files, archives (``.tar``, ``.tar.gz``/``.tgz``, ``.zip``, recognised by content) or
    fsspec URLs (``s3://bucket/runs/``, ``http://host/dir/``, ``memory://x``;
    `storage_options` go to fsspec). With `keys`, one record per key instead of per
    checkpoint; `match` (a regular expression) keeps checkpoints whose location or any key
    matches (with `keys`: keys that match, or all keys of a checkpoint whose location
    does); `verify` checks every checksum; `stats` reads every value and fills each
    checkpoint record's ``nonfinite`` (NaN and Inf count) and ``l2`` (global L2 norm of the
    finite values). `limits` (a :class:`tfckpt.remote.RemoteLimits`) bounds what a URL may
    cost: each request's time, each checkpoint's, the size of an index, the depth and the
    entries of a walk; a server that exceeds them gives a record, and the scan goes on.
    An archive member larger than `max_member_bytes` is not held in memory from a compressed
    archive, an archive of more than `max_archive_members` members is not scanned, and a
    compressed archive is read for at most `max_archive_seconds`: each is a record that
    says so. `jobs` > 1 scans with that many workers (processes for files,
    threads for URLs); records come in the same order either way::

        bad = [r for r in tfckpt.scan("runs/", verify=True, jobs=4) if not r.ok]

    A path that does not exist raises :class:`NotACheckpointError` at once; everything
    wrong with what is found is reported in the records, never raised.
    """
    roots, opts = _start(
        paths,
        keys,
        match,
        verify,
        storage_options,
        max_member_bytes,
        stats,
        limits=limits,
        max_archive_members=max_archive_members,
        max_archive_seconds=max_archive_seconds,
    )
    return _scan(roots, opts, max(1, int(jobs)))


def _scan(roots: List[str], opts: Options, jobs: int) -> Iterator[Record]:
    tasks = discover(roots, opts)
    remote = any(is_url(r) for r in roots)
    for records in _ordered_map(partial(_run_chunk, opts=opts), tasks, jobs, remote=remote):
        yield from records


# -- on a Dask cluster --------------------------------------------------------------------


def _run_partition(
    tasks: List[Task], opts: Options, columns: Sequence[str]
) -> List[Dict[str, Any]]:
    return [r.to_dict(columns) for t in tasks for r in run_task(t, opts)]


def scan_to_dask(
    paths: Union[PathArg, Sequence[PathArg]],
    *,
    keys: bool = False,
    match: Union[str, Pattern, None] = None,
    verify: bool = False,
    storage_options: Optional[Dict[str, Any]] = None,
    partition_size: int = 16,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    limits: Any = None,
    max_archive_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS,
    max_archive_seconds: float = DEFAULT_MAX_ARCHIVE_SECONDS,
) -> Any:
    """The same scan as :func:`scan`, as a ``dask.bag.Bag`` of record dicts (columns
    :data:`CHECKPOINT_FIELDS`, or :data:`KEY_FIELDS` with `keys`), in the same order.

    The client walks the directories (listing only); the workers open the checkpoints, so
    they must reach the same paths: object-store URLs, or a filesystem every worker mounts.
    A compressed tar is scanned whole by one worker. ``.to_dataframe()`` gives a Dask
    DataFrame::

        from dask.distributed import Client
        client = Client("tcp://scheduler:8786")
        bag = tfckpt.scan_to_dask("s3://bucket/runs/", storage_options={"anon": False})
        df = bag.to_dataframe()
        df[df.status == "error"].compute()
    """
    import dask.bag as db

    roots, opts = _start(
        paths,
        keys,
        match,
        verify,
        storage_options,
        max_member_bytes,
        limits=limits,
        max_archive_members=max_archive_members,
        max_archive_seconds=max_archive_seconds,
    )
    tasks = list(discover(roots, opts, for_dask=True))
    columns = KEY_FIELDS if keys else CHECKPOINT_FIELDS
    bag = (
        db.from_sequence(tasks, partition_size=max(1, partition_size))
        if tasks
        else db.from_sequence([], npartitions=1)
    )
    bag = bag.map_partitions(_run_partition, opts, columns)
    return _scan_bag_class()(bag.dask, bag.name, bag.npartitions, columns)


def dataframe_meta(keys: bool = False) -> Any:
    """An empty pandas DataFrame with the columns and dtypes of scan records (nullable
    integers: a column holds None where a field does not apply)."""
    import pandas as pd

    ints = {"keys", "parameters", "bytes", "shards", "step", "checkpoints", "shard", "offset"}
    columns = KEY_FIELDS if keys else CHECKPOINT_FIELDS
    return pd.DataFrame(
        {
            c: pd.Series(
                [], dtype="Int64" if c in ints else "boolean" if c == "partitioned" else object
            )
            for c in columns
        }
    )


_SCAN_BAG: Any = None


def _scan_bag_class() -> Any:
    """A dask Bag whose ``to_dataframe()`` knows the records' columns and dtypes (made on
    first use: dask is imported only by a scan that asks for it)."""
    global _SCAN_BAG
    if _SCAN_BAG is None:
        import dask.bag as db

        class ScanBag(db.Bag):
            __slots__ = ("_columns",)

            def __init__(self, dsk, name, npartitions, columns=CHECKPOINT_FIELDS):
                super().__init__(dsk, name, npartitions)
                self._columns = columns

            def to_dataframe(self, meta=None, columns=None, optimize_graph=True):
                if meta is None and columns is None:
                    meta = dataframe_meta(keys=self._columns == KEY_FIELDS)
                return super().to_dataframe(
                    meta=meta, columns=columns, optimize_graph=optimize_graph
                )

        _SCAN_BAG = ScanBag
    return _SCAN_BAG
