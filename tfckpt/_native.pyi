"""Types of the native core (csrc/, built by setup.py). Private: use the tfckpt API."""

import os
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

Buffer = Union[bytes, bytearray, memoryview, "MappedFile"]
Key = Union[str, bytes]
#: A file name: str (surrogate escapes for bytes that are not UTF-8), bytes or os.PathLike.
Path = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Extents = Sequence[Tuple[int, int]]  # (start, length); length -1 = the whole dimension

#: "sse4.2", "armv8-crc" or "portable": the CRC32C implementation chosen for this CPU.
crc32c_implementation: str
#: Bytes per element in data files by DataType value; 0 string/variant, -1 not storable.
dtype_sizes: List[int]

def crc32c(data: Buffer, crc: int = 0) -> int:
    """CRC-32C of `data` extending `crc` (the CRC of preceding bytes); GIL released."""

def crc32c_portable(data: Buffer, crc: int = 0) -> int: ...
def crc32c_combine(crc_a: int, crc_b: int, len_b: int) -> int: ...
def crc32c_file(fd: int, offset: int, size: int, threads: int = 1) -> Tuple[int, int]:
    """(CRC-32C of [offset, offset+size) of fd read with pread, bytes read); GIL released."""
def mask_crc(crc: int) -> int: ...
def unmask_crc(masked: int) -> int: ...
def snappy_decompress(data: Buffer, max_output: int) -> bytes: ...
def slice_key(name: Key, slice: Extents) -> bytes:
    """The index key of one stored slice of a partitioned tensor (OrderedCode)."""

def decode_slice_key(key: bytes) -> Optional[Tuple[bytes, List[Tuple[int, int]]]]: ...
def decode_strings(data: Buffer, n: int, swap: bool, verify: bool, key: Key) -> Tuple[List[bytes], int]:
    """The n strings of a DT_STRING payload and the CRC32C TensorFlow computes over it."""

def decode_variants(data: Buffer, n: int, verify: bool, key: Key) -> Tuple[List[bytes], int]:
    """The n serialized VariantTensorDataProto of a DT_VARIANT payload, and its CRC32C."""

def tensor_stats(
    data: Buffer, dtype: int, swap: bool = False
) -> Tuple[int, int, int, int, int, float, float, float, float]:
    """(count, nan, posinf, neginf, zeros, min, max, mean, m2) of a payload of DataType
    `dtype`, byte-swapped per element with `swap`; min, max, mean and m2 (summed squared
    deviations) over the finite values, 0.0 when there are none. GIL released."""

def read_table(buffer: Buffer, name: Path) -> List[Tuple[bytes, bytes]]:
    """Every (key, value) of a table file, in order, every block CRC checked."""

def build_table(items: Iterable[Tuple[bytes, bytes]], block_size: int = 262144,
                restart_interval: int = 16) -> bytes:
    """A LevelDB-style table of the given (key, value) pairs, keys strictly increasing."""

def serialize_entry(dtype: int, shape: Sequence[int], shard_id: int, offset: int, size: int,
                    crc32c: int, slices: Sequence[Extents]) -> bytes:
    """A BundleEntryProto serialized byte for byte as TensorFlow does."""

def tar_members(buffer: Buffer) -> Optional[Tuple[Dict[str, Tuple[int, int]], Dict[str, str], Optional[str]]]:
    """({member: (data offset, size)}, {member: why it is not a file}, what is wrong with the
    archive or None) from the headers of an uncompressed tar; None when it needs a full tar
    reader."""

class BundleWriter:
    """Writes a checkpoint as TensorFlow's BundleWriter does; every method that moves bytes
    releases the GIL."""

    def __init__(self, prefix: Path, max_shard_bytes: int = 0, big_endian: bool = False) -> None: ...
    def add(self, key: Key, dtype: int, shape: Sequence[int], data: Buffer) -> None: ...
    def add_raw(self, key: Key, dtype: int, shape: Sequence[int], data: Buffer, crc32c: int) -> None: ...
    def add_strings(self, key: Key, shape: Sequence[int], items: List[bytes]) -> None: ...
    def add_variants(self, key: Key, shape: Sequence[int], items: List[bytes]) -> None: ...
    def add_slice_meta(self, key: Key, dtype: int, shape: Sequence[int], slice: Extents) -> None: ...
    def finish(self) -> int: ...
    def abort(self) -> None: ...
    @property
    def bytes_written(self) -> int: ...

