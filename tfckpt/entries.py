"""What an index says: the header, one entry per key, the stored entries of partitioned
tensors, and decoded variant elements. Shared by the V2 and V1 readers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from ._core import core
from .dtypes import by_code, numpy_dtype
from .errors import UnsupportedCheckpointError
from .slices import TensorSlice

__all__ = ["Header", "Entry", "StoredEntry", "Variant", "check_versions", "CONSUMER_VERSION"]

#: The bundle version this reader implements (kTensorBundleVersion; TF_CHECKPOINT_VERSION
#: of format V1 has the same number).
CONSUMER_VERSION = 1


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


_NUMPY_BY_CODE: Dict[int, Any] = {}  # Entry.dtype, looked up once per dtype
_set_attribute = object.__setattr__


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

    # Slots, not an instance dict: an Entry is small (the reader keeps one per key it was
    # asked about), and the core fills a new one's slots directly (Index.entry_objects),
    # which makes the loop every script writes, entry(k) for each key, cost a lookup.
    _FIELDS = (
        "key",
        "dtype_code",
        "shape",
        "shard_id",
        "offset",
        "size",
        "crc32c",
        "slices",
        "num_elements",
    )
    # `dtype` is a slot too, not a field: filled when the entry is made (by the core, from
    # _DTYPES, numpy dtype by DataType code), so that reading it costs what reading a field
    # does. An entry of a DataType with no numpy dtype (resource) is an _EntryOfNoNumpyDtype,
    # whose `dtype` raises the TypeError that says so.
    __slots__ = _FIELDS + ("dtype",)
    _DTYPES = _NUMPY_BY_CODE

    def __post_init__(self) -> None:  # an Entry made in Python
        d = _dtype_of(self.dtype_code)
        if d is None:
            _set_attribute(self, "__class__", _EntryOfNoNumpyDtype)
        else:
            _set_attribute(self, "dtype", d)

    @staticmethod
    def _dtype_of(code: int) -> Any:
        return _dtype_of(code)

    # A frozen class with slots is pickled (and copied) through these: the default would
    # restore the fields with setattr, which a frozen dataclass refuses.
    def __getstate__(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in Entry._FIELDS)

    def __setstate__(self, state: Tuple[Any, ...]) -> None:
        for name, value in zip(Entry._FIELDS, state):
            _set_attribute(self, name, value)
        d = _dtype_of(self.dtype_code)
        if d is None:
            _set_attribute(self, "__class__", _EntryOfNoNumpyDtype)
        else:
            _set_attribute(self, "dtype", d)

    if TYPE_CHECKING:  # for type checkers: an attribute, not an argument of __init__
        #: The numpy dtype of the values (object for strings and variants).
        dtype: Any = field(init=False, repr=False, compare=False)

    @property
    def dtype_name(self) -> str:
        """The dtype as ``tf.DType.name`` spells it (``float32``, ``bfloat16``, ``string``)."""
        return by_code(self.dtype_code).name

    @property
    def checksum(self) -> int:
        """The unmasked CRC32C of the payload bytes."""
        return int(core.unmask_crc(self.crc32c))

    @property
    def is_partitioned(self) -> bool:
        return bool(self.slices)


def _dtype_of(code: int) -> Any:
    """The numpy dtype of DataType `code` (cached in Entry._DTYPES), or None if it has none."""
    d = _NUMPY_BY_CODE.get(code)
    if d is None:
        try:
            d = _NUMPY_BY_CODE[code] = numpy_dtype(code)
        except (TypeError, ValueError):
            return None
    return d


class _EntryOfNoNumpyDtype(Entry):
    """An Entry of a DataType with no numpy dtype (resource, or a code that is no DataType):
    the same fields; its `dtype` is a TypeError that says so."""

    __slots__ = ()

    @property
    def dtype(self) -> Any:
        return numpy_dtype(self.dtype_code)  # raises the TypeError

    def __reduce__(self) -> Tuple[Any, ...]:  # pickled as the Entry it is made by
        return (Entry, tuple(getattr(self, name) for name in self._FIELDS))


# Named as the class it stands in for: its repr reads Entry(...).
_EntryOfNoNumpyDtype.__qualname__ = _EntryOfNoNumpyDtype.__name__ = "Entry"
# The core makes entries of codes without a numpy dtype as this class (EntryClass).
Entry._NO_NUMPY_DTYPE = _EntryOfNoNumpyDtype  # type: ignore[attr-defined]  # noqa: SLF001


@dataclass(frozen=True)
class StoredEntry:
    """One payload stored in a data shard: a whole tensor (``slice`` None), or one slice of
    a partitioned tensor (``entry`` is then the slice's own entry, its shape the slice's)."""

    key: str
    slice: Optional[TensorSlice]
    entry: Entry


@dataclass
class Variant:
    """One element of a DT_VARIANT tensor: a VariantTensorDataProto, decoded."""

    type_name: str
    metadata: bytes
    tensors: List[Any]

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{getattr(t, 'dtype', '?')}{list(getattr(t, 'shape', ()))}" for t in self.tensors
        )
        return (
            f"Variant({self.type_name!r}, metadata={len(self.metadata)} bytes, tensors=[{inner}])"
        )


def check_versions(
    where: str, producer: int, min_consumer: int, bad_consumers: Sequence[int]
) -> None:
    """TensorFlow's CheckVersions with consumer 1 and min producer 0, the numbers of both
    the bundle (kTensorBundleVersion) and format V1 (TF_CHECKPOINT_VERSION)."""
    if producer < 0:
        raise UnsupportedCheckpointError(
            f"{where}: Checkpoint producer version {producer} below min producer 0 "
            "supported by tfckpt.  Please regenerate your checkpoint.",
            path=where,
        )
    if min_consumer > CONSUMER_VERSION:
        raise UnsupportedCheckpointError(
            f"{where}: Checkpoint min consumer version {min_consumer} above current "
            f"version {CONSUMER_VERSION} for tfckpt.  It was written by a newer format "
            "version.",
            path=where,
        )
    if CONSUMER_VERSION in bad_consumers:
        raise UnsupportedCheckpointError(
            f"{where}: Checkpoint disallows consumer version {CONSUMER_VERSION}.  "
            "Please upgrade: this version is likely buggy.",
            path=where,
        )
