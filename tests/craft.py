"""Byte-by-byte builders of TensorBundle checkpoints, well-formed and hostile.

Used by ``tests/test_corruption.py``.  Two layers:

* well-formed pieces: ``header()``, ``entry()``, ``string_payload()``,
  ``write_bundle()`` (tables come from ``tfckpt._native.build_table``, which
  builds them exactly as TensorFlow's TableBuilder does);
* raw pieces for malformed tables, assembled by hand: ``varint()``,
  ``block_entry()``, ``block()``, ``framed()`` (contents + 5-byte trailer),
  ``footer()`` and ``assemble()``.

The module also holds the code that runs in the CHILD processes of the
corruption tests (``child_main`` for tfckpt, ``tf_child_main`` for
TensorFlow).  A child gets a JSON job on stdin, prints one ``START <name>``
line before every case and one ``RESULT <json>`` line after it, so a crash
(a signal, an abort) shows which case it happened in.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

MAGIC = bytes.fromhex("57fb808b247547db")  # kTableMagicNumber, little-endian
MASK_DELTA = 0xA282EAD8

DT_FLOAT, DT_DOUBLE, DT_INT32, DT_STRING, DT_INT64, DT_VARIANT = 1, 2, 3, 7, 9, 21

# --------------------------------------------------------------------------
# primitives


def varint(v: int) -> bytes:
    """LEB128; a negative value is encoded as its 64-bit two's complement (10 bytes),
    as protobuf does for int32/int64 fields."""
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def fixed32(v: int) -> bytes:
    return struct.pack("<I", v & 0xFFFFFFFF)


def fixed64(v: int) -> bytes:
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def crc32c(data: bytes, crc: int = 0) -> int:
    from tfckpt import _native

    return _native.crc32c(bytes(data), crc)


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    return mask(crc32c(data))


def tag(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def ld(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return tag(field, 2) + varint(len(payload)) + payload


# --------------------------------------------------------------------------
# protobuf values of the index


def header(
    num_shards: int = 1,
    producer: int = 1,
    min_consumer: int = 0,
    bad_consumers: Sequence[int] = (),
    endianness: int = 0,
) -> bytes:
    """A serialized BundleHeaderProto."""
    from tfckpt.proto import BundleHeaderProto

    h = BundleHeaderProto(num_shards=num_shards, endianness=endianness)
    h.version.producer = producer
    h.version.min_consumer = min_consumer
    h.version.bad_consumers.extend(bad_consumers)
    return h.SerializeToString()


def entry(
    dtype: int,
    shape: Sequence[int],
    *,
    shard_id: int = 0,
    offset: int = 0,
    size: Optional[int] = None,
    crc: Optional[int] = None,
    data: Optional[bytes] = None,
    slices: Sequence[Sequence[Tuple[int, Optional[int]]]] = (),
) -> bytes:
    """A serialized BundleEntryProto.  With `data`, size and crc default to its length and
    masked CRC32C.  `slices` are lists of (start, length), length None = whole dim."""
    from tfckpt.proto import BundleEntryProto

    e = BundleEntryProto(dtype=dtype, shard_id=shard_id, offset=offset)
    e.shape.SetInParent()
    for d in shape:
        e.shape.dim.add(size=d)
    if data is not None:
        size = len(data) if size is None else size
        crc = masked_crc(data) if crc is None else crc
    e.size = size or 0
    e.crc32c = mask(0) if crc is None else crc
    for sl in slices:
        s = e.slices.add()
        for start, length in sl:
            ext = s.extent.add()
            if length is not None:
                ext.start = start
                ext.length = length
    return e.SerializeToString()


def string_payload(items: Sequence[bytes]) -> Tuple[bytes, int]:
    """(payload, masked entry crc) of a DT_STRING tensor (FORMAT.md 5.3)."""
    lengths = b"".join(varint(len(s)) for s in items)
    c = 0
    for s in items:
        c = crc32c(struct.pack("<I", len(s)), c)
    length_crc = fixed32(mask(c))
    c = crc32c(length_crc, c)
    body = b"".join(items)
    c = crc32c(body, c)
    return lengths + length_crc + body, mask(c)


def slice_key(name: str, extents: Sequence[Tuple[int, Optional[int]]]) -> bytes:
    from tfckpt import _native

    return _native.slice_key(name, [(0, -1) if ln is None else (s, ln) for s, ln in extents])


# --------------------------------------------------------------------------
# well-formed tables and bundles


def table(
    items: Iterable[Tuple[bytes, bytes]], block_size: int = 262144, restart_interval: int = 16
) -> bytes:
    """Table bytes as TensorFlow's TableBuilder writes them (keys in the given order)."""
    from tfckpt import _native

    return _native.build_table(
        [(bytes(k), bytes(v)) for k, v in items], block_size, restart_interval
    )


