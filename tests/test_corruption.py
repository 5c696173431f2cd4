"""Damaged and hostile checkpoints: every one must give a clear tfckpt error, never a crash,
a hang or a huge allocation.

* Damaged copies of real TensorFlow checkpoints (the ``corpus`` fixture): flipped bits,
  truncations, missing shards.
* Hostile files crafted byte by byte (``tests/craft.py``): lying shapes, sizes, offsets,
  shard ids, block handles, restart arrays, varints, wire types, headers, slices.

The crafted cases run in a CHILD process (``craft.child_main``) with RLIMIT_AS = 2 GiB and
a timeout, all in one process to keep the suite fast; the child prints a line before and
after each case, so a segfault or an abort names the case it happened in.

Several of these files crash TensorFlow 2.21 itself (failed CHECKs that abort the process,
one segmentation fault); ``test_tensorflow_crashes_but_tfckpt_does_not`` records what TF
really does on them, each in a child process of its own, started in the background.

Public reports whose inputs are recreated here (own bytes, no copied code):
* GHSA-7pxj-m4jf-r6h2 / CVE-2021-41203 "Missing validation during checkpoint loading"
  (fixes: tensorflow/tensorflow PR #52658 "Add BuildTensorSlice for building from
  unvalidated TensorSliceProtos" and PR #52663 "Avoid buffer overflow when loading tensors
  with insufficient data from checkpoints"): negative / overflowing slice extents and a
  slice entry with fewer bytes than its shape.
* tensorflow/tensorflow PR #123020 "check stored slice shape against full shape in
  GetSliceValue": a slice entry whose stored shape holds fewer elements than its slice
  -> heap buffer over-read in BundleReader::GetSliceValue.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import io
import json
import os
import pathlib
import resource
import shutil
import signal
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest

import tfckpt
from tfckpt import (
    ChecksumMismatchError,
    CorruptCheckpointError,
    KeyNotFoundError,
    MissingShardError,
    NotACheckpointError,
    UnsupportedCheckpointError,
    _native,
    cli,
)

TESTS_DIR = pathlib.Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import craft as C  # noqa: E402

CRAFT = str(TESTS_DIR / "craft.py")
AS_LIMIT = 2 << 30  # RLIMIT_AS of every child: a huge allocation fails instead of swapping
CHILD_TIMEOUT = 20
MAX_CASE_SECONDS = 2.0
MAX_CASE_RSS_GROWTH_KB = 256 * 1024


# --------------------------------------------------------------------------
# child processes


def _child_limits() -> None:
    # AddressSanitizer (.ci/sanitize preloads it) reserves terabytes of address space.
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _text(b) -> str:
    """TimeoutExpired carries bytes even for a text-mode run."""
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


@dataclasses.dataclass
class ChildRun:
    returncode: Optional[int]  # None: killed at the timeout
    stdout: str
    stderr: str
    records: Dict[str, dict]
    last_started: Optional[str]

    @property
    def finished(self) -> bool:
        return self.returncode == 0 and self.stdout.rstrip().endswith("DONE")

    def describe(self) -> str:
        how = (
            "timed out"
            if self.returncode is None
            else f"died by signal {-self.returncode}"
            if self.returncode < 0
            else f"exited {self.returncode}"
        )
        return (
            f"tfckpt child {how} during case {self.last_started!r}; "
            f"stderr tail: {self.stderr[-1500:]}"
        )


def run_tfckpt_child(cases: List[dict], timeout: float = CHILD_TIMEOUT) -> ChildRun:
    """Runs tfckpt on `cases` in one child process (see craft.child_main)."""
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    try:
        p = subprocess.run(
            [sys.executable, CRAFT, "tfckpt"],
            input=json.dumps(cases),
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_child_limits,
            env=env,
        )
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, _text(e.stdout), _text(e.stderr)
    records, last = {}, None
    for line in out.splitlines():
        if line.startswith("START "):
            last = line[6:]
        elif line.startswith("RESULT "):
            rec = json.loads(line[7:])
            records[rec["name"]] = rec
    return ChildRun(rc, out, err, records, last)


@dataclasses.dataclass
class TFOutcome:
    returncode: Optional[int]
    steps: List[str]
    stderr: str

    @property
    def crashed(self) -> bool:
        return self.returncode is not None and self.returncode != 0

    def summary(self) -> str:
        return f"rc={self.returncode} steps={self.steps} stderr tail={self.stderr[-600:]!r}"


def run_tf_child(prefix: str, key: str, timeout: float = 60) -> TFOutcome:
    """tf.train.list_variables and load_checkpoint().get_tensor on a file, in a child."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("LD_PRELOAD", None)  # TensorFlow as it runs for users, not under .ci/sanitize
    try:
        p = subprocess.run(
            [sys.executable, CRAFT, "tf"],
            input=json.dumps({"prefix": prefix, "key": key}),
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_child_limits,
            env=env,
        )
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, _text(e.stdout), _text(e.stderr)
    return TFOutcome(rc, [ln[5:] for ln in out.splitlines() if ln.startswith("STEP ")], err)


# --------------------------------------------------------------------------
# crafted checkpoints

DATA = struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)
OK = C.entry(C.DT_FLOAT, [4], data=DATA)  # key "ok": a valid float32[4] at offset 0
HDR = C.header()

OPEN = [{"op": "open"}]
ENTRY_OPS = [
    {"op": "open"},
    {"op": "keys"},
    {"op": "read", "key": "ok"},
    {"op": "read", "key": "x"},
]
SLICED_OPS = [{"op": "open"}, {"op": "keys"}, {"op": "read", "key": "p"}]


@dataclasses.dataclass
class Hostile:
    name: str
    build: Callable[[str, dict], str]  # (directory, corpus) -> prefix
    cls: Optional[type]  # expected exception class; None = must read fine
    fragments: Sequence[str] = ()  # substrings the message must contain
    ops: Sequence[dict] = tuple(ENTRY_OPS)
    at: str = "read"  # "open": fails opening; "read": at the last op
    key: Optional[str] = None  # a key the message must name
    source: str = ""  # the public report the input recreates, if any


HOSTILE: List[Hostile] = []


def hostile(name, cls, *fragments, ops=ENTRY_OPS, at=None, key="x", source=""):
    """Registers a crafted case; the decorated function builds it and returns its prefix."""

    def register(build):
        where = at or ("open" if ops is OPEN else "read")
        HOSTILE.append(
            Hostile(
                name,
                build,
                cls,
                fragments,
                tuple(ops),
                where,
                key if where == "read" else None,
                source,
            )
        )
        return build

    return register


def add_x_case(name, x_entry, cls, *fragments, shards=DATA, source="", ops=ENTRY_OPS, **kw):
    """A bundle with the valid key "ok" and the crafted entry under key "x"."""

    def build(d, corpus):
        return C.write_bundle(d, name, [("ok", OK), ("x", x_entry)], shards, **kw)

    hostile(name, cls, *fragments, source=source, ops=ops)(build)


def add_raw_case(name, index_bytes, cls, *fragments, shards=DATA):
    def build(d, corpus):
        return C.write_bundle(d, name, [], shards, index_bytes=index_bytes)

    hostile(name, cls, *fragments, ops=OPEN)(build)


# -- shapes -------------------------------------------------------------------------

