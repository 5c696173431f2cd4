"""One task -> its records: open the checkpoint through the storage its spec names, check
its data shards against its index, read its step, verify it, and list it by checkpoint or
by key. Nothing found here is fatal: damage becomes the records' status."""

from __future__ import annotations

import math
import os
import posixpath
import re
import stat
from typing import Any, Dict, List, Optional, Tuple

from ..dtypes import all_dtypes, by_code
from ..errors import CheckpointError, MissingShardError
from ..keys import SAVE_COUNTER_KEY
from ..moments import checkpoint_moments, has_moments
from ..reader import Reader
from ..reader import open as open_checkpoint
from ..remote import DEFAULT_LIMITS, RemoteLimits, RemoteStorage, fetch_files
from ..storage import BytesStorage, LocalStorage, TarMemberStorage, ZipMemberStorage
from ..v1 import V1Reader
from .archives import compressed_tar_tasks
from .records import KeyRecord, Record, describe_exception, error_record
from .tasks import Checkpoint, Done, Options, Task, WholeArchive

__all__ = ["run_task", "dtype_name", "DTYPE_NAME_CACHE", "make_storage"]

#: The variable TF1's ``Saver`` keeps the training step in.
GLOBAL_STEP_KEY = "global_step"
#: Where a checkpoint's step is read from, by preference, and the source a record names.
_STEP_KEYS = {SAVE_COUNTER_KEY: "save_counter", GLOBAL_STEP_KEY: "global_step"}
#: ``CheckpointManager`` names a checkpoint ``<prefix>-<step>``.
_STEP_SUFFIX_RE = re.compile(r"-(\d+)$")
_MAX_PROBLEMS_SHOWN = 3

#: Dtype names by DataType code, cached from the dtype table as a tuple: key records are
#: built natively, thousands at a time, and look names up by index.
DTYPE_NAME_CACHE = tuple(by_code(c).name for c in range(max(d.code for d in all_dtypes()) + 1))


def dtype_name(code: int) -> str:
    """The dtype name of a DataType code, unknown codes included."""
    return DTYPE_NAME_CACHE[code] if 0 <= code < len(DTYPE_NAME_CACHE) else by_code(code).name


# -- opening ------------------------------------------------------------------------------


class _StatSizedStorage(LocalStorage):
    """LocalStorage whose shard sizes come from stat: a scan that only lists never maps a
    data shard."""

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        try:
            st: Optional[os.stat_result] = os.stat(self.shard_path(shard_id, num_shards))
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            return super().shard_size(shard_id, num_shards)  # says what is wrong
        return st.st_size


class _IndexSized:
    """A storage that remembers the size of the index the reader fetched through it: a
    record's bytes count the index too, and fetching it again could cost a request."""

    def __init__(self, storage: Any) -> None:
        self.prefix, self.index_path = storage.prefix, storage.index_path
        self.shard_path, self.shard_size = storage.shard_path, storage.shard_size
        self.read, self.close = storage.read, storage.close
        self.index_bytes = 0
        self._storage = storage
        self._index_buffer = storage.index_buffer

    def __getattr__(self, name: str) -> Any:
        # pin, copy, checksum: the wrapped storage's (its reads that cannot raise SIGBUS)
        return getattr(self._storage, name)

    def index_buffer(self) -> Any:
        buffer = self._index_buffer()
        self.index_bytes = memoryview(buffer).nbytes
        return buffer


class _V1Files:
    """What describing needs of a format V1 checkpoint's files (its values are inside its
    table files, so a file's size is all there is to check, and there is no index)."""

    index_bytes = 0

    def __init__(self, reader: Any, sizes: Optional[List[int]] = None) -> None:
        self.files = reader.files
        self._sizes = sizes

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        if self._sizes is not None:  # fetched from a URL
            return self._sizes[shard_id]
        return os.path.getsize(self.files[shard_id])

    def shard_path(self, shard_id: int, num_shards: int) -> str:
        return self.files[shard_id]