def _b(k: Union[str, bytes]) -> bytes:
    return k.encode() if isinstance(k, str) else bytes(k)


def write_bundle(
    directory: Union[str, os.PathLike],
    name: str,
    entries: Sequence[Tuple[Union[str, bytes], bytes]],
    shards: Union[bytes, Dict[int, bytes], None] = b"",
    hdr: Optional[bytes] = None,
    sort: bool = True,
    index_bytes: Optional[bytes] = None,
    **table_args,
) -> str:
    """Writes <directory>/<name>.index (header entry first unless hdr is b"-") and the data
    shards; returns the prefix.  `shards` is the bytes of shard 0 of 1, or {id: bytes}."""
    os.makedirs(directory, exist_ok=True)
    prefix = os.path.join(os.fspath(directory), name)
    if isinstance(shards, (bytes, bytearray)):
        shards = {0: bytes(shards)}
    shards = shards or {}
    num = max(1, len(shards))
    if hdr is None:
        hdr = header(num_shards=num)
    items = [(_b(k), v) for k, v in entries]
    if sort:
        items.sort(key=lambda kv: kv[0])
    if hdr != b"-":
        items.insert(0, (b"", hdr))
    with open(prefix + ".index", "wb") as f:
        f.write(index_bytes if index_bytes is not None else table(items, **table_args))
    for sid, data in shards.items():
        with open("%s.data-%05d-of-%05d" % (prefix, sid, num), "wb") as f:
            f.write(data)
    return prefix


# --------------------------------------------------------------------------
# hand-assembled (possibly malformed) tables


def block_entry(
    shared: int,
    unshared: bytes,
    value: bytes,
    *,
    unshared_len: Optional[int] = None,
    value_len: Optional[int] = None,
) -> bytes:
    """One block entry; the stated lengths can be made to lie."""
    return (
        varint(shared)
        + varint(len(unshared) if unshared_len is None else unshared_len)
        + varint(len(value) if value_len is None else value_len)
        + unshared
        + value
    )


def block(
    entries: Sequence[bytes],
    restarts: Optional[Sequence[int]] = (0,),
    num_restarts: Optional[int] = None,
) -> bytes:
    """Block contents: entries, restart array, count (which can be made to lie)."""
    body = b"".join(entries)
    restarts = list(restarts or [])
    n = len(restarts) if num_restarts is None else num_restarts
    return body + b"".join(fixed32(r) for r in restarts) + fixed32(n)


def simple_block(items: Sequence[Tuple[bytes, bytes]]) -> bytes:
    """A well-formed block with every entry a restart point (shared = 0)."""
    offs, out = [], b""
    for k, v in items:
        offs.append(len(out))
        out += block_entry(0, k, v)
    return block([out], offs)


def snappy_literal(raw: bytes) -> bytes:
    """A valid raw Snappy stream made only of literals (what TF 2.21 reads, FORMAT.md 2.8)."""
    out = bytearray(varint(len(raw)))
    for i in range(0, len(raw), 256):
        chunk = raw[i : i + 256]
        n = len(chunk) - 1
        out += bytes([n << 2]) if n < 60 else bytes([60 << 2, n])
        out += chunk
    return bytes(out)


def framed(contents: bytes, btype: int = 0, crc: Optional[int] = None) -> bytes:
    """Block contents followed by the 5-byte trailer (type, masked crc32c(contents+type))."""
    if crc is None:
        crc = masked_crc(contents + bytes([btype]))
    return contents + bytes([btype]) + fixed32(crc)


def handle(offset: int, size: int) -> bytes:
    return varint(offset) + varint(size)


def footer(metaindex: Tuple[int, int], index: Tuple[int, int]) -> bytes:
    h = handle(*metaindex) + handle(*index)
    assert len(h) <= 40
    return h + b"\0" * (40 - len(h)) + MAGIC


EMPTY_BLOCK = block([], [0])


