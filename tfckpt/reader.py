"""The reader: entries, values, slices and the object graph of one checkpoint.

Reading flows one way: what the user pointed at (``files.locate``) -> where the bytes are
(``storage``) -> the core's table and entries -> this reader -> numpy arrays. Upper layers
(writer, editing, tools, scan, refs, the command) use only the public names below.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union, cast

from ._core import core
from .dtypes import STRING, VARIANT, by_code, numpy_dtype
from .entries import Entry, Header, StoredEntry, Variant, check_versions
from .errors import (
    CheckpointError,
    ChecksumMismatchError,
    CorruptCheckpointError,
    MissingShardError,
    NotACheckpointError,
    UnreadableShardError,
    UnsupportedCheckpointError,
)
from .files import check_git_lfs_pointer, is_url, locate, resolve_prefix
from .keys import OBJECT_GRAPH_KEY
from .slices import (
    Bounds,
    Index,
    TensorSlice,
    check_coverage,
    full_bounds,
    normalize_index,
    place,
    plan_assembly,
    slice_key,
    volume,
)
from .storage import IndexMissingError, LocalStorage, check_range, checksum, owned_bytes
from .tensor_proto import decode_variant

__all__ = [
    "open",
    "Reader",
    "Entry",
    "Header",
    "StoredEntry",
    "TensorSlice",
    "Variant",
    "OBJECT_GRAPH_KEY",
]

_HOST_BIG_ENDIAN = sys.byteorder == "big"
# Least bytes per element in a data file, for dtypes whose elements vary in size: a string
# has at least its one-byte length varint, a variant its length and its checksum.
_LEAST_BYTES = {STRING: 1, VARIANT: 5}


def open(
    path: "str | os.PathLike[str]",
    *,
    mmap: bool = True,  # noqa: A001
    storage_options: Optional[Dict[str, Any]] = None,
    limits: Any = None,
) -> "Reader":
    """Opens a checkpoint for reading.

    `path` may be a prefix, its ``.index`` or a ``.data-*`` file, a directory with a
    ``checkpoint`` state file, the state file itself, or a SavedModel directory::

        with tfckpt.open("train/ckpt-3") as ckpt:
            kernel = ckpt["model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"]

    Format V1 checkpoints (``Saver(write_version=V1)``) open too: a V1 file, a sharded
    pattern (``model.ckpt-?????-of-00003``), one of its shard files, or a directory or
    state file naming one. They come back as a :class:`tfckpt.v1.V1Reader`, which has
    this reader's interface (``header.format == "V1"``).

    Values come back as zero-copy views of the memory-mapped data files. Like
    ``numpy.memmap``, such a view kills the process with SIGBUS when touched after another
    process truncated the file; with ``mmap=False`` every value is read into memory the
    caller owns instead. tfckpt's own passes (checksums, slices, strings) never touch a
    mapping that can shrink: a file changed under a reader is a CorruptCheckpointError
    that says so.

    `path` may also be an fsspec URL (``s3://bucket/run/ckpt-3``, ``gs://...``,
    ``https://...``, or a directory URL with a ``checkpoint`` file), with `storage_options`
    for its filesystem: the index is fetched once, then only the byte ranges values need.
    Every request is bounded in time and size by `limits` (a
    :class:`tfckpt.remote.RemoteLimits`; its defaults when None): a misbehaving server is
    an UnreadableError naming the URL and the bound, never a hang.
    """
    if is_url(path):
        from .remote import V1_SET_URL, v1_files

        url = os.fspath(path)
        if not V1_SET_URL.match(url):  # (its '?' must never reach a server: a query)
            try:
                return Reader(url, storage_options=storage_options, limits=limits)
            except NotACheckpointError:
                # A format V1 file at a URL? Its files are fetched whole.
                files = v1_files(url, storage_options, limits)
                if files is None:
                    raise
        else:
            files = v1_files(url, storage_options, limits)
        from .v1 import V1Reader

        return V1Reader.from_buffers(url, files or [])  # type: ignore[return-value]
    if isinstance(path, str) and path and path[-1] not in "/\\":
        # The common case first, in as few system calls as it takes: `path` is a prefix
        # whose .index opens. Anything else (a directory, a state file, an .index or data
        # file name, format V1) is found by files.locate.
        try:
            return Reader(storage=LocalStorage(path, mmap=mmap))
        except IndexMissingError:
            pass
        except NotACheckpointError:
            if not os.path.isdir(path + ".index"):  # (a directory: perhaps `path` names one)
                raise
        except ValueError as e:  # a NUL in the path: files.locate says what is wrong
            if isinstance(e, CheckpointError):
                raise
    found = locate(path)
    if found.format == "V1":
        from .v1 import V1Reader

        return V1Reader(found)  # type: ignore[return-value]
    return Reader(storage=LocalStorage(found.prefix, mmap=mmap))


# Indexes of up to this many entries are decoded whole at the first entry() (a few hundred
# microseconds at most); larger ones entry by entry, so that one lookup in an index of a
# million keys costs what it needs, and whole once this many have been asked for (a loop
# over the keys: one native call then costs half of the calls one by one).
_DECODE_ALL_UP_TO = 4096
# Headers already read and checked, by their fields: a Header is immutable, and the
# checkpoints a script opens nearly all have the same one.
_HEADERS: Dict[Tuple[Any, ...], Header] = {}
_DECODE_ALL_AFTER = 1024


def _slices_of(extents: Sequence[Sequence[Tuple[int, int]]]) -> Tuple[TensorSlice, ...]:
    return tuple(TensorSlice.from_core(sl) for sl in extents)


@contextmanager
def _shard_errors(e: Entry) -> Iterator[None]:
    """Adds the key (and shard) of `e` to a storage's error about its data shard."""
    try:
        yield
    except UnreadableShardError as err:
        raise UnreadableShardError(
            f"{err} (needed for key {e.key})",
            path=err.path,
            key=e.key,
            shard=e.shard_id,
            reason=err.reason,
        ) from None
    except MissingShardError as err:  # a git-lfs pointer stays one
        raise type(err)(
            f"{err} (needed for key {e.key})", path=err.path, key=e.key, shard=e.shard_id
        ) from None
    except CorruptCheckpointError as err:
        raise err.with_context(key=e.key, shard=e.shard_id) from None


class Reader(Mapping[str, Any]):
    """A read-only mapping from checkpoint keys to numpy arrays.

    Keys are exactly those ``tf.train.list_variables`` lists. Values are read on access.
    Use :meth:`entry` for metadata without reading data, :meth:`stored` for the payloads
    behind a key, :meth:`payload` for their raw bytes.
    """

    def __init__(
        self,
        path: "str | os.PathLike[str] | None" = None,
        *,
        storage: Any = None,
        mmap: bool = True,
        storage_options: Optional[Dict[str, Any]] = None,
        limits: Any = None,
    ) -> None:
        if storage is None:
            if path is None:
                raise TypeError("give a path or a storage")
            if is_url(path):  # s3://, gs://, http(s):// ... (tfckpt.remote)
                from .remote import open_storage

                storage = open_storage(os.fspath(path), storage_options, limits)
            else:
                storage = LocalStorage(resolve_prefix(path), mmap=mmap)
        self._storage = storage
        self.prefix: str = storage.prefix
        self.index_path: str = storage.index_path
        self._index_buffer = storage.index_buffer()
        check_git_lfs_pointer(self.index_path, self._index_buffer)
        self._index = core.Index(self._index_buffer, self.index_path)
        num_shards, endianness, producer, min_consumer, bad = self._index.header
        fields = (num_shards, endianness, producer, min_consumer, tuple(bad))
        header = _HEADERS.get(fields)
        if header is None:  # a header not seen before: checked, then kept (they repeat)
            header = Header(num_shards, "big" if endianness == 1 else "little", *fields[2:])
            self.header = header
            self._check_header()
            if len(_HEADERS) >= 256:
                _HEADERS.clear()
            _HEADERS[fields] = header
        self.header = header
        pin = getattr(storage, "pin", None)
        if pin is not None:  # the data shards as they are with this index
            pin(num_shards)
        self._swap = (self.header.endianness == "big") != _HOST_BIG_ENDIAN
        self._keys: Optional[List[str]] = None
        self._entries: Dict[Any, Entry] = {}
        self._all_decoded = False
        self._object_graph: Any = None

    # -- the header ---------------------------------------------------------------------
    def _check_header(self) -> None:
        h = self.header
        where = self.index_path
        check_versions(where, h.producer, h.min_consumer, h.bad_consumers)
        if h.endianness not in ("little", "big"):
            raise UnsupportedCheckpointError(
                f"{where}: unknown endianness in the header", path=where
            )

    # -- the mapping ----------------------------------------------------------------------
    def keys(self) -> List[str]:  # type: ignore[override]
        """Sorted keys, as ``tf.train.list_variables`` lists them (slice keys hidden)."""
        if self._keys is None:
            self._keys = self._index.keys()
        return list(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        if self._keys is None:
            self._keys = self._index.keys()
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (str, bytes)):
            return False
        return key in self._index and not self._index.is_hidden(key)

    def __getitem__(self, key: str) -> Any:
        return self.read(key)

    def items(self) -> Any:
        """(key, array) pairs, reading each value as it is reached."""
        return ((k, self.read(k)) for k in self.keys())

    def listing(self, hidden: bool = False) -> Sequence[Tuple]:
        """Fast metadata of every listed key: rows of (key, dtype, shape, size,
        num_elements, error or None, partitioned), built natively in one call."""
        return self._index.listing(hidden)

    def summary(self) -> Tuple:
        """Totals over the index in one native pass: (keys, elements, keys with a bad
        entry, partitioned keys, {dtype code: keys}, bytes the data shards must hold)."""
        return self._index.totals()

    def key_records(self, cls: type, lead: tuple, names: Tuple[str, ...], name_of: Any) -> list:
        """One `cls` (a tuple subclass) per listed key, built natively: `lead`'s items, then
        key, dtype name (``name_of(code)``), shape, num_elements, size, partitioned, status
        and error. For bulk listings (``tfckpt.scan``)."""
        return self._index.key_records(cls, lead, names, name_of)

    @property
    def raw_keys(self) -> List[bytes]:
        """Every key of the index after the header, slice keys included, as bytes."""
        return self._index.raw_keys()

    @property
    def has_object_graph(self) -> bool:
        """Whether this is an object-based checkpoint (it stores an object graph)."""
        return OBJECT_GRAPH_KEY in self._index

    # -- entries --------------------------------------------------------------------------
    def entry(self, key: Union[str, bytes]) -> Entry:
        """The metadata of `key`: dtype, shape, shard, offset, size, CRC, slices."""
        # An Entry is immutable: each is decoded once per Reader (the loop every script
        # writes, entry() for each key, then costs a dictionary lookup per call).
        try:
            return self._entries[key]
        except KeyError:
            pass
        e = None
        if not self._all_decoded and (
            len(self._index) <= _DECODE_ALL_UP_TO or len(self._entries) >= _DECODE_ALL_AFTER
        ):
            # A small index is decoded whole, in one native call, at the first entry(); a
            # larger one once a script has asked for many of its entries.
            decoded = cast(Dict[Any, Entry], self._index.entry_objects(Entry, _slices_of))
            decoded.update(self._entries)  # bytes keys asked for so far stay as they are
            self._entries, self._all_decoded = decoded, True
            e = decoded.get(key)
        if e is None:
            e = self._entries[key] = self._decode_entry(key)
        return e

    def _decode_entry(self, key: Union[str, bytes]) -> Entry:
        return self._index.entry_object(key, Entry, _slices_of)

    def raw_entry(self, key: Union[str, bytes]) -> bytes:
        """The serialized BundleEntryProto of `key`, exactly as stored."""
        return self._index.raw_value(key)

    def slice_entry(self, key: str, s: TensorSlice) -> Entry:
        """The stored entry of slice `s` of partitioned tensor `key` (its key reads
        ``"key (slice spec)"`` in messages); raises if the index does not hold it."""
        raw = slice_key(key, s)
        if raw not in self._index:
            raise CorruptCheckpointError(
                f"{self.index_path}: partitioned tensor {key}: the entry of slice "
                f"{s.spec} is missing",
                path=self.index_path,
                key=key,
            )
        sub = self.entry(raw)
        return Entry(
            f"{key} (slice {s.spec})",
            sub.dtype_code,
            sub.shape,
            sub.shard_id,
            sub.offset,
            sub.size,
            sub.crc32c,
            sub.slices,
            sub.num_elements,
        )

    def stored(self, key: Union[str, bytes]) -> Tuple[StoredEntry, ...]:
        """The payloads behind `key`: one for a whole tensor, one per slice of a partitioned
        tensor (each with its slice and its own entry), in the order the index lists them."""
        e = self.entry(key)
        if not e.slices:
            return (StoredEntry(e.key, None, e),)
        return tuple(StoredEntry(e.key, s, self.slice_entry(e.key, s)) for s in e.slices)

    def stored_size(self, key: Union[str, bytes]) -> int:
        """Bytes `key` takes in the data files (every slice of a partitioned tensor)."""
        return sum(st.entry.size for st in self.stored(key))

    # -- data shards ----------------------------------------------------------------------
    def location(self, key: Union[str, bytes]) -> Tuple[int, int]:
        """(data shard, offset) where the bytes of `key` start; (-1, 0) for a partitioned
        tensor, whose slices lie anywhere. Sorting keys by it reads the shards in sequence."""
        e = self.entry(key)
        return (e.shard_id, e.offset) if not e.slices else (-1, 0)

    def shard_path(self, shard_id: int) -> str:
        return self._storage.shard_path(shard_id, self.header.num_shards)

    def payload(
        self, e: Entry, owned: bool = False, *, start: int = 0, size: Optional[int] = None
    ) -> Any:
        """The bytes of one stored entry in its data shard (a buffer, zero-copy where the
        storage maps the file; with `owned`, memory the caller owns, which no change to the
        file can take away), bounds-checked against the shard; CRC not checked. `start` and
        `size` ask for a part of them (a byte range within the entry)."""
        if size is None:
            size = e.size - start
        if start < 0 or size < 0 or start + size > e.size:
            raise ValueError(
                f"bytes [{start}, {start + size}) are outside the {e.size}-byte entry of {e.key}"
            )
        return self._fetch(e, start, size, owned)

    def _fetch(self, e: Entry, start: int, size: int, owned: bool) -> Any:
        """Bytes [start, start+size) of the payload of `e` (see :meth:`payload`)."""
        self._check_shard_id(e)
        n = self.header.num_shards
        with _shard_errors(e):
            if not owned:
                return self._storage.read(e.shard_id, n, e.offset + start, size)
            check_range(
                self.shard_path(e.shard_id),
                self._storage.shard_size(e.shard_id, n),
                e.offset,
                e.size,
            )
            return owned_bytes(self._storage, e.shard_id, n, e.offset + start, size)

    def payload_chunks(self, e: Entry, start: int, size: int, chunk: int) -> Iterator[Any]:
        """Bytes [start, start+size) of the payload of `e` in pieces of at most `chunk`
        bytes, in memory the caller owns until it asks for the next piece (one buffer,
        reused, where the storage reads files; see :meth:`payload` with `owned`)."""
        if start < 0 or size < 0 or start + size > e.size:
            raise ValueError(
                f"bytes [{start}, {start + size}) are outside the {e.size}-byte entry of {e.key}"
            )
        reader_chunks = getattr(self._storage, "chunks", None)
        if reader_chunks is None:
            for off in range(start, start + size, chunk):
                yield self._fetch(e, off, min(chunk, start + size - off), True)
            return
        self._check_shard_id(e)
        with _shard_errors(e):
            yield from reader_chunks(
                e.shard_id, self.header.num_shards, e.offset + start, size, chunk
            )

    def _check_shard_id(self, e: Entry) -> None:
        if e.shard_id >= self.header.num_shards:
            raise CorruptCheckpointError(
                f"{self.index_path}: key {e.key} is in data shard {e.shard_id}, but the header "
                f"says there are {self.header.num_shards} shards",
                path=self.index_path,
                key=e.key,
                shard=e.shard_id,
            )

    def _checksum(self, e: Entry) -> int:
        self._check_shard_id(e)
        with _shard_errors(e):
            return checksum(self._storage, e.shard_id, self.header.num_shards, e.offset, e.size)

    def _check_crc(self, e: Entry, computed: int) -> None:
        stored = core.unmask_crc(e.crc32c)
        if stored != computed:
            path = self.shard_path(e.shard_id)
            raise ChecksumMismatchError(
                f"TensorBundle at {self.prefix} shard {e.shard_id} ({e.size} bytes): Checksum "
                f"does not match: stored {stored:08d} vs. calculated on the restored bytes "
                f"{computed} (key {e.key}, offset {e.offset}, file {path})",
                path=path,
                key=e.key,
                shard=e.shard_id,
                offset=e.offset,
                stored=stored,
                computed=computed,
            )

    def _check_size(self, e: Entry) -> int:
        itemsize = by_code(e.dtype_code).itemsize
        if itemsize < 0:
            raise UnsupportedCheckpointError(
                f"{self.index_path}: key {e.key} has dtype {e.dtype_name}, which has no "
                "values that can be read",
                path=self.index_path,
                key=e.key,
            )
        if itemsize > 0 and e.size != e.num_elements * itemsize:
            raise CorruptCheckpointError(
                f"{self.index_path}: Invalid size in bundle entry: key {e.key}; stored size "
                f"{e.size}; expected size {e.num_elements * itemsize}",
                path=self.index_path,
                key=e.key,
            )
        return itemsize

    def _check_stored(self, e: Entry) -> None:
        """Raises unless the payload of `e` lies inside its data shard and can hold its
        elements, without reading it: a partitioned tensor's output is allocated from the
        declared shapes before any slice is read, so the declarations are checked first."""
        if e.shard_id >= self.header.num_shards:
            self.payload(e)  # raises the usual error
        size = self._storage.shard_size(e.shard_id, self.header.num_shards)
        least = _LEAST_BYTES.get(e.dtype_code, 0) * e.num_elements
        if e.offset + e.size > size or e.size < least:
            path = self.shard_path(e.shard_id)
            raise CorruptCheckpointError(
                f"{path}: {e.key}: the stored slice takes bytes "
                f"[{e.offset}, {e.offset + e.size}) of a {size}-byte data file and holds "
                f"{e.num_elements} elements (truncated or corrupt shard?)",
                path=path,
                key=e.key,
                shard=e.shard_id,
                offset=e.offset,
            )

    # -- values ---------------------------------------------------------------------------
    def read(self, key: Union[str, bytes], verify: bool = True) -> Any:
        """The value of `key` as a numpy array, bit-exact with TensorFlow's reader.

        Numeric values come back as read-only arrays over the mapped file where the bytes
        allow it. Strings are object arrays of bytes; variants are object arrays of
        :class:`Variant`. Partitioned tensors are assembled from their slices. With
        `verify`, every CRC32C involved is checked.
        """
        e = self.entry(key)
        if e.slices:
            return self._assemble(e, full_bounds(e.shape), verify)
        return self._read_whole(e, verify)

    def _read_whole(self, e: Entry, verify: bool, owned: bool = False) -> Any:
        try:
            return self._read_whole_unchecked(e, verify, owned)
        except CheckpointError as err:
            if isinstance(err, CorruptCheckpointError) and err.path is None:
                # From a payload decoder, which knows the key but not the file.
                raise err.with_context(
                    path=self.shard_path(e.shard_id), key=e.key, shard=e.shard_id, offset=e.offset
                ) from None
            raise
        except ValueError as err:  # numpy cannot hold some valid shapes (> 64 dims, ...)
            raise self._unholdable(e, err) from None

    def _read_whole_unchecked(self, e: Entry, verify: bool, owned: bool) -> Any:
        """`owned`: an array in memory of its own, never a view of a mapping (what tfckpt's
        own copies read from: touching a mapping of a file truncated since kills the
        process). Strings and variants are always read into owned memory first."""
        import numpy as np

        itemsize = self._check_size(e)
        code = e.dtype_code
        if itemsize > 0:
            if owned or self._swap:
                view = self.payload(e, owned=True)
                if verify:
                    self._check_crc(e, core.crc32c(view))
            else:
                if verify:  # read through the storage, not the mapping
                    self._check_crc(e, self._checksum(e))
                view = self.payload(e)
            dtype = numpy_dtype(code)
            if e.num_elements == 0:
                return np.empty(e.shape, dtype)
            arr = np.frombuffer(view, dtype=dtype, count=e.num_elements)
            if self._swap:
                arr = self._byteswap(arr, e)
            return arr.reshape(e.shape)
        view = self.payload(e, owned=True)
        if code == STRING:
            items, crc = core.decode_strings(view, e.num_elements, self._swap, verify, e.key)
            if verify:
                self._check_crc(e, crc)
            arr = np.empty(len(items), dtype=object)
            arr[:] = items
            return arr.reshape(e.shape)
        if code == VARIANT:
            items = self._variant_payloads(e, view, verify)  # checked before any allocation
            arr = np.empty(len(items), dtype=object)
            for i, raw in enumerate(items):
                arr[i] = decode_variant(raw, e.key)
            return arr.reshape(e.shape)
        raise UnsupportedCheckpointError(
            f"key {e.key}: cannot read dtype {e.dtype_name}", key=e.key
        )

    def _variant_payloads(self, e: Entry, view: Any, verify: bool) -> List[bytes]:
        if self._swap:
            raise UnsupportedCheckpointError(
                f"{self.index_path}: key {e.key}: the bundle is of a different endianness "
                "than this machine and holds a variant tensor, whose bytes cannot be "
                "byte-swapped",
                path=self.index_path,
                key=e.key,
            )
        items, crc = core.decode_variants(view, e.num_elements, verify, e.key)
        if verify:
            self._check_crc(e, crc)
        return list(items)

    def variant_payloads(self, key: Union[str, bytes]) -> List[bytes]:
        """The serialized VariantTensorDataProto of each element of variant tensor `key`,
        every checksum verified, without decoding them."""
        e = self.entry(key)
        if e.dtype_code != VARIANT or e.slices:
            raise UnsupportedCheckpointError(
                f"{self.index_path}: key {e.key} is a {e.dtype_name} tensor"
                f"{' stored in slices' if e.slices else ''}, not a whole variant tensor",
                path=self.index_path,
                key=e.key,
            )
        try:
            return self._variant_payloads(e, self.payload(e, owned=True), True)
        except CorruptCheckpointError as err:
            if err.path is None:
                raise err.with_context(
                    path=self.shard_path(e.shard_id), key=e.key, shard=e.shard_id, offset=e.offset
                ) from None
            raise

    def _byteswap(self, arr: Any, e: Entry) -> Any:
        import numpy as np

        unit = by_code(e.dtype_code).swap
        if unit == 0:
            return arr
        if unit < 0:
            raise UnsupportedCheckpointError(
                f"key {e.key}: byte-swapping is not defined for dtype {e.dtype_name}", key=e.key
            )
        return arr.view(np.dtype(f"u{unit}")).byteswap().view(arr.dtype)

    def read_slice(self, key: Union[str, bytes], index: Index, verify: bool = False) -> Any:
        """Reads part of a tensor, touching only the bytes that part needs.

        `index` is numpy basic indexing (``np.s_[1000:2000]``, ``(slice(0, 2), 3)``) or a
        TensorFlow slice spec (``"1000,1000:-"``). Works on partitioned tensors too, reading
        only the stored slices that intersect. Partial reads cannot check a CRC; with
        `verify`, each stored tensor touched is read whole and checked.
        """
        e = self.entry(key)
        bounds, squeeze = normalize_index(e.key, e.shape, index)
        if e.slices:
            out = self._assemble(e, bounds, verify)
        else:
            out = self._region(e, bounds, verify)
        if squeeze:
            out = out.reshape(tuple(b - a for i, (a, b) in enumerate(bounds) if i not in squeeze))
        return out

    def _unholdable(self, e: Entry, err: ValueError) -> UnsupportedCheckpointError:
        """The error for a valid shape numpy cannot hold ((2^62, 0), more than 64 dims)."""
        return UnsupportedCheckpointError(
            f"{self.index_path}: key {e.key}: a {e.dtype_name} tensor of shape "
            f"{list(e.shape)} cannot be held in a numpy array ({err})",
            path=self.index_path,
            key=e.key,
        )

    def _region(self, e: Entry, bounds: Bounds, verify: bool) -> Any:
        """The elements `bounds` of stored tensor `e` as an array of its own, reading only the
        span of bytes from the region's first element to its last (into owned memory)."""
        import numpy as np

        if e.dtype_code in (STRING, VARIANT) or verify or self._swap:
            whole = self._read_whole(e, verify, owned=True)
            return np.array(whole[tuple(slice(a, b) for a, b in bounds)])
        itemsize = self._check_size(e)
        try:
            shape = tuple(hi - lo for lo, hi in bounds)
            dtype = numpy_dtype(e.dtype_code)
            if e.num_elements == 0:
                self.payload(e)  # the range check; numpy may refuse the shape: (2^62, 0)
                return np.array(np.empty(e.shape, dtype)[tuple(slice(a, b) for a, b in bounds)])
            if 0 in shape:
                return np.empty(shape, dtype)
            strides = [itemsize] * len(e.shape)
            for i in range(len(e.shape) - 2, -1, -1):
                strides[i] = strides[i + 1] * e.shape[i + 1]
            first = sum(lo * st for (lo, _), st in zip(bounds, strides))
            end = sum((hi - 1) * st for (_, hi), st in zip(bounds, strides)) + itemsize
            data = self._fetch(e, first, end - first, owned=True)
            return np.array(np.ndarray(shape, dtype, buffer=data, strides=tuple(strides)))
        except ValueError as err:  # numpy cannot hold some valid shapes ((2^62, 0), > 64 dims)
            raise self._unholdable(e, err) from None

    def _assemble(self, e: Entry, bounds: Bounds, verify: bool) -> Any:
        """Builds the region `bounds` of a partitioned tensor from its stored slices."""
        import numpy as np

        plan = plan_assembly(self.index_path, e.key, e.slices, e.shape, bounds)
        parts = []
        for s, b, inter in plan:
            if volume(inter) == 0 and volume(bounds) > 0:
                continue
            sub = self.slice_entry(e.key, s)
            want = tuple(hi - lo for lo, hi in b)
            if sub.dtype_code != e.dtype_code or tuple(sub.shape) != want or sub.slices:
                raise CorruptCheckpointError(
                    f"{self.index_path}: partitioned tensor {e.key}: slice {s.spec} is stored "
                    f"as {sub.dtype_name}{list(sub.shape)}, expected {e.dtype_name}{list(want)}",
                    path=self.index_path,
                    key=e.key,
                )
            self._check_size(sub)
            self._check_stored(sub)
            parts.append((sub, b, inter))
        check_coverage(self.index_path, e.key, e.slices, plan, bounds)
        try:
            out = np.empty(tuple(hi - lo for lo, hi in bounds), dtype=numpy_dtype(e.dtype_code))
        except ValueError as err:  # numpy cannot hold some valid shapes ((2^62, 0), > 64 dims)
            raise UnsupportedCheckpointError(
                f"{self.index_path}: key {e.key}: a {e.dtype_name} region of shape "
                f"{[hi - lo for lo, hi in bounds]} cannot be held in a numpy array ({err})",
                path=self.index_path,
                key=e.key,
            ) from None
        for sub, b, inter in parts:
            if volume(inter) > 0:
                local = tuple((lo - blo, hi - blo) for (lo, hi), (blo, _) in zip(inter, b))
                place(out, bounds, self._region(sub, local, verify), inter, inter)
        return out

    # -- checking -------------------------------------------------------------------------
    def verify_entry(self, e: Entry) -> None:
        """Checks the CRC32C of one stored entry (a whole tensor or one stored slice, as
        :meth:`stored` gives them); raises on damage."""
        self._read_whole(e, True)

    def verify_key(self, key: Union[str, bytes]) -> None:
        """Checks every CRC behind `key` (all slices of a partitioned tensor); raises on damage."""
        e = self.entry(key)
        if e.slices:
            self._assemble(e, full_bounds(e.shape), True)
        else:
            self._read_whole(e, True)

    # Whole-checkpoint passes (``tfckpt.scan``): one look at each entry of the index, without
    # building an Entry per key, for checkpoints by the thousand.
    def shard_extents(self) -> Tuple[Dict[int, int], List[CheckpointError]]:
        """How far the payloads reach into each data shard: ``{shard id: end of its furthest
        payload}`` over every entry of the index (slices of partitioned tensors included,
        empty payloads not), and an error for each entry that cannot be placed (undecodable,
        or in a shard the header does not have), in index order. A data shard shorter than
        its extent is truncated."""
        num_shards = self.header.num_shards
        ends: Dict[int, int] = {}
        errors: List[CheckpointError] = []
        for raw in self._index.raw_keys():
            try:
                _, _, shard, offset, size, _, slices, _ = self._index.entry(raw)
            except CheckpointError as err:
                errors.append(err)
                continue
            if slices or size == 0:
                continue
            if not 0 <= shard < num_shards:
                key = raw.decode("utf-8", "backslashreplace")
                errors.append(
                    CorruptCheckpointError(
                        f"key {key} is in data shard {shard}, but the header says there are "
                        f"{num_shards} shards",
                        path=self.index_path,
                        key=key,
                        shard=shard,
                    )
                )
                continue
            if offset + size > ends.get(shard, 0):
                ends[shard] = offset + size
        return ends, errors

    def verify_all(self) -> List[Tuple[str, Exception]]:
        """Checks the CRC32C of every stored payload (each whole tensor, each slice of a
        partitioned one) and goes on past damage: ``(key, error)`` for each payload that
        fails, in index order. The checks of :meth:`verify_entry`, at the speed of the
        checksum: a fixed-size payload is checked straight from its data shard, without an
        array (a data shard that is missing or too short then fails with the storage's own
        error, the one :meth:`shard_extents`' check meets)."""
        num_shards = self.header.num_shards
        failed: List[Tuple[str, Exception]] = []
        for raw in self._index.raw_keys():
            try:
                dtype, _, shard, offset, size, crc, slices, n = self._index.entry(raw)
                if slices:
                    continue  # a partitioned tensor: its slices are entries of their own
                itemsize = by_code(dtype).itemsize
                if itemsize > 0 and size == n * itemsize and 0 <= shard < num_shards:
                    if checksum(self._storage, shard, num_shards, offset, size) == core.unmask_crc(
                        crc
                    ):
                        continue
                self.verify_key(raw)  # raises with the full message
            except Exception as err:  # noqa: BLE001 - every damaged payload is reported
                failed.append((raw.decode("utf-8", "surrogateescape"), err))
        return failed

    # -- the object graph -----------------------------------------------------------------
    @property
    def object_graph(self) -> Any:
        """The TrackableObjectGraph of an object-based checkpoint as a walkable tree,
        or None for a name-based (TF1 Saver) checkpoint."""
        if self._object_graph is None and OBJECT_GRAPH_KEY in self._index:
            from .objects import ObjectGraph

            raw = self.read(OBJECT_GRAPH_KEY)
            if raw.shape != () or not isinstance(raw.item(), bytes):
                raise CorruptCheckpointError(
                    f"{self.index_path}: {OBJECT_GRAPH_KEY} is not a scalar string",
                    path=self.index_path,
                    key=OBJECT_GRAPH_KEY,
                )
            self._object_graph = ObjectGraph.parse(raw.item(), self)
        return self._object_graph

    # -- life cycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Drops this reader's references to its files. Arrays already returned stay valid:
        each keeps its mapping alive."""
        self._storage.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tfckpt.Reader {self.prefix!r}: {len(self)} keys, {self.header.num_shards} shards>"
