"""Regenerates the golden fixtures in ``tests/fixtures/`` (uses TensorFlow).

    python tests/make_fixtures.py [OUTDIR]      # default: tests/fixtures

Every fixture is a tiny checkpoint of one format variant, written by TensorFlow 2.21 (or,
where TensorFlow cannot write the variant, built by hand and read back by TensorFlow), and
``manifest.json`` records what must be read from it: keys, dtypes, shapes, slices, object
paths and a checksum of every value (``test_fixtures.digest``). The expected values are
those this script gave TensorFlow, checked against what TensorFlow reads back (its
CheckpointReader, or the Restore ops where the reader refuses); only keys TensorFlow made
up itself (the object graph, save counters) take TensorFlow's reading, and variants, which
TensorFlow's Python API cannot turn into bytes, take tfckpt's (marked ``"source"``).
``tests/test_fixtures.py`` replays the manifest without TensorFlow.

Output is deterministic: running the script twice gives identical files.

The module also holds what the V1 tests share with it: the V1 checkpoint builders and a
small Snappy compressor with which a table is rebuilt out of Snappy-compressed blocks (as
TensorFlow's writers of 2015-16 stored them; TF 2.21 cannot write such files).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import sys
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import craft  # noqa: E402  (tests/craft.py: table pieces built by hand)
from test_fixtures import MANIFEST, digest  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SEED = 0
DEVICES = 3

# ==========================================================================================
# Snappy: a compressor (literals and back-references), and tables made of Snappy blocks


def snappy_compress(raw: bytes) -> bytes:
    """A raw Snappy stream of `raw` (the block format, not the framed one): greedy matches
    of 4+ bytes found through a hash of 4-byte strings, emitted with all three copy forms
    (1-, 2- and 4-byte offsets) so a reader's every path is exercised; the rest literals."""
    out = bytearray(craft.varint(len(raw)))
    n = len(raw)
    copies = 0

    def literal(a: int, b: int) -> None:
        while a < b:
            chunk = raw[a : min(b, a + 65536)]
            k = len(chunk) - 1
            if k < 60:
                out.append(k << 2)
            elif k < 256:
                out.extend((60 << 2, k))
            else:
                out.append(61 << 2)
                out.extend(k.to_bytes(2, "little"))
            out.extend(chunk)
            a += len(chunk)

    def copy(offset: int, length: int) -> None:
        nonlocal copies
        while length > 0:
            if 4 <= length <= 11 and offset < 2048:
                out.extend((1 | ((length - 4) << 2) | ((offset >> 8) << 5), offset & 0xFF))
                return
            step = min(length, 64)
            if length - step and length - step < 4 and step > 4:
                step = length - 4  # leave a tail the 1-byte form can take
            copies += 1
            if copies % 2 or offset >= 65536:
                out.append(3 | ((step - 1) << 2))
                out.extend(offset.to_bytes(4, "little"))
            else:
                out.append(2 | ((step - 1) << 2))
                out.extend(offset.to_bytes(2, "little"))
            length -= step

    last: Dict[bytes, int] = {}
    i = lit = 0
    while i + 4 <= n:
        h = raw[i : i + 4]
        cand = last.get(h)
        last[h] = i
        if cand is None:
            i += 1
            continue
        m = 4
        while i + m < n and raw[cand + m] == raw[i + m]:
            m += 1
        literal(lit, i)
        copy(i - cand, m)
        i += m
        lit = i
    literal(lit, n)
    return bytes(out)


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    v = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, pos