add_x_case(
    "negative_dimension",
    C.entry(C.DT_FLOAT, [-1], data=DATA),
    CorruptCheckpointError,
    "invalid tensor shape",
    "[-1]",
)
add_x_case(
    "negative_dimension_2d",
    C.entry(C.DT_FLOAT, [2, -2], data=DATA),
    CorruptCheckpointError,
    "invalid tensor shape",
    "[2,-2]",
)
add_x_case(
    "shape_element_count_overflow",
    C.entry(C.DT_FLOAT, [2**62, 2**62], data=DATA),
    CorruptCheckpointError,
    "invalid tensor shape",
    "overflows",
)
# 2**32 * 2**32 wraps to exactly 0 in unsigned 64-bit arithmetic
add_x_case(
    "shape_element_count_wraps_to_zero",
    C.entry(C.DT_FLOAT, [2**32, 2**32], size=0),
    CorruptCheckpointError,
    "invalid tensor shape",
    "overflows",
)
add_x_case(
    "dims_255",
    C.entry(C.DT_FLOAT, [1] * 255, data=DATA[:4]),
    CorruptCheckpointError,
    "254 dimensions",
)
add_x_case(
    "dims_1000",
    C.entry(C.DT_FLOAT, [1] * 1000, data=DATA[:4]),
    CorruptCheckpointError,
    "254 dimensions",
)
# Must not allocate 2**40 strings: a 10-byte payload cannot hold them.
add_x_case(
    "huge_string_shape",
    C.entry(C.DT_STRING, [2**40], offset=16, data=b"0123456789"),
    CorruptCheckpointError,
    "Invalid size in bundle entry",
    "1099511627776",
    shards=DATA + b"0123456789",
)
add_x_case(
    "huge_float_shape",
    C.entry(C.DT_FLOAT, [2**40], data=DATA),
    CorruptCheckpointError,
    "Invalid size in bundle entry",
    "stored size 16",
    "expected size 4398046511104",
)
add_x_case(
    "huge_variant_shape",
    C.entry(C.DT_VARIANT, [2**40], offset=16, data=b"0123456789"),
    CorruptCheckpointError,
    "Invalid size in bundle entry",
    shards=DATA + b"0123456789",
)


def _huge_string_length():
    # One element claiming 2**60 bytes, with a correct length checksum: the check that the
    # bytes are there must come before any allocation.
    n = 2**60
    c = C.crc32c(struct.pack("<Q", n))
    payload = C.varint(n) + C.fixed32(C.mask(c)) + b"abc"
    return payload


add_x_case(
    "string_element_length_2_pow_60",
    C.entry(C.DT_STRING, [1], offset=16, data=_huge_string_length()),
    CorruptCheckpointError,
    "run past the end",
    shards=DATA + _huge_string_length(),
)

# -- offsets, sizes, shards -------------------------------------------------------

add_x_case(
    "numeric_size_mismatch",
    C.entry(C.DT_FLOAT, [4], data=DATA, size=12),
    CorruptCheckpointError,
    "Invalid size in bundle entry",
    "stored size 12",
    "expected size 16",
)
add_x_case(
    "offset_plus_size_overflows",
    C.entry(C.DT_FLOAT, [4], offset=2**63 - 5, size=16, crc=0),
    CorruptCheckpointError,
    "invalid offset",
)
add_x_case(
    "negative_offset",
    C.entry(C.DT_FLOAT, [4], offset=-8, size=16, crc=0),
    CorruptCheckpointError,
    "invalid offset",
)
add_x_case(
    "size_larger_than_shard",
    C.entry(C.DT_FLOAT, [1000], size=4000, crc=0),
    CorruptCheckpointError,
    "past the end of the",
    "data file",
    "[0, 4000)",
)
add_x_case(
    "offset_past_end_of_shard",
    C.entry(C.DT_FLOAT, [4], offset=10**9, size=16, crc=0),
    CorruptCheckpointError,
    "past the end of the",
    "data file",
)
add_x_case(
    "string_size_larger_than_shard",
    C.entry(C.DT_STRING, [1], size=2**40, crc=0),
    CorruptCheckpointError,
    "past the end of the",
    "data file",
)
add_x_case(
    "shard_id_out_of_range",
    C.entry(C.DT_FLOAT, [4], data=DATA, shard_id=3),
    CorruptCheckpointError,
    "data shard 3",
    "1 shards",
)
add_x_case(
    "negative_shard_id",
    C.entry(C.DT_FLOAT, [4], data=DATA, shard_id=-1),
    CorruptCheckpointError,
    "invalid shard id -1",
)
READ_X_OPS = [{"op": "open"}, {"op": "keys"}, {"op": "read", "key": "x"}]
add_x_case(
    "num_shards_zero",
    C.entry(C.DT_FLOAT, [4], data=DATA),
    CorruptCheckpointError,
    "data shard 0",
    "0 shards",
    hdr=C.header(num_shards=0),
    ops=READ_X_OPS,
)
add_x_case(
    "num_shards_negative",
    C.entry(C.DT_FLOAT, [4], data=DATA),
    CorruptCheckpointError,
    "data shard 0",
    "-1 shards",
    hdr=C.header(num_shards=-1),
    ops=READ_X_OPS,
)
add_x_case(
    "wrong_crc",
    C.entry(C.DT_FLOAT, [4], data=DATA, crc=C.mask(12345)),
    ChecksumMismatchError,
    "Checksum does not match",
)

# -- protobuf wire data of an entry -----------------------------------------------

add_x_case("entry_invalid_wire_type", OK + C.tag(9, 7), CorruptCheckpointError, "not parseable")
add_x_case("entry_wire_type_6", OK + C.tag(9, 6), CorruptCheckpointError, "not parseable")
add_x_case(
    "entry_unterminated_group",
    OK + C.tag(15, 3) + C.tag(1, 0) + b"\x05",
    CorruptCheckpointError,
    "not parseable",
)
add_x_case("entry_stray_end_group", OK + C.tag(15, 4), CorruptCheckpointError, "not parseable")
add_x_case(
    "entry_mismatched_end_group",
    OK + C.tag(15, 3) + C.tag(16, 4),
    CorruptCheckpointError,
    "not parseable",
)
add_x_case(
    "entry_endless_varint", OK + C.tag(4, 0) + b"\xff" * 11, CorruptCheckpointError, "not parseable"
)
add_x_case(
    "entry_endless_varint_in_dim",
    C.tag(1, 0) + b"\x01" + C.ld(2, C.tag(2, 2) + b"\x0b" + C.tag(1, 0) + b"\xff" * 10),
    CorruptCheckpointError,
    "unparseable shape",
)
add_x_case(
    "entry_field_longer_than_entry",
    OK + C.tag(2, 2) + C.varint(100) + b"\x12",
    CorruptCheckpointError,
    "not parseable",
)
add_x_case(
    "entry_tag_field_zero", C.tag(0, 0) + b"\x01" + OK, CorruptCheckpointError, "not parseable"
)
# dtype sent as a length-delimited field: protobuf keeps it as an unknown field, so the
# entry's dtype is DT_INVALID (TensorFlow then aborts in get_tensor: "Type not set").
add_x_case(
    "entry_dtype_wrong_wire_type", C.ld(1, b"\x01") + OK[2:], UnsupportedCheckpointError, "dtype"
)
# shape sent as a varint: ignored, so the tensor is a scalar whose size (16) is wrong
add_x_case(
    "entry_shape_wrong_wire_type",
    C.tag(1, 0)
    + b"\x01"
    + C.tag(2, 0)
    + b"\x04"
    + C.tag(5, 0)
    + b"\x10"
    + C.tag(6, 5)
    + C.fixed32(C.masked_crc(DATA)),
    CorruptCheckpointError,
    "Invalid size in bundle entry",
    "expected size 4",
)
# crc32c sent as a varint: ignored, so the stored CRC is 0 and the data does not match it
add_x_case(
    "entry_crc_wrong_wire_type",
    C.tag(1, 0)
    + b"\x01"
    + C.ld(2, C.ld(2, C.tag(1, 0) + b"\x04"))
    + C.tag(5, 0)
    + b"\x10"
    + C.tag(6, 0)
    + C.varint(C.masked_crc(DATA)),
    ChecksumMismatchError,
    "Checksum does not match",
)

