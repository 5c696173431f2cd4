"""The reader: entries, values, slices and the object graph of one checkpoint."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from .dtypes import by_code, numpy_dtype
from .errors import (
    CheckpointError,
    ChecksumMismatchError,
    CorruptCheckpointError,
    InvalidArgumentError,
    MissingShardError,
    UnsupportedCheckpointError,
)
from .paths import locate, resolve_prefix

__all__ = ["open", "Reader", "Entry", "Header", "TensorSlice", "Variant", "OBJECT_GRAPH_KEY"]

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_HOST_BIG_ENDIAN = sys.byteorder == "big"
_CONSUMER_VERSION = 1  # the bundle version this reader implements (kTensorBundleVersion)


@dataclass(frozen=True)
class Header:
    """The bundle header (key ``""``). For a format V1 checkpoint (``format == "V1"``),
    ``num_shards`` is the number of table files and the versions are those of the first
    file's ``meta.versions``."""

    num_shards: int
    endianness: str  # "little" or "big": byte order of the tensor payloads
    producer: int
    min_consumer: int
    bad_consumers: Tuple[int, ...]
    format: str = "V2"  # "V2" (TensorBundle) or "V1" (SavedTensorSlices tables)


@dataclass(frozen=True)
class TensorSlice:
    """One stored slice of a partitioned tensor: per dimension (start, length), None = whole."""

    extents: Tuple[Tuple[int, Optional[int]], ...]

    def bounds(self, shape: Sequence[int]) -> Tuple[Tuple[int, int], ...]:
        """Per dimension (start, stop) within a tensor of `shape`."""
        return tuple((0, dim) if length is None else (start, start + length)
                     for (start, length), dim in zip(self.extents, shape))

    @property
    def spec(self) -> str:
        """TensorFlow's text form, e.g. ``0,3:-``."""
        return ":".join("-" if length is None else f"{start},{length}"
                        for start, length in self.extents)

    def _native_extents(self) -> List[Tuple[int, int]]:
        return [(0, -1) if length is None else (start, length) for start, length in self.extents]

    def __str__(self) -> str:
        return self.spec


@dataclass(frozen=True)
class Entry:
    """What the index says about one key (a BundleEntryProto)."""

    key: str
    dtype_code: int
    shape: Tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # the masked CRC32C as stored in the entry
    slices: Tuple[TensorSlice, ...]
    num_elements: int

    @property
    def dtype_name(self) -> str:
        """The dtype as ``tf.DType.name`` spells it (``float32``, ``bfloat16``, ``string``)."""
        return by_code(self.dtype_code).name

    @property
    def dtype(self):
        """The numpy dtype of the values (object for strings and variants)."""
        return numpy_dtype(self.dtype_code)

    @property
    def checksum(self) -> int:
        """The unmasked CRC32C of the payload bytes."""
        return _native.unmask_crc(self.crc32c)

    @property
    def is_partitioned(self) -> bool:
        return bool(self.slices)


@dataclass
class Variant:
    """One element of a DT_VARIANT tensor: a VariantTensorDataProto, decoded."""

    type_name: str
    metadata: bytes
    tensors: List[Any]

    def __repr__(self) -> str:
        inner = ", ".join(f"{getattr(t, 'dtype', '?')}{list(getattr(t, 'shape', ()))}"
                          for t in self.tensors)
        return f"Variant({self.type_name!r}, metadata={len(self.metadata)} bytes, tensors=[{inner}])"


Index = Union[str, Tuple[Any, ...], slice, int]


def open(path: "str | os.PathLike[str]") -> "Reader":  # noqa: A001 - mirrors builtins.open
    """Opens a checkpoint for reading.

    `path` may be a prefix, its ``.index`` or a ``.data-*`` file, a directory with a
    ``checkpoint`` state file, the state file itself, or a SavedModel directory::

        with tfckpt.open("train/ckpt-3") as ckpt:
            kernel = ckpt["model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"]

    Format V1 checkpoints (``Saver(write_version=V1)``) open too: a V1 file, a sharded
    pattern (``model.ckpt-?????-of-00003``), one of its shard files, or a directory or
    state file naming one. They come back as a :class:`tfckpt.v1.V1Reader`, which has
    this reader's interface (``header.format == "V1"``).
    """
    found = locate(path)
    if found.format == "V1":
        from .v1 import V1Reader

        return V1Reader(found)  # type: ignore[return-value]
    from .storage import LocalStorage

    return Reader(storage=LocalStorage(found.prefix))