def _handle_at(buf: bytes, pos: int) -> Tuple[Tuple[int, int], int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return (offset, size), pos


def _block_entries(contents: bytes) -> List[Tuple[bytes, bytes]]:
    """(key, value) pairs of a block, prefix-compressed keys expanded (FORMAT.md 2.3)."""
    num_restarts = int.from_bytes(contents[-4:], "little")
    end = len(contents) - 4 - 4 * num_restarts
    pos, key, out = 0, b"", []
    while pos < end:
        shared, pos = _varint(contents, pos)
        unshared, pos = _varint(contents, pos)
        vlen, pos = _varint(contents, pos)
        key = key[:shared] + contents[pos : pos + unshared]
        pos += unshared
        out.append((key, contents[pos : pos + vlen]))
        pos += vlen
    return out


def snappy_table(table: bytes, *, block_size: int = 256, restart_interval: int = 4) -> bytes:
    """The table's (key, value) pairs rebuilt as a table whose data blocks (cut at
    `block_size`), metaindex and index block are all Snappy-compressed: block type 1,
    trailer CRC over the compressed bytes and the type byte (FORMAT.md 2.4)."""
    from tfckpt import _native

    items = _native.read_table(table, "source table")
    plain = _native.build_table(items, block_size, restart_interval)
    footer = plain[-48:]
    _, pos = _handle_at(footer, 0)  # the metaindex: rebuilt below
    (index_offset, index_size), _ = _handle_at(footer, pos)
    index = plain[index_offset : index_offset + index_size]
    out = b""
    new_index = []
    for sep, handle in _block_entries(index):
        (off, size), _ = _handle_at(handle, 0)
        packed = snappy_compress(plain[off : off + size])
        new_index.append((sep, craft.handle(len(out), len(packed))))
        out += craft.framed(packed, 1)
    meta = snappy_compress(craft.EMPTY_BLOCK)
    meta_handle = (len(out), len(meta))
    out += craft.framed(meta, 1)
    index_block = snappy_compress(craft.simple_block(new_index))
    idx_handle = (len(out), len(index_block))
    out += craft.framed(index_block, 1)
    out += craft.footer(meta_handle, idx_handle)
    assert _native.read_table(out, "snappy table") == items
    return out


# ==========================================================================================
# TensorFlow helpers


def tf_module():
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def partitioned_init(tf, full: np.ndarray):
    """A variable initializer giving each partition its part of ``full``."""

    def init(shape, dtype=None, partition_info=None):
        off = partition_info.var_offset if partition_info is not None else [0] * len(shape)
        return tf.constant(full[tuple(slice(o, o + n) for o, n in zip(off, shape))], dtype=dtype)

    return init


def _half_values():
    return np.array([0.5, -2.0, np.inf, -0.0, 6e-8, 65504.0], np.float16)


def v1_single_values() -> Dict[str, np.ndarray]:
    """The values of the single-file V1 checkpoint: every dtype the V1 saver writes."""
    rs = np.random.RandomState(SEED)
    return {
        "f32": rs.randn(3, 2).astype(np.float32),
        "f64": np.array([1.5, -2.0, 1e300]),
        "i32": np.array([1, -2, 2**31 - 1, -(2**31)], np.int32),
        "i64": np.array(-(2**40) - 9, np.int64),
        "flag": np.array([True, False, True]),
        "text": np.array([b"v1", b"", b"\x00\xff", "\u00e9t\u00e9".encode()], dtype=object),
        "half": _half_values(),
        "c64": np.array([1 + 2j, -0.5 - 3.25j], np.complex64),
        "c128": np.array([[1e-300 + 2j]], np.complex128),
        "u8": np.array([0, 7, 255], np.uint8),
        "i8": np.array([-128, 0, 127], np.int8),
        "i16": np.array([-32768, 5, 32767], np.int16),
        "u16": np.array([0, 1, 65535], np.uint16),
        "scope/scalar": np.array(3.25, np.float32),
    }


def v1_partitioned_values() -> Dict[str, Tuple[np.ndarray, int]]:
    """Partitioned variables of the V1 checkpoint: name -> (full value, parts)."""
    return {
        "part": (np.arange(15, dtype=np.float32).reshape(5, 3), 2),
        "scope/part3": (np.arange(28, dtype=np.int64).reshape(7, 4) - 10, 3),
        "part_half": (np.arange(8, dtype=np.float16).reshape(4, 2) / 4, 2),
        "part_str": (np.array([b"a", b"bb", b"", b"\x00d"], dtype=object), 2),
    }


def v1_single_given() -> Dict[str, np.ndarray]:
    """Every full value of the single-file V1 checkpoint, partitioned ones assembled."""
    out = dict(v1_single_values())
    out.update({name: full for name, (full, _) in v1_partitioned_values().items()})
    return out


def v1_single_graph(tf):
    """The graph of the single-file V1 checkpoint: (graph, {name: variable}), partitioned
    variables as PartitionedVariable."""
    g = tf.Graph()
    variables = {}
    with g.as_default():
        for name, value in v1_single_values().items():
            variables[name] = tf.Variable(value, name=name)
        variables.update(partitioned_variables(tf))
    return g, variables


def partitioned_variables(tf):
    """The partitioned variables of v1_partitioned_values() in the current graph (TF1
    get_variable with a fixed_size_partitioner): {name: PartitionedVariable}."""
    v1 = tf.compat.v1
    out = {}
    for name, (full, n) in v1_partitioned_values().items():
        scope, _, local = name.rpartition("/")
        with v1.variable_scope(scope or v1.get_variable_scope()):
            out[name] = v1.get_variable(
                local,
                shape=full.shape,
                dtype=tf.string if full.dtype == object else tf.as_dtype(full.dtype),
                initializer=partitioned_init(tf, full),
                partitioner=v1.fixed_size_partitioner(n),
            )
    return out


def save_graph(tf, g, path: str, *, write_version: str = "V1", sharded: bool = False) -> str:
    """Initializes the graph's variables and saves them with a graph-mode Saver in a session
    with three CPU devices; returns what the saver returns (a file or a pattern for V1)."""
    v1 = tf.compat.v1
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)  # the V1 saver does not
    with g.as_default():
        saver = v1.train.Saver(
            sharded=sharded, write_version=getattr(v1.train.SaverDef, write_version)
        )
        cfg = v1.ConfigProto(device_count={"CPU": DEVICES})
        with v1.Session(graph=g, config=cfg) as s:
            s.run(v1.global_variables_initializer())
            return saver.save(s, path, write_meta_graph=False)