def make_storage(spec: tuple, opts: Options) -> Any:
    """The storage a task's spec names (see the trees' ``checkpoint_spec``)."""
    kind = spec[0]
    if kind == "local":
        return _StatSizedStorage(spec[1])
    if kind == "tar":
        return TarMemberStorage(spec[1], spec[2], spec[3])
    if kind == "zip":
        return ZipMemberStorage(spec[1], spec[2], spec[3], max_member_bytes=opts.max_member_bytes)
    if kind == "bytes":
        return BytesStorage(spec[1], spec[2])
    if kind == "fsspec":
        # One deadline for every request about this checkpoint (opts.limits.deadline).
        return RemoteStorage(
            spec[2], spec[1], url=spec[3], limits=_limits(opts), sizes=spec[4], shared_deadline=True
        )
    raise ValueError(f"unknown storage spec {kind!r}")  # pragma: no cover


def _limits(opts: Options) -> RemoteLimits:
    return opts.limits or DEFAULT_LIMITS


def _remote_v1(task: Checkpoint, opts: Options) -> Tuple[Any, Any]:
    """A format V1 checkpoint at a URL, its files fetched whole (they hold its values),
    each under ``max_index_bytes``, all within one deadline."""
    _, fs, files, gap = task.spec
    if gap:
        raise MissingShardError(f"{task.location}: {gap}", path=task.location)
    buffers = fetch_files(fs, files, _limits(opts))
    reader = V1Reader.from_buffers(task.location, buffers)
    return reader, _V1Files(reader, [len(b) for _, b in buffers])


def archived_v1(location: str, spec: tuple) -> Any:
    """The reader of a format V1 checkpoint inside a tar or zip (a ``v1archive`` spec): its
    members' bytes, which hold its values."""
    from .trees import member_bytes

    _, kind, archive, files, gap = spec
    if gap:
        raise MissingShardError(f"{location}: {gap}", path=location)
    return V1Reader.from_buffers(
        location, [(loc, member_bytes(kind, archive, member)) for loc, member in files]
    )


def _archived_v1(task: Checkpoint) -> Tuple[Any, Any]:
    reader = archived_v1(task.location, task.spec)
    sizes = [m[1] if task.spec[1] == "tar" else m.file_size for _, m in task.spec[3]]
    return reader, _V1Files(reader, sizes)


def _failed(task: Checkpoint, e: BaseException, opts: Options) -> List[Any]:
    """The record of a checkpoint that could not be described at all."""
    if not opts.matches(task.location):
        return []
    rec = error_record("checkpoint", task.location, task.name, describe_exception(e))
    rec.kind = task.kind
    return [rec]


def run_task(task: Task, opts: Options) -> List[Any]:
    """The records of one task (a :class:`Record` or :class:`KeyRecord` each)."""
    if isinstance(task, Done):
        # In the per-key view, findings other than keys show only when something is wrong.
        return [r for r in task.records if opts.matches(r.location) and not (opts.keys and r.ok)]
    if isinstance(task, WholeArchive):
        return [r for t in compressed_tar_tasks(task.path, opts) for r in run_task(t, opts)]
    try:
        if task.spec[0] == "v1":
            reader: Any = open_checkpoint(task.spec[1])
            storage: Any = _V1Files(reader)
        elif task.spec[0] == "v1url":
            reader, storage = _remote_v1(task, opts)
        elif task.spec[0] == "v1archive":
            reader, storage = _archived_v1(task)
        else:
            storage = _IndexSized(make_storage(task.spec, opts))
            reader = Reader(storage=storage)
    except Exception as e:  # noqa: BLE001 - never fatal: the record says what went wrong
        return _failed(task, e, opts)
    try:
        return _describe(reader, storage, task, opts)
    except Exception as e:  # noqa: BLE001
        return _failed(task, e, opts)
    finally:
        reader.close()


# -- what a checkpoint is -----------------------------------------------------------------


