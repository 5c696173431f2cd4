"""Format V1: the checkpoints of ``tf.compat.v1.train.Saver(write_version=V1)`` and of the
``Save`` / ``SaveSlices`` ops (FORMAT.md 9).

A V1 checkpoint is one table file, or several (``model.ckpt-00000-of-00003`` ...). In each,
key ``""`` holds a ``SavedTensorSlices`` whose ``meta`` lists the tensors of that file: name,
dtype, full shape and the slices stored there. Every slice, a whole tensor included, is
stored under its slice key (``EncodeTensorNameSlice``) as a ``SavedTensorSlices`` whose
``data`` holds the values in the typed field of a TensorProto (``float_val``, ``int_val``,
``half_val`` ...). Nothing checks the values but the table's block CRCs.

:class:`V1Reader` has the interface of :class:`tfckpt.Reader`; :func:`tfckpt.open` returns
one for V1 paths. It reads every dtype V1 can hold, half and complex64 included, and
assembles partitioned tensors of any dtype (TensorFlow's ``CheckpointReader`` refuses
both: "Data type not supported", "Sliced checkpoints are not supported").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._core import core
from .dtypes import STRING, by_code, numpy_dtype
from .entries import Entry, Header, StoredEntry, check_versions
from .errors import (
    CheckpointError,
    CorruptCheckpointError,
    InvalidArgumentError,
    KeyNotFoundError,
    NotACheckpointError,
    UnsupportedCheckpointError,
)
from .files import Located, check_git_lfs_pointer, locate
from .slices import Index, TensorSlice, check_coverage, normalize_index, place, plan_assembly
from .slices import volume as _volume

__all__ = ["V1Reader"]

# The TensorProto field (number) holding a V1 slice's values, by DataType, and the wire
# element it is made of (FORMAT.md 9.4; saved_tensor_slice_util.h). bfloat16 and the newer
# types cannot be saved in V1.
_F32, _F64, _VARINT, _BYTES = "f32", "f64", "varint", "bytes"
_V1_FIELDS: Dict[int, Tuple[int, str]] = {
    1: (5, _F32),  # float_val
    2: (6, _F64),  # double_val
    8: (9, _F32),  # complex64: scomplex_val, re/im interleaved
    18: (12, _F64),  # complex128: dcomplex_val
    9: (10, _VARINT),  # int64_val
    22: (16, _VARINT),  # uint32_val
    23: (17, _VARINT),  # uint64_val
    10: (11, _VARINT),  # bool_val
    19: (13, _VARINT),  # half: half_val, the raw 16-bit patterns in int32
    7: (8, _BYTES),  # string_val
}
# int32, uint8, int16, int8, qint8, quint8, qint32, qint16, quint16, uint16: int_val (7).
_V1_FIELDS.update({code: (7, _VARINT) for code in (3, 4, 5, 6, 11, 12, 13, 15, 16, 17)})

_STRING = STRING
_FULL = -1  # a slice extent's length for "the whole dimension"


@dataclass(frozen=True)
class _Slice:
    """One stored slice: its extents as (start, length), length -1 for a whole dimension
    (exactly as the key encodes them), the file it is in, its key there and the size of
    its record (0 when missing)."""

    extents: Tuple[Tuple[int, int], ...]
    file: int
    key: bytes
    size: int

    def bounds(self, shape: Sequence[int]) -> Tuple[Tuple[int, int], ...]:
        return tuple(
            (0, d) if ln < 0 else (st, st + ln) for (st, ln), d in zip(self.extents, shape)
        )

    def public(self) -> TensorSlice:
        return TensorSlice(tuple((st, None if ln < 0 else ln) for st, ln in self.extents))

    @property
    def spec(self) -> str:
        return self.public().spec


class _Tensor:
    """A tensor as the files' meta entries describe it, slices from every file."""

    def __init__(self, name: str, dtype: int, shape: Tuple[int, ...]) -> None:
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.slices: List[_Slice] = []
        self.error: Optional[str] = None

    @property
    def num_elements(self) -> int:
        return _volume(tuple((0, d) for d in self.shape))

    @property
    def partitioned(self) -> bool:
        """Anything but one slice covering the whole tensor (TensorSlice::IsFullAt)."""
        if len(self.slices) != 1:
            return True
        return not all(
            ln < 0 or (st == 0 and ln == d)
            for (st, ln), d in zip(self.slices[0].extents, self.shape)
        )