def build_v1_single(tf, path: str, *, write_version: str = "V1") -> Dict[str, np.ndarray]:
    """Writes the single-file V1 checkpoint at `path` with a graph-mode
    ``Saver(write_version=V1)``; returns every variable's full value."""
    g, _ = v1_single_graph(tf)
    save_graph(tf, g, path, write_version=write_version)
    return v1_single_given()


def v1_sharded_values() -> Dict[str, np.ndarray]:
    out = {}
    for i in range(DEVICES):
        out[f"dev{i}/w"] = np.arange(3, dtype=np.float32) * (i + 1)
        out[f"dev{i}/name"] = np.array([b"dev%d" % i], dtype=object)
    out["dev1/pv"] = np.arange(15, dtype=np.float64).reshape(5, 3) / 8
    return out


def sharded_graph(tf):
    """Variables on three CPU devices, one of them partitioned: (graph, {name: variable})."""
    v1 = tf.compat.v1
    values = v1_sharded_values()
    g = tf.Graph()
    variables = {}
    with g.as_default():
        for i in range(DEVICES):
            with tf.device(f"/device:CPU:{i}"):
                for name in (f"dev{i}/w", f"dev{i}/name"):
                    variables[name] = tf.Variable(values[name], name=name)
        with tf.device("/device:CPU:1"), v1.variable_scope("dev1"):
            variables["dev1/pv"] = v1.get_variable(
                "pv",
                shape=[5, 3],
                dtype=tf.float64,
                initializer=partitioned_init(tf, values["dev1/pv"]),
                partitioner=v1.fixed_size_partitioner(2),
            )
    return g, variables


def build_sharded(tf, path: str, *, write_version: str = "V1") -> Dict[str, np.ndarray]:
    """A graph-mode ``Saver(sharded=True)`` over variables on three CPU devices (a session
    with ``device_count={"CPU": 3}``), one of them partitioned; returns the values. With
    V1 the files are ``<path>-0000i-of-00003``; with V2 one bundle with three data shards."""
    g, _ = sharded_graph(tf)
    save_graph(tf, g, path, write_version=write_version, sharded=True)
    return v1_sharded_values()


def tf_v1_value(tf, pattern: str, key: str, dtype_name: str):
    """TensorFlow's reading of a V1 tensor: CheckpointReader.get_tensor where it can, else
    the Restore op (which reads every V1 dtype and assembles partitioned tensors)."""
    try:
        return tf.train.load_checkpoint(pattern).get_tensor(key)
    except Exception:  # noqa: BLE001 - "Data type not supported", "Sliced checkpoints ..."
        return tf.raw_ops.Restore(
            file_pattern=pattern, tensor_name=key, dt=tf.as_dtype(dtype_name)
        ).numpy()


# ==========================================================================================
# fixtures


def _write_state(directory: pathlib.Path, path: str) -> None:
    """A `checkpoint` state file naming `path` relative to the directory (TensorFlow's
    TF1 saver writes absolute paths, which would not survive a checkout elsewhere)."""
    (directory / "checkpoint").write_text(
        f'model_checkpoint_path: "{path}"\nall_model_checkpoint_paths: "{path}"\n'
    )