# The rows Index returns: tuples whose items also have names (struct sequences here,
# namedtuples in the pure-Python twin), made by the core, not by callers.

class HeaderRow(NamedTuple):
    """Index.header: the bundle header."""

    num_shards: int
    endianness: int  # 0 little, 1 big
    producer: int
    min_consumer: int
    bad_consumers: List[int]

class EntryRow(NamedTuple):
    """Index.entry(key): a decoded BundleEntryProto."""

    dtype: int
    shape: Tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked, as stored
    slices: List[List[Tuple[int, int]]]  # (start, length) per dimension; length -1 = whole
    num_elements: int

class ListingRow(NamedTuple):
    """Index.listing(): one per listed key."""

    key: str
    dtype: int
    shape: Tuple[int, ...]
    size: int
    num_elements: int
    error: Optional[str]  # None for a decodable entry
    partitioned: bool

class TotalsRow(NamedTuple):
    """Index.totals(): sums over the listed keys, without a row per key."""

    keys: int  # listed keys
    elements: int  # their elements, where the entry decodes
    bad: int  # listed keys whose entry does not decode
    partitioned: int  # listed partitioned keys
    dtype_counts: Dict[int, int]  # {dtype: listed keys}
    data_bytes: int  # bytes of every decodable unpartitioned entry, slice entries included

def read_small_file(path: Path, limit: int) -> Optional[bytes]:
    """The bytes of regular file `path` if it holds at most `limit` bytes and reads whole;
    None otherwise, errors included. GIL released."""
def file_identity(path: Path) -> Optional[Tuple[int, int, int, int]]:
    """(device, inode, size, mtime ns) of the regular file at `path`; None when it cannot be
    stat'ed or is not a regular file. GIL released."""

class MappedFile:
    """A file mapped read-only; supports the buffer protocol and outlives its views."""

    def __init__(self, path: Path, track_size: bool = False) -> None: ...
    @property
    def size(self) -> int: ...
    def current_size(self) -> int:
        """The file's size now (with track_size), so a shrunken file is noticed."""
    @property
    def path(self) -> str: ...
    @property
    def identity(self) -> Tuple[int, int, int, int]:
        """(device, inode, size, mtime in ns) of the file when it was opened."""
    def __len__(self) -> int: ...
    def will_need(self, offset: int, length: int) -> None: ...

class Index:
    """A parsed .index: every block CRC checked, header and entries decoded."""

    def __init__(self, buffer: Buffer, name: Path) -> None: ...
    @property
    def header(self) -> HeaderRow: ...
    @property
    def table_stats(self) -> dict: ...
    @property
    def name(self) -> str: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: Key) -> bool: ...
    def keys(self, hidden: bool = False) -> List[str]: ...
    def raw_keys(self) -> List[bytes]: ...
    def listing(self, hidden: bool = False) -> List[ListingRow]:
        """One row per key, slice entries TensorFlow hides only with `hidden`."""
    def totals(self) -> TotalsRow: ...
    def key_records(self, cls: type, lead: tuple, names: Tuple[str, ...],
                    name_of: Callable[[int], str]) -> list:
        """One `cls` (a tuple subclass) per listed key: `lead`'s items, then key, dtype
        name, shape, num_elements, size, partitioned, status ("ok"/"error") and error."""
    def entry(self, key: Key) -> EntryRow: ...
    def entry_objects(self, cls: type, slices_of: Callable[[list], tuple]) -> Dict[str, Any]: ...
    def entry_object(self, key: Key, cls: type, slices_of: Callable[[list], tuple]) -> Any: ...
    def raw_value(self, key: Key) -> bytes: ...
    def is_hidden(self, key: Key) -> bool: ...
