"""``.npz`` files: a checkpoint's tensors as numpy arrays, and back, exactly."""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from ..dtypes import STRING, DType, by_code, by_name, numpy_dtype
from ..errors import InvalidArgumentError
from ..keys import OBJECT_GRAPH_KEY
from ._common import opened
from .convert import ConversionReport, atomic_file, refuse_or_skip, write_tensors

__all__ = ["to_npz", "from_npz"]

#: The manifest entry: a bytes scalar of JSON giving the TensorFlow dtypes numpy lacks.
_NPZ_MANIFEST = "__tfckpt__"
#: Where the exact lengths of strings with trailing NUL bytes go (numpy ``S`` drops them).
_NPZ_LENGTHS = "__tfckpt__/lengths/"
_NPZ_FORMAT = "tfckpt-npz"


def _stored_as_bits(d: DType) -> bool:
    """Whether `d` (an ml_dtypes type: bfloat16, float8, int4, ...) is stored as the unsigned
    integers of its bytes: numpy's .npy has no such types (np.save writes opaque voids)."""
    return d.numpy is not None and d.numpy.startswith("ml:")


def _npz_storage(code: int) -> Optional[Tuple[Any, bool]]:
    """How a dtype is stored in .npz: (numpy dtype stored, needs a manifest entry) or None.
    Types numpy lacks are stored as their bits, and the manifest says what they are;
    quantized types are stored as their integer base type, the manifest naming them too."""
    import numpy as np

    d = by_code(code)
    if d.numpy is None or d.kind == "variant":
        return None
    if _stored_as_bits(d):
        return np.dtype(f"u{numpy_dtype(code).itemsize}"), True
    if d.is_quantized:
        return numpy_dtype(code), True
    if d.kind == "string":
        return np.dtype("S"), False
    return numpy_dtype(code), False


def to_npz(
    ckpt: Any,
    path: "str | os.PathLike[str]",
    *,
    compressed: bool = False,
    object_graph: bool = False,
    skip_unsupported: bool = False,
    overwrite: bool = False,
    progress: Optional[Callable[[int], None]] = None,
) -> ConversionReport:
    """Writes every tensor of checkpoint `ckpt` into a ``.npz`` file, one array per key
    (partitioned tensors assembled), readable with ``np.load(path)`` (no pickles).

    numpy cannot hold everything a checkpoint can, so:

    * strings are stored as fixed-width bytes arrays (numpy ``S``, padded to the longest
      element); numpy drops trailing NUL bytes from ``S`` elements, so for a tensor with
      such elements the exact lengths are stored beside it (``__tfckpt__/lengths/<key>``);
    * bfloat16, float8, int4/uint4/int2/uint2 and float4 arrays are stored as the unsigned
      integers of their bytes (``view(ml_dtypes.bfloat16)`` gives them back), quantized types
      as their integer base type;
    * the entry ``__tfckpt__`` (a bytes scalar of JSON) records each such key's TensorFlow
      dtype, so :func:`from_npz` writes back exactly what was read;
    * variants cannot be stored: an error lists them, or with `skip_unsupported` they are
      skipped and the report says so.

    The object graph is left out unless `object_graph`. Arrays are written one at a time;
    `progress(nbytes)` is called with the stored bytes of each key as it is written.
    """
    import numpy as np

    with opened(ckpt) as (reader,):
        report = ConversionReport(src=reader.prefix, dst=os.fspath(path))
        keys = [k for k in reader.keys() if object_graph or k != OBJECT_GRAPH_KEY]
        problems = {}
        storage = {}  # key -> how it is stored, for the keys that can be
        for k in keys:
            how = _npz_storage(reader.entry(k).dtype_code)
            if k.startswith(_NPZ_MANIFEST):
                problems[k] = f"the name {_NPZ_MANIFEST} is reserved for tfckpt's manifest"
            elif how is None:
                problems[k] = f"dtype {reader.entry(k).dtype_name} has no numpy equivalent"
            else:
                storage[k] = how
        refuse_or_skip(report, problems, ".npz", skip_unsupported)
        manifest: Dict[str, Any] = {
            "format": _NPZ_FORMAT,
            "version": 1,
            "dtypes": {},
            "string_lengths": [],
        }
        mode = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
        with atomic_file(path, overwrite) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=mode, allowZip64=True) as zf:
                for k, (stored, noted) in storage.items():
                    if progress is not None:
                        progress(reader.stored_size(k))
                    e = reader.entry(k)
                    value = reader.read(k)
                    if by_code(e.dtype_code).kind == "string":
                        items = value.reshape(-1).tolist()
                        arr = (
                            np.array(items, dtype="S").reshape(value.shape)
                            if items
                            else np.zeros(value.shape, dtype="S1")
                        )
                        if any(x.endswith(b"\x00") for x in items):
                            lengths = np.array([len(x) for x in items], dtype=np.int64)
                            _zip_array(zf, _NPZ_LENGTHS + k, lengths.reshape(value.shape))
                            manifest["string_lengths"].append(k)
                    elif stored != value.dtype:
                        arr = (
                            value.view(stored)
                            if stored.itemsize == value.dtype.itemsize
                            else value.astype(stored)
                        )
                    else:
                        arr = value
                    if noted:
                        manifest["dtypes"][k] = e.dtype_name
                    _zip_array(zf, k, arr)
                    report.written.append(k)
                _zip_array(zf, _NPZ_MANIFEST, np.array(json.dumps(manifest).encode()))
    return report