class Fixture:
    """One fixture being built: its files in ``root/name``, what to open, what to expect."""

    def __init__(
        self, root: pathlib.Path, name: str, fmt: str, variants: List[str], notes: str
    ) -> None:
        self.root = root
        self.name = name
        self.dir = root / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.format = fmt
        self.variants = variants
        self.notes = notes
        self.open: List[str] = []  # paths relative to the fixtures root
        self.tf_path: Optional[str] = None  # what TensorFlow's reader is given
        self.given: Dict[str, np.ndarray] = {}
        self.object_paths: Dict[str, str] = {}
        self.expect_slices: Dict[str, int] = {}  # partitioned key -> number of slices

    def rel(self, *parts: str) -> str:
        return "/".join((self.name,) + parts)


def _tf_readings(tf, fx: Fixture) -> Tuple[Dict[str, Any], Dict[str, str], Dict[str, list]]:
    """(values TensorFlow reads, dtypes, shapes) of every key of the fixture."""
    reader = tf.train.load_checkpoint(fx.tf_path)
    dtypes = {k: v.name for k, v in reader.get_variable_to_dtype_map().items()}
    shapes = {k: list(v) for k, v in reader.get_variable_to_shape_map().items()}
    values = {}
    for k in dtypes:
        if dtypes[k] == "variant":
            continue
        try:
            values[k] = reader.get_tensor(k)
        except Exception:  # noqa: BLE001
            if fx.format == "V1":
                values[k] = tf_v1_value(tf, fx.tf_path, k, dtypes[k])
            elif k in fx.given:
                # TF cannot assemble partitioned half/uint16/string (FORMAT.md 6.4): read
                # each stored slice with RestoreV2 and check it against the given value.
                values[k] = _tf_v2_by_slices(tf, fx.tf_path, k, dtypes[k], fx.given[k])
    return values, dtypes, shapes


def _tf_v2_by_slices(tf, prefix: str, key: str, dtype: str, given: np.ndarray):
    import tfckpt

    with tfckpt.open(prefix) as r:
        e = r.entry(key)
    out = np.empty(given.shape, dtype=given.dtype)
    for s in e.slices:
        spec = " ".join(str(d) for d in e.shape) + " " + s.spec
        part = tf.raw_ops.RestoreV2(
            prefix=prefix, tensor_names=[key], shape_and_slices=[spec], dtypes=[tf.as_dtype(dtype)]
        )[0].numpy()
        out[tuple(slice(a, b) for a, b in s.bounds(e.shape))] = part
    return out


def _array(v):
    """TensorFlow returns a scalar string as bytes: as an object array like the rest."""
    return np.array(v, dtype=object) if isinstance(v, bytes) else np.asarray(v)


def _same(a, b) -> bool:
    return digest(_array(a)) == digest(_array(b))


def _record(tf, fx: Fixture) -> dict:
    """The manifest record of a built fixture, after checking TensorFlow and tfckpt agree
    with the values given."""
    import tfckpt

    values, dtypes, shapes = _tf_readings(tf, fx) if fx.tf_path else ({}, {}, {})
    tensors = {}
    with tfckpt.open(fx.root / fx.open[0]) as r:
        if fx.tf_path:
            assert sorted(r.keys()) == sorted(dtypes), (fx.name, r.keys(), sorted(dtypes))
        for key in r.keys():
            e = r.entry(key)
            ours = r.read(key)
            if key in fx.given:
                value, source = fx.given[key], "given"
                if key in values:
                    assert _same(values[key], value), (fx.name, key, values[key], value)
            elif key in values:
                value, source = values[key], "tensorflow"
            else:
                value, source = ours, "tfckpt"
            assert _same(ours, value), (fx.name, key, ours, value)
            if fx.tf_path:
                assert dtypes[key] == e.dtype_name and shapes[key] == list(e.shape), key
            rec = {
                "dtype": e.dtype_name,
                "shape": list(e.shape),
                "sha256": digest(_array(value)),
                "source": source,
            }
            if e.slices:
                rec["slices"] = sorted(s.spec for s in e.slices)
            tensors[key] = rec
        for key, n in fx.expect_slices.items():
            assert len(tensors[key].get("slices", ())) == n, (fx.name, key)
        paths = {}
        for path, key in fx.object_paths.items():
            assert key in r.object_graph.node(path).keys, (fx.name, path)
            paths[path] = key
        header = {
            "format": r.header.format,
            "num_shards": r.header.num_shards,
            "endianness": r.header.endianness,
        }
    files = {}
    for f in sorted(fx.dir.rglob("*")):
        if f.is_file():
            files[f.relative_to(fx.root).as_posix()] = {
                "size": f.stat().st_size,
                "sha256": hashlib.sha256(f.read_bytes()).hexdigest(),
            }
    return {
        "notes": fx.notes,
        "variants": fx.variants,
        "open": fx.open,
        "header": header,
        "files": files,
        "tensors": tensors,
        "object_paths": paths,
    }