class Reader(Mapping[str, Any]):
    """A read-only mapping from checkpoint keys to numpy arrays.

    Keys are exactly those ``tf.train.list_variables`` lists. Values are read on access.
    Use :meth:`entry` for metadata without reading data.
    """

    def __init__(self, path: "str | os.PathLike[str] | None" = None, *, storage=None) -> None:
        if storage is None:
            if path is None:
                raise TypeError("give a path or a storage")
            from .storage import LocalStorage

            storage = LocalStorage(resolve_prefix(path))
        self._storage = storage
        self.prefix = storage.prefix
        self.index_path = storage.index_path
        self._index_buffer = storage.index_buffer()
        self._index = _native.Index(self._index_buffer, self.index_path)
        num_shards, endianness, producer, min_consumer, bad = self._index.header
        self.header = Header(num_shards, "big" if endianness == 1 else "little",
                             producer, min_consumer, tuple(bad))
        self._check_header()
        self._swap = (self.header.endianness == "big") != _HOST_BIG_ENDIAN
        self._keys: Optional[List[str]] = None
        self._object_graph = None

    # -- the header ---------------------------------------------------------------------
    def _check_header(self) -> None:
        h = self.header
        where = self.index_path
        check_versions(where, h.producer, h.min_consumer, h.bad_consumers)
        if h.endianness not in ("little", "big"):
            raise UnsupportedCheckpointError(f"{where}: unknown endianness in the header")

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

    def __getitem__(self, key: str):
        return self.read(key)

    def items(self):  # type: ignore[override]
        """(key, array) pairs, reading each value as it is reached."""
        return ((k, self.read(k)) for k in self.keys())

    def listing(self, hidden: bool = False) -> List[Tuple]:
        """Fast metadata of every listed key: (key, dtype_code, shape, size, num_elements,
        error or None, partitioned). Built natively in one call."""
        return self._index.listing(hidden)

    @property
    def raw_keys(self) -> List[bytes]:
        """Every key of the index after the header, slice keys included, as bytes."""
        return self._index.raw_keys()

    # -- entries --------------------------------------------------------------------------
    def entry(self, key: Union[str, bytes]) -> Entry:
        """The metadata of `key`: dtype, shape, shard, offset, size, CRC, slices."""
        dtype, shape, shard_id, offset, size, crc, slices, n = self._index.entry(key)
        return Entry(
            key=key if isinstance(key, str) else key.decode("utf-8", "surrogateescape"),
            dtype_code=dtype, shape=shape, shard_id=shard_id, offset=offset, size=size,
            crc32c=crc,
            slices=tuple(TensorSlice(tuple((s, None if ln < 0 else ln) for s, ln in sl))
                         for sl in slices),
            num_elements=n,
        )

    def raw_entry(self, key: Union[str, bytes]) -> bytes:
        """The serialized BundleEntryProto of `key`, exactly as stored."""
        return self._index.raw_value(key)

    # -- data shards ----------------------------------------------------------------------
    def shard_path(self, shard_id: int) -> str:
        return self._storage.shard_path(shard_id, self.header.num_shards)

    def _payload(self, e: Entry):
        """The entry's bytes in its data shard, bounds-checked by the storage."""
        if e.shard_id >= self.header.num_shards:
            raise CorruptCheckpointError(
                f"{self.index_path}: key {e.key} is in data shard {e.shard_id}, but the header "
                f"says there are {self.header.num_shards} shards")
        try:
            return self._storage.read(e.shard_id, self.header.num_shards, e.offset, e.size)
        except MissingShardError as err:
            raise MissingShardError(f"{err} (needed for key {e.key})", path=err.path,
                                    shard=err.shard) from None
        except CorruptCheckpointError as err:
            raise CorruptCheckpointError(f"{err} (key {e.key})") from None

    def _check_crc(self, e: Entry, computed: int) -> None:
        stored = _native.unmask_crc(e.crc32c)
        if stored != computed:
            raise ChecksumMismatchError(
                f"TensorBundle at {self.prefix} shard {e.shard_id} ({e.size} bytes): Checksum "
                f"does not match: stored {stored:08d} vs. calculated on the restored bytes "
                f"{computed} (key {e.key}, offset {e.offset}, file "
                f"{self.shard_path(e.shard_id)})",
                key=e.key, shard=e.shard_id, offset=e.offset, stored=stored, computed=computed)

    def _check_size(self, e: Entry) -> int:
        itemsize = by_code(e.dtype_code).itemsize
        if itemsize < 0:
            raise UnsupportedCheckpointError(
                f"{self.index_path}: key {e.key} has dtype {e.dtype_name}, which has no "
                "values that can be read")
        if itemsize > 0 and e.size != e.num_elements * itemsize:
            raise CorruptCheckpointError(
                f"{self.index_path}: Invalid size in bundle entry: key {e.key}; stored size "
                f"{e.size}; expected size {e.num_elements * itemsize}")
        return itemsize

    def _check_stored(self, e: Entry) -> None:
        """Raises unless the payload of `e` lies inside its data shard and can hold its
        elements, without reading it: a partitioned tensor's output is allocated from the
        declared shapes before any slice is read, so the declarations are checked first."""
        if e.shard_id >= self.header.num_shards:
            self._payload(e)  # raises the usual error
        size = self._storage.shard_size(e.shard_id, self.header.num_shards)
        least = {7: 1, 21: 5}.get(e.dtype_code, 0) * e.num_elements  # bytes per element
        if e.offset + e.size > size or e.size < least:
            raise CorruptCheckpointError(
                f"{self.shard_path(e.shard_id)}: {e.key}: the stored slice takes bytes "
                f"[{e.offset}, {e.offset + e.size}) of a {size}-byte data file and holds "
                f"{e.num_elements} elements (truncated or corrupt shard?)")

    # -- values ---------------------------------------------------------------------------
    def read(self, key: Union[str, bytes], verify: bool = True):
        """The value of `key` as a numpy array, bit-exact with TensorFlow's reader.

        Numeric values come back as read-only arrays over the mapped file where the bytes
        allow it. Strings are object arrays of bytes; variants are object arrays of
        :class:`Variant`. Partitioned tensors are assembled from their slices. With
        `verify`, every CRC32C involved is checked.
        """
        e = self.entry(key)
        if e.slices:
            return self._assemble(e, tuple((0, d) for d in e.shape), verify)
        return self._read_whole(e, verify)

    def _read_whole(self, e: Entry, verify: bool):
        try:
            return self._read_whole_unchecked(e, verify)
        except ChecksumMismatchError as err:
            if err.key is not None and err.shard is None:  # from a native payload decoder
                raise ChecksumMismatchError(
                    f"{self.shard_path(e.shard_id)}: {err} (offset {e.offset})", key=e.key,
                    shard=e.shard_id, offset=e.offset, stored=err.stored,
                    computed=err.computed) from None
            raise
        except CorruptCheckpointError as err:
            if not str(err).startswith(self.shard_path(e.shard_id)) and \
                    self.index_path not in str(err) and self.prefix not in str(err):
                raise CorruptCheckpointError(
                    f"{self.shard_path(e.shard_id)}: {err} (offset {e.offset})") from None
            raise
        except ValueError as err:  # numpy cannot hold some valid shapes (> 64 dims, ...)
            if isinstance(err, CheckpointError):
                raise
            raise UnsupportedCheckpointError(
                f"{self.index_path}: key {e.key}: a {e.dtype_name} tensor of shape "
                f"{list(e.shape)} cannot be held in a numpy array ({err})") from None

    def _read_whole_unchecked(self, e: Entry, verify: bool):
        import numpy as np

        itemsize = self._check_size(e)
        view = self._payload(e)
        code = e.dtype_code
        if itemsize > 0:
            if verify:
                self._check_crc(e, _native.crc32c(view))
            dtype = numpy_dtype(code)
            if e.num_elements == 0:
                return np.empty(e.shape, dtype)
            arr = np.frombuffer(view, dtype=dtype, count=e.num_elements)
            if self._swap:
                arr = self._byteswap(arr, e)
            return arr.reshape(e.shape)
        if code == 7:
            items, crc = _native.decode_strings(view, e.num_elements, self._swap, verify, e.key)
            if verify:
                self._check_crc(e, crc)
            arr = np.empty(len(items), dtype=object)
            arr[:] = items
            return arr.reshape(e.shape)
        if code == 21:
            if self._swap:
                raise UnsupportedCheckpointError(
                    f"{self.index_path}: key {e.key}: the bundle is of a different endianness "
                    "than this machine and holds a variant tensor, whose bytes cannot be "
                    "byte-swapped")
            items, crc = _native.decode_variants(view, e.num_elements, verify, e.key)
            if verify:
                self._check_crc(e, crc)
            arr = np.empty(len(items), dtype=object)
            for i, raw in enumerate(items):
                arr[i] = _decode_variant(raw, e.key)
            return arr.reshape(e.shape)
        raise UnsupportedCheckpointError(f"key {e.key}: cannot read dtype {e.dtype_name}")

    def _byteswap(self, arr, e: Entry):
        import numpy as np

        unit = by_code(e.dtype_code).swap
        if unit == 0:
            return arr
        if unit < 0:
            raise UnsupportedCheckpointError(
                f"key {e.key}: byte-swapping is not defined for dtype {e.dtype_name}")
        return arr.view(np.dtype(f"u{unit}")).byteswap().view(arr.dtype)

    def read_slice(self, key: Union[str, bytes], index: Index, verify: bool = False):
        """Reads part of a tensor, touching only the bytes that part needs.

        `index` is numpy basic indexing (``np.s_[1000:2000]``, ``(slice(0, 2), 3)``) or a
        TensorFlow slice spec (``"1000,1000:-"``). Works on partitioned tensors too, reading
        only the stored slices that intersect. Partial reads cannot check a CRC; with
        `verify`, each stored tensor touched is read whole and checked.
        """
        import numpy as np

        e = self.entry(key)
        bounds, squeeze = self._normalize_index(e, index)
        if e.slices:
            out = self._assemble(e, bounds, verify)
        else:
            whole = self._lazy_whole(e, verify)
            out = np.array(whole[tuple(slice(a, b) for a, b in bounds)])
        if squeeze:
            out = out.reshape(tuple(b - a for i, (a, b) in enumerate(bounds) if i not in squeeze))
        return out

    def _lazy_whole(self, e: Entry, verify: bool):
        """A view of a whole stored tensor that reads pages only when they are touched."""
        import numpy as np

        if e.dtype_code in (7, 21) or verify or self._swap:
            return self._read_whole(e, verify)
        self._check_size(e)
        view = self._payload(e)
        try:
            if e.num_elements == 0:
                return np.empty(e.shape, numpy_dtype(e.dtype_code))
            return np.frombuffer(view, dtype=numpy_dtype(e.dtype_code),
                                 count=e.num_elements).reshape(e.shape)
        except ValueError as err:  # numpy cannot hold some valid shapes ((2^62, 0), > 64 dims)
            raise UnsupportedCheckpointError(
                f"{self.index_path}: key {e.key}: a {e.dtype_name} tensor of shape "
                f"{list(e.shape)} cannot be held in a numpy array ({err})") from None

    @staticmethod
    def _normalize_index(e: Entry, index: Index):
        """(per-dimension (start, stop), dimensions indexed by an integer)."""
        shape = e.shape
        if isinstance(index, str):
            parts = index.split(":") if index else []
            if len(parts) != len(shape):
                raise InvalidArgumentError(
                    f"slice spec {index!r} has {len(parts)} dimensions; {e.key} has shape "
                    f"{list(shape)}")
            bounds = []
            for part, dim in zip(parts, shape):
                if part == "-":
                    bounds.append((0, dim))
                    continue
                try:
                    start, length = (int(x) for x in part.split(","))
                except ValueError:
                    raise InvalidArgumentError(f"bad slice spec {index!r}") from None
                bounds.append((start, start + length))
            index = tuple(slice(a, b) for a, b in bounds)
        if not isinstance(index, tuple):
            index = (index,)
        if any(item is Ellipsis for item in index):
            at = next(i for i, item in enumerate(index) if item is Ellipsis)
            fill = (slice(None),) * max(0, len(shape) - len(index) + 1)
            index = index[:at] + fill + index[at + 1:]
        if len(index) > len(shape):
            raise InvalidArgumentError(
                f"too many indices for {e.key} of shape {list(shape)}: {index!r}")
        bounds = []
        squeeze = set()
        for i, dim in enumerate(shape):
            item = index[i] if i < len(index) else slice(None)
            if isinstance(item, slice):
                start, stop, step = item.indices(dim)
                if step != 1:
                    raise InvalidArgumentError("read_slice supports only contiguous ranges")
                bounds.append((start, max(start, stop)))
            else:
                try:
                    j = int(item)
                except TypeError:
                    raise InvalidArgumentError(f"unsupported index {item!r}") from None
                if j < 0:
                    j += dim
                if not 0 <= j < dim:
                    raise InvalidArgumentError(
                        f"index {item} is out of bounds for dimension {i} of size {dim}")
                bounds.append((j, j + 1))
                squeeze.add(i)
        return tuple(bounds), squeeze

    def _assemble(self, e: Entry, bounds: Tuple[Tuple[int, int], ...], verify: bool):
        """Builds the region `bounds` of a partitioned tensor from its stored slices."""
        import numpy as np

        plan = plan_assembly(self.index_path, e.key, e.slices, e.shape, bounds)
        parts = []
        for s, b, inter in plan:
            if _volume(inter) == 0 and _volume(bounds) > 0:
                continue
            slice_key = _native.slice_key(e.key, s._native_extents())
            if slice_key not in self._index:
                raise CorruptCheckpointError(
                    f"{self.index_path}: partitioned tensor {e.key}: the entry of slice "
                    f"{s.spec} is missing")
            sub = self.entry(slice_key)
            sub = Entry(f"{e.key} (slice {s.spec})", sub.dtype_code, sub.shape, sub.shard_id,
                        sub.offset, sub.size, sub.crc32c, sub.slices, sub.num_elements)
            want = tuple(hi - lo for lo, hi in b)
            if sub.dtype_code != e.dtype_code or tuple(sub.shape) != want or sub.slices:
                raise CorruptCheckpointError(
                    f"{self.index_path}: partitioned tensor {e.key}: slice {s.spec} is stored "
                    f"as {sub.dtype_name}{list(sub.shape)}, expected {e.dtype_name}{list(want)}")
            self._check_size(sub)
            self._check_stored(sub)
            parts.append((sub, b, inter))
        check_coverage(self.index_path, e.key, e.slices, plan, bounds)
        try:
            out = np.empty(tuple(hi - lo for lo, hi in bounds), dtype=numpy_dtype(e.dtype_code))
        except ValueError as err:  # numpy cannot hold some valid shapes ((2^62, 0), > 64 dims)
            raise UnsupportedCheckpointError(
                f"{self.index_path}: key {e.key}: a {e.dtype_name} region of shape "
                f"{[hi - lo for lo, hi in bounds]} cannot be held in a numpy array ({err})"
            ) from None
        for sub, b, inter in parts:
            if _volume(inter) > 0:
                place(out, bounds, self._lazy_whole(sub, verify), b, inter)
        return out

    # -- checking -------------------------------------------------------------------------
    def verify_key(self, key: Union[str, bytes]) -> None:
        """Checks every CRC behind `key` (all slices of a partitioned tensor); raises on damage."""
        e = self.entry(key)
        if e.slices:
            self._assemble(e, tuple((0, d) for d in e.shape), True)
        else:
            self._read_whole(e, True)

    # -- the object graph -----------------------------------------------------------------
    @property
    def object_graph(self):
        """The TrackableObjectGraph of an object-based checkpoint as a walkable tree,
        or None for a name-based (TF1 Saver) checkpoint."""
        if self._object_graph is None and OBJECT_GRAPH_KEY in self._index:
            from .objects import ObjectGraph

            raw = self.read(OBJECT_GRAPH_KEY)
            if raw.shape != () or not isinstance(raw.item(), bytes):
                raise CorruptCheckpointError(
                    f"{self.index_path}: {OBJECT_GRAPH_KEY} is not a scalar string")
            self._object_graph = ObjectGraph.parse(raw.item(), self)
        return self._object_graph

    # -- life cycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Drops this reader's references to its files. Arrays already returned stay valid:
        each keeps its mapping alive."""
        self._storage.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tfckpt.Reader {self.prefix!r}: {len(self)} keys, {self.header.num_shards} shards>"


def check_versions(where: str, producer: int, min_consumer: int,
                   bad_consumers: Sequence[int]) -> None:
    """TensorFlow's CheckVersions with consumer 1 and min producer 0, the numbers of both
    the bundle (kTensorBundleVersion) and format V1 (TF_CHECKPOINT_VERSION)."""
    if producer < 0:
        raise UnsupportedCheckpointError(
            f"{where}: Checkpoint producer version {producer} below min producer 0 "
            "supported by tfckpt.  Please regenerate your checkpoint.")
    if min_consumer > _CONSUMER_VERSION:
        raise UnsupportedCheckpointError(
            f"{where}: Checkpoint min consumer version {min_consumer} above current "
            f"version {_CONSUMER_VERSION} for tfckpt.  It was written by a newer format "
            "version.")
    if _CONSUMER_VERSION in bad_consumers:
        raise UnsupportedCheckpointError(
            f"{where}: Checkpoint disallows consumer version {_CONSUMER_VERSION}.  "
            "Please upgrade: this version is likely buggy.")


def plan_assembly(where: str, key: str, slices: Sequence[TensorSlice], shape: Sequence[int],
                  bounds) -> List[Tuple[TensorSlice, Any, Any]]:
    """(slice, its bounds, its intersection with `bounds`) for each stored slice of a
    partitioned tensor, after checking that no two overlap (TensorFlow's
    RegisterTensorSlice rule). Shared by the V2 and V1 readers."""
    stored = [s.bounds(shape) for s in slices]
    clash = _first_overlap(stored)
    if clash is not None:
        i, j = clash
        raise CorruptCheckpointError(
            f"{where}: partitioned tensor {key}: slices {slices[i].spec} and "
            f"{slices[j].spec} overlap")
    return [(s, b, _intersect(b, bounds)) for s, b in zip(slices, stored)]


def check_coverage(where: str, key: str, slices: Sequence[TensorSlice], plan, bounds) -> None:
    """Raises unless the planned intersections cover `bounds` exactly (they cannot overlap)."""
    covered = sum(_volume(inter) for _, _, inter in plan)
    if covered != _volume(bounds):
        raise CorruptCheckpointError(
            f"{where}: Does not have sufficient slices for partitioned tensor {key} to restore "
            f"the requested region {list(bounds)}: the stored slices "
            f"({', '.join(s.spec for s in slices)}) cover {covered} of {_volume(bounds)} "
            "elements")


def place(out, bounds, src, src_bounds, inter) -> None:
    """Copies the intersection `inter` from `src` (holding `src_bounds`) into `out` (holding
    `bounds`)."""
    src_idx = tuple(slice(lo - blo, hi - blo) for (lo, hi), (blo, _) in zip(inter, src_bounds))
    dst_idx = tuple(slice(lo - rlo, hi - rlo) for (lo, hi), (rlo, _) in zip(inter, bounds))
    out[dst_idx] = src[src_idx]


def _first_overlap(boxes) -> Optional[Tuple[int, int]]:
    """A pair of boxes that overlap, or None. Sweeps along the dimension with the most
    distinct starts, so partitions along one dimension cost n log n, not n^2."""
    import heapq

    nonempty = [i for i, b in enumerate(boxes) if _volume(b) > 0]
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
            if _volume(_intersect(boxes[i], boxes[j])) > 0:
                return (min(i, j), max(i, j))
        heapq.heappush(active, (boxes[i][dim][1], i))
    return None


def _intersect(a, b):
    return tuple((max(x0, y0), min(x1, y1)) for (x0, x1), (y0, y1) in zip(a, b))


def _volume(bounds) -> int:
    n = 1
    for lo, hi in bounds:
        n *= max(0, hi - lo)
    return n


def _decode_variant(raw: bytes, key: str) -> Variant:
    from .proto import VariantTensorDataProto
    from .tensor_proto import to_numpy

    msg = VariantTensorDataProto()
    try:
        msg.ParseFromString(raw)
    except Exception:
        raise CorruptCheckpointError(
            f"variant tensor {key}: Unable to parse VariantTensorDataProto from buffer of size "
            f"{len(raw)}") from None
    return Variant(msg.type_name, bytes(msg.metadata), [to_numpy(t) for t in msg.tensors])
