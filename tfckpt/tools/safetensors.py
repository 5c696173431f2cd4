"""``.safetensors`` files: a checkpoint's tensors for PyTorch, JAX and the safetensors
library, and back."""

from __future__ import annotations

import json
import math
import os
import struct
from functools import lru_cache
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from ..dtypes import DType, all_dtypes, by_code, by_name, numpy_dtype
from ..errors import CorruptCheckpointError, InvalidArgumentError
from ..keys import OBJECT_GRAPH_KEY
from ._common import opened
from .convert import ConversionReport, atomic_file, refuse_or_skip, write_tensors

__all__ = ["to_safetensors", "from_safetensors", "read_safetensors_header"]

# The safetensors format (huggingface/safetensors): 8 bytes, the little-endian u64 length N
# of a UTF-8 JSON header; the header; then the data buffer. The header maps each tensor name
# to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the buffer, which the
# tensors must cover exactly, back to back) plus an optional "__metadata__" map of strings.
# Data is little-endian, C order. The reference writer orders tensors by dtype alignment
# (largest first), then name, and pads the header with spaces to a multiple of 8 bytes so
# every tensor is aligned; this writer does the same, so its files are byte-identical.

_ST_MAX_HEADER = 100_000_000
#: Bits per element of each safetensors dtype, in the reference library's order of its dtypes
#: (sorting tensors by that order, descending, aligns every one of them).
_ST_BITS = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
_ST_RANK = {name: i for i, name in enumerate(_ST_BITS)}
#: __metadata__ entry naming the TensorFlow dtype of tensors stored as another type
_ST_DTYPES_META = "tfckpt.dtypes"


@lru_cache(maxsize=None)
def _restored_dtypes() -> Dict[str, DType]:
    """safetensors dtype -> the TensorFlow dtype it reads back as, for those TensorFlow has.
    Several TF dtypes share a safetensors dtype (the dtype table's ``safetensors`` column):
    quantized types and int4/int2 are stored as the integers they hold, and read back as
    the plain integer type unless the metadata names them."""
    out: Dict[str, DType] = {}
    for d in all_dtypes():
        if d.safetensors is None or d.is_quantized:
            continue
        prev = out.get(d.safetensors)
        if prev is None or _stored_as_integers(prev) and not _stored_as_integers(d):
            out[d.safetensors] = d
    return out


def _stored_as_integers(d: DType) -> bool:
    """int4, uint4, int2, uint2: one value a byte in a checkpoint, held as I8/U8 values."""
    return d.kind in ("int", "uint") and d.numpy is not None and d.numpy.startswith("ml:")


def _st_numpy(st: str) -> Any:
    """The numpy dtype of the elements of safetensors dtype `st`."""
    return numpy_dtype(_restored_dtypes()[st].code)


def to_safetensors(
    ckpt: Any,
    path: "str | os.PathLike[str]",
    *,
    skip_unsupported: bool = False,
    metadata: Optional[Mapping[str, str]] = None,
    overwrite: bool = False,
    progress: Optional[Callable[[int], None]] = None,
) -> ConversionReport:
    """Writes the tensors of checkpoint `ckpt` as a ``.safetensors`` file (partitioned
    tensors assembled), for PyTorch, JAX or anyone with the safetensors library.

    dtypes map to F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL C64 F8_E4M3 F8_E5M2
    F8_E4M3FNUZ F8_E5M2FNUZ. Quantized types (qint8, ...) and int4/uint4/int2/uint2 (one
    value per byte in a checkpoint) are stored as the integers they hold (I8, U8, ...), and
    ``__metadata__["tfckpt.dtypes"]`` (JSON) records their TensorFlow dtype so
    :func:`from_safetensors` restores it. Strings, variants, complex128,
    float8_e4m3b11fnuz and float4_e2m1fn have no safetensors type: an error lists them, or
    with `skip_unsupported` they are skipped and the report says so. The object graph is
    never written. `metadata` adds string entries to ``__metadata__``. The header is
    written first from the index alone, then the tensors one at a time; `progress(nbytes)`
    is called with the stored bytes of each key as it is written.
    """
    import numpy as np

    with opened(ckpt) as (reader,):
        report = ConversionReport(src=reader.prefix, dst=os.fspath(path))
        plan, problems, tf_dtypes = _plan(reader)
        refuse_or_skip(report, problems, ".safetensors", skip_unsupported)
        meta = {}
        for mk, mv in (metadata or {}).items():
            if not isinstance(mk, str) or not isinstance(mv, str):
                raise InvalidArgumentError("safetensors metadata maps strings to strings")
            meta[mk] = mv
        if tf_dtypes:
            meta[_ST_DTYPES_META] = json.dumps(tf_dtypes, sort_keys=True)
        raw = _header_bytes(plan, meta)
        with atomic_file(path, overwrite) as tmp:
            with open(tmp, "wb") as f:
                f.write(struct.pack("<Q", len(raw)))
                f.write(raw)
                for k, _entry, st in plan:
                    if progress is not None:
                        progress(reader.stored_size(k))
                    value = reader.read(k)
                    want = _st_numpy(st)
                    if value.dtype != want:  # int4-like: the integers they hold
                        value = value.astype(want)
                    if value.size:  # the mapped bytes, not a copy of them
                        f.write(np.ascontiguousarray(value).reshape(-1).view(np.uint8).data)
                    report.written.append(k)
    return report


