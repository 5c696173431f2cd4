"""Kerchunk references: a checkpoint's tensors as a Zarr (format 2) hierarchy whose chunks
are byte ranges of the data shards, so zarr, xarray and Dask read the tensors lazily over
any fsspec store, without tfckpt where they run.

    refs = tfckpt.refs.references("run/ckpt-3", url="s3://bucket/run/")
    fs = fsspec.filesystem("reference", fo=refs, remote_protocol="s3", asynchronous=True)
    group = zarr.open_group(zarr.storage.FsspecStore(fs, read_only=True), mode="r",
                            zarr_format=2)
    kernel = group["model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"][:]

The description follows the kerchunk reference spec, version 1:
``{"version": 1, "refs": {key: JSON text | [url, offset, length]}}``, plus a ``skipped``
list (tensors that cannot be described, with the reason), which readers ignore.

* Each tensor is one array with one chunk, ``[shard url, offset, size]``; no compressor,
  no filters, C order, the byte order of the checkpoint's header.
* Array paths are the checkpoint keys: their ``/`` make Zarr groups, so the hierarchy of
  the checkpoint is the hierarchy of the group. Where a key is also the parent of other
  keys (TF1 slots: ``dense/kernel`` and ``dense/kernel/Adam``) the array moves one level
  down, to ``<key>/_value``; the root group's attributes list every such move under
  ``tfckpt.renamed``, and each array's attributes give its ``checkpoint_key`` and
  ``tf_dtype``.
* A partitioned tensor whose stored slices form a regular grid (equal slice lengths along
  every dimension) is one array with one chunk per slice; any other partitioning is
  skipped, since Zarr chunks must all have one shape.
* Quantized types appear as their integer base type (as TensorFlow's reader returns them),
  with ``tf_dtype`` saying which. bfloat16, the float8 and float4 types, int4/uint4/
  int2/uint2 have no Zarr format 2 data type: they are skipped, or with ``as_bits=True``
  described as unsigned integers of their width holding the raw bits (``tf_dtype`` and
  ``raw_bits: true`` say so; ``.view(ml_dtypes.bfloat16)`` turns them back). Strings
  (varint length framing) and variants (serialized protos) are always skipped.
"""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any, Dict, List, Optional, Tuple

from .dtypes import DType, by_code
from .files import data_filename
from .reader import Reader

__all__ = ["references", "SPEC_VERSION", "RENAMED_LEAF"]

SPEC_VERSION = 1
#: Where an array goes when its key is also the parent of other keys.
RENAMED_LEAF = "_value"


def _json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _raw_bits(d: DType) -> bool:
    """Fixed-size values Zarr format 2 has no type for (bfloat16, float8, int4, ...): with
    as_bits they are described as unsigned integers of their width."""
    return d.zarr is None and d.is_numeric


def _zarr_dtype(code: int, endianness: str, as_bits: bool) -> Tuple[Optional[str], str]:
    """(zarr format 2 dtype string or None, reason when None), from the dtype table's
    ``zarr`` column."""
    d = by_code(code)
    t = d.zarr
    if t is None and _raw_bits(d) and as_bits:
        t = f"u{d.itemsize}"
    if t is None:
        if d.kind == "string":
            return None, (
                "string tensors store varint lengths before the bytes; no Zarr "
                "codec decodes that framing"
            )
        if d.kind == "variant":
            return None, "variant tensors hold serialized protos, not an array of numbers"
        if _raw_bits(d):
            return None, (
                f"Zarr format 2 has no {d.name} data type (use as_bits / --as-bits "
                "to describe its raw bits as unsigned integers)"
            )
        return None, f"dtype {d.name} has no values to describe"
    if t[1:] == "1":
        return "|" + t, ""
    return ("<" if endianness == "little" else ">") + t, ""


