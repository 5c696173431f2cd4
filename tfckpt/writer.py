"""Writing checkpoints that TensorFlow restores as if it had written them.

``write(prefix, tensors)`` for a mapping, ``Writer(prefix)`` to stream tensors one by one
(partitioned slices, several data shards with a size limit). Object-based checkpoints are
built from plain paths: ``write(p, {"model/dense/kernel": w}, object_graph=True)``.
Files are written under temporary names and appear only when complete.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._core import core
from .casting import cast_value
from .dtypes import STRING, VARIANT, DType, by_code, by_name, code_of
from .errors import CheckpointError, InvalidArgumentError
from .files import (
    DATA_NAME_RE,
    STATE_FILE,
    commit_lock_path,
    data_filename,
    read_checkpoint_state,
)
from .keys import OBJECT_GRAPH_KEY, object_key
from .slices import slice_key

__all__ = [
    "Writer",
    "write",
    "dtype_code_of",
    "update_checkpoint_state",
    "object_key",
    "OBJECT_GRAPH_KEY",
]
_HOST_BIG_ENDIAN = sys.byteorder == "big"


def _np():
    import numpy as np

    return np


def dtype_code_of(array: Any) -> int:
    """The TensorFlow DataType an array is written as (strings: bytes/str object arrays);
    quantized types are written only when asked for by name."""
    try:
        return code_of(array.dtype)
    except ValueError as e:
        raise InvalidArgumentError(str(e)) from None


def as_array(key: str, value: Any, dtype: "str | int | DType | None") -> Tuple[Any, int]:
    """The array and DataType code the writer stores for `value` (see :meth:`Writer.add`).

    A numpy array from an array, scalar, bytes, str or nested list; clear errors for
    ragged input."""
    np = _np()
    if isinstance(value, (bytes, str)):
        value = np.array(value if isinstance(value, bytes) else value.encode("utf-8"), dtype=object)
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except ValueError as e:
            raise InvalidArgumentError(
                f"{key}: cannot make an array ({e}); ragged input?"
            ) from None
        if value.dtype == object and any(
            isinstance(x, (list, tuple, np.ndarray)) for x in value.reshape(-1)
        ):
            raise InvalidArgumentError(
                f"{key}: ragged nested sequence; every row must have the same length"
            )
    if dtype is not None:
        try:
            d = (
                dtype
                if isinstance(dtype, DType)
                else by_code(dtype)
                if isinstance(dtype, int)
                else by_name(dtype)
            )
        except ValueError as e:
            raise InvalidArgumentError(f"{key}: {e}") from None
        if d.numpy is None or d.itemsize < 0:
            raise InvalidArgumentError(f"{key}: dtype {d.name} cannot be saved in a checkpoint")
        if d.code == STRING:
            value = value.astype(object)
        elif value.dtype != d.to_numpy():
            # Asking for a dtype asks for the cast: values are rounded to it (0.1 into
            # float32), but one that does not fit at all (1e300 into float32, 300 into
            # uint8, NaN into an integer) is an error, never stored as something else.
            if value.dtype == object or value.dtype.kind in "SU":
                raise InvalidArgumentError(
                    f"{key}: a {value.dtype} value cannot be stored as {d.name}"
                )
            value = cast_value(key, value, d.to_numpy(), allow_cast=True)
        return value, d.code
    try:
        return value, dtype_code_of(value)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"{key}: {e}") from None


def _check_value(key: str, arr, code: int) -> None:
    """Raises the errors `_add_array` would raise for this value, before anything is
    written: non-strings in a string tensor, dtypes that cannot be saved."""
    if code == STRING:
        for x in arr.flat:
            if not isinstance(x, (bytes, str)):
                raise InvalidArgumentError(
                    f"{key}: a string tensor holds {type(x).__name__}, not bytes or str"
                )
    elif code != VARIANT and by_code(code).itemsize <= 0:
        raise InvalidArgumentError(f"{key}: dtype {by_code(code).name} cannot be saved")


def _string_items(key: str, arr) -> List[bytes]:
    out = []
    for x in arr.reshape(-1).tolist():
        if isinstance(x, bytes):
            out.append(x)
        elif isinstance(x, str):
            out.append(x.encode("utf-8"))
        else:
            raise InvalidArgumentError(
                f"{key}: a string tensor holds {type(x).__name__}, not bytes or str"
            )
    return out


class Writer:
    """Streams tensors into a new checkpoint at `prefix`.

    ::

        with tfckpt.Writer("out/ckpt-1") as w:
            w.add("dense/kernel", kernel)                         # a whole tensor
            w.add_slice("emb", (1000, 64), np.s_[0:500], part0)   # a partitioned one
            w.add_slice("emb", (1000, 64), np.s_[500:1000], part1)

    Nothing appears at `prefix` until the block ends without error. `max_shard_bytes`
    starts a new data shard before a tensor that would pass the limit. An existing checkpoint
    at `prefix` is replaced only with ``overwrite=True``, and then atomically: the new index
    replaces the old in one rename, and the old data files are removed after (with any that
    an interrupted write left under this prefix's data file names).

    The commit is exclusive: writers to one prefix commit one at a time (a lock file
    created with O_EXCL beside the index), `overwrite` is checked again at that moment, and
    stale data files are removed only while the lock is held, so they are never those of a
    checkpoint another writer committed.
    """

    #: Seconds a writer waits for another writer's commit at the same prefix to end.
    commit_wait = 10.0

    def __init__(
        self,
        prefix: "str | os.PathLike[str]",
        *,
        max_shard_bytes: int = 0,
        overwrite: bool = False,
        update_state: bool = False,
        big_endian: bool = False,
        storage_options: Optional[dict] = None,
    ) -> None:
        self.prefix = os.fspath(prefix)
        # A URL prefix (s3://, gs://, memory:// ...): written to a local staging directory,
        # then uploaded by close(), the index last (tfckpt.remote.upload).
        self._remote: Optional[Tuple[str, Optional[dict], str]] = None
        if "://" in self.prefix:
            self.prefix = self._stage_remote(self.prefix, storage_options, overwrite, update_state)
        # Payload byte order: little-endian as every TensorFlow release writes, or big-endian
        # (to keep a big-endian checkpoint's order when editing it).
        self.big_endian = big_endian
        self._swap = big_endian != _HOST_BIG_ENDIAN
        directory = os.path.dirname(self.prefix) or "."
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as e:
            raise CheckpointError(
                f"cannot write {self.prefix}: cannot create directory {directory}: {e.strerror}"
            ) from None
        if os.path.exists(self.prefix + ".index") and not overwrite:
            raise CheckpointError(
                f"{self.prefix}.index exists; pass overwrite=True "
                "(--overwrite) to replace that checkpoint"
            )
        self._update_state = update_state
        self._overwrite = overwrite
        self._native = core.BundleWriter(self.prefix, max_shard_bytes, big_endian)
        self._keys: set = set()
        self._sliced: Dict[str, Tuple[int, Tuple[int, ...]]] = {}
        self._slice_bounds: Dict[str, Tuple[Any, int]] = {}  # (n x rank x 2 array, n)
        self._closed = False

    def _stage_remote(
        self, url: str, storage_options: Optional[dict], overwrite: bool, update_state: bool
    ) -> str:
        """The local prefix a checkpoint for `url` is written to before it is uploaded."""
        import tempfile

        from . import remote

        if not remote.is_url(url):
            return url
        if update_state:
            raise InvalidArgumentError(f"{url}: update_state is for local directories")
        if not overwrite and remote.exists(url + ".index", storage_options):
            raise CheckpointError(
                f"{url}.index exists; pass overwrite=True to replace that checkpoint"
            )
        staging = tempfile.mkdtemp(prefix="tfckpt-upload-")
        self._remote = (url, storage_options, staging)
        return os.path.join(staging, url.rstrip("/").rsplit("/", 1)[-1] or "ckpt")

    def _finish_remote(self, num_shards: int) -> None:
        import shutil

        from . import remote

        assert self._remote is not None
        url, options, staging = self._remote
        try:
            remote.upload(self.prefix, num_shards, url, options)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.prefix = url

    def _stale_shards(self, num_shards: int) -> List[str]:
        """Data files named for this prefix that the new index does not use: the replaced
        checkpoint's, and any that an interrupted write left under final names."""
        directory = os.path.dirname(self.prefix) or "."
        base = os.path.basename(self.prefix)
        keep = {
            os.path.basename(data_filename(self.prefix, i, num_shards)) for i in range(num_shards)
        }
        try:
            names = os.listdir(directory)
        except OSError:
            return []
        return [
            os.path.join(directory, n) for n in names if n not in keep and _is_data_file_of(n, base)
        ]

    # -- adding ---------------------------------------------------------------------------
    def _check_key(self, key: str) -> None:
        if self._closed:
            raise CheckpointError("this Writer is closed")
        if not isinstance(key, str) or not key:
            raise InvalidArgumentError(f"a key must be a non-empty str, not {key!r}")
        if key in self._keys:
            raise InvalidArgumentError(f"Adding duplicate key: {key}")

    def add(self, key: str, value: Any, *, dtype: "str | int | DType | None" = None) -> None:
        """Adds a whole tensor. `value` is a numpy array (any dtype tfckpt reads), a scalar,
        bytes/str, or a nested list; `dtype` (a tf.DType name such as ``"qint8"``, a
        DataType code, or a :class:`tfckpt.dtypes.DType`) converts first, e.g. to write
        ``qint8`` or ``bfloat16`` from plain numbers; an array already of that dtype's numpy
        type is written as it is. Values are rounded to `dtype` (``0.1`` into float32), but
        one that does not fit it at all (``1e300`` into float32, ``300`` into uint8, NaN
        into an integer) is an InvalidArgumentError naming it: never stored as inf or a
        wrapped integer."""
        self._check_key(key)
        arr, code = as_array(key, value, dtype)
        self._add_checked(key, arr, code)

    def _add_checked(self, key: str, arr: Any, code: int) -> None:
        _check_value(key, arr, code)
        self._add_array(key, arr, code)
        self._keys.add(key)

    def copy(self, reader: Any, key: str, as_: Optional[str] = None) -> None:
        """Copies tensor `key` of `reader` (a :class:`tfckpt.Reader`) byte for byte, every
        slice of a partitioned tensor included, under the key `as_` (default: the same key).
        Nothing is decoded; each payload's CRC32C is checked as it is written, and the
        payload keeps its byte order (give the Writer the reader's endianness). From a
        format V1 reader, whose records are not V2 payloads, the value is read and written
        whole instead."""
        new_key = key if as_ is None else as_
        if reader.header.format == "V1":  # no V2 payloads to move: the values, re-encoded
            self.add(new_key, reader.read(key), dtype=reader.entry(key).dtype_code)
            return
        stored = reader.stored(key)
        first = stored[0]
        if first.slice is None:
            e = first.entry
            self._check_key(new_key)
            self._native.add_raw(new_key, e.dtype_code, tuple(e.shape), reader.payload(e), e.crc32c)
            self._keys.add(new_key)
            return
        self._check_key(new_key)
        whole = reader.entry(key)
        for st in stored:
            e = st.entry
            extents = st.slice.core_extents()
            self._native.add_slice_meta(new_key, whole.dtype_code, tuple(whole.shape), extents)
            self._native.add_raw(
                slice_key(new_key, extents),
                e.dtype_code,
                tuple(e.shape),
                reader.payload(e),
                e.crc32c,
            )
        self._sliced[new_key] = (whole.dtype_code, tuple(whole.shape))
        self._keys.add(new_key)

    def _add_array(self, key, arr, code: int) -> None:
        np = _np()
        shape = tuple(int(d) for d in arr.shape)
        if code == STRING:
            self._native.add_strings(key, shape, _string_items(key, arr))
        elif code == VARIANT:
            from .tensor_proto import variant_to_bytes

            if self.big_endian:
                raise InvalidArgumentError(
                    f"{key}: variant tensors cannot be written to a "
                    "big-endian checkpoint (TensorFlow cannot read them)"
                )
            self._native.add_variants(
                key, shape, [variant_to_bytes(v) for v in arr.reshape(-1).tolist()]
            )
        else:
            if by_code(code).itemsize <= 0:
                raise InvalidArgumentError(f"{key}: dtype {by_code(code).name} cannot be saved")
            data = np.ascontiguousarray(arr)
            unit = by_code(code).swap
            if self._swap and unit > 0:
                data = data.reshape(-1).view(np.dtype(f"u{unit}")).byteswap()
            self._native.add(
                key, code, shape, data.view(np.uint8).reshape(-1) if data.size else b""
            )

    def add_slice(
        self, key: str, full_shape: Sequence[int], index, value, *, dtype: Optional[str] = None
    ) -> None:
        """Adds one slice of a partitioned tensor of `full_shape`. `index` is a tuple of
        Python slices (``np.s_[0:500]``) or a TF slice spec (``"0,500:-"``). TensorFlow
        restores partitioned half, uint16 and string tensors only as whole slices; tfckpt
        reads them all. A slice that repeats or overlaps one already added is refused
        before anything is written. ``np.s_`` gives explicit extents for every dimension,
        as the TF1 Saver does (``0,3:0,3``); ``"-"`` in a spec is TF's whole dimension."""
        if self._closed:
            raise CheckpointError("this Writer is closed")
        arr, code = as_array(key, value, dtype)
        full_shape = tuple(int(d) for d in full_shape)
        extents = _extents(key, full_shape, index)
        want = tuple(d if ln < 0 else ln for (st, ln), d in zip(extents, full_shape))
        if tuple(arr.shape) != want:
            raise InvalidArgumentError(
                f"{key}: slice {index!r} of {list(full_shape)} has shape "
                f"{list(want)}, the value has {list(arr.shape)}"
            )
        if all(ln < 0 or (st == 0 and ln == d) for (st, ln), d in zip(extents, full_shape)):
            # A full slice is a plain tensor (as BundleWriter::AddSlice), of the dtype asked
            # for: the array alone cannot tell qint8 from int8.
            self._check_key(key)
            self._add_checked(key, arr, code)
            return
        if key in self._keys:
            raise InvalidArgumentError(f"Adding duplicate key: {key} (already a whole tensor)")
        prev = self._sliced.get(key)
        if prev is not None and prev != (code, full_shape):
            raise InvalidArgumentError(f"{key}: slices disagree on dtype or full shape")
        # Everything that can be refused is checked before the slice is registered, so a
        # refused slice leaves no trace in the full tensor's entry.
        _check_value(key, arr, code)
        bounds = tuple(
            (0, d) if ln < 0 else (st, st + ln) for (st, ln), d in zip(extents, full_shape)
        )
        other = self._overlapped_slice(key, bounds)
        if other is not None:
            what = "is already added" if other == bounds else f"overlaps slice {other}"
            raise InvalidArgumentError(
                f"{key}: slice {bounds} {what}; the slices of a partitioned tensor must not overlap"
            )
        self._native.add_slice_meta(key, code, full_shape, extents)
        self._sliced[key] = (code, full_shape)
        self._record_slice(key, bounds)
        self._add_array(slice_key(key, extents), arr, code)

    def _overlapped_slice(self, key: str, bounds):
        """The (start, stop) bounds of an added slice of `key` that overlaps `bounds`, or
        None. One vectorized pass over the slices added so far."""
        np = _np()
        buf, n = self._slice_bounds.get(key, (None, 0))
        if not n:
            return None
        new = np.asarray(bounds, dtype=np.int64)
        old = buf[:n]
        hit = np.all(
            np.maximum(old[:, :, 0], new[:, 0]) < np.minimum(old[:, :, 1], new[:, 1]), axis=1
        )
        if not hit.any():
            return None
        return tuple(tuple(int(x) for x in dim) for dim in old[int(np.argmax(hit))])

    def _record_slice(self, key: str, bounds) -> None:
        np = _np()
        buf, n = self._slice_bounds.get(key, (None, 0))
        if buf is None or n == len(buf):
            grown = np.empty((max(8, 2 * n), len(bounds), 2), dtype=np.int64)
            if n:
                grown[:n] = buf[:n]
            buf = grown
        buf[n] = bounds
        self._slice_bounds[key] = (buf, n + 1)

    def add_raw(
        self, key: Union[str, bytes], dtype_code: int, shape: Sequence[int], data, crc32c: int
    ) -> None:
        """Copies a stored payload through unchanged (CRC re-checked as it is written)."""
        self._native.add_raw(key, dtype_code, tuple(shape), data, crc32c)
        if isinstance(key, str):
            self._keys.add(key)

    def add_slice_meta(self, key: str, dtype_code: int, full_shape, extents) -> None:
        self._native.add_slice_meta(key, dtype_code, tuple(full_shape), list(extents))
        self._sliced[key] = (dtype_code, tuple(full_shape))

    # -- finishing --------------------------------------------------------------------------
    def close(self) -> str:
        """Writes the index and moves every file into place; returns the prefix."""
        if self._closed:
            return self.prefix
        self._closed = True
        try:
            with _commit_lock(self.prefix, self.commit_wait):
                if not self._overwrite and os.path.lexists(self.prefix + ".index"):
                    raise CheckpointError(
                        f"{self.prefix}.index exists: another writer committed a checkpoint "
                        "at this prefix after this one was created; nothing was written "
                        "(pass overwrite=True to replace it)",
                        path=self.prefix + ".index",
                    )
                num_shards = self._native.finish()
                if self._remote is None:
                    for old in self._stale_shards(num_shards):
                        try:
                            os.unlink(old)
                        except OSError:
                            pass
        except BaseException:
            self._native.abort()
            raise
        if self._remote is not None:
            self._finish_remote(num_shards)
            return self.prefix
        if self._update_state:
            try:
                update_checkpoint_state(self.prefix)
            except CheckpointError as e:
                raise CheckpointError(
                    f"the checkpoint {self.prefix} was written, but the 'checkpoint' state "
                    f"file was not updated: {e}",
                    path=e.path,
                ) from None
        return self.prefix

    def abort(self) -> None:
        """Discards everything written; any previous checkpoint at the prefix is untouched."""
        if not self._closed:
            self._closed = True
            self._native.abort()
            if self._remote is not None:
                import shutil

                shutil.rmtree(self._remote[2], ignore_errors=True)

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.abort()


@contextmanager
def _commit_lock(prefix: str, wait: float) -> Iterator[None]:
    """Holds the commit lock of `prefix`: an exclusive flock on the lock file beside the
    index (:func:`tfckpt.files.commit_lock_path`), which the system releases if the holder
    dies, waiting up to `wait` seconds for another writer's commit; raises CheckpointError."""
    import fcntl

    path = commit_lock_path(prefix)
    deadline = time.monotonic() + wait
    delay = 0.0005
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as e:
            raise CheckpointError(
                f"cannot commit {prefix}: cannot create the lock file {path}: {e.strerror}",
                path=path,
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            if time.monotonic() > deadline:
                raise CheckpointError(
                    f"cannot commit {prefix}: another writer is committing a checkpoint at "
                    f"this prefix (it holds the lock file {path}); nothing was written",
                    path=path,
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            continue
        try:  # the file locked must still be the one at the path (a holder removes it)
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except OSError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(path)
        finally:
            os.close(fd)


def _is_data_file_of(name: str, base: str) -> bool:
    m = DATA_NAME_RE.match(name)
    return m is not None and m.group("prefix") == base


def _extents(key, full_shape, index) -> List[Tuple[int, int]]:
    if isinstance(index, str):
        parts = index.split(":") if index else []
        if len(parts) != len(full_shape):
            raise InvalidArgumentError(
                f"{key}: slice spec {index!r} does not match rank {len(full_shape)}"
            )
        out = []
        for p in parts:
            if p == "-":
                out.append((0, -1))
            else:
                a, b = (int(x) for x in p.split(","))
                out.append((a, b))
        return out
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for i, d in enumerate(full_shape):
        item = index[i] if i < len(index) else slice(None)
        if not isinstance(item, slice):
            raise InvalidArgumentError(f"{key}: slices are given as ranges, not {item!r}")
        start, stop, step = item.indices(d)
        if step != 1 or stop <= start:
            raise InvalidArgumentError(f"{key}: bad slice {item!r} of dimension {i} ({d})")
        out.append((start, stop - start))
    return out


def write(
    prefix: "str | os.PathLike[str]",
    tensors: Mapping[str, Any],
    *,
    object_graph: bool = False,
    save_counter: Optional[int] = None,
    slots: Optional[Mapping[Tuple[str, str, str], Any]] = None,
    dtypes: Optional[Mapping[str, str]] = None,
    max_shard_bytes: int = 0,
    overwrite: bool = False,
    update_state: bool = False,
    storage_options: Optional[dict] = None,
) -> str:
    """Writes a checkpoint of `tensors` and returns its prefix (a path, or an fsspec URL
    such as ``s3://bucket/run/ckpt-1`` with `storage_options`: uploaded complete, the index
    last, so no partial checkpoint is ever visible there).

    By default keys are written as given (a name-based checkpoint, as
    ``tf.compat.v1.train.Saver`` writes). With ``object_graph=True`` the keys are object
    paths (``"model/dense/kernel"``) and the TrackableObjectGraph is built so that
    ``tf.train.Checkpoint(model=...).restore(prefix).assert_consumed()`` passes;
    `save_counter` adds ``save_counter`` as tf.train.Checkpoint.save does, `slots` maps
    (variable path, optimizer path, slot name) to values for optimizers with named slots.
    Every value is checked before anything is written.
    """
    dtypes = dict(dtypes or {})
    arrays: Dict[str, Tuple[Any, int]] = {}
    for key, value in tensors.items():
        arrays[key] = as_array(str(key), value, dtypes.get(key))
    graph_bytes = None
    if object_graph or save_counter is not None or slots:
        from .objects import build_object_graph

        np = _np()
        variables = dict(arrays)
        slot_arrays = {k: as_array(str(k), v, None) for k, v in (slots or {}).items()}
        if save_counter is not None:
            if any(p in ("save_counter", ("save_counter",)) for p in variables):
                raise InvalidArgumentError(
                    "save_counter is given twice: as a value and as save_counter="
                )
            variables["save_counter"] = (np.array(save_counter, dtype=np.int64), 9)
        try:
            graph_bytes, key_of = build_object_graph(list(variables), list(slot_arrays))
        except ValueError as e:
            raise InvalidArgumentError(str(e)) from None
        arrays = {key_of[p]: v for p, v in variables.items()}
        arrays.update({key_of[s]: v for s, v in slot_arrays.items()})
    for key, (arr, code) in arrays.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgumentError(f"a key must be a non-empty str, not {key!r}")
        _check_value(key, arr, code)
    with Writer(
        prefix,
        max_shard_bytes=max_shard_bytes,
        overwrite=overwrite,
        update_state=update_state,
        storage_options=storage_options,
    ) as w:
        for key, (arr, code) in arrays.items():
            w.add(key, arr, dtype=code)
        if graph_bytes is not None:
            w.add(OBJECT_GRAPH_KEY, graph_bytes)
    return os.fspath(prefix)


def update_checkpoint_state(prefix: str, *, max_to_keep: Optional[int] = None) -> None:
    """Records `prefix` as the latest checkpoint in its directory's ``checkpoint`` file, as
    tf.train.CheckpointManager does (relative paths, timestamps, written atomically), so
    ``tf.train.latest_checkpoint`` finds it."""
    from google.protobuf import text_format

    from .proto import CheckpointState

    directory = os.path.dirname(prefix) or "."
    name = os.path.basename(prefix)
    path = os.path.join(directory, STATE_FILE)
    state = CheckpointState()
    if os.path.exists(path):
        try:
            state = read_checkpoint_state(path)
        except CheckpointError:
            state = CheckpointState()
    paths = list(state.all_model_checkpoint_paths)
    stamps = list(state.all_model_checkpoint_timestamps)
    if len(stamps) != len(paths):
        stamps = [time.time()] * len(paths)
    kept = [(p, t) for p, t in zip(paths, stamps) if p != name and os.path.basename(p) != name]
    kept.append((name, time.time()))
    if max_to_keep is not None:
        kept = kept[-max_to_keep:]
    new = CheckpointState(
        model_checkpoint_path=name,
        all_model_checkpoint_paths=[p for p, _ in kept],
        all_model_checkpoint_timestamps=[t for _, t in kept],
    )
    if state.last_preserved_timestamp:
        new.last_preserved_timestamp = state.last_preserved_timestamp
    tmp = f"{path}.tmp{uuid.uuid4().hex}"
    try:
        with open(tmp, "w") as f:
            f.write(text_format.MessageToString(new))
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CheckpointError(
            f"{path}: cannot write the state file: {e.strerror}", path=path
        ) from None
