"""tfckpt.refs / `tfckpt refs`: kerchunk references that zarr opens, bit-exact with
tfckpt and TensorFlow."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

import tfckpt
from tfckpt import cli
from tfckpt.refs import RENAMED_LEAF, references

fsspec = pytest.importorskip("fsspec")
zarr = pytest.importorskip("zarr")

CASES = [
    "dtypes",
    "tf1_partitioned",
    "keras_adam",
    "sharded_policy",
    "module_nested",
    "name_based_v1_saver_scalar",
    "multi_device_tf1",
    "savedmodel",
]


def open_group(refs, **kwargs):
    fs = fsspec.filesystem("reference", fo=refs, asynchronous=True, **kwargs)
    return zarr.open_group(zarr.storage.FsspecStore(fs, read_only=True), mode="r", zarr_format=2)


def array_path(refs, key):
    renamed = json.loads(refs["refs"][".zattrs"])["tfckpt"]["renamed"]
    return renamed.get(key, key)


def same_bits(a, b) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("case", CASES)
def test_zarr_reads_every_described_tensor_bit_exact(case, corpus, oracles):
    prefix = corpus[case].prefix
    refs = references(prefix)
    assert refs["version"] == 1
    group = open_group(refs)
    o = oracles[case]
    skipped = {s["key"] for s in refs["skipped"]}
    described = 0
    with tfckpt.open(prefix) as r:
        for key in r.keys():
            if key in skipped:
                continue
            arr = group[array_path(refs, key)]
            value = arr[...]
            assert arr.attrs["checkpoint_key"] == key
            assert arr.attrs["tf_dtype"] == r.entry(key).dtype_name
            assert same_bits(value, r.read(key)), key
            tf_value = o["values"][key]
            assert same_bits(value, np.asarray(tf_value).view(value.dtype)), key
            described += 1
    assert described + len(skipped) == len(o["list_variables"])
    assert described > 0


def test_what_zarr_cannot_express_is_skipped_with_reasons(corpus):
    refs = references(corpus["dtypes"].prefix)
    by_dtype = {s["dtype"]: s["reason"] for s in refs["skipped"]}
    for name in (
        "bfloat16",
        "float8_e5m2",
        "float8_e4m3fn",
        "int4",
        "uint4",
        "int2",
        "float4_e2m1fn",
    ):
        assert "no " + name + " data type" in by_dtype[name]
    assert "varint" in by_dtype["string"]
    for s in refs["skipped"]:
        assert f"{s['key']}/.zarray" not in refs["refs"]
    # Quantized types are their integer base, said in the attributes.
    group = open_group(refs)
    q = [k for k in refs["refs"] if k.endswith("/.zattrs") and "qint8" in refs["refs"][k]]
    assert q
    assert group[q[0][: -len("/.zattrs")]].dtype == np.int8

    variants = references(corpus["data_iterator"].prefix)["skipped"]
    assert any(s["dtype"] == "variant" and "serialized protos" in s["reason"] for s in variants)


def test_as_bits_describes_raw_bits(corpus):
    prefix = corpus["dtypes"].prefix
    refs = references(prefix, as_bits=True)
    assert not any(s["dtype"] == "bfloat16" for s in refs["skipped"])
    group = open_group(refs)
    with tfckpt.open(prefix) as r:
        for key in r.keys():
            if r.entry(key).dtype_name not in ("bfloat16", "float8_e4m3fn", "int4"):
                continue
            arr = group[array_path(refs, key)]
            assert arr.attrs["raw_bits"] is True
            want = r.read(key)
            assert same_bits(arr[...], want.view(arr.dtype))


def test_partitioned_regular_grid_is_one_chunk_per_slice(corpus):
    prefix = corpus["tf1_partitioned"].prefix
    refs = references(prefix)
    # pv2 (6x3 in two 3x3 slices) is also the parent of pv2/Adam: it moves down a level.
    assert array_path(refs, "pv2") == f"pv2/{RENAMED_LEAF}"
    zarray = json.loads(refs["refs"][f"pv2/{RENAMED_LEAF}/.zarray"])
    assert zarray["shape"] == [6, 3] and zarray["chunks"] == [3, 3]
    assert {
        k
        for k in refs["refs"]
        if k.startswith(f"pv2/{RENAMED_LEAF}/") and not k.split("/")[-1].startswith(".")
    } == {f"pv2/{RENAMED_LEAF}/0.0", f"pv2/{RENAMED_LEAF}/1.0"}
    # scope/pv3 (rows 3+2+2) is no regular grid: said, not mangled.
    reasons = {s["key"]: s["reason"] for s in refs["skipped"]}
    assert "regular grid" in reasons["scope/pv3"]
    group = open_group(refs)
    with tfckpt.open(prefix) as r:
        assert same_bits(group[f"pv2/{RENAMED_LEAF}"][...], r.read("pv2"))
        assert same_bits(group["pv2/Adam"][...], r.read("pv2/Adam"))


def test_hierarchy_is_walkable_as_groups(corpus):
    refs = references(corpus["keras_adam"].prefix)
    group = open_group(refs)
    assert "optimizer" in dict(group.groups())
    counter = group["save_counter"][".ATTRIBUTES"]["VARIABLE_VALUE"]
    assert counter.shape == () and int(counter[()]) == 2


def test_references_from_a_remote_store_with_a_target_url(corpus, tmp_path):
    fs = fsspec.filesystem("memory")
    src = corpus["module_nested"].prefix
    d, base = os.path.split(src)
    for f in os.listdir(d):
        if f.startswith(base + "."):
            with open(os.path.join(d, f), "rb") as fh:
                fs.pipe(f"/refs-remote/{f}", fh.read())
    try:
        refs = references(f"memory://refs-remote/{base}")
        chunk = next(v for k, v in refs["refs"].items() if isinstance(v, list))
        assert chunk[0].startswith("memory://") and "/refs-remote/" in chunk[0]
        group = open_group(refs, remote_protocol="memory")
        with tfckpt.open(src) as r:
            for key in r.keys():
                if f"{array_path(refs, key)}/.zarray" in refs["refs"]:
                    assert same_bits(group[array_path(refs, key)][...], r.read(key))
        # `url` points the chunks somewhere else (where the shards will be uploaded).
        moved = references(src, url="s3://bucket/run/")
        chunk = next(v for k, v in moved["refs"].items() if isinstance(v, list))
        assert chunk[0].startswith(f"s3://bucket/run/{base}.data-")
    finally:
        fs.rm("/refs-remote", recursive=True)


def test_dask_array_reads_lazily(corpus):
    da = pytest.importorskip("dask.array")
    prefix = corpus["keras_adam"].prefix
    refs = references(prefix)
    key = "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"
    arr = da.from_zarr(open_group(refs)[key])
    with tfckpt.open(prefix) as r:
        assert same_bits(arr.compute(), r.read(key))


def test_refs_command(corpus, tmp_path):
    out_file = tmp_path / "refs.json"
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(["refs", corpus["tf1_partitioned"].prefix, "-o", str(out_file)], out, err)
    assert code == 0
    refs = json.loads(out_file.read_text())
    assert refs == json.loads(json.dumps(references(corpus["tf1_partitioned"].prefix)))
    assert "skipped scope/pv3 (float32): partitioned into slices" in err.getvalue()
    out = io.StringIO()
    assert cli.run(["refs", corpus["keras_adam"].prefix], out, io.StringIO()) == 0
    assert json.loads(out.getvalue())["version"] == 1
    assert cli.run(["refs", str(tmp_path / "nothing")], io.StringIO(), io.StringIO()) == 2
