"""Types of the native core (csrc/, built by setup.py). Private: use the tfckpt API."""

import os
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

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

def read_table(buffer: Buffer, name: Path) -> List[Tuple[bytes, bytes]]:
    """Every (key, value) of a table file, in order, every block CRC checked."""

def build_table(items: Iterable[Tuple[bytes, bytes]], block_size: int = 262144,
                restart_interval: int = 16) -> bytes:
    """A LevelDB-style table of the given (key, value) pairs, keys strictly increasing."""

class MappedFile:
    """A file mapped read-only; supports the buffer protocol and outlives its views."""

    def __init__(self, path: Path, track_size: bool = False) -> None: ...
    @property
    def size(self) -> int: ...
    def current_size(self) -> int:
        """The file's size now (with track_size), so a shrunken file is noticed."""
    @property
    def path(self) -> str: ...
    def __len__(self) -> int: ...
    def will_need(self, offset: int, length: int) -> None: ...

class Index:
    """A parsed .index: every block CRC checked, header and entries decoded."""

    def __init__(self, buffer: Buffer, name: Path) -> None: ...
    @property
    def header(self) -> Tuple[int, int, int, int, List[int]]:
        """(num_shards, endianness 0/1, producer, min_consumer, bad_consumers)."""
    @property
    def table_stats(self) -> dict: ...
    @property
    def name(self) -> str: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: Key) -> bool: ...
    def keys(self, hidden: bool = False) -> List[str]: ...
    def raw_keys(self) -> List[bytes]: ...
    def listing(self, hidden: bool = False) -> List[Tuple[str, int, Tuple[int, ...], int, int, Optional[str], bool]]:
        """(key, dtype, shape, size, num_elements, error or None, partitioned) per key."""
    def totals(self) -> Tuple[int, int, int, int, Dict[int, int], int]:
        """(listed keys, their elements where decodable, listed keys with a bad entry,
        listed partitioned keys, {dtype: listed keys}, bytes of every decodable
        unpartitioned entry, slice entries included)."""
    def key_records(self, cls: type, lead: tuple, names: Tuple[str, ...],
                    name_of: Callable[[int], str]) -> list:
        """One `cls` (a tuple subclass) per listed key: `lead`'s items, then key, dtype
        name, shape, num_elements, size, partitioned, status ("ok"/"error") and error."""
    def entry(self, key: Key) -> Tuple[int, Tuple[int, ...], int, int, int, int, List[List[Tuple[int, int]]], int]:
        """(dtype, shape, shard_id, offset, size, masked crc32c, slices, num_elements)."""
    def raw_value(self, key: Key) -> bytes: ...
    def is_hidden(self, key: Key) -> bool: ...