def _shard_problems(
    reader: Reader, storage: Any, need: int, full: bool
) -> Tuple[List[str], Dict[int, str], int]:
    """Checks the data shards against the index: every referenced shard there, none
    shorter than its entries need. `need` is the sum of the sizes of the index's
    unpartitioned entries; with `full` (a verifying scan), every entry is looked at even
    when the sizes agree. Returns (problems, bad shards, bytes of the shards found)."""
    num_shards = reader.header.num_shards
    if not full and num_shards == 1:
        # The common case, without a look at every entry: TensorFlow packs a shard densely,
        # so its size is the sum of the entries' sizes. Anything else gets the full check.
        try:
            have: Optional[int] = storage.shard_size(0, 1)
        except CheckpointError:
            have = None
        if have == need or (have is None and need == 0):
            return [], {}, have or 0
    ends, unplaced = reader.shard_extents()
    problems = [describe_exception(e) for e in unplaced]
    bad: Dict[int, str] = {}
    total = 0
    for sid in range(num_shards):
        try:
            size = storage.shard_size(sid, num_shards)
        except CheckpointError as err:
            if sid in ends:
                bad[sid] = str(err)
            continue
        total += size
        if ends.get(sid, 0) > size:
            bad[sid] = (
                f"data shard {storage.shard_path(sid, num_shards)} is truncated: "
                f"{size} bytes, but its entries reach byte {ends[sid]}"
            )
    problems.extend(bad[s] for s in sorted(bad))
    return problems, bad, total


def _read_step(reader: Reader, key: str) -> Optional[int]:
    """A scalar integer counter, read with its checksum checked."""
    e = reader.entry(key)
    d = by_code(e.dtype_code)
    # (A V1 entry's size is that of its record, not of the value's bytes.)
    if (
        e.shape != ()
        or e.slices
        or d.name not in ("int32", "int64")
        or (reader.header.format != "V1" and e.size != d.itemsize)
    ):
        return None
    return int(reader.read(key))


def _counter_step(
    reader: Reader, bad_shards: Dict[int, str], problems: List[str]
) -> Tuple[Optional[int], Optional[str]]:
    """The step in the checkpoint's save counter (object-based) or global step (name-based),
    and which; a counter that cannot be read adds to `problems`."""
    if bad_shards:
        return None, None  # the value may be in a missing or short shard: said in problems
    for key, source in _STEP_KEYS.items():
        if key in reader:
            try:
                step = _read_step(reader, key)
            except CheckpointError as e:
                problems.append(f"{key}: {e}")
                return None, None
            return (step, source) if step is not None else (None, None)
    return None, None


def _step(
    reader: Reader, task: Checkpoint, bad_shards: Dict[int, str], problems: List[str]
) -> Tuple[Optional[int], Optional[str]]:
    """The training step and where it comes from: the checkpoint's counter, else a ``-N``
    suffix of its name."""
    step, source = _counter_step(reader, bad_shards, problems)
    if step is None:
        m = _STEP_SUFFIX_RE.search(posixpath.basename(task.name))
        if m:
            step, source = int(m.group(1)), "suffix"
    return step, source


def _summary(problems: List[str]) -> str:
    shown = "; ".join(problems[:_MAX_PROBLEMS_SHOWN])
    more = len(problems) - _MAX_PROBLEMS_SHOWN
    return shown + (f" (and {more} more)" if more > 0 else "")


def _kind(reader: Reader, task: Checkpoint) -> str:
    return task.kind or ("object-based" if reader.has_object_graph else "name-based")