def _regular_grid(shape, bounds_list) -> Optional[Tuple[List[int], List[Tuple[int, ...]]]]:
    """(chunk shape, chunk index of each slice) if the slices tile `shape` as a regular
    grid with every chunk of one shape, else None."""
    ndim = len(shape)
    chunks = []
    for d in range(ndim):
        lengths = {b[d][1] - b[d][0] for b in bounds_list}
        if len(lengths) != 1:
            return None
        (length,) = lengths
        if length <= 0 or shape[d] % length:
            return None
        if any(b[d][0] % length for b in bounds_list):
            return None
        chunks.append(length)
    index = [tuple(b[d][0] // chunks[d] for d in range(ndim)) for b in bounds_list]
    expected = 1
    for d in range(ndim):
        expected *= shape[d] // chunks[d]
    if len(set(index)) != len(index) or len(index) != expected:
        return None
    return chunks, index


def _open(path: str, storage_options: Optional[dict]) -> Tuple[Reader, str]:
    """A reader of a local path or an fsspec URL, and its prefix as chunks should name it."""
    if "://" in path and not path.startswith("file://"):
        from .storage import FsspecStorage

        prefix = path[: -len(".index")] if path.endswith(".index") else path
        storage = FsspecStorage(prefix, storage_options=storage_options)
        return Reader(storage=storage), storage.prefix
    if path.startswith("file://"):
        path = path[len("file://") :]
    reader = Reader(path)
    return reader, os.path.abspath(reader.prefix)


def references(
    path: "str | os.PathLike[str]",
    *,
    url: Optional[str] = None,
    storage_options: Optional[dict] = None,
    as_bits: bool = False,
) -> Dict[str, Any]:
    """The kerchunk reference description (spec version 1) of the checkpoint at `path`.

    `path` is anything :func:`tfckpt.open` accepts, or an fsspec URL of a prefix (only its
    index is fetched). The chunks point at the data shards by absolute path or by their
    URL; `url` instead gives the directory (``s3://bucket/run/``) where the shards will be
    read from, e.g. after uploading them. Tensors that cannot be described are listed in
    ``skipped`` as ``{"key", "dtype", "reason"}``.
    """
    reader, prefix = _open(os.fspath(path), storage_options)
    with reader:
        return _references(reader, prefix, url, as_bits)


def _references(reader: Reader, prefix: str, url: Optional[str], as_bits: bool) -> Dict[str, Any]:
    num_shards = reader.header.num_shards
    endianness = reader.header.endianness
    base = posixpath.basename(prefix)
    if url is not None:
        url_prefix = url.rstrip("/") + "/" + base
    else:
        url_prefix = prefix

    def shard_url(shard_id: int) -> str:
        return data_filename(url_prefix, shard_id, num_shards)

    rows = reader.listing()
    keys = [r[0] for r in rows]
    parents = set()
    for k in keys:
        parts = k.split("/")
        for i in range(1, len(parts)):
            parents.add("/".join(parts[:i]))
    key_set = set(keys)

    refs: Dict[str, Any] = {}
    skipped: List[Dict[str, str]] = []
    renamed: Dict[str, str] = {}
    groups = {""}

    def skip(key: str, code: int, reason: str) -> None:
        skipped.append({"key": key, "dtype": by_code(code).name, "reason": reason})

    for key, code, shape, _size, n, error, sliced in rows:
        if error:
            skip(key, code, f"the entry is damaged: {error}")
            continue
        parts = key.split("/")
        if any(p in ("", ".", "..") or p.startswith(".z") for p in parts):
            skip(
                key,
                code,
                "the key has an empty, '.' or '..' component, or one starting "
                "with '.z', which cannot be a Zarr path",
            )
            continue
        dtype, reason = _zarr_dtype(code, endianness, as_bits)
        if dtype is None:
            skip(key, code, reason)
            continue
        array_path = key
        if key in parents:
            array_path = f"{key}/{RENAMED_LEAF}"
            if array_path in key_set:
                skip(key, code, f"the key is also a group, and {array_path} is taken")
                continue
            renamed[key] = array_path
        itemsize = by_code(code).itemsize
        attrs: Dict[str, Any] = {"checkpoint_key": key, "tf_dtype": by_code(code).name}
        if _raw_bits(by_code(code)):
            attrs["raw_bits"] = True
        chunk_refs: Dict[str, Any] = {}
        entry = reader.entry(key)
        if sliced:
            bounds = [s.bounds(shape) for s in entry.slices]
            grid = _regular_grid(shape, bounds)
            if grid is None:
                skip(
                    key,
                    code,
                    "partitioned into slices that do not form a regular grid "
                    f"({', '.join(s.spec for s in entry.slices)}); Zarr chunks "
                    "must all have one shape",
                )
                continue
            chunks, index = grid
            ok = True
            for s, idx in zip(entry.slices, index):
                sub = reader.slice_entry(key, s)
                want = 1
                for c in chunks:
                    want *= c
                if sub.size != want * itemsize or sub.dtype_code != code:
                    skip(
                        key,
                        code,
                        f"slice {s.spec} is stored with {sub.size} bytes, "
                        f"expected {want * itemsize}",
                    )
                    ok = False
                    break
                chunk_refs[".".join(map(str, idx))] = [
                    shard_url(sub.shard_id),
                    sub.offset,
                    sub.size,
                ]
            if not ok:
                continue
            attrs["partitioned"] = [s.spec for s in entry.slices]
        else:
            if entry.size != n * itemsize:
                skip(
                    key,
                    code,
                    f"the entry holds {entry.size} bytes, expected {n * itemsize} (damaged?)",
                )
                continue
            if entry.shard_id >= num_shards:
                skip(key, code, f"the entry is in data shard {entry.shard_id} of {num_shards}")
                continue
            chunks = [max(1, d) for d in shape]
            if n:
                chunk_refs[".".join("0" for _ in shape) or "0"] = [
                    shard_url(entry.shard_id),
                    entry.offset,
                    entry.size,
                ]
        zarray = {
            "zarr_format": 2,
            "shape": list(shape),
            "chunks": chunks,
            "dtype": dtype,
            "compressor": None,
            "fill_value": None,
            "filters": None,
            "order": "C",
            "dimension_separator": ".",
        }
        refs[f"{array_path}/.zarray"] = _json(zarray)
        refs[f"{array_path}/.zattrs"] = _json(attrs)
        for chunk, ref in chunk_refs.items():
            refs[f"{array_path}/{chunk}"] = ref
        parts = array_path.split("/")
        for i in range(1, len(parts)):
            groups.add("/".join(parts[:i]))

    for g in sorted(groups):
        refs[f"{g}/.zgroup" if g else ".zgroup"] = _json({"zarr_format": 2})
    refs[".zattrs"] = _json(
        {
            "tfckpt": {
                "checkpoint": prefix,
                "num_shards": num_shards,
                "endianness": endianness,
                "renamed": renamed,
            }
        }
    )
    return {"version": SPEC_VERSION, "refs": dict(sorted(refs.items())), "skipped": skipped}
