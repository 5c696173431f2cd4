"""``tfckpt dump``: one line per key (dtype, shape, bytes) and the totals; values with
``--tensor``/``--all``; the object graph with ``--tree``; everything as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import Any, Callable, Dict, Optional, TextIO

import tfckpt
import tfckpt.files
from tfckpt.dtypes import STRING, VARIANT, by_code
from tfckpt.keys import missing_key_hint

from ._common import (
    EXIT_DAMAGE,
    EXIT_OK,
    UsageError,
    add_remote_options,
    format_bytes,
    format_shape,
    open_checkpoint,
    printable,
    printoptions,
    write_json,
)


def register(sub: Any) -> None:
    """Adds ``dump`` to the subcommands (``parser.add_subparsers(...)``)."""
    d = sub.add_parser(
        "dump",
        help="list keys with dtype, shape and size; print values",
        description="One line per key (dtype, shape, bytes), then totals.",
    )
    d.add_argument("path", help="checkpoint prefix, .index/.data file, directory or SavedModel")
    d.add_argument("--tensor", action="append", metavar="KEY", help="print this tensor's value")
    d.add_argument("--all", action="store_true", help="print every value")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.add_argument(
        "--tree",
        action="store_true",
        help="show the object graph: paths, aliases and optimizer slots",
    )
    d.add_argument(
        "--all-keys", action="store_true", help="also list the slice entries of partitioned tensors"
    )
    d.add_argument(
        "--parameters",
        action="store_true",
        help="count the parameters of the model apart from the optimizer's state "
        "(slots, step counters: what edit --drop-optimizer drops)",
    )
    d.add_argument(
        "--printoptions",
        nargs="*",
        default=[],
        metavar="K=V",
        help="numpy print options, e.g. threshold=100000",
    )
    add_remote_options(d)
    d.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    with printoptions(args.printoptions), open_checkpoint(args.path, args) as reader:
        if args.tree:
            return _tree(reader, args, out)
        if args.tensor:
            for key in args.tensor:
                if key not in reader:
                    raise tfckpt.KeyNotFoundError(
                        f"Key {key} not found in checkpoint {reader.prefix}"
                        f"{missing_key_hint(key, reader.keys())}",
                        key=key,
                    )
                value = reader.read(key)
                e = reader.entry(key)
                if args.json:
                    _write_json_value(key, e, value, out)
                else:
                    out.write(
                        f"tensor: {printable(key)} ({e.dtype_name}) {format_shape(e.shape)}\n"
                    )
                    print(value, file=out)
            return EXIT_OK
        if args.parameters:
            return _parameter_split(reader, args, out)
        if args.json:
            return _listing_json(reader, args, out)
        return _listing(reader, args, out)


# -- the listing ------------------------------------------------------------------------


def _chosen(path: str, reader: Any) -> Optional[str]:
    """The comment saying which checkpoint a directory or a state file led to, or None when
    the user named the checkpoint itself."""
    state = tfckpt.files.STATE_FILE
    if os.path.basename(os.path.normpath(path)) == state and os.path.isfile(path):
        return f"# {printable(reader.prefix)}: the latest checkpoint, as {printable(path)} says"
    if not os.path.isdir(path):
        return None
    if os.path.isfile(os.path.join(path, state)):
        return (
            f"# {printable(reader.prefix)}: the latest checkpoint in {printable(path)}, "
            f"as its '{state}' state file says"
        )
    return f"# {printable(reader.prefix)}: the checkpoint found in {printable(path)}"


def _listing(reader: Any, args: argparse.Namespace, out: TextIO) -> int:
    chosen = _chosen(args.path, reader)
    if chosen:
        out.write(chosen + "\n")
    rows = reader.listing(hidden=args.all_keys)
    status = EXIT_OK
    width_key = min(max((len(printable(r[0])) for r in rows), default=3), 80)
    for raw_key, dtype, shape, size, _n, error, sliced in rows:
        key, name = printable(raw_key), by_code(dtype).name
        if error:
            out.write(f"{key:<{width_key}}  ERROR: {printable(error)}\n")
            status = EXIT_DAMAGE
            continue
        if sliced:
            e = reader.entry(raw_key)
            size = _partitioned_size(reader, e)
            extra = f"  ({len(e.slices)} slices)"
        else:
            extra = ""
        out.write(
            f"{key:<{width_key}}  {name:<10} {format_shape(shape):<16} "
            f"{format_bytes(size):>10}{extra}\n"
        )
        if args.all:
            print(reader.read(raw_key), file=out)
    n = reader.header.num_shards
    where = "format V1 file" if reader.header.format == "V1" else "data shard"
    out.write(
        f"# {len(rows)} tensors, {_parameters(rows)} parameters, "
        f"{format_bytes(_data_bytes(reader))} in {n} {where}{'s' if n != 1 else ''}\n"
    )
    return status


def _listing_json(reader: Any, args: argparse.Namespace, out: TextIO) -> int:
    rows = reader.listing(hidden=args.all_keys)
    status = EXIT_OK
    tensors = []
    for key, dtype, shape, _size, n, error, sliced in rows:
        rec: Dict[str, Any] = {"key": key, "dtype": by_code(dtype).name, "shape": list(shape)}
        if error:
            rec["error"] = error
            status = EXIT_DAMAGE
        else:
            e = reader.entry(key)
            rec.update(
                size=e.size,
                num_elements=n,
                shard=e.shard_id,
                offset=e.offset,
                crc32c=e.crc32c,
                partitioned=sliced,
            )
            if reader.header.format == "V1":  # shard = the file; no offsets nor CRCs
                rec.pop("offset"), rec.pop("crc32c")
            if sliced:
                rec["slices"] = [s.spec for s in e.slices]
                for field in ("shard", "offset", "crc32c"):
                    rec.pop(field, None)
                rec["size"] = _partitioned_size(reader, e)
        if args.all:
            if error is None:
                rec["value"] = _json_value(key, reader.entry(key), reader.read(key))["value"]
        tensors.append(rec)
    h = reader.header
    write_json(
        {
            "prefix": reader.prefix,
            "header": {
                "format": h.format,
                "num_shards": h.num_shards,
                "endianness": h.endianness,
                "version": {
                    "producer": h.producer,
                    "min_consumer": h.min_consumer,
                    "bad_consumers": list(h.bad_consumers),
                },
            },
            "tensors": tensors,
            "totals": {
                "tensors": len(rows),
                "parameters": _parameters(rows),
                "bytes": _data_bytes(reader),
            },
        },
        out,
    )
    return status


def _parameter_split(reader: Any, args: argparse.Namespace, out: TextIO) -> int:
    """The parameters of the model and those of the optimizer's state, counted apart (the
    object graph, which the listing counts as one string, is neither)."""
    rows = [r for r in reader.listing() if r[0] != tfckpt.OBJECT_GRAPH_KEY]
    optimizer = set(tfckpt.optimizer_keys(reader))
    model_rows = [r for r in rows if r[0] not in optimizer]
    opt_rows = [r for r in rows if r[0] in optimizer]
    counts = {
        "model": _parameters(model_rows),
        "optimizer": _parameters(opt_rows),
        "model_tensors": len(model_rows),
        "optimizer_tensors": len(opt_rows),
    }
    if args.json:
        write_json({"prefix": reader.prefix, "parameters": counts}, out)
    else:
        out.write(
            f"# {counts['model'] + counts['optimizer']} parameters: {counts['model']} "
            f"in {len(model_rows)} model tensors, {counts['optimizer']} in "
            f"{len(opt_rows)} tensors of optimizer state\n"
        )
    return EXIT_OK


def _parameters(rows: Any) -> int:
    """Elements of the listed rows that could be read."""
    return sum(n for _key, _dtype, _shape, _size, n, error, _sliced in rows if error is None)


def _data_bytes(reader: Any) -> int:
    """Bytes in data files: every entry that holds data (slice entries, not their tensor)."""
    return reader.summary()[5]


def _partitioned_size(reader: Any, e: Any) -> int:
    if reader.header.format == "V1":
        return e.size  # a V1 entry's size already counts all its slices
    total = 0
    for s in e.slices:
        try:
            total += reader.slice_entry(e.key, s).size
        except tfckpt.CorruptCheckpointError:
            pass  # a missing slice entry is reported by verify, not by a listing
    return total


# -- values as JSON ---------------------------------------------------------------------


def _json_value(key: str, entry: Any, value: Any) -> Dict[str, Any]:
    """``{"key", "dtype", "shape", "value"}`` of one tensor, its value in plain JSON: strings
    as text (``{"base64": ...}`` where not UTF-8), complex numbers as [re, im] pairs,
    non-finite floats as strings, variants as their type name and tensors."""
    import numpy as np

    def convert(v: Any) -> Any:
        if isinstance(v, bytes):
            try:
                return v.decode("utf-8")
            except UnicodeDecodeError:
                import base64

                return {"base64": base64.b64encode(v).decode("ascii")}
        if isinstance(v, np.ndarray):
            return convert(v.tolist()) if v.dtype == object else _plain(v)
        if isinstance(v, list):
            return [convert(x) for x in v]
        if isinstance(v, tfckpt.Variant):
            return {
                "type_name": v.type_name,
                "metadata_bytes": len(v.metadata),
                "tensors": [convert(t) for t in v.tensors],
            }
        return v

    if entry.dtype_code in (STRING, VARIANT):
        out = convert(value.tolist() if value.ndim else [value.item()])
        if not value.ndim:
            out = out[0]
    else:
        out = convert(value)
    return {"key": key, "dtype": entry.dtype_name, "shape": list(entry.shape), "value": out}


def _plain(arr: Any) -> Any:
    """A numeric array as nested lists of JSON numbers: complex numbers as [re, im],
    ml_dtypes values widened, non-finite floats as strings."""
    import numpy as np

    if arr.dtype.kind == "c":
        return (
            [[z.real, z.imag] for z in arr.reshape(-1).tolist()]
            if arr.ndim
            else [arr.item().real, arr.item().imag]
        )
    if arr.dtype.kind not in "biuf":  # ml_dtypes types
        arr = arr.astype(np.float64) if "float" in arr.dtype.name else arr.astype(np.int64)
    return _finite(arr.tolist())


def _finite(x: Any) -> Any:
    if isinstance(x, list):
        return [_finite(y) for y in x]
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return str(x)
    return x


#: Elements converted at a time when a tensor's value is written as JSON: the text of a
#: chunk is all that is held, not the whole tensor as Python objects (~55 bytes each).
_JSON_CHUNK = 1 << 16


def _write_json_value(key: str, entry: Any, value: Any, out: TextIO) -> None:
    """One tensor as the JSON line :func:`_json_value` gives, numeric values streamed in
    chunks, so a tensor of any size needs memory for one chunk of text only."""
    if entry.dtype_code in (STRING, VARIANT) or value.ndim == 0 or value.size == 0:
        out.write(json.dumps(_json_value(key, entry, value)) + "\n")
        return
    head = json.dumps({"key": key, "dtype": entry.dtype_name, "shape": list(entry.shape)})
    out.write(head[:-1] + ', "value": ')
    shape, flat = value.shape, value.reshape(-1)
    blocks = [math.prod(shape[k:]) for k in range(len(shape))]  # elements per nested list
    out.write("[" * len(shape))
    i, n = 0, flat.size
    while i < n:
        if i:
            ends = sum(1 for b in blocks if i % b == 0)
            out.write("]" * ends + ", " + "[" * ends)
        stop = min(n, i + _JSON_CHUNK, (i // shape[-1] + 1) * shape[-1])
        out.write(json.dumps(_plain(flat[i:stop]))[1:-1])
        i = stop
    out.write("]" * len(shape) + "}\n")


# -- the object graph -------------------------------------------------------------------


def _tree(reader: Any, args: argparse.Namespace, out: TextIO) -> int:
    graph = reader.object_graph
    if graph is None:
        raise UsageError(
            f"{reader.prefix} is a name-based checkpoint (no {tfckpt.OBJECT_GRAPH_KEY} "
            "key): it has no object graph to show; use 'tfckpt dump' for its keys"
        )
    if args.json:
        write_json(graph.to_json(), out)
    else:
        out.write(printable(graph.render(_describe(reader)), keep_newlines=True) + "\n")
    return EXIT_OK


def _describe(reader: Any) -> Callable[[str], str]:
    """How the tree names the value behind a key: ``float32[5,3]``."""

    def describe(key: str) -> str:
        if key not in reader:
            return "(missing from the index)"
        e = reader.entry(key)
        return f"{e.dtype_name}{format_shape(e.shape)}"

    return describe