def fx_v1_single(tf, root: pathlib.Path) -> Fixture:
    fx = Fixture(
        root,
        "v1_single",
        "V1",
        ["v1", "v1-single", "v1-partitioned", "strings"],
        "Saver(write_version=V1), one file: every dtype the V1 saver writes (half and "
        "complex, which TF's CheckpointReader refuses in V1) and partitioned float32, "
        "int64, half and string variables (TF: 'Sliced checkpoints are not "
        "supported'); a relative state file.",
    )
    fx.given = build_v1_single(tf, str(fx.dir / "model.ckpt"))
    _write_state(fx.dir, "model.ckpt")
    fx.open = [fx.rel("model.ckpt"), fx.rel(), fx.rel("checkpoint")]
    fx.tf_path = str(fx.dir / "model.ckpt")
    fx.expect_slices = {name: n for name, (_, n) in v1_partitioned_values().items()}
    return fx


def fx_v1_sharded(tf, root: pathlib.Path) -> Fixture:
    fx = Fixture(
        root,
        "v1_sharded",
        "V1",
        ["v1", "v1-sharded", "v1-partitioned"],
        "Saver(sharded=True, write_version=V1) over variables on 3 CPU devices: "
        "files model.ckpt-0000i-of-00003, one holding a 2-way partitioned float64.",
    )
    fx.given = build_sharded(tf, str(fx.dir / "model.ckpt"))
    pattern = "model.ckpt-?????-of-00003"
    _write_state(fx.dir, pattern)
    fx.open = [fx.rel(pattern), fx.rel("model.ckpt-00002-of-00003"), fx.rel()]
    fx.tf_path = str(fx.dir / pattern)
    fx.expect_slices = {"dev1/pv": 2}
    return fx


def fx_v1_snappy(tf, root: pathlib.Path) -> Fixture:
    fx = Fixture(
        root,
        "v1_snappy",
        "V1",
        ["v1", "snappy"],
        "The v1_single file rebuilt from Snappy-compressed blocks (type 1; data, "
        "metaindex and index blocks), as TF 0.x wrote V1 files.",
    )
    src = root / "v1_single" / "model.ckpt"
    (fx.dir / "model.ckpt").write_bytes(snappy_table(src.read_bytes()))
    fx.given = v1_single_given()
    fx.open = [fx.rel("model.ckpt")]
    fx.tf_path = str(fx.dir / "model.ckpt")
    return fx


def fx_v2_sharded(tf, root: pathlib.Path) -> Fixture:
    fx = Fixture(
        root,
        "v2_multishard",
        "V2",
        ["v2", "v2-multishard", "v2-partitioned", "strings"],
        "Saver(sharded=True) (format V2) over variables on 3 CPU devices: one index, "
        "3 data shards, a 2-way partitioned float64.",
    )
    fx.given = build_sharded(tf, str(fx.dir / "model.ckpt"), write_version="V2")
    _write_state(fx.dir, "model.ckpt")
    fx.open = [fx.rel("model.ckpt"), fx.rel(), fx.rel("model.ckpt.data-00001-of-00003")]
    fx.tf_path = str(fx.dir / "model.ckpt")
    fx.expect_slices = {"dev1/pv": 2}
    return fx


def fx_v2_partitioned(tf, root: pathlib.Path) -> Fixture:
    fx = Fixture(
        root,
        "v2_partitioned",
        "V2",
        ["v2", "v2-single", "v2-partitioned"],
        "Saver() (format V2, one data shard) with partitioned float32, int64, half "
        "and string variables (TF restores neither half nor string from slices).",
    )
    parts = v1_partitioned_values()
    g = tf.Graph()
    with g.as_default():
        partitioned_variables(tf)
        tf.Variable(np.float32(1.25), name="plain")
    save_graph(tf, g, str(fx.dir / "model.ckpt"), write_version="V2")
    os.remove(fx.dir / "checkpoint")
    fx.given = {name: full for name, (full, _) in parts.items()}
    fx.given["plain"] = np.float32(1.25)
    fx.open = [fx.rel("model.ckpt"), fx.rel("model.ckpt.index")]
    fx.tf_path = str(fx.dir / "model.ckpt")
    fx.expect_slices = {name: n for name, (_, n) in parts.items()}
    return fx