# -- headers ----------------------------------------------------------------------------


def _header_case(name, hdr, cls, *fragments, ops=OPEN):
    def build(d, corpus):
        return C.write_bundle(d, name, [("ok", OK)], DATA, hdr=hdr)

    hostile(name, cls, *fragments, ops=ops)(build)


# TensorFlow's wording (versions.cc CheckVersions), FORMAT.md section 3
_header_case(
    "header_producer_negative",
    C.header(producer=-1),
    UnsupportedCheckpointError,
    "Checkpoint producer version -1 below min producer 0",
)
_header_case(
    "header_min_consumer_2",
    C.header(min_consumer=2),
    UnsupportedCheckpointError,
    "Checkpoint min consumer version 2 above current version 1",
)
_header_case(
    "header_bad_consumer_1",
    C.header(bad_consumers=[1]),
    UnsupportedCheckpointError,
    "Checkpoint disallows consumer version 1",
)
_header_case(
    "header_unparseable", b"\xff" * 11, CorruptCheckpointError, "unable to parse the bundle header"
)
# An endianness value that is neither LITTLE nor BIG: TF 2.21 reads the payloads unswapped
# (as little-endian) on this host; so must tfckpt.
_header_case(
    "header_unknown_endianness_reads_like_tf",
    C.header(endianness=2),
    None,
    ops=[{"op": "open"}, {"op": "read", "key": "ok"}],
)


@hostile("missing_header_entry", CorruptCheckpointError, "no bundle header", '"ok"', ops=OPEN)
def _missing_header(d, corpus):
    return C.write_bundle(d, "missing_header_entry", [("ok", OK), ("x", OK)], DATA, hdr=b"-")


@hostile("table_without_entries", CorruptCheckpointError, "no entries", ops=OPEN)
def _no_entries(d, corpus):
    return C.write_bundle(d, "table_without_entries", [], DATA, hdr=b"-")


@hostile("keys_out_of_order", CorruptCheckpointError, "not in strictly increasing order", ops=OPEN)
def _unsorted(d, corpus):
    return C.write_bundle(d, "keys_out_of_order", [("b", OK), ("a", OK)], DATA, sort=False)


@hostile("duplicate_keys", CorruptCheckpointError, "not in strictly increasing order", ops=OPEN)
def _duplicates(d, corpus):
    return C.write_bundle(d, "duplicate_keys", [("a", OK), ("a", OK)], DATA, sort=False)


@hostile(
    "keys_out_of_order_across_blocks",
    CorruptCheckpointError,
    "not in strictly increasing order",
    ops=OPEN,
)
def _unsorted_blocks(d, corpus):
    b1 = C.simple_block([(b"", HDR), (b"m", OK)])
    b2 = C.simple_block([(b"c", OK)])
    return C.write_bundle(
        d, "keys_out_of_order_across_blocks", [], DATA, index_bytes=C.assemble([b1, b2])
    )


# -- table structure: footer, handles, blocks -------------------------------------------

GOOD_BLOCK = C.simple_block([(b"", HDR), (b"ok", OK)])
GOOD_TABLE = C.assemble([GOOD_BLOCK])


@hostile("hand_assembled_table_reads", None, ops=[{"op": "open"}, {"op": "read", "key": "ok"}])
def _good(d, corpus):
    # positive control for the hand-assembly helpers
    return C.write_bundle(d, "hand_assembled_table_reads", [], DATA, index_bytes=GOOD_TABLE)


add_raw_case("bad_magic", GOOD_TABLE[:-8] + b"\x00" * 8, CorruptCheckpointError, "bad magic")
add_raw_case("empty_index", b"", CorruptCheckpointError, "too short")
add_raw_case(
    "footer_endless_varints",
    GOOD_TABLE[:-48] + b"\xff" * 40 + C.MAGIC,
    CorruptCheckpointError,
    "bad block handle in the footer",
)


def _with_footer(table: bytes, index_handle: Tuple[int, int]) -> bytes:
    """`table` with its footer replaced by one pointing the index at `index_handle`."""
    return table[:-48] + C.footer((0, 0), index_handle)


add_raw_case(
    "index_handle_past_end",
    _with_footer(GOOD_TABLE, (10**6, 20)),
    CorruptCheckpointError,
    "index block handle",
    "past the end of the file",
)
add_raw_case(
    "index_handle_size_2_pow_64",
    _with_footer(GOOD_TABLE, (0, 2**64 - 1)),
    CorruptCheckpointError,
    "index block handle",
    "past the end of the file",
)
# The index block runs into the footer: contents + trailer end inside the last 48 bytes.
add_raw_case(
    "index_handle_overlaps_footer",
    _with_footer(GOOD_TABLE, (len(GOOD_TABLE) - 48 - 10, 20)),
    CorruptCheckpointError,
    "index block handle",
    "past the end of the file",
)
add_raw_case(
    "data_block_handle_past_end",
    C.assemble([GOOD_BLOCK], index_handles=[(5000, 40)]),
    CorruptCheckpointError,
    "data block handle",
    "past the end of the file",
)
add_raw_case(
    "data_block_handle_overlaps_footer",
    C.assemble([GOOD_BLOCK], index_handles=[(0, len(GOOD_TABLE))]),
    CorruptCheckpointError,
    "past the end of the file",
)
add_raw_case(
    "data_block_handle_unparseable",
    C.assemble([GOOD_BLOCK], index_block=C.simple_block([(b"\xff", b"\xff\xff\xff")])),
    CorruptCheckpointError,
    "bad block handle in the index block",
)
add_raw_case(
    "repeated_data_block",
    C.assemble([GOOD_BLOCK], index_handles=[(0, len(GOOD_BLOCK))] * 2),
    CorruptCheckpointError,
    "overlaps or precedes",
)
add_raw_case(
    "overlapping_data_blocks",
    C.assemble(
        [GOOD_BLOCK, GOOD_BLOCK], index_handles=[(0, len(GOOD_BLOCK)), (10, len(GOOD_BLOCK))]
    ),
    CorruptCheckpointError,
    "overlaps or precedes",
)
add_raw_case(
    "data_blocks_in_reverse_order",
    C.assemble(
        [C.simple_block([(b"", HDR)]), C.simple_block([(b"ok", OK)])],
        index_handles=[
            (len(C.framed(C.simple_block([(b"", HDR)]))), len(C.simple_block([(b"ok", OK)]))),
            (0, len(C.simple_block([(b"", HDR)]))),
        ],
    ),
    CorruptCheckpointError,
    "overlaps or precedes",
)