class V1Reader(Mapping[str, Any]):
    """A read-only mapping from the tensor names of a format V1 checkpoint to numpy arrays,
    with the interface of :class:`tfckpt.Reader`.

    Differences that follow from the format:

    * ``header.format`` is "V1"; ``header.num_shards`` is the number of table files;
      producer and min_consumer come from the first file's ``meta.versions``.
    * ``prefix`` is the file, or the pattern naming the files (``model.ckpt-?????-of-00003``);
      ``index_path`` is the first file; ``shard_path(i)`` is file `i`; ``files`` lists them.
    * An :class:`~tfckpt.Entry`'s ``shard_id`` is the index of the file holding the tensor
      (its first slice's file, for a partitioned one); ``offset`` and ``crc32c`` are 0 (V1
      has neither); ``size`` is the bytes its stored records take in the table(s).
    * Every table block CRC is checked when the reader opens the files, and the tables are
      held in memory from then on. There are no data CRCs: ``read(..., verify=...)`` always
      parses every value and checks that its count matches the declared shape.
    * ``object_graph`` is None: V1 checkpoints are name-based.
    """

    def __init__(
        self, path: "str | os.PathLike[str] | Located", buffers: Optional[Sequence[Any]] = None
    ) -> None:
        found = path if isinstance(path, Located) else locate(path)
        if found.format != "V1":
            raise NotACheckpointError(
                f"{found.prefix} is a format {found.format} checkpoint, "
                "not V1: open it with tfckpt.open"
            )
        self.prefix = found.prefix
        self.files: Tuple[str, ...] = tuple(found.files)
        if not self.files or (buffers is not None and len(buffers) != len(self.files)):
            raise InvalidArgumentError("a V1 checkpoint needs one buffer per file")
        self.index_path = self.files[0]
        self._closed = False
        self._tables: List[Dict[bytes, bytes]] = []
        self._tensors: Dict[str, _Tensor] = {}
        self._by_slice_key: Dict[bytes, Tuple[_Tensor, _Slice]] = {}
        versions = []
        for i, f in enumerate(self.files):
            versions.append(self._load(i, f, None if buffers is None else buffers[i]))
        # A meta entry without slices registers nothing in TensorFlow: it is not listed.
        self._tensors = {k: t for k, t in self._tensors.items() if t.slices}
        producer, min_consumer, bad = versions[0]
        self.header = Header(
            len(self.files), "little", producer, min_consumer, tuple(bad), format="V1"
        )
        self._keys = sorted(self._tensors, key=_sort_key)

    @classmethod
    def from_buffers(cls, prefix: str, files: Sequence[Tuple[str, Any]]) -> "V1Reader":
        """A V1 checkpoint whose files are already in memory (an archive member, a remote
        object): `files` are (name used in messages, bytes-like) pairs, in order::

            V1Reader.from_buffers("run.tar!/model.ckpt", [("run.tar!/model.ckpt", data)])
        """
        return cls(
            Located("V1", prefix, tuple(name for name, _ in files)), [buffer for _, buffer in files]
        )

    # -- loading --------------------------------------------------------------------------
    def _load(self, file_index: int, path: str, buffer=None):
        from .proto import SavedTensorSlices

        if buffer is None:
            try:
                buffer = core.MappedFile(path)
            except FileNotFoundError:
                raise NotACheckpointError(f"No V1 checkpoint file at {path}") from None
            except OSError as e:
                raise NotACheckpointError(f"Cannot open {path}: {e.strerror}") from None
        check_git_lfs_pointer(path, buffer)
        table: Dict[bytes, bytes] = {}
        for k, v in core.read_table(buffer, path):  # every block CRC checked
            table.setdefault(k, v)  # TensorFlow's Get finds the first of equal keys
        self._tables.append(table)
        if b"" not in table:
            raise CorruptCheckpointError(
                "Failed to find the saved tensor slices at the beginning of the checkpoint "
                f"file: {path}"
            )
        meta = SavedTensorSlices()
        try:
            meta.ParseFromString(table[b""])
        except Exception as e:  # protobuf's DecodeError
            raise CorruptCheckpointError(
                f"{path}: the saved tensor slices at the beginning of the checkpoint file "
                f"cannot be parsed ({e})"
            ) from None
        v = meta.meta.versions
        check_versions(path, v.producer, v.min_consumer, list(v.bad_consumers))
        for ssm in meta.meta.tensor:
            self._register(ssm, file_index, path, table)
        return v.producer, v.min_consumer, list(v.bad_consumers)

    def _register(self, ssm, file_index: int, path: str, table: Dict[bytes, bytes]) -> None:
        """Adds one meta entry's slices (TensorFlow's RegisterTensorSlice). Problems make the
        tensor unreadable, not the checkpoint."""
        name = ssm.name
        shape = tuple(d.size for d in ssm.shape.dim)
        t = self._tensors.get(name)
        if t is None:
            t = self._tensors[name] = _Tensor(name, ssm.type, shape)
            if ssm.shape.unknown_rank or any(d < 0 for d in shape):
                t.error = f"{path}: tensor {name}: invalid shape {_shape_text(ssm.shape)}"
        elif t.error is None and (t.dtype != ssm.type or t.shape != shape):
            what = "types" if t.dtype != ssm.type else "shapes"
            t.error = (
                f"{path}: tensor {name}: Incompatible tensor {what}: "
                f"{by_code(t.dtype).name}{list(t.shape)} in an earlier file, "
                f"{by_code(ssm.type).name}{list(shape)} here"
            )
        for tsp in ssm.slice:
            extents = tuple(
                (e.start, e.length if e.HasField("length") else _FULL) for e in tsp.extent
            )
            key = core.slice_key(name, list(extents)) if _valid_extents(extents) else b""
            s = _Slice(extents, file_index, key, len(table.get(key, b"")))
            t.slices.append(s)
            if t.error is not None:
                continue
            if len(extents) != len(t.shape) or any(
                st < 0 or (ln != _FULL and (ln < 0 or st + ln > d))
                for (st, ln), d in zip(extents, t.shape)
            ):
                t.error = (
                    f"{path}: tensor {name}: slice {_extents_text(extents)} does not fit "
                    f"its shape {list(t.shape)}"
                )
            elif key not in table:
                t.error = (
                    f"{path}: tensor {name}: the data of slice {s.spec} is missing "
                    "(no entry under its key)"
                )
            else:
                self._by_slice_key[key] = (t, s)

    # -- the mapping ----------------------------------------------------------------------
    def keys(self) -> List[str]:  # type: ignore[override]
        """Tensor names, sorted as ``tf.train.list_variables`` lists them."""
        return list(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, bytes):
            key = key.decode("utf-8", "surrogateescape")
        return isinstance(key, str) and key in self._tensors

    def __getitem__(self, key: str):
        return self.read(key)

    def items(self):
        """(name, array) pairs, reading each value as it is reached."""
        return ((k, self.read(k)) for k in self.keys())

    def listing(self, hidden: bool = False) -> List[Tuple]:
        """Metadata of every tensor: (key, dtype_code, shape, size, num_elements, error or
        None, partitioned), as :meth:`tfckpt.Reader.listing`. With `hidden`, the slice
        entries of partitioned tensors are listed too, under their raw keys."""
        rows = []
        for name in self._keys:
            t = self._tensors[name]
            rows.append(
                (
                    name,
                    t.dtype,
                    t.shape,
                    self._stored_size(t),
                    t.num_elements,
                    t.error,
                    t.partitioned,
                )
            )
            if hidden and t.partitioned and t.error is None:
                for s in t.slices:
                    shape = _slice_shape(s, t.shape)
                    rows.append(
                        (
                            _key_text(s.key),
                            t.dtype,
                            shape,
                            s.size,
                            _volume(tuple((0, d) for d in shape)),
                            None,
                            False,
                        )
                    )
        if hidden:
            rows.sort(key=lambda r: _sort_key(r[0]))
        return rows

    def summary(self) -> Tuple:
        """Totals over the tensors, as :meth:`tfckpt.Reader.summary`: (keys, elements,
        keys with a bad entry, partitioned keys, {dtype code: keys}, bytes stored)."""
        rows = self.listing()
        counts: Dict[int, int] = {}
        for r in rows:
            counts[r[1]] = counts.get(r[1], 0) + 1
        return (
            len(rows),
            sum(r[4] for r in rows if r[5] is None),
            sum(1 for r in rows if r[5] is not None),
            sum(1 for r in rows if r[6]),
            counts,
            sum(r[3] for r in rows if r[5] is None),
        )

    def key_records(self, cls: type, lead: tuple, names: Tuple[str, ...], name_of: Any) -> list:
        """One `cls` per tensor, as :meth:`tfckpt.Reader.key_records`."""
        return [
            cls(
                *lead,
                key,
                name_of(dtype),
                shape,
                n,
                size,
                part,
                "ok" if error is None else "error",
                error,
            )
            for key, dtype, shape, size, n, error, part in self.listing()
        ]

    @property
    def raw_keys(self) -> List[bytes]:
        """Every key of the table files after the meta entry (slice keys), sorted."""
        return sorted({k for table in self._tables for k in table if k})

    # -- entries --------------------------------------------------------------------------
    def _lookup(self, key: Union[str, bytes]) -> Tuple[_Tensor, Optional[_Slice]]:
        """The tensor of a name, or (tensor, slice) of a raw slice key."""
        raw = key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape")
        name = raw.decode("utf-8", "surrogateescape")
        t = self._tensors.get(name)
        if t is not None:
            return t, None
        hit = self._by_slice_key.get(raw)
        if hit is not None:
            return hit
        raise KeyNotFoundError(f"{name} not found in checkpoint file {self.prefix}")

    @staticmethod
    def _stored_size(t: _Tensor) -> int:
        return sum(s.size for s in t.slices)

    def entry(self, key: Union[str, bytes]) -> Entry:
        """The metadata of `key` (a tensor name, or the raw key of one stored slice)."""
        t, s = self._lookup(key)
        if s is not None:
            shape = _slice_shape(s, t.shape)
            return Entry(
                key=_key_text(s.key),
                dtype_code=t.dtype,
                shape=shape,
                shard_id=s.file,
                offset=0,
                size=s.size,
                crc32c=0,
                slices=(),
                num_elements=_volume(tuple((0, d) for d in shape)),
            )
        return Entry(
            key=t.name,
            dtype_code=t.dtype,
            shape=t.shape,
            shard_id=t.slices[0].file if t.slices else 0,
            offset=0,
            size=self._stored_size(t),
            crc32c=0,
            slices=tuple(s.public() for s in t.slices) if t.partitioned else (),
            num_elements=t.num_elements,
        )

    def stored(self, key: Union[str, bytes]) -> Tuple[StoredEntry, ...]:
        """The records behind `key`: one per stored slice (a whole tensor is one slice), each
        with its entry (its raw slice key as ``entry.key``), as :meth:`tfckpt.Reader.stored`."""
        t, s = self._lookup(key)
        if s is not None:
            return (StoredEntry(t.name, None, self.entry(s.key)),)
        if not t.partitioned:
            return (StoredEntry(t.name, None, self.entry(t.slices[0].key)),)
        return tuple(StoredEntry(t.name, one.public(), self.entry(one.key)) for one in t.slices)

    def stored_size(self, key: Union[str, bytes]) -> int:
        """Bytes of the stored records of `key` (every slice of a partitioned tensor)."""
        t, s = self._lookup(key)
        return s.size if s is not None else self._stored_size(t)

    def raw_entry(self, key: Union[str, bytes]) -> bytes:
        """The serialized SavedTensorSlices of one stored slice (a raw slice key), or of a
        whole tensor's only slice, exactly as stored."""
        t, s = self._lookup(key)
        if s is None:
            self._check_readable(t)
            if t.partitioned:
                raise UnsupportedCheckpointError(
                    f"{t.name} is partitioned into {len(t.slices)} slices: ask for the raw "
                    "entry of one slice by its key"
                )
            s = t.slices[0]
        return self._stored(s)

    def _stored(self, s: _Slice) -> bytes:
        """The stored record of one slice."""
        if self._closed:
            raise CheckpointError(f"{self.prefix}: this reader is closed")
        return self._tables[s.file][s.key]

    def slice_entry(self, key: str, s: TensorSlice) -> Entry:
        """The entry of stored slice `s` of tensor `key`, as :meth:`tfckpt.Reader.slice_entry`."""
        t, _ = self._lookup(key)
        for one in t.slices:
            if one.public() == s:
                sub = self.entry(one.key)
                return Entry(
                    f"{t.name} (slice {s.spec})",
                    sub.dtype_code,
                    sub.shape,
                    sub.shard_id,
                    sub.offset,
                    sub.size,
                    sub.crc32c,
                    sub.slices,
                    sub.num_elements,
                )
        raise CorruptCheckpointError(
            f"{self.prefix}: partitioned tensor {t.name}: the entry of slice {s.spec} is missing",
            path=self.prefix,
            key=t.name,
        )

    def payload(self, e: Entry, owned: bool = False) -> bytes:
        """The stored record (a serialized SavedTensorSlices) of one stored entry, as
        :meth:`stored` gives them; format V1 has no raw tensor bytes. (Always bytes of
        its own: `owned` is there for the Reader's interface.)"""
        return self.raw_entry(e.key)

    def payload_chunks(self, e: Entry, start: int, size: int, chunk: int) -> Iterator[bytes]:
        """Bytes [start, start+size) of :meth:`payload` in pieces of at most `chunk` bytes."""
        data = self.payload(e)
        if start < 0 or size < 0 or start + size > len(data):
            raise ValueError(
                f"bytes [{start}, {start + size}) are outside the {len(data)}-byte record of "
                f"{e.key}"
            )
        for off in range(start, start + size, chunk):
            yield data[off : min(off + chunk, start + size)]

    def variant_payloads(self, key: Union[str, bytes]) -> List[bytes]:
        """Format V1 cannot hold variant tensors: always raises."""
        t, _ = self._lookup(key)
        raise UnsupportedCheckpointError(
            f"{self.prefix}: {t.name} is a {by_code(t.dtype).name} tensor; format V1 holds no "
            "variant tensors",
            path=self.prefix,
            key=t.name,
        )

    def location(self, key: Union[str, bytes]) -> Tuple[int, int]:
        """(table file, offset) where the bytes of `key` start; (-1, 0) for a partitioned
        tensor, whose slices lie anywhere. Sorting keys by it reads the files in sequence."""
        e = self.entry(key)
        return (e.shard_id, e.offset) if not e.slices else (-1, 0)

    def shard_path(self, shard_id: int) -> str:
        """The path of table file `shard_id`."""
        return self.files[shard_id]

    # -- values ---------------------------------------------------------------------------
    def read(self, key: Union[str, bytes], verify: bool = True):
        """The value of `key` as a numpy array (object array of bytes for strings).
        Partitioned tensors are assembled from their slices. `verify` is accepted for the
        interface's sake: V1 values are always parsed whole and their counts checked."""
        t, s = self._lookup(key)
        self._check_readable(t)
        if s is not None:
            return self._decode(t, s)
        if not t.partitioned:
            return self._decode(t, t.slices[0]).reshape(t.shape)
        return self._assemble(t, tuple((0, d) for d in t.shape))

    def read_slice(self, key: Union[str, bytes], index: Index, verify: bool = False):
        """Part of a tensor (numpy basic indexing or a TensorFlow slice spec), as
        :meth:`tfckpt.Reader.read_slice`; of a partitioned tensor, only the slices that
        intersect are decoded."""
        import numpy as np

        e = self.entry(key)
        t, s = self._lookup(key)
        self._check_readable(t)
        bounds, squeeze = normalize_index(e.key, e.shape, index)
        if s is None and t.partitioned:
            out = self._assemble(t, bounds)
        else:
            whole = self.read(key)
            out = np.array(whole[tuple(slice(a, b) for a, b in bounds)])
        if squeeze:
            out = out.reshape(tuple(b - a for i, (a, b) in enumerate(bounds) if i not in squeeze))
        return out

    def _check_readable(self, t: _Tensor) -> None:
        if t.error is not None:
            raise CorruptCheckpointError(t.error)
        if t.dtype not in _V1_FIELDS:
            raise UnsupportedCheckpointError(
                f"{self._where(t)}: tensor {t.name} has dtype {by_code(t.dtype).name}, which "
                "format V1 cannot hold"
            )
        if not t.slices:
            raise CorruptCheckpointError(
                f"{self._where(t)}: tensor {t.name} is listed with no slices: it has no data"
            )

    def _where(self, t: _Tensor, s: Optional[_Slice] = None) -> str:
        """The file a tensor (or one slice of it) is stored in, for messages."""
        if s is None:
            s = t.slices[0] if t.slices else None
        return self.files[s.file if s is not None else 0]

    def _decode(self, t: _Tensor, s: _Slice):
        """The values of one stored slice, shaped, after checking their count."""
        shape = _slice_shape(s, t.shape)
        n = _volume(tuple((0, d) for d in shape))
        what = f"{self._where(t, s)}: tensor {t.name}, slice {s.spec}"
        name, chunks = _saved_slice(self._stored(s), what)
        if name and name != t.name:
            raise CorruptCheckpointError(f"{what}: the stored slice is named {name!r}")
        values = _typed_values(t.dtype, chunks, what)
        if len(values) != n:
            raise CorruptCheckpointError(
                f"{what}: holds {len(values)} values, but the slice {list(shape)} has {n} elements"
            )
        return values.reshape(shape)

    def _assemble(self, t: _Tensor, bounds: Tuple[Tuple[int, int], ...]):
        """The region `bounds` of a partitioned tensor. Every slice needed is decoded (and its
        count checked) and the region's coverage proven before the output is allocated, so
        a declared shape allocates only what the file backs."""
        import numpy as np

        plan = plan_assembly(self.prefix, t.name, t.slices, t.shape, bounds)
        check_coverage(self.prefix, t.name, t.slices, plan, bounds)
        parts = [
            (self._decode(t, s), b, inter)  # counts checked
            for s, b, inter in plan
            if _volume(inter)
        ]
        out = np.empty(tuple(hi - lo for lo, hi in bounds), dtype=numpy_dtype(t.dtype))
        for src, b, inter in parts:
            place(out, bounds, src, b, inter)
        return out

    # -- checking -------------------------------------------------------------------------
    def verify_key(self, key: Union[str, bytes]) -> None:
        """Checks everything behind `key` that V1 can check: every stored slice parses and
        holds as many values as its shape says; a partitioned tensor's slices do not
        overlap and cover it. (Table block CRCs were checked when the files were opened.)"""
        t, s = self._lookup(key)
        self._check_readable(t)
        for one in [s] if s is not None else t.slices:
            self._decode(t, one)
        if s is None and t.partitioned:
            self._assemble(t, tuple((0, d) for d in t.shape))

    def verify_entry(self, e: Entry) -> None:
        """Checks one stored entry (as :meth:`stored` gives them): it parses and holds as
        many values as its shape says."""
        self.verify_key(e.key)

    def shard_extents(self) -> Tuple[Dict[int, int], List[CheckpointError]]:
        """As :meth:`tfckpt.Reader.shard_extents`. A format V1 checkpoint has no data
        shards: its values are inside its table files, checked when they were opened."""
        return {}, []

    def verify_all(self) -> List[Tuple[str, Exception]]:
        """As :meth:`tfckpt.Reader.verify_all`: :meth:`verify_key` of every stored slice,
        going on past damage; ``(key, error)`` for each that fails."""
        failed: List[Tuple[str, Exception]] = []
        for raw in self.raw_keys:
            try:
                self.verify_key(raw)
            except Exception as err:  # noqa: BLE001 - every damaged slice is reported
                failed.append((_key_text(raw), err))
        return failed

    @property
    def object_graph(self) -> None:
        """Always None: format V1 checkpoints are name-based."""
        return None

    @property
    def has_object_graph(self) -> bool:
        """Always False: format V1 checkpoints are name-based."""
        return False

    # -- life cycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Drops the tables; reading values afterwards raises. Arrays already returned stay
        valid."""
        self._closed = True
        self._tables = [{} for _ in self._tables]

    def __enter__(self) -> "V1Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<tfckpt.V1Reader {self.prefix!r}: {len(self)} tensors, "
            f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}>"
        )


# -- helpers ------------------------------------------------------------------------------


def _sort_key(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


def _key_text(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


def _shape_text(shape_proto) -> str:
    if shape_proto.unknown_rank:
        return "<unknown rank>"
    return "[" + ",".join(str(d.size) for d in shape_proto.dim) + "]"


def _extents_text(extents) -> str:
    return ":".join("-" if ln < 0 else f"{st},{ln}" for st, ln in extents)


def _valid_extents(extents) -> bool:
    """Whether OrderedCode can encode the extents (int64 starts and lengths)."""
    return all(-(1 << 63) <= v < (1 << 63) for e in extents for v in e)


def _slice_shape(s: _Slice, shape: Sequence[int]) -> Tuple[int, ...]:
    return tuple(hi - lo for lo, hi in s.bounds(shape))


# -- the protobuf wire format, just enough of it -------------------------------------------
# SavedSlice values are decoded from the wire bytes, not through protobuf's Python objects:
# floats keep their exact bits (a signalling NaN would be quieted on its way through a
# Python float) and packed fields become arrays without a Python object per element.


def _varint(buf, pos: int, end: int, what: str) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise CorruptCheckpointError(f"{what}: malformed protobuf (bad varint)")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7


def _fields(
    buf, what: str, start: int = 0, end: Optional[int] = None, depth: int = 0
) -> Iterator[Tuple[int, int, Any]]:
    """(field number, wire type, value) of a message: an int for varints, (start, end)
    offsets into `buf` for the other wire types. Groups are skipped, as protobuf does."""
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        tag, pos = _varint(buf, pos, end, what)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise CorruptCheckpointError(f"{what}: malformed protobuf (field number 0)")
        if wire == 0:
            value, pos = _varint(buf, pos, end, what)
            yield number, wire, value
            continue
        if wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
        elif wire == 2:
            size, pos = _varint(buf, pos, end, what)
        elif wire == 3:
            pos = _skip_group(buf, pos, end, number, what, depth + 1)
            continue
        else:
            raise CorruptCheckpointError(f"{what}: malformed protobuf (wire type {wire})")
        if size > end - pos:
            raise CorruptCheckpointError(
                f"{what}: malformed protobuf (field {number} runs past the end)"
            )
        yield number, wire, (pos, pos + size)
        pos += size


def _skip_group(buf, pos: int, end: int, number: int, what: str, depth: int) -> int:
    """The position after the end-group tag of group `number` that starts at `pos`."""
    if depth > 64:
        raise CorruptCheckpointError(f"{what}: malformed protobuf (groups nested too deep)")
    while True:
        tag, after = _varint(buf, pos, end, what)
        wire = tag & 7
        if wire == 4:
            if tag >> 3 != number:
                raise CorruptCheckpointError(f"{what}: malformed protobuf (mismatched group)")
            return after
        if wire == 0:
            pos = _varint(buf, after, end, what)[1]
        elif wire in (1, 5):
            pos = after + (8 if wire == 1 else 4)
        elif wire == 2:
            size, after = _varint(buf, after, end, what)
            pos = after + size
        elif wire == 3:
            pos = _skip_group(buf, after, end, tag >> 3, what, depth + 1)
        else:
            raise CorruptCheckpointError(f"{what}: malformed protobuf (wire type {wire})")
        if pos > end:
            raise CorruptCheckpointError(f"{what}: malformed protobuf (group runs past the end)")


def _saved_slice(raw: bytes, what: str):
    """(name or None, TensorProto byte ranges) of a SavedTensorSlices data entry. Repeated
    occurrences of a message field are merged, as protobuf parsers do."""
    name = None
    chunks: List[memoryview] = []
    view = memoryview(raw)
    for number, wire, value in _fields(view, what):
        if number != 2 or wire != 2:  # SavedTensorSlices.data
            continue
        for n2, w2, v2 in _fields(view, what, *value):
            if w2 != 2:
                continue
            if n2 == 1:  # SavedSlice.name
                try:
                    name = bytes(view[v2[0] : v2[1]]).decode("utf-8")
                except UnicodeDecodeError:
                    name = bytes(view[v2[0] : v2[1]]).decode("utf-8", "surrogateescape")
            elif n2 == 3:  # SavedSlice.data, a TensorProto
                chunks.append(view[v2[0] : v2[1]])
    return name, chunks


def _typed_values(dtype: int, chunks: Sequence[memoryview], what: str):
    """The flat numpy array of the values in the typed field of the TensorProto pieces."""
    import numpy as np

    field, kind = _V1_FIELDS[dtype]
    pieces: List[Any] = []
    for chunk in chunks:
        for number, wire, value in _fields(chunk, what):
            if number != field:
                continue
            if kind == _BYTES:
                if wire == 2:
                    pieces.append(bytes(chunk[value[0] : value[1]]))
                continue
            if kind == _VARINT:
                if wire == 0:
                    pieces.append(np.array([value], dtype=np.uint64))
                elif wire == 2:
                    pieces.append(_packed_varints(chunk[value[0] : value[1]], what))
                continue
            size = 4 if kind == _F32 else 8
            if wire == 2 or wire == (5 if size == 4 else 1):
                data = chunk[value[0] : value[1]]
                if len(data) % size:
                    raise CorruptCheckpointError(
                        f"{what}: malformed protobuf (a packed field of {len(data)} bytes)"
                    )
                pieces.append(np.frombuffer(data, dtype=f"<u{size}"))
    if kind == _BYTES:
        out = np.empty(len(pieces), dtype=object)
        out[:] = pieces
        return out
    if kind == _VARINT:
        bits = np.concatenate(pieces) if pieces else np.empty(0, np.uint64)
        return _from_varints(dtype, bits)
    size = 4 if kind == _F32 else 8
    bits = np.concatenate(pieces) if pieces else np.empty(0, f"<u{size}")
    floats = bits.astype(f"=u{size}").view(f"=f{size}")  # through integers: bits kept
    if dtype in (8, 18):
        if len(floats) % 2:
            raise CorruptCheckpointError(
                f"{what}: holds {len(floats)} floats, not (real, imaginary) pairs"
            )
        return floats.view(numpy_dtype(dtype))
    return floats


def _packed_varints(data, what: str):
    """A packed run of varints as uint64, decoded without a Python loop."""
    import numpy as np

    b = np.frombuffer(data, dtype=np.uint8)
    if not b.size:
        return np.empty(0, np.uint64)
    last = np.flatnonzero(b < 0x80)
    if not last.size or last[-1] != b.size - 1:
        raise CorruptCheckpointError(f"{what}: malformed protobuf (truncated packed varint)")
    first = np.concatenate(([0], last[:-1] + 1))
    length = last - first + 1
    if length.max() > 10:
        raise CorruptCheckpointError(f"{what}: malformed protobuf (varint over 10 bytes)")
    pos = np.arange(b.size) - np.repeat(first, length)
    parts = (b & 0x7F).astype(np.uint64) << (7 * pos).astype(np.uint64)
    return np.add.reduceat(parts, first)  # the 7-bit groups do not overlap: add is or


def _from_varints(dtype: int, bits):
    """Varint field values -> the dtype's values, with the C++ casts TensorFlow applies
    (int32 fields are truncated from 64 bits, then cast: uint8 from int_val wraps)."""
    import numpy as np

    if dtype == 9:
        return bits.view(np.int64)
    if dtype == 22:
        return bits.astype(np.uint32)
    if dtype == 23:
        return bits
    if dtype == 10:
        return bits != 0
    as_int32 = bits.view(np.int64).astype(np.int32)
    if dtype == 19:  # half_val: the bit pattern in the low 16 bits
        return as_int32.astype(np.uint16).view(np.float16)
    return as_int32.astype(numpy_dtype(dtype))