def string_values() -> Dict[str, np.ndarray]:
    return {
        "empty": np.array([b"", b""], dtype=object),
        "nul": np.array([b"\x00", b"a\x00", b"\x00\x00\xff"], dtype=object),
        "long": np.array([b"x" * 130, b"y" * 300, b"z"], dtype=object),
        "utf8": np.array(["\u00e9", "\u65e5\u672c", "\U0001f600"], dtype=object),
        "grid": np.array([[b"a", b"b"], [b"c", b""]], dtype=object),
        "scalar": np.array(b"only", dtype=object),
        "none": np.zeros((0, 3), dtype=object),
    }


def fx_v2_strings(tf, root: pathlib.Path) -> Fixture:
    fx = Fixture(
        root,
        "v2_strings",
        "V2",
        ["v2", "v2-single", "strings"],
        "SaveV2 of string tensors: empty strings, NUL and 0xff bytes, lengths past "
        "127 (two-byte varints), UTF-8, 2-D, a scalar and an empty [0,3].",
    )
    values = string_values()
    values["utf8"] = np.array([s.encode() for s in values["utf8"]], dtype=object)
    names = sorted(values)
    prefix = str(fx.dir / "strings")
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(values[n].astype(object), dtype=tf.string) for n in names],
    )
    fx.given = values
    fx.open = [fx.rel("strings")]
    fx.tf_path = prefix
    return fx


def dtype_values() -> Dict[str, Tuple[np.ndarray, str]]:
    """name -> (numpy value, tf dtype name) for SaveV2 of many dtypes."""
    import ml_dtypes

    return {
        "bf16": (np.array([1.0, -0.5, np.inf], ml_dtypes.bfloat16), "bfloat16"),
        "f16": (_half_values(), "float16"),
        "f32": (np.array([[1.5, np.nan], [-0.0, 3e38]], np.float32), "float32"),
        "f64": (np.array([np.pi, -1e-300]), "float64"),
        "c64": (np.array([1 + 2j], np.complex64), "complex64"),
        "c128": (np.array([-1j, 2.5], np.complex128), "complex128"),
        "i8": (np.array([-128, 127], np.int8), "int8"),
        "u8": (np.array([0, 255], np.uint8), "uint8"),
        "i16": (np.array([-32768, 1], np.int16), "int16"),
        "u16": (np.array([65535, 2], np.uint16), "uint16"),
        "i32": (np.array([-(2**31), 7], np.int32), "int32"),
        "u32": (np.array([2**32 - 1, 3], np.uint32), "uint32"),
        "i64": (np.array([-(2**63), 2**63 - 1], np.int64), "int64"),
        "u64": (np.array([2**64 - 1], np.uint64), "uint64"),
        "bool": (np.array([True, False, True]), "bool"),
        "qi8": (np.array([-3, 4], np.int8), "qint8"),
        "qu8": (np.array([200, 4], np.uint8), "quint8"),
        "qi32": (np.array([-70000], np.int32), "qint32"),
        "f8e5m2": (np.array([1.0, -2.0], ml_dtypes.float8_e5m2), "float8_e5m2"),
        "f8e4m3fn": (np.array([0.5, 448.0], ml_dtypes.float8_e4m3fn), "float8_e4m3fn"),
        "i4": (np.array([-8, 7], ml_dtypes.int4), "int4"),
        "u4": (np.array([0, 15], ml_dtypes.uint4), "uint4"),
        "scalar": (np.array(42, np.int64), "int64"),
        "empty": (np.zeros((2, 0), np.float32), "float32"),
    }