def assemble(
    data_blocks: Sequence[Union[bytes, Tuple[bytes, int]]],
    index_keys: Optional[Sequence[bytes]] = None,
    index_handles: Optional[Sequence[Tuple[int, int]]] = None,
    index_block: Optional[bytes] = None,
    index_type: int = 0,
) -> bytes:
    """A table file: data blocks (contents, or (contents, type)), an empty metaindex,
    an index block (by default one entry per data block, key b"\\xff"*k, handle to it;
    `index_handles` overrides the handles, `index_block` the whole block, `index_type` its
    block type) and the footer."""
    out = b""
    handles = []
    for blk in data_blocks:
        contents, btype = blk if isinstance(blk, tuple) else (blk, 0)
        handles.append((len(out), len(contents)))
        out += framed(contents, btype)
    meta = (len(out), len(EMPTY_BLOCK))
    out += framed(EMPTY_BLOCK)
    if index_block is None:
        if index_handles is None:
            index_handles = handles
        if index_keys is None:
            index_keys = [b"\xff" * (i + 1) for i in range(len(index_handles))]
        index_block = simple_block([(k, handle(*h)) for k, h in zip(index_keys, index_handles)])
    idx = (len(out), len(index_block))
    out += framed(index_block, index_type)
    return out + footer(meta, idx)


# --------------------------------------------------------------------------
# corrupting files in place


def flip_bit(path: str, offset: int, bit: int = 0) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ (1 << bit)]))


def truncate(path: str, length: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(length)


# --------------------------------------------------------------------------
# child processes


def _describe(exc: BaseException) -> dict:
    d = {"cls": type(exc).__name__, "msg": str(exc), "mro": [c.__name__ for c in type(exc).__mro__]}
    for attr in ("key", "shard", "offset", "stored", "computed", "path"):
        if hasattr(exc, attr):
            d[attr] = getattr(exc, attr)
    return d


def _run_op(reader_box: list, prefix: str, op: dict):
    import io

    import tfckpt
    from tfckpt import cli

    kind = op["op"]
    if kind == "open":
        reader_box[:] = [tfckpt.open(prefix)]
        return None
    if kind == "truncate":  # another process rewriting a file under a live reader
        os.truncate(op["path"], op["length"])
        return None
    if kind == "cli":
        out, err = io.StringIO(), io.StringIO()
        code = cli.run(op["argv"], out, err)
        return {"code": code, "out": out.getvalue(), "err": err.getvalue()}
    r = reader_box[0]
    if kind == "keys":
        return r.keys()
    if kind == "listing":
        return [list(row[:2]) + [list(row[2])] + list(row[3:]) for row in r.listing(hidden=True)]
    if kind == "entry":
        e = r.entry(op["key"])
        return {"dtype": e.dtype_code, "shape": list(e.shape), "size": e.size}
    if kind == "read":
        v = r.read(op["key"], verify=op.get("verify", True))
        return {"shape": list(v.shape), "dtype": str(v.dtype), "head": repr(v.ravel()[:4].tolist())}
    if kind == "read_all":
        for k in r.keys():
            r.read(k)
        return len(r.keys())
    raise ValueError(kind)


def child_main() -> None:
    """Runs tfckpt cases: stdin JSON [{"name", "prefix", "ops": [{"op": ...}, ...]}]."""
    import resource
    import time

    import tfckpt  # noqa: F401  (imported before any case: failures here are not a case's)

    cases = json.load(sys.stdin)
    for case in cases:
        print("START " + case["name"], flush=True)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        box: list = []
        results, error, failed_at = [], None, None
        for i, op in enumerate(case["ops"]):
            try:
                results.append(_run_op(box, case["prefix"], op))
            except Exception as e:  # noqa: BLE001 - reported to the parent
                error, failed_at = _describe(e), i
                break
        box.clear()
        rec = {
            "name": case["name"],
            "results": results,
            "error": error,
            "failed_at": failed_at,
            "seconds": time.perf_counter() - t0,
            "rss_growth_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0,
        }
        print("RESULT " + json.dumps(rec, default=repr), flush=True)
    print("DONE", flush=True)


def tf_child_main() -> None:
    """Runs TensorFlow on one crafted checkpoint: stdin JSON {"prefix", "key"}.
    Prints a STEP line after each call that returned, so the parent sees how far it got."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    job = json.load(sys.stdin)
    import tensorflow as tf

    print("STEP imported", flush=True)
    for step in ("list_variables", "get_tensor"):
        try:
            if step == "list_variables":
                res = tf.train.list_variables(job["prefix"])
            else:
                res = tf.train.load_checkpoint(job["prefix"]).get_tensor(job["key"])
                res = getattr(res, "shape", res)
            print("STEP %s ok %r" % (step, res), flush=True)
        except Exception as e:  # noqa: BLE001 - reported to the parent
            print(
                "STEP %s raised %s: %s" % (step, type(e).__name__, str(e).replace("\n", " ")[:300]),
                flush=True,
            )
    print("DONE", flush=True)
    os._exit(0)  # skip TensorFlow's slow interpreter teardown


if __name__ == "__main__":
    {"tfckpt": child_main, "tf": tf_child_main}[sys.argv[1]]()