def _zip_array(zf: zipfile.ZipFile, name: str, arr: Any) -> None:
    """Writes `arr` as member ``<name>.npy``, streamed into the zip (no pickles)."""
    import numpy as np

    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, arr, allow_pickle=False)


def from_npz(
    path: "str | os.PathLike[str]",
    out: "str | os.PathLike[str]",
    *,
    object_graph: bool = False,
    skip_unsupported: bool = False,
    **write_kwargs: Any,
) -> ConversionReport:
    """Writes the arrays of a ``.npz`` file as a checkpoint at prefix `out`.

    Reads any ``.npz`` of plain numpy arrays (``np.savez``), and exactly undoes
    :func:`to_npz` (dtypes from its manifest, trailing NULs of strings). Names are written
    as given, unless `object_graph`: then names are object paths (``model/dense/kernel``,
    local names separated by ``/``) and an object graph is built so that
    ``tf.train.Checkpoint(model=...).restore(out)`` finds them, as
    ``tfckpt.write(..., object_graph=True)`` does; names already in key form
    (``.../.ATTRIBUTES/VARIABLE_VALUE``, ``.../.OPTIMIZER_SLOT/...``) are understood.
    Arrays numpy cannot describe without pickles (object arrays, void) are refused, or
    skipped with `skip_unsupported`. Arrays are read one at a time. `write_kwargs` go to
    :class:`tfckpt.Writer`.
    """
    import numpy as np

    report = ConversionReport(src=os.fspath(path), dst=os.fspath(out))
    with np.load(os.fspath(path), allow_pickle=False) as npz:
        names = list(npz.files)
        manifest = {}
        if _NPZ_MANIFEST in names:
            try:
                manifest = json.loads(npz[_NPZ_MANIFEST].item().decode("utf-8"))
            except Exception as e:
                raise InvalidArgumentError(f"{path}: bad {_NPZ_MANIFEST} entry: {e}") from None
            if not isinstance(manifest, dict) or manifest.get("format") != _NPZ_FORMAT:
                raise InvalidArgumentError(f"{path}: {_NPZ_MANIFEST} is not a tfckpt manifest")
        tf_dtypes = dict(manifest.get("dtypes", {}))
        with_lengths = set(manifest.get("string_lengths", []))
        keys = [n for n in names if not n.startswith(_NPZ_MANIFEST)]
        problems = {}
        for name in keys:
            dt = _npz_member_dtype(npz, name)
            if name in tf_dtypes:
                try:
                    by_name(tf_dtypes[name])
                except ValueError as e:
                    problems[name] = str(e)
            elif dt.kind in "OV" or dt.byteorder == ">" or dt.kind == "M" or dt.kind == "m":
                problems[name] = f"numpy dtype {dt} has no TensorFlow equivalent"
        refuse_or_skip(report, problems, "a checkpoint", skip_unsupported)
        keys = [n for n in keys if n not in problems]

        def convert(name: str, arr: Any) -> Tuple[Any, Optional[int]]:
            """The array to write and its DataType (None: the array's own)."""
            if name in tf_dtypes:
                d = by_name(tf_dtypes[name])
                target = numpy_dtype(d.code)
                if (
                    _stored_as_bits(d)
                    and arr.dtype.itemsize == target.itemsize
                    and arr.dtype.kind == "u"
                ):
                    arr = arr.view(target)
                return arr, d.code
            if arr.dtype.kind == "S":
                items = arr.reshape(-1).tolist()
                if name in with_lengths:
                    lengths = npz[_NPZ_LENGTHS + name].reshape(-1).tolist()
                    items = [x.ljust(n, b"\x00") for x, n in zip(items, lengths)]
                value = np.empty(len(items), dtype=object)
                value[:] = items
                return value.reshape(arr.shape), STRING
            if arr.dtype.kind == "U":
                value = np.empty(arr.size, dtype=object)
                value[:] = [x.encode("utf-8") for x in arr.reshape(-1).tolist()]
                return value.reshape(arr.shape), STRING
            return arr, None

        def values() -> Iterator[Tuple[str, Any, Optional[int]]]:
            for name in keys:
                arr, dtype = convert(name, npz[name])
                yield name, arr, dtype

        write_tensors(values(), keys, out, object_graph, report, write_kwargs)
    return report


def _npz_member_dtype(npz: Any, name: str) -> Any:
    """The dtype of one array of an open NpzFile, from its .npy header alone."""
    import numpy as np

    member = name if name in npz.zip.namelist() else name + ".npy"
    with npz.zip.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            _, _, dtype = np.lib.format.read_array_header_2_0(f)
    return dtype