def fx_v2_dtypes(tf, root: pathlib.Path) -> Fixture:
    fx = Fixture(
        root,
        "v2_dtypes",
        "V2",
        ["v2", "v2-single", "dtypes"],
        "SaveV2 of every dtype TF 2.21 saves from Python: bfloat16, float8, int4, "
        "quantized, unsigned, complex, bool, a scalar and an empty tensor.",
    )
    prefix = str(fx.dir / "dtypes")
    names, tensors = [], []
    for name, (value, dt) in sorted(dtype_values().items()):
        names.append(name)
        tensors.append(tf.constant(value, dtype=tf.as_dtype(dt)))
        fx.given[name] = value
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors
    )
    fx.open = [fx.rel("dtypes")]
    fx.tf_path = prefix
    return fx


def fx_v2_object(tf, root: pathlib.Path) -> Fixture:
    fx = Fixture(
        root,
        "v2_object",
        "V2",
        ["v2", "v2-single", "object-graph"],
        "tf.train.Checkpoint of a tf.Module (a nested dense layer, a list, a "
        "variable reached by two paths, stored once under model/shared): object "
        "graph, save counter.",
    )

    class Dense(tf.Module):
        def __init__(self, n_in, n_out, seed):
            super().__init__()
            rs = np.random.RandomState(seed)
            self.kernel = tf.Variable(rs.randn(n_in, n_out).astype(np.float32), name="kernel")
            self.bias = tf.Variable(np.zeros(n_out, np.float32), name="bias")

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.dense = Dense(3, 2, SEED)
            self.layers = [Dense(2, 1, SEED + 1)]
            self.shared = self.dense.bias
            self.step = tf.Variable(np.int64(7), name="step")

    model = Model()
    ckpt = tf.train.Checkpoint(model=model)
    prefix = ckpt.save(str(fx.dir / "ckpt"))
    os.remove(fx.dir / "checkpoint")
    fx.given = {
        "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE": model.dense.kernel.numpy(),
        "model/shared/.ATTRIBUTES/VARIABLE_VALUE": model.dense.bias.numpy(),
        "model/layers/0/kernel/.ATTRIBUTES/VARIABLE_VALUE": model.layers[0].kernel.numpy(),
        "model/step/.ATTRIBUTES/VARIABLE_VALUE": np.array(7, np.int64),
    }
    fx.object_paths = {
        "model/dense/kernel": "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE",
        "model/shared": "model/shared/.ATTRIBUTES/VARIABLE_VALUE",
        "model/dense/bias": "model/shared/.ATTRIBUTES/VARIABLE_VALUE",
        "model/layers/0/bias": "model/layers/0/bias/.ATTRIBUTES/VARIABLE_VALUE",
        "save_counter": "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
    }
    fx.open = [fx.rel("ckpt-1")]
    fx.tf_path = prefix
    return fx


def fx_v2_variant(tf, root: pathlib.Path) -> Fixture:
    fx = Fixture(
        root,
        "v2_variant",
        "V2",
        ["v2", "v2-single", "variant", "object-graph"],
        "tf.train.Checkpoint of a tf.data iterator after one batch: a DT_VARIANT "
        "tensor (ITERATOR_STATE). Its digest is tfckpt's decoding at generation "
        "(TF's Python API cannot turn variants into bytes); TF restores the iterator "
        "from this file to the next batch.",
    )
    # Synchronous stages only, so the saved state does not depend on thread timing (a
    # fused MapAndBatch saves whatever batches its background threads had ready).
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.map_and_batch_fusion = False
    options.experimental_optimization.inject_prefetch = False
    ds = tf.data.Dataset.range(10).map(_double).batch(3).with_options(options)
    it = iter(ds)
    next(it)
    prefix = tf.train.Checkpoint(it=it).save(str(fx.dir / "ckpt"))
    os.remove(fx.dir / "checkpoint")
    fresh = iter(ds)
    tf.train.Checkpoint(it=fresh).restore(prefix).assert_consumed()
    assert next(fresh).numpy().tolist() == [6, 8, 10]
    # The graph names the attribute ITERATOR; its tensor is stored as ITERATOR_STATE.
    fx.object_paths = {"it": "it/.ATTRIBUTES/ITERATOR"}
    fx.open = [fx.rel("ckpt-1")]
    fx.tf_path = prefix
    return fx


def _double(x):
    return x * 2


def big_endian_values() -> Dict[str, Tuple[np.ndarray, int]]:
    import ml_dtypes

    return {
        "f32": (np.array([1.5, -2.0, 3.25], np.float32), 1),
        "i64": (np.array([[1, -2], [3, 2**40]], np.int64), 9),
        "c64": (np.array([1 + 2j, -3.5j], np.complex64), 8),
        "f16": (np.array([0.5, -1.0], np.float16), 19),
        "u8": (np.array([1, 255], np.uint8), 4),
        "bf16": (np.array([1.0, -0.5], ml_dtypes.bfloat16), 14),
    }