def _plan(reader: Any) -> Tuple[List[Tuple[str, Any, str]], Dict[str, str], Dict[str, str]]:
    """(key, entry, safetensors dtype) of each tensor to write in the file's order, the
    tensors that cannot be written and why, and the TF dtypes the metadata must record."""
    plan = []
    problems: Dict[str, str] = {}
    tf_dtypes: Dict[str, str] = {}
    for k in reader.keys():
        if k == OBJECT_GRAPH_KEY:
            continue
        e = reader.entry(k)
        st = by_code(e.dtype_code).safetensors
        if st is None:
            problems[k] = f"dtype {e.dtype_name} has no safetensors equivalent"
            continue
        try:
            k.encode("utf-8")
        except UnicodeEncodeError:
            problems[k] = "the key is not valid UTF-8"
            continue
        if k == "__metadata__":
            problems[k] = "the name __metadata__ is reserved by safetensors"
            continue
        if _restored_dtypes()[st].code != e.dtype_code:
            tf_dtypes[k] = e.dtype_name
        plan.append((k, e, st))
    plan.sort(key=lambda t: (-_ST_RANK[t[2]], t[0]))
    return plan, problems, tf_dtypes


def _header_bytes(plan: List[Tuple[str, Any, str]], meta: Dict[str, str]) -> bytes:
    """The JSON header for `plan`, from the index alone, padded with spaces to a multiple
    of 8 bytes as the reference writer pads it."""
    header: Dict[str, Any] = {}
    if meta:
        header["__metadata__"] = meta
    offset = 0
    for k, e, st in plan:
        nbytes = e.num_elements * _ST_BITS[st] // 8
        header[k] = {"dtype": st, "shape": list(e.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    if len(raw) > _ST_MAX_HEADER:
        raise InvalidArgumentError(
            f"the safetensors header would be {len(raw)} bytes, "
            f"over the format's limit of {_ST_MAX_HEADER}"
        )
    return raw


def read_safetensors_header(
    path: "str | os.PathLike[str]",
) -> Tuple[int, Dict[str, Any], Dict[str, str]]:
    """(data start offset, {name: {dtype, shape, data_offsets}}, metadata) of a
    ``.safetensors`` file, checked as the reference reader checks it."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CorruptCheckpointError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > _ST_MAX_HEADER:
            raise CorruptCheckpointError(
                f"{path}: safetensors header length {n} is over the limit of {_ST_MAX_HEADER}"
            )
        if 8 + n > size:
            raise CorruptCheckpointError(
                f"{path}: safetensors header length {n} runs past the "
                f"end of the file ({size} bytes)"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise CorruptCheckpointError(f"{path}: bad safetensors header: {e}") from None
    if not isinstance(header, dict):
        raise CorruptCheckpointError(f"{path}: the safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CorruptCheckpointError(f"{path}: __metadata__ must map strings to strings")
    data = size - 8 - n
    return 8 + n, _checked_tensors(path, header, data), metadata


def _no_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    """A JSON object's pairs as a dict; the reference reader refuses repeated names."""
    d: Dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r}")
        d[k] = v
    return d


#: The largest dimension a TensorShape holds (an int64).
_MAX_DIM = 2**63 - 1


def _is_count(v: Any, limit: int) -> bool:
    """A JSON integer in [0, limit]; JSON's true and false are not numbers here."""
    return type(v) is int and 0 <= v <= limit


def _checked_tensors(path: str, header: Dict[str, Any], data: int) -> Dict[str, Any]:
    """The tensor entries of a parsed header, each checked, that cover the `data` bytes of
    the buffer exactly, back to back."""
    tensors = {}
    spans = []
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            ok = (
                isinstance(dtype, str)
                and isinstance(shape, list)
                and all(_is_count(d, _MAX_DIM) for d in shape)
                and _is_count(begin, _MAX_DIM)
                and _is_count(end, _MAX_DIM)
                and begin <= end
            )
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise CorruptCheckpointError(f"{path}: bad safetensors entry for {name!r}: {info!r}")
        if dtype not in _ST_BITS:
            raise CorruptCheckpointError(f"{path}: {name}: unknown safetensors dtype {dtype!r}")
        count = math.prod(shape)
        if (end - begin) * 8 != count * _ST_BITS[dtype]:
            raise CorruptCheckpointError(
                f"{path}: {name}: {dtype}{shape} needs {count * _ST_BITS[dtype] / 8:g} "
                f"bytes, data_offsets give {end - begin}"
            )
        tensors[name] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
        spans.append((begin, end, name))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise CorruptCheckpointError(
                f"{path}: {name}: data_offsets [{begin}, {end}] leave "
                f"a gap or overlap at byte {pos} of the buffer"
            )
        pos = end
    if pos != data:
        raise CorruptCheckpointError(
            f"{path}: the tensors cover {pos} bytes of data, the file holds {data}"
        )
    return tensors


def from_safetensors(
    path: "str | os.PathLike[str]",
    out: "str | os.PathLike[str]",
    *,
    object_graph: bool = False,
    skip_unsupported: bool = False,
    **write_kwargs: Any,
) -> ConversionReport:
    """Writes the tensors of a ``.safetensors`` file as a checkpoint at prefix `out`.

    The file is checked as the reference reader checks it (header size, JSON, offsets that
    cover the buffer exactly) and memory-mapped; tensors are written one at a time. Names
    are written as given, or with `object_graph` taken as object paths and given an object
    graph (see :func:`from_npz`). TensorFlow dtypes recorded by :func:`to_safetensors` are
    restored. safetensors types TensorFlow has no type for (F4, F6_*, F8_E8M0) are refused,
    or skipped with `skip_unsupported`. `write_kwargs` go to :class:`tfckpt.Writer`.
    """
    import numpy as np

    report = ConversionReport(src=os.fspath(path), dst=os.fspath(out))
    start, tensors, metadata = read_safetensors_header(path)
    tf_dtypes = _metadata_dtypes(os.fspath(path), metadata, tensors)
    problems = {
        name: f"safetensors dtype {info['dtype']} has no TensorFlow equivalent"
        for name, info in tensors.items()
        if info["dtype"] not in _restored_dtypes()
    }
    refuse_or_skip(report, problems, "a checkpoint", skip_unsupported)
    names = sorted(tensors, key=lambda n: tensors[n]["data_offsets"][0])
    buf = (
        np.memmap(os.fspath(path), dtype=np.uint8, mode="r")
        if os.path.getsize(path)
        else np.zeros(0, np.uint8)
    )

    def values(buf: Any) -> Iterator[Tuple[str, Any, str]]:
        for name in names:
            if name in report.skipped:
                continue
            info = tensors[name]
            begin, end = info["data_offsets"]
            arr = buf[start + begin : start + end].view(_st_numpy(info["dtype"]))
            yield (
                name,
                arr.reshape(info["shape"]),
                tf_dtypes.get(name, _restored_dtypes()[info["dtype"]].name),
            )

    try:
        for name in names:  # before anything is written
            if tensors[name]["dtype"] == "BOOL" and name not in report.skipped:
                _check_bools(os.fspath(path), name, buf, start, tensors[name]["data_offsets"])
        write_tensors(
            values(buf),
            [n for n in names if n not in report.skipped],
            out,
            object_graph,
            report,
            write_kwargs,
        )
    finally:
        del buf
    return report


def _metadata_dtypes(
    path: str, metadata: Dict[str, str], tensors: Dict[str, Any]
) -> Dict[str, str]:
    """The ``tfckpt.dtypes`` metadata (tensor name -> TensorFlow dtype), checked: a JSON
    object naming tensors of the file, each with a dtype that is stored as that tensor's
    safetensors dtype (so no value is reinterpreted or cast on the way)."""
    if _ST_DTYPES_META not in metadata:
        return {}
    try:
        doc = json.loads(metadata[_ST_DTYPES_META])
    except ValueError as e:
        raise CorruptCheckpointError(f"{path}: bad {_ST_DTYPES_META} metadata: {e}") from None
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise CorruptCheckpointError(
            f"{path}: bad {_ST_DTYPES_META} metadata: not a JSON "
            "object of tensor names to dtype names"
        )
    for name, dtype in doc.items():
        if name not in tensors:
            raise CorruptCheckpointError(
                f"{path}: bad {_ST_DTYPES_META} metadata: it names "
                f"{name!r}, which the file does not hold"
            )
        try:
            d = by_name(dtype)
        except ValueError:
            raise CorruptCheckpointError(
                f"{path}: bad {_ST_DTYPES_META} metadata: {name}: unknown dtype {dtype!r}"
            ) from None
        if d.safetensors != tensors[name]["dtype"]:
            raise CorruptCheckpointError(
                f"{path}: bad {_ST_DTYPES_META} metadata: {name} is stored as "
                f"{tensors[name]['dtype']}, which does not hold {dtype} values"
            )
    return doc


def _check_bools(path: str, name: str, buf: Any, start: int, offsets: List[int]) -> None:
    """Raises unless every byte of BOOL tensor `name` is 0 or 1: TensorFlow compares other
    bytes wrongly (as the reference reader, which refuses them too)."""
    import numpy as np

    raw = buf[start + offsets[0] : start + offsets[1]]
    bad = np.flatnonzero(raw > 1)
    if bad.size:
        raise CorruptCheckpointError(
            f"{path}: {name}: BOOL element {int(bad[0])} is byte {int(raw[bad[0]])}, not 0 or 1"
        )
