"""The pure-Python twin of the native core: ``tfckpt._native`` in Python, one module beside
each file of csrc/ (coding, crc32c, snappy, table, bundle, writer, mapped_file, tar, stats,
and bindings for what csrc/bindings.cc does: arguments and named rows).

Written from FORMAT.md (sections 2-6), not translated from csrc/: the same names, the same
results and the same error classes on the same inputs, so the two can be checked against each
other (tests/test_pycore.py, fuzz/differential.py) and so tfckpt reads checkpoints where the
extension cannot be built.  ``tfckpt.implementation`` says which one is in use; the environment
variable ``TFCKPT_IMPLEMENTATION=python`` forces this one.

It is slow (CRC32C runs at about 20 MB/s) but bounded like the native parser: every length is
checked against the bytes that hold it before anything is allocated, keys may expand to at most
32 x the file size + 1 MiB, data blocks may not overlap or repeat, Snappy output is capped.

``BundleWriter`` writes checkpoints byte-identical to the native writer's (slower);
``build_table`` and ``serialize_entry`` are also used by tests and tools to build small tables.
"""

from .bindings import EntryRow, HeaderRow, ListingRow, TotalsRow
from .bundle import (
    Index,
    decode_slice_key,
    decode_strings,
    decode_variants,
    dtype_sizes,
    slice_key,
)
from .crc32c import (
    crc32c,
    crc32c_combine,
    crc32c_file,
    crc32c_implementation,
    crc32c_portable,
    mask_crc,
    unmask_crc,
)
from .mapped_file import MappedFile, file_identity, read_small_file
from .snappy import snappy_decompress
from .stats import tensor_stats
from .table import build_table, read_table
from .tar import tar_members
from .writer import BundleWriter, serialize_entry

__all__ = [
    "crc32c",
    "crc32c_combine",
    "crc32c_file",
    "crc32c_portable",
    "crc32c_implementation",
    "mask_crc",
    "unmask_crc",
    "dtype_sizes",
    "snappy_decompress",
    "slice_key",
    "decode_slice_key",
    "decode_strings",
    "decode_variants",
    "read_table",
    "build_table",
    "serialize_entry",
    "MappedFile",
    "file_identity",
    "read_small_file",
    "Index",
    "HeaderRow",
    "EntryRow",
    "ListingRow",
    "TotalsRow",
    "tar_members",
    "BundleWriter",
    "tensor_stats",
]