def fx_v2_big_endian(tf, root: pathlib.Path) -> Fixture:
    """Built by hand (no big-endian TensorFlow at hand): header endianness BIG, payloads
    big-endian, CRCs over the bytes as stored (FORMAT.md 5.6)."""
    from tfckpt import _native

    fx = Fixture(
        root,
        "v2_big_endian",
        "V2",
        ["v2", "v2-single", "big-endian", "strings"],
        "Hand-built bundle marked BIG (as s390x writes): big-endian payloads "
        "including a string tensor's length checksum; TF byte-swaps it on read.",
    )
    data = bytearray()
    entries = {}
    for name, (value, code) in sorted(big_endian_values().items()):
        unit = {1: 4, 9: 8, 8: 4, 19: 2, 4: 1, 14: 2}[code]
        raw = value.view(np.uint8) if unit == 1 else value.view(f"u{unit}").byteswap()
        raw = raw.tobytes()
        entries[name.encode()] = craft.entry(code, value.shape, offset=len(data), data=raw)
        data += raw
        fx.given[name] = value
    strings = [b"hi", b"", b"xyz"]
    lens = b"".join(bytes([len(s)]) for s in strings)
    c = _native.crc32c(b"".join(len(s).to_bytes(4, "big") for s in strings))
    checksum = _native.mask_crc(c).to_bytes(4, "big")
    c = _native.crc32c(checksum, c)
    c = _native.crc32c(b"".join(strings), c)
    payload = lens + checksum + b"".join(strings)
    entries[b"str"] = craft.entry(
        7, [3], offset=len(data), size=len(payload), crc=_native.mask_crc(c)
    )
    data += payload
    fx.given["str"] = np.array(strings, dtype=object)
    craft.write_bundle(
        fx.dir, "be", sorted(entries.items()), bytes(data), hdr=craft.header(endianness=1)
    )
    fx.open = [fx.rel("be")]
    fx.tf_path = str(fx.dir / "be")
    return fx


def fx_v2_snappy_index(tf, root: pathlib.Path) -> Fixture:
    fx = Fixture(
        root,
        "v2_snappy_index",
        "V2",
        ["v2", "v2-single", "snappy"],
        "The v2_strings bundle with its .index rebuilt from Snappy-compressed "
        "blocks (TF 1.1-era writers may have compressed index files).",
    )
    src = root / "v2_strings"
    shutil.copy(src / "strings.data-00000-of-00001", fx.dir / "strings.data-00000-of-00001")
    (fx.dir / "strings.index").write_bytes(
        snappy_table((src / "strings.index").read_bytes(), block_size=64, restart_interval=2)
    )
    values = string_values()
    values["utf8"] = np.array([s.encode() for s in values["utf8"]], dtype=object)
    fx.given = values
    fx.open = [fx.rel("strings")]
    fx.tf_path = str(fx.dir / "strings")
    return fx


BUILDERS = [
    fx_v1_single,
    fx_v1_sharded,
    fx_v1_snappy,
    fx_v2_sharded,
    fx_v2_partitioned,
    fx_v2_strings,
    fx_v2_dtypes,
    fx_v2_object,
    fx_v2_variant,
    fx_v2_big_endian,
    fx_v2_snappy_index,
]


def main(argv: List[str]) -> int:
    root = pathlib.Path(argv[0]) if argv else HERE / "fixtures"
    root.mkdir(parents=True, exist_ok=True)
    tf = tf_module()
    tf.random.set_seed(SEED)
    manifest = {
        "format_version": 1,
        "generator": "tests/make_fixtures.py",
        "tensorflow": tf.__version__,
        "digest": digest.__doc__.strip().splitlines()[0],
        "fixtures": {},
    }
    for build in BUILDERS:
        fx = build(tf, root)
        manifest["fixtures"][fx.name] = _record(tf, fx)
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    for name, rec in manifest["fixtures"].items():
        size = sum(f["size"] for f in rec["files"].values())
        print(
            f"{name:18s} {size:7d} B  {len(rec['tensors']):3d} tensors  "
            f"{', '.join(rec['variants'])}"
        )
    print(f"total {total} B in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