@hostile("index_10000_entries_same_block", CorruptCheckpointError, "overlaps or precedes", ops=OPEN)
def _same_block_10000(d, corpus):
    # Without a check this costs 10000 parses of the same block (and 10000 x its entries).
    big = C.simple_block([(b"", HDR)] + [(b"k%05d" % i, OK) for i in range(2000)])
    h = C.handle(0, len(big))
    index = C.simple_block([(b"%08d" % i, h) for i in range(10000)])
    return C.write_bundle(
        d,
        "index_10000_entries_same_block",
        [],
        DATA,
        index_bytes=C.assemble([big], index_block=index),
    )


# block contents and restart arrays
E0 = C.block_entry(0, b"", HDR)
E1 = C.block_entry(0, b"ok", OK)
add_raw_case(
    "restart_outside_block",
    C.assemble([C.block([E0 + E1], [0, 5000])]),
    CorruptCheckpointError,
    "restart point 5000",
    "outside",
)
add_raw_case(
    "restart_not_at_entry_boundary",
    C.assemble([C.block([E0 + E1], [0, 3])]),
    CorruptCheckpointError,
    "restart point 3",
    "not at an entry boundary",
)
add_raw_case(
    "restarts_not_starting_at_zero",
    C.assemble([C.block([E0 + E1], [len(E0)])]),
    CorruptCheckpointError,
    "does not start at offset 0",
)
add_raw_case(
    "num_restarts_larger_than_block",
    C.assemble([C.block([E0 + E1], [0], num_restarts=1000)]),
    CorruptCheckpointError,
    "1000 restart points do not fit",
)
add_raw_case(
    "num_restarts_2_pow_32_minus_1",
    C.assemble([C.block([E0 + E1], [0], num_restarts=2**32 - 1)]),
    CorruptCheckpointError,
    "restart points do not fit",
)
add_raw_case(
    "block_shorter_than_4_bytes",
    C.assemble([b"\x01\x00"]),
    CorruptCheckpointError,
    "bad block contents",
    "too short",
)
add_raw_case(
    "shared_larger_than_previous_key",
    C.assemble([C.block([E0 + C.block_entry(5, b"x", OK)], [0])]),
    CorruptCheckpointError,
    "shares 5 bytes with a 0-byte key",
)
add_raw_case(
    "shared_at_restart_point",
    C.assemble([C.block([E0 + E1 + C.block_entry(1, b"x", OK)], [0, len(E0 + E1)])]),
    CorruptCheckpointError,
    "restart point",
)
add_raw_case(
    "block_entry_endless_varint",
    C.assemble([C.block([E0 + b"\xff" * 11 + b"\x00" * 4], [0])]),
    CorruptCheckpointError,
    "bad entry",
    "truncated lengths",
)
add_raw_case(
    "block_entry_varint32_too_big",
    C.assemble([C.block([E0 + b"\xff\xff\xff\xff\x7f\x00\x00"], [0])]),
    CorruptCheckpointError,
    "bad entry",
)
add_raw_case(
    "block_entry_value_past_block",
    C.assemble([C.block([E0 + C.block_entry(0, b"ok", OK, value_len=10**6)], [0])]),
    CorruptCheckpointError,
    "bad entry",
    "runs past the block",
)
add_raw_case(
    "block_entry_key_length_2_pow_32_minus_1",
    C.assemble([C.block([E0 + C.block_entry(0, b"ok", OK, unshared_len=2**32 - 1)], [0])]),
    CorruptCheckpointError,
    "bad entry",
    "runs past the block",
)


@hostile("key_expansion_bomb", CorruptCheckpointError, "keys expand to more than", ops=OPEN)
def _key_bomb(d, corpus):
    # One 64 KiB key, then 60000 entries that each share all of it and add 2 bytes: a
    # 430 KB file whose keys would expand to 3.9 GB. Restart interval "infinite".
    long_key = b"a" * 65536
    entries = [E0, C.block_entry(0, long_key, b"")]
    entries += [C.block_entry(len(long_key), struct.pack(">H", i), b"") for i in range(60000)]
    return C.write_bundle(
        d, "key_expansion_bomb", [], DATA, index_bytes=C.assemble([C.block(entries, [0])])
    )


# block trailers: checksum, type, Snappy
add_raw_case(
    "block_checksum_mismatch",
    GOOD_TABLE[: len(GOOD_BLOCK) + 1] + b"\x00\x00\x00\x00" + GOOD_TABLE[len(GOOD_BLOCK) + 5 :],
    ChecksumMismatchError,
    "block checksum mismatch",
)
add_raw_case(
    "block_type_7", C.assemble([(GOOD_BLOCK, 7)]), CorruptCheckpointError, "bad block type 7"
)
add_raw_case(
    "index_block_type_7",
    C.assemble([GOOD_BLOCK], index_type=7),
    CorruptCheckpointError,
    "bad block type 7",
    "index block",
)
add_raw_case(
    "snappy_garbage",
    C.assemble([(b"\x20" + b"\xff" * 40, 1)]),
    CorruptCheckpointError,
    "corrupted compressed block contents",
)
add_raw_case(
    "snappy_declares_4_gib",
    C.assemble([(C.varint(2**32 - 1) + b"\x00a", 1)]),
    CorruptCheckpointError,
    "corrupted compressed block contents",
)
add_raw_case(
    "snappy_copy_before_start",
    C.assemble([(C.varint(40) + b"\x00a" + bytes([(3 << 2) | 2]) + b"\x10\x00", 1)]),
    CorruptCheckpointError,
    "corrupted compressed block contents",
)


@hostile("snappy_block_reads", None, ops=[{"op": "open"}, {"op": "read", "key": "ok"}])
def _snappy_ok(d, corpus):
    # positive control: a valid Snappy (type 1) data block
    return C.write_bundle(
        d,
        "snappy_block_reads",
        [],
        DATA,
        index_bytes=C.assemble([(C.snappy_literal(GOOD_BLOCK), 1)]),
    )


# -- partitioned tensors --------------------------------------------------------------

S1 = struct.pack("<4f", 1, 2, 3, 4)  # rows 0-1 of a float32[4, 2]
S2 = struct.pack("<4f", 5, 6, 7, 8)  # rows 2-3
TOP, BOTTOM = [(0, 2), (0, 2)], [(2, 2), (0, 2)]
FULL = C.entry(C.DT_FLOAT, [4, 2], slices=[TOP, BOTTOM])


def _sliced(name, full, parts, cls, *fragments, source=""):
    """A partitioned tensor "p" (full entry `full`) with slice entries {extents: entry}."""

    def build(d, corpus):
        items = [("p", full)] + [(C.slice_key("p", ext), e) for ext, e in parts]
        return C.write_bundle(d, name, items, S1 + S2)

    hostile(name, cls, *fragments, ops=SLICED_OPS, key="p", source=source)(build)