def _describe(reader: Reader, storage: _IndexSized, task: Checkpoint, opts: Options) -> list:
    # The sums come from one native pass; rows per key are built only where needed.
    n_keys, parameters, n_errors, n_partitioned, codes, need = reader.summary()
    loc_matches = opts.matches(task.location)
    if (
        opts.match is not None
        and not opts.keys
        and not loc_matches
        and not any(opts.match.search(k) for k in reader.keys())
    ):
        return []

    problems, bad_shards, shard_bytes = _shard_problems(reader, storage, need, opts.verify)
    if n_errors:
        problems.extend(f"key {r[0]}: {r[5]}" for r in reader.listing() if r[5])

    if opts.keys:
        return _key_records(reader, task, n_partitioned, bad_shards, problems, opts, loc_matches)

    step, source = _step(reader, task, bad_shards, problems)

    if opts.verify:
        for _, err in reader.verify_all():
            text = describe_exception(err)
            if text not in problems:
                problems.append(text)

    nonfinite, l2 = (
        _value_stats(reader, problems) if opts.stats and not bad_shards else (None, None)
    )

    rec = Record(
        "checkpoint",
        task.location,
        task.name,
        kind=_kind(reader, task),
        keys=n_keys,
        parameters=parameters,
        bytes=storage.index_bytes + shard_bytes,
        dtypes=dict(sorted((dtype_name(c), k) for c, k in codes.items())),
        shards=reader.header.num_shards,
        step=step,
        step_source=source,
        nonfinite=nonfinite,
        l2=l2,
    )
    if problems:
        rec.status, rec.error = "error", _summary(problems)
    return [rec]


def _value_stats(reader: Reader, problems: List[str]) -> Tuple[Optional[int], Optional[float]]:
    """(values that are NaN or Inf, L2 norm of the finite values) over every numeric tensor;
    (None, None) with the problem noted when the values cannot be read."""
    keys = [k for k in reader.keys() if has_moments(reader.entry(k).dtype_code)]
    try:
        moments = checkpoint_moments(reader, keys).values()
    except CheckpointError as err:
        text = describe_exception(err)
        if text not in problems:
            problems.append(text)
        return None, None
    return sum(m.nonfinite for m in moments), math.sqrt(sum(m.l2**2 for m in moments))


# -- the per-key view ---------------------------------------------------------------------


def _key_records(
    reader: Reader,
    task: Checkpoint,
    n_partitioned: int,
    bad_shards: Dict[int, str],
    problems: List[str],
    opts: Options,
    loc_matches: bool,
) -> list:
    # Built natively, without a Python-level call per key: a scan lists every key it meets.
    out: List[Any] = reader.key_records(
        KeyRecord, ("key", task.location, task.name), DTYPE_NAME_CACHE, dtype_name
    )
    if opts.match is not None and not loc_matches:
        out = [r for r in out if opts.match.search(r.key)]
    if (n_partitioned and any(r.partitioned for r in out)) or bad_shards or opts.verify:
        out = [_key_details(reader, rec, bad_shards, opts) for rec in out]
    # Damage of the checkpoint as a whole (shards, entries) also shows as its own record.
    unattributed = [p for p in problems if not p.startswith("key ")]
    if unattributed and (loc_matches or out):
        rec = error_record("checkpoint", task.location, task.name, _summary(unattributed))
        rec.kind = _kind(reader, task)
        out.append(rec)
    return out


def _key_details(
    reader: Reader, rec: KeyRecord, bad_shards: Dict[int, str], opts: Options
) -> KeyRecord:
    """What a key record needs beyond the listing: the bytes of a partitioned tensor (its
    slices'), damage from a missing or truncated shard, a checksum check."""
    if not rec.ok:
        return rec
    changes: Dict[str, Any] = {}
    stored = reader.stored(rec.key) if rec.partitioned or bad_shards else ()
    if rec.partitioned:
        changes["bytes"] = sum(st.entry.size for st in stored)
    broken = [
        bad_shards[st.entry.shard_id]
        for st in stored
        if st.entry.size and st.entry.shard_id in bad_shards
    ]
    if broken:
        changes.update(status="error", error=broken[0])
    elif opts.verify:
        try:
            reader.verify_key(rec.key)
        except Exception as err:  # noqa: BLE001
            changes.update(status="error", error=describe_exception(err))
    return rec._replace(**changes) if changes else rec