TOP_E = C.entry(C.DT_FLOAT, [2, 2], data=S1)
BOTTOM_E = C.entry(C.DT_FLOAT, [2, 2], offset=16, data=S2)
_sliced("partitioned_reads", FULL, [(TOP, TOP_E), (BOTTOM, BOTTOM_E)], None)
_sliced(
    "slices_overlap",
    C.entry(C.DT_FLOAT, [4, 2], slices=[[(0, 3), (0, 2)], BOTTOM]),
    [([(0, 3), (0, 2)], C.entry(C.DT_FLOAT, [3, 2], data=S1 + S2[:8])), (BOTTOM, BOTTOM_E)],
    CorruptCheckpointError,
    "overlap",
    "0,3:0,2",
    "2,2:0,2",
)
_sliced(
    "slices_do_not_cover",
    C.entry(C.DT_FLOAT, [4, 2], slices=[TOP]),
    [(TOP, TOP_E)],
    CorruptCheckpointError,
    "Does not have sufficient slices",
    "cover 4 of 8",
)
_sliced(
    "slice_entry_missing", FULL, [(TOP, TOP_E)], CorruptCheckpointError, "slice 2,2:0,2", "missing"
)
_sliced(
    "slice_entry_fewer_elements",
    FULL,
    [(TOP, C.entry(C.DT_FLOAT, [1, 1], data=S1[:4])), (BOTTOM, BOTTOM_E)],
    CorruptCheckpointError,
    "slice 0,2:0,2",
    "[1, 1]",
    "[2, 2]",
    source="tensorflow/tensorflow PR #123020 (heap overflow in GetSliceValue)",
)
_sliced(
    "slice_entry_more_elements",
    FULL,
    [(TOP, C.entry(C.DT_FLOAT, [2, 3], data=S1 + S2[:8])), (BOTTOM, BOTTOM_E)],
    CorruptCheckpointError,
    "slice 0,2:0,2",
    "[2, 3]",
    "[2, 2]",
)
_sliced(
    "slice_entry_wrong_dtype",
    FULL,
    [(TOP, C.entry(C.DT_INT32, [2, 2], data=S1)), (BOTTOM, BOTTOM_E)],
    CorruptCheckpointError,
    "slice 0,2:0,2",
    "int32",
    "float32",
)
_sliced(
    "slice_entry_insufficient_data",
    FULL,
    [(TOP, C.entry(C.DT_FLOAT, [2, 2], data=S1[:8])), (BOTTOM, BOTTOM_E)],
    CorruptCheckpointError,
    "Invalid size in bundle entry",
    "stored size 8",
    "expected size 16",
    source="GHSA-7pxj-m4jf-r6h2 / CVE-2021-41203, PR #52663",
)
_sliced(
    "slice_negative_start",
    C.entry(C.DT_FLOAT, [4, 2], slices=[[(-2, 4), (0, 2)], BOTTOM]),
    [(BOTTOM, BOTTOM_E)],
    CorruptCheckpointError,
    "invalid slice extent",
    "start -2",
    source="GHSA-7pxj-m4jf-r6h2 / CVE-2021-41203, PR #52658",
)
_sliced(
    "slice_zero_length",
    C.entry(C.DT_FLOAT, [4, 2], slices=[[(0, 0), (0, 2)], BOTTOM]),
    [(BOTTOM, BOTTOM_E)],
    CorruptCheckpointError,
    "invalid slice extent",
    "length 0",
    source="GHSA-7pxj-m4jf-r6h2 / CVE-2021-41203, PR #52658",
)
_sliced(
    "slice_start_plus_length_overflows",
    C.entry(C.DT_FLOAT, [4, 2], slices=[[(2**63 - 10, 100), (0, 2)], BOTTOM]),
    [(BOTTOM, BOTTOM_E)],
    CorruptCheckpointError,
    "invalid slice extent",
    source="GHSA-7pxj-m4jf-r6h2 / CVE-2021-41203, PR #52658",
)
_sliced(
    "slice_outside_shape",
    C.entry(C.DT_FLOAT, [4, 2], slices=[TOP, [(2, 200), (0, 2)]]),
    [(TOP, TOP_E)],
    CorruptCheckpointError,
    "slice extent 2,200",
    "outside",
)
_sliced(
    "slice_rank_mismatch",
    C.entry(C.DT_FLOAT, [4, 2], slices=[[(0, 2)]]),
    [([(0, 2)], C.entry(C.DT_FLOAT, [2], data=S1[:8]))],
    CorruptCheckpointError,
    "slice of rank 1",
    "[4,2]",
)


# -- valid but extreme: the value exists, numpy cannot hold it --------------------------

add_x_case(
    "dims_254_valid_but_not_numpy",
    C.entry(C.DT_FLOAT, [1] * 254, data=DATA[:4]),
    UnsupportedCheckpointError,
    "254",
)
add_x_case(
    "empty_tensor_with_2_pow_62_dim",
    C.entry(C.DT_FLOAT, [0, 2**62], data=b""),
    UnsupportedCheckpointError,
    "[0, 4611686018427387904]",
)
add_x_case("dims_64_reads", C.entry(C.DT_FLOAT, [1] * 64, data=DATA[:4]), None)
# A well-formed group of an unknown field is valid protobuf: TensorFlow 2.21 parses the
# entry (list_variables and get_tensor succeed), so tfckpt must read it too.
add_x_case(
    "entry_unknown_field_as_group_is_valid_protobuf",
    OK + C.tag(15, 3) + C.tag(1, 0) + b"\x05" + C.tag(15, 4),
    None,
)


# -- damaged copies of real checkpoints, at the index level ----------------------------


def copy_checkpoint(prefix: str, directory: str, name: str) -> str:
    """Copies a corpus checkpoint (index + data files) under a new prefix."""
    src = pathlib.Path(prefix)
    dst = os.path.join(directory, name)
    for f in src.parent.glob(src.name + ".*"):
        if f.name == src.name + ".index" or f.name.startswith(src.name + ".data-"):
            shutil.copy(f, dst + f.name[len(src.name) :])
    return dst


def _index_damage(name, damage, cls, *fragments, case="module_nested"):
    def build(d, corpus):
        p = copy_checkpoint(corpus[case].prefix, d, name)
        damage(p + ".index")
        return p

    hostile(name, cls, *fragments, ops=OPEN)(build)


def _truncate_to(n):
    return lambda path: C.truncate(path, n if n >= 0 else os.path.getsize(path) // 2)


for _n, _frag in [
    (0, "too short"),
    (10, "too short"),
    (47, "too short"),
    (48, "bad magic"),
    (-1, "bad magic"),
]:
    _index_damage(
        f"corpus_index_truncated_to_{'half' if _n < 0 else _n}",
        _truncate_to(_n),
        CorruptCheckpointError,
        _frag,
    )


def _cut_middle(path):
    raw = pathlib.Path(path).read_bytes()
    pathlib.Path(path).write_bytes(raw[: len(raw) // 2] + raw[-48:])


_index_damage(
    "corpus_index_middle_cut_out", _cut_middle, CorruptCheckpointError, "past the end of the file"
)
_index_damage(
    "corpus_index_bad_magic",
    lambda p: C.flip_bit(p, os.path.getsize(p) - 1, 3),
    CorruptCheckpointError,
    "not an sstable (bad magic number)",
)
_index_damage(
    "corpus_index_bit_flip_in_data_block",
    lambda p: C.flip_bit(p, 20, 2),
    ChecksumMismatchError,
    "block checksum mismatch",
    "data block",
)


def _flip_in_index_block(path):
    t = _native.Index(pathlib.Path(path).read_bytes(), path).table_stats
    off, size = t["index_handle"]
    C.flip_bit(path, off + size // 2, 5)


_index_damage(
    "corpus_index_bit_flip_in_index_block",
    _flip_in_index_block,
    ChecksumMismatchError,
    "block checksum mismatch",
    "index block",
)


def _flip_block_type(path):
    t = _native.Index(pathlib.Path(path).read_bytes(), path).table_stats
    off, size = t["index_handle"]
    C.flip_bit(path, off + size, 0)  # type byte 0 -> 1: covered by the CRC


_index_damage(
    "corpus_index_bit_flip_in_block_type",
    _flip_block_type,
    ChecksumMismatchError,
    "block checksum mismatch",
)


# --------------------------------------------------------------------------
# running the crafted cases


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, corpus):
    """(tfckpt child run, {case: prefix}, {case: future of TF's outcome}).

    The TensorFlow children (see TF_CASES at the end of the module) start here, in the
    background, so their ~2 s each overlap with the rest of the module."""
    d = str(tmp_path_factory.mktemp("hostile"))
    prefixes = {h.name: h.build(d, corpus) for h in HOSTILE}
    pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
    tf_futures = {}
    if importlib.util.find_spec("tensorflow") is not None:
        tf_futures = {
            c: pool.submit(run_tf_child, prefixes[c], TF_KEYS.get(c, "x")) for c in TF_CASES
        }
    cases = [{"name": h.name, "prefix": prefixes[h.name], "ops": list(h.ops)} for h in HOSTILE]
    yield run_tfckpt_child(cases), prefixes, tf_futures
    pool.shutdown(wait=True, cancel_futures=True)


def _record(hostile_run, name) -> dict:
    run = hostile_run[0]
    rec = run.records.get(name)
    if rec is None:
        pytest.fail(f"no result for {name}: {run.describe()}")
    return rec


def test_hostile_child_survived_every_case(hostile_run):
    run = hostile_run[0]
    assert run.finished, run.describe()
    assert sorted(run.records) == sorted(h.name for h in HOSTILE)
    assert "Fatal Python error" not in run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-2000:]


def test_case_names_are_unique():
    names = [h.name for h in HOSTILE]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", HOSTILE, ids=lambda h: h.name)
def test_hostile(hostile_run, case: Hostile):
    rec = _record(hostile_run, case.name)
    prefix = hostile_run[1][case.name]
    assert rec["seconds"] < MAX_CASE_SECONDS, f"{case.name} took {rec['seconds']:.2f} s"
    assert rec["rss_growth_kb"] < MAX_CASE_RSS_GROWTH_KB, (
        f"{case.name} grew the child by {rec['rss_growth_kb']} KiB"
    )
    err = rec["error"]
    if case.cls is None:
        assert err is None, f"{case.name}: {err}"
        return
    assert err is not None, f"{case.name}: no error; results: {rec['results']}"
    assert err["cls"] == case.cls.__name__, f"{case.name}: {err['cls']}: {err['msg']}"
    expected_at = 0 if case.at == "open" else len(case.ops) - 1
    assert rec["failed_at"] == expected_at, (
        f"{case.name} failed at op {case.ops[rec['failed_at']]}: {err['msg']}"
    )
    msg = err["msg"]
    assert prefix in msg, f"{case.name}: the message does not name the file: {msg!r}"
    for frag in case.fragments:
        assert frag in msg, f"{case.name}: {frag!r} not in {msg!r}"
    if case.key is not None:
        assert case.key in msg, f"{case.name}: the message does not name key {case.key}: {msg!r}"
    if "keys" in [op["op"] for op in case.ops]:
        # the damage is confined to one key: the listing still works and shows it
        keys = rec["results"][[op["op"] for op in case.ops].index("keys")]
        assert case.key in keys


def test_hostile_entry_cases_leave_other_keys_readable(hostile_run):
    for h in HOSTILE:
        if h.ops == tuple(ENTRY_OPS) and h.cls is not None:
            rec = _record(hostile_run, h.name)
            if rec["failed_at"] == 3:
                assert rec["results"][2]["head"] == "[1.0, 2.0, 3.0, 4.0]", h.name


# --------------------------------------------------------------------------
# quadratic work on a hostile slice list


def test_many_slices_do_not_hang(tmp_path):
    """20000 slices in one full entry (a 160 KB index): checking them pairwise for overlap
    is 2*10^8 comparisons; the read must still end quickly with an error or a value."""
    n = 20000
    full = C.entry(C.DT_FLOAT, [n], slices=[[(i, 1)] for i in range(n)])
    prefix = C.write_bundle(tmp_path, "many_slices", [("p", full)], b"")
    run = run_tfckpt_child([{"name": "many", "prefix": prefix, "ops": SLICED_OPS}], timeout=6)
    assert run.finished, run.describe()
    rec = run.records["many"]
    assert rec["seconds"] < 3, rec["seconds"]
    assert rec["error"]["cls"] == "CorruptCheckpointError"
    assert "missing" in rec["error"]["msg"] and prefix in rec["error"]["msg"]


# --------------------------------------------------------------------------
# files changed under a live reader


def test_shard_truncated_under_open_reader_does_not_crash(corpus, tmp_path):
    """Another process truncates a data shard while a reader has it open (and mapped). The
    next read must fail with an error, not kill the process with SIGBUS. (TensorFlow reads
    with pread and reports "Read less bytes than requested".)"""
    prefix = copy_checkpoint(corpus["module_nested"].prefix, str(tmp_path), "live")
    ops = [
        {"op": "open"},
        {"op": "read", "key": "model/counter/.ATTRIBUTES/VARIABLE_VALUE"},  # maps shard 0
        {"op": "truncate", "path": _data_path(prefix), "length": 0},
        {"op": "read", "key": "_CHECKPOINTABLE_OBJECT_GRAPH"},
    ]
    run = run_tfckpt_child([{"name": "live", "prefix": prefix, "ops": ops}], timeout=10)
    assert run.finished, run.describe()
    err = run.records["live"]["error"]
    assert run.records["live"]["failed_at"] == 3, run.records["live"]
    assert err["cls"] == "CorruptCheckpointError", err
    assert _data_path(prefix) in err["msg"] and "_CHECKPOINTABLE_OBJECT_GRAPH" in err["msg"]


@pytest.mark.parametrize(
    "case, key",
    [
        ("module_nested", "model/counter/.ATTRIBUTES/VARIABLE_VALUE"),  # a small index: read in
        ("big_key_count", None),  # 800 KB: memory-mapped
    ],
)
def test_index_truncated_under_open_reader_does_not_crash(corpus, oracles, tmp_path, case, key):
    """Another process empties the .index while a reader has it open. The reader parsed the
    index when it opened: its keys, listing and values stay those of the checkpoint as it
    was (TensorFlow's), and opening the file again is refused as too short."""
    prefix = copy_checkpoint(corpus[case].prefix, str(tmp_path), "live")
    o = oracles[case]
    key = key or o["list_variables"][-1][0]
    ops = [
        {"op": "open"},
        {"op": "listing"},
        {"op": "truncate", "path": prefix + ".index", "length": 0},
        {"op": "keys"},
        {"op": "listing"},
        {"op": "read", "key": key},
        {"op": "open"},
    ]
    run = run_tfckpt_child([{"name": "live", "prefix": prefix, "ops": ops}], timeout=10)
    assert run.finished, run.describe()
    rec = run.records["live"]
    assert os.path.getsize(prefix + ".index") == 0
    _, before, _, keys, after, value = rec["results"]
    assert keys == [k for k, _ in o["list_variables"]]
    assert after == before and len(after) >= len(keys)
    want = np.asarray(o["values"][key])
    assert value == {
        "shape": list(want.shape),
        "dtype": str(want.dtype),
        "head": repr(want.ravel()[:4].tolist()),
    }
    assert rec["failed_at"] == 6, rec
    assert rec["error"]["cls"] == "CorruptCheckpointError"
    assert rec["error"]["msg"].startswith(prefix + ".index") and "too short" in rec["error"]["msg"]


# --------------------------------------------------------------------------
# damaged copies of real checkpoints, at the data level (in process: attributes, CLI)


def _cli(*argv) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def nested(corpus, tmp_path) -> str:
    return copy_checkpoint(corpus["module_nested"].prefix, str(tmp_path), "nested")


def _data_path(prefix, shard=0, num=1):
    return "%s.data-%05d-of-%05d" % (prefix, shard, num)


DAMAGED_KEY = "model/layers/2/0/w/.ATTRIBUTES/VARIABLE_VALUE"  # float32[3,2]


def test_data_bit_flip_checksum_mismatch(nested):
    with tfckpt.open(nested) as r:
        # copies: the arrays read() returns are views of the mapped file
        good = {k: np.array(r.read(k)) for k in r.keys()}
        e = r.entry(DAMAGED_KEY)
    C.flip_bit(_data_path(nested), e.offset + 5, 6)
    damaged = bytearray(pathlib.Path(_data_path(nested)).read_bytes()[e.offset : e.offset + e.size])
    with tfckpt.open(nested) as r:
        with pytest.raises(ChecksumMismatchError) as info:
            r.read(DAMAGED_KEY)
        exc = info.value
        assert type(exc) is ChecksumMismatchError
        msg = str(exc)
        assert "Checksum does not match" in msg
        assert DAMAGED_KEY in msg and nested in msg
        assert exc.key == DAMAGED_KEY
        assert exc.shard == 0
        assert exc.offset == e.offset
        assert exc.stored == _native.unmask_crc(e.crc32c)
        assert exc.computed == _native.crc32c(bytes(damaged))
        assert exc.stored != exc.computed
        assert f"stored {exc.stored:08d}" in msg
        # the bytes are still there: without verification they read, one bit off
        v = r.read(DAMAGED_KEY, verify=False)
        assert v.shape == good[DAMAGED_KEY].shape
        assert v.tobytes() != good[DAMAGED_KEY].tobytes()
        # every other key is intact
        for k in r.keys():
            if k != DAMAGED_KEY:
                assert r.read(k).tolist() == good[k].tolist(), k


def test_data_bit_flip_verify_names_exactly_the_damaged_key(nested):
    code, out, err = _cli("verify", nested)
    assert code == 0, out + err
    with tfckpt.open(nested) as r:
        e = r.entry(DAMAGED_KEY)
    C.flip_bit(_data_path(nested), e.offset + e.size - 1, 0)
    code, out, err = _cli("verify", nested)
    assert code == 1, out + err
    damaged = [ln for ln in out.splitlines() if ln.startswith("DAMAGED ")]
    assert len(damaged) == 1, out
    assert damaged[0].startswith(f"DAMAGED {DAMAGED_KEY}: ")
    assert "Checksum does not match" in damaged[0]
    assert "damaged" in out.splitlines()[-1]
    code, out, err = _cli("verify", "--json", nested)
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False and [d["key"] for d in doc["damaged"]] == [DAMAGED_KEY]


def test_truncated_data_shard(nested):
    with tfckpt.open(nested) as r:
        entries = {k: r.entry(k) for k in r.keys()}
    size = os.path.getsize(_data_path(nested))
    C.truncate(_data_path(nested), size // 2)
    cut = [k for k, e in entries.items() if e.offset + e.size > size // 2]
    whole = [k for k, e in entries.items() if e.offset + e.size <= size // 2]
    assert cut and whole
    with tfckpt.open(nested) as r:
        for k in cut:
            with pytest.raises(CorruptCheckpointError) as info:
                r.read(k)
            assert type(info.value) is CorruptCheckpointError
            msg = str(info.value)
            assert "past the end of the" in msg and "data file" in msg
            assert k in msg and _data_path(nested) in msg
        for k in whole:
            r.read(k)
    code, out, _ = _cli("verify", nested)
    assert code == 1
    assert sorted(
        ln.split(": ")[0][len("DAMAGED ") :] for ln in out.splitlines() if ln.startswith("DAMAGED ")
    ) == sorted(cut)


def test_missing_data_shard(corpus, tmp_path):
    prefix = copy_checkpoint(corpus["multi_device"].prefix, str(tmp_path), "md")
    missing = _data_path(prefix, 1, 3)
    os.remove(missing)
    with tfckpt.open(prefix) as r:
        assert r.read("v0/.ATTRIBUTES/VARIABLE_VALUE").shape == (4,)  # shard 0
        assert r.read("v2/.ATTRIBUTES/VARIABLE_VALUE").shape == (12,)  # shard 2
        with pytest.raises(MissingShardError) as info:
            r.read("v1/.ATTRIBUTES/VARIABLE_VALUE")
        exc = info.value
        assert type(exc) is MissingShardError
        assert exc.path == missing and exc.shard == 1
        msg = str(exc)
        assert missing in msg and "shard 1" in msg.lower()
        assert "v1/.ATTRIBUTES/VARIABLE_VALUE" in msg
    code, out, err = _cli("verify", prefix)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"MISSING data shard 1: {missing}: does not exist")
    assert not any(ln.startswith("DAMAGED ") for ln in lines)  # the shard is named once
    code, out, err = _cli("verify", prefix, "--json")
    assert code == 1
    (shard,) = json.loads(out)["shards_missing"]
    assert shard["keys"] == ["s1/.ATTRIBUTES/VARIABLE_VALUE", "v1/.ATTRIBUTES/VARIABLE_VALUE"]


def test_missing_index(corpus, tmp_path):
    prefix = copy_checkpoint(corpus["module_nested"].prefix, str(tmp_path), "gone")
    os.remove(prefix + ".index")
    with pytest.raises(NotACheckpointError) as info:
        tfckpt.open(prefix)
    assert type(info.value) is NotACheckpointError
    assert prefix in str(info.value)


def test_missing_key(nested):
    with tfckpt.open(nested) as r:
        with pytest.raises(KeyNotFoundError) as info:
            r.read("no/such/key")
    assert type(info.value) is KeyNotFoundError
    assert "no/such/key" in str(info.value) and nested in str(info.value)


def test_string_length_checksum_damaged(corpus, tmp_path):
    prefix = copy_checkpoint(corpus["strings"].prefix, str(tmp_path), "s")
    key = "str/unicode"
    with tfckpt.open(prefix) as r:
        good = r.read(key)
        e = r.entry(key)
    lengths = b"".join(C.varint(len(s)) for s in good.ravel())
    C.flip_bit(_data_path(prefix), e.offset + len(lengths) + 1, 4)  # in the length checksum
    with tfckpt.open(prefix) as r:
        with pytest.raises(ChecksumMismatchError) as info:
            r.read(key)
        assert type(info.value) is ChecksumMismatchError
        msg = str(info.value)
        assert "length checksum does not match" in msg
        assert key in msg and info.value.key == key
        assert prefix in msg, f"the message does not name the file: {msg!r}"
        # the lengths and the strings themselves are intact
        assert r.read(key, verify=False).tolist() == good.tolist()


def test_variant_byte_flipped(corpus, tmp_path):
    prefix = copy_checkpoint(corpus["data_iterator"].prefix, str(tmp_path), "it")
    key = "it/.ATTRIBUTES/ITERATOR_STATE"
    with tfckpt.open(prefix) as r:
        e = r.entry(key)
    C.flip_bit(_data_path(prefix), e.offset + 6, 1)  # inside element 0's proto
    with tfckpt.open(prefix) as r:
        with pytest.raises(ChecksumMismatchError) as info:
            r.read(key)
        assert type(info.value) is ChecksumMismatchError
        msg = str(info.value)
        assert "The checksum after Variant 0 does not match" in msg
        assert key in msg and info.value.key == key
        assert prefix in msg, f"the message does not name the file: {msg!r}"
        assert r.read("save_counter/.ATTRIBUTES/VARIABLE_VALUE") == 1


def test_damaged_index_at_open_via_cli(corpus, tmp_path):
    prefix = copy_checkpoint(corpus["module_nested"].prefix, str(tmp_path), "bad")
    C.flip_bit(prefix + ".index", 30, 1)
    code, out, err = _cli("verify", prefix)
    assert code == 1
    assert "block checksum mismatch" in err and prefix in err


# --------------------------------------------------------------------------
# resources


def _fd_count(under: str) -> int:
    """Descriptors open on files under `under` (not pipes: TensorFlow children that other
    tests start in the background open and close those at any moment)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith(under)
        except OSError:
            pass
    return n


def _mappings_of(path: str) -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if line.rstrip().endswith(path))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_no_descriptor_or_mapping_leaks(corpus, tmp_path):
    prefix = copy_checkpoint(corpus["multi_device"].prefix, str(tmp_path), "leak")
    bad = copy_checkpoint(corpus["module_nested"].prefix, str(tmp_path), "leakbad")
    C.flip_bit(bad + ".index", 20, 0)
    gc.collect()
    fds = _fd_count(str(tmp_path))
    for i in range(150):
        with tfckpt.open(prefix) as r:
            for k in r.keys():
                r.read(k)
        r = tfckpt.open(prefix)  # never closed explicitly
        r.read("v1/.ATTRIBUTES/VARIABLE_VALUE")
        del r
        with pytest.raises(ChecksumMismatchError):
            tfckpt.open(bad)
        with pytest.raises(KeyNotFoundError):
            tfckpt.open(prefix).read("nope")
    assert _fd_count(str(tmp_path)) == fds
    gc.collect()
    for shard in range(3):
        assert _mappings_of(_data_path(prefix, shard, 3)) == 0
    assert _mappings_of(prefix + ".index") == 0
    assert _mappings_of(bad + ".index") == 0
    # many readers at once: still no descriptor per reader
    readers = [tfckpt.open(prefix) for _ in range(300)]
    values = [r.read("v2/.ATTRIBUTES/VARIABLE_VALUE") for r in readers]
    assert _fd_count(str(tmp_path)) == fds
    del readers, values
    gc.collect()
    assert _mappings_of(_data_path(prefix, 2, 3)) == 0


# --------------------------------------------------------------------------
# what TensorFlow 2.21 does on the same files

# (case, the call TF dies in, the signal, what TF prints before dying) -- observed with
# tensorflow-cpu 2.21.0 (Linux x86-64), not assumed, and asserted again on every run.
# list_variables builds a TensorShape for every entry (CheckpointReader::BuildV2VarMaps)
# and CHECK-parses every entry; get_tensor CHECKs the dtype of what it reads.
TF_CRASHES = [
    ("negative_dimension", "list_variables", signal.SIGABRT, "Check failed: size >= 0"),
    (
        "shape_element_count_overflow",
        "list_variables",
        signal.SIGABRT,
        "Check failed: 0 <= new_num_elements",
    ),
    ("dims_255", "list_variables", signal.SIGABRT, "Too many dimensions in tensor"),
    (
        "entry_invalid_wire_type",
        "list_variables",
        signal.SIGABRT,
        "Check failed: entry.ParseFromString",
    ),
    ("entry_dtype_wrong_wire_type", "get_tensor", signal.SIGABRT, "Type not set"),
    (
        "slice_entry_wrong_dtype",
        "get_tensor",
        signal.SIGABRT,
        "Check failed: dtype() == expected_dtype",
    ),
    # ReadStringTensor with one element claiming 2**60 bytes (length checksum correct):
    # a segmentation fault, with or without the 2 GiB address-space limit.
    ("string_element_length_2_pow_60", "get_tensor", signal.SIGSEGV, None),
]
TF_KEYS = {"slice_entry_wrong_dtype": "p", "slice_entry_fewer_elements": "p"}
TF_CASES = [c[0] for c in TF_CRASHES] + ["slice_entry_fewer_elements"]


@pytest.fixture(scope="module")
def tf_outcomes(hostile_run) -> Dict[str, TFOutcome]:
    futures = hostile_run[2]
    if not futures:
        pytest.skip("TensorFlow is not installed")
    return {c: f.result() for c, f in futures.items()}


@pytest.mark.parametrize("case,step,sig,fatal", TF_CRASHES, ids=[c[0] for c in TF_CRASHES])
def test_tensorflow_crashes_but_tfckpt_does_not(hostile_run, tf_outcomes, case, step, sig, fatal):
    tf = tf_outcomes[case]
    # TensorFlow: the process dies by `sig` inside `step`.
    assert tf.crashed, f"TensorFlow did not crash on {case}: {tf.summary()}"
    assert tf.returncode == -sig, f"expected death by {sig.name}: {tf.summary()}"
    if fatal:
        assert fatal in tf.stderr, tf.summary()
    assert "imported" in tf.steps
    if step == "get_tensor":
        assert any(s.startswith("list_variables ok") for s in tf.steps), tf.summary()
    else:
        assert not any(s.startswith("list_variables") for s in tf.steps), tf.summary()
    # tfckpt, in its child: listed the keys, then a clean error of the right class.
    run = hostile_run[0]
    assert run.finished, run.describe()
    rec = _record(hostile_run, case)
    spec = next(h for h in HOSTILE if h.name == case)
    assert rec["error"]["cls"] == spec.cls.__name__
    assert rec["results"][1]  # the "keys" op listed the keys
    assert rec["failed_at"] == len(spec.ops) - 1


def test_tensorflow_reads_out_of_bounds_where_tfckpt_refuses(hostile_run, tf_outcomes):
    """tensorflow/tensorflow PR #123020: a slice entry holding 1 element for a 2x2 slice.
    TF 2.21 returns a 4x2 tensor whose 3 extra elements come from past the end of a heap
    buffer (values change from run to run); tfckpt refuses with a clear error."""
    tf = tf_outcomes["slice_entry_fewer_elements"]
    assert tf.returncode == 0, tf.summary()
    assert "get_tensor ok (4, 2)" in tf.steps, tf.summary()
    rec = _record(hostile_run, "slice_entry_fewer_elements")
    assert rec["error"]["cls"] == "CorruptCheckpointError"
