"""tfckpt.stats against numpy on float64 copies: every tensor of the TensorFlow-written corpus,
and tensors TensorFlow wrote to hold NaN, infinities, -0.0, all-NaN, empty shapes, float16
values whose sum overflows float16 and float32 values whose squares overflow float32; the
kernel's bit layouts against ml_dtypes, the twin against the native core; the first non-finite
checkpoint of a small diverging TensorFlow run, ``scan --stats`` and ``plot`` over it."""

from __future__ import annotations

import io
import json
import math

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tfckpt import cli
from tfckpt.dtypes import all_dtypes, by_name
from tfckpt.moments import checkpoint_moments, has_moments, merge, payload_moments

_CORE = __import__("tfckpt._core", fromlist=["core"]).core

W = "w/.ATTRIBUTES/VARIABLE_VALUE"
B = "b/.ATTRIBUTES/VARIABLE_VALUE"


def _expected(arr) -> dict:
    """The statistics numpy gives on a float64 copy (complex values: their modulus)."""
    a = np.asarray(arr)
    v = np.abs(a.astype(np.complex128)) if a.dtype.kind == "c" else a.astype(np.float64)
    v = v.reshape(-1)
    finite = v[np.isfinite(v)]
    out = {
        "count": v.size,
        "nan": int(np.isnan(v).sum()),
        "posinf": int((v == np.inf).sum()),
        "neginf": int((v == -np.inf).sum()),
        "zeros": int((finite == 0).sum()),
    }
    if not finite.size:
        return dict(out, min=None, max=None, mean=None, std=None, l2=None)
    with np.errstate(over="ignore"):  # float64 extremes: the squares overflow, as ours do
        l2 = math.sqrt(float(np.square(finite).sum()))
        std = float(finite.std())
    return dict(out, min=finite.min(), max=finite.max(), mean=finite.mean(), std=std, l2=l2)


def _check(s: tfckpt.TensorStats, arr, where: str) -> None:
    exp = _expected(arr)
    for f in ("count", "nan", "posinf", "neginf", "zeros"):
        assert getattr(s, f) == exp[f], (where, f, getattr(s, f), exp[f])
    for f in ("min", "max", "mean", "std", "l2"):
        got, want = getattr(s, f), exp[f]
        if want is None:
            assert got is None, (where, f, got)
        elif math.isinf(want):
            assert got == want, (where, f, got, want)
        else:
            scale = max(abs(exp["min"]), abs(exp["max"]))
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12 * (1 + scale)), (where, f)


def _numeric_cases(corpus):
    from tf_corpus import BUNDLE_KINDS

    for name, case in corpus.items():
        if case.kind in BUNDLE_KINDS or case.kind == "v1":
            yield name, case


def test_every_corpus_tensor_matches_numpy(corpus):
    checked_dtypes, checked_keys = set(), 0
    for name, case in _numeric_cases(corpus):
        with tfckpt.open(case.prefix) as reader:
            result = tfckpt.stats(reader)
            for key in reader.keys():
                e = reader.entry(key)
                if not has_moments(e.dtype_code):
                    assert key not in result
                    continue
                _check(result[key], reader.read(key), f"{name}:{key}")
                assert result[key].dtype == e.dtype_name
                assert result[key].shape == tuple(e.shape)
                checked_dtypes.add(e.dtype_name)
                checked_keys += 1
    numeric = {d.name for d in all_dtypes() if has_moments(d.code)}
    assert checked_dtypes == numeric, numeric - checked_dtypes
    assert checked_keys > 100


def test_partitioned_and_v1_tensors(corpus):
    for name in ("tf1_partitioned", "v1_format"):
        with tfckpt.open(corpus[name].prefix) as r:
            got = tfckpt.stats(r)
            partitioned = [k for k in r.keys() if r.entry(k).slices]
            assert got and (name == "v1_format" or partitioned)
            for key, s in got.items():
                _check(s, r.read(key), f"{name}:{key}")


def test_chunks_and_threads_do_not_change_the_result(corpus):
    with tfckpt.open(corpus["dtypes"].prefix) as r:
        keys = [k for k in r.keys() if has_moments(r.entry(k).dtype_code)]
        whole = checkpoint_moments(r, keys, workers=1)
        seen = []
        small = checkpoint_moments(r, keys, workers=3, chunk_bytes=4, progress=seen.append)
        assert sum(seen) == sum(r.stored_size(k) for k in keys)
    for k in keys:
        a, b = whole[k], small[k]
        assert a[:5] == b[:5] and a.finite == b.finite, k
        assert a.min == b.min and a.max == b.max, k
        # Sums in another order: equal to the rounding of the largest magnitudes.
        scale = 1e-12 * max(abs(a.min), abs(a.max), 1e-300)
        assert b.mean == pytest.approx(a.mean, rel=1e-12, abs=scale), k
        assert b.std == pytest.approx(a.std, rel=1e-9, abs=scale), k


def test_one_byte_layouts_match_ml_dtypes():
    """Every byte of every one-byte dtype decodes as ml_dtypes (and numpy) decode it, in
    both cores."""
    import tfckpt._pycore as twin

    for d in all_dtypes():
        if d.itemsize != 1 or not has_moments(d.code):
            continue
        bits = {"float4_e2m1fn": 4, "int4": 4, "uint4": 4, "int2": 2, "uint2": 2}.get(d.name, 8)
        raw = np.arange(1 << bits, dtype=np.uint8)
        values = raw.view(d.to_numpy())
        for i in range(1 << bits):
            want = float(bool(raw[i])) if d.kind == "bool" else float(values[i].astype(np.float64))
            for impl in (_CORE, twin):
                got = impl.tensor_stats(raw[i : i + 1], d.code, False)
                if math.isnan(want):
                    assert got[:5] == (1, 1, 0, 0, 0), (d.name, i, got)
                elif math.isinf(want):
                    assert got[2 if want > 0 else 3] == 1, (d.name, i, got)
                else:
                    assert got[5] == got[6] == got[7] == want, (d.name, i, got, want)
                    assert got[4] == (want == 0), (d.name, i, got)


def test_twin_and_byte_swapped_payloads_agree():
    import tfckpt._pycore as twin

    rng = np.random.default_rng(0)
    for name in (
        "float32",
        "float64",
        "float16",
        "bfloat16",
        "int16",
        "uint32",
        "int64",
        "complex64",
        "complex128",
        "qint32",
        "uint64",
        "int8",
        "float8_e5m2",
    ):
        d = by_name(name)
        x = rng.standard_normal(5000) * 100
        if d.kind == "complex":
            x = x * (1 + 1j)
        a = x.astype(d.to_numpy())
        if d.kind == "float":
            a[3], a[5], a[7] = np.nan, np.inf, -np.inf
        raw = a.view(np.uint8)
        native = _CORE.tensor_stats(raw, d.code, False)
        mirrored = twin.tensor_stats(raw, d.code, False)
        assert mirrored[:5] == native[:5], name
        if d.kind == "complex":  # |z|: numpy's hypot and the C library's may differ by an ulp
            assert mirrored[5:] == pytest.approx(native[5:], rel=1e-12), name
        else:
            assert mirrored[5:7] == native[5:7], name
            assert mirrored[7:] == pytest.approx(native[7:], rel=1e-12), name
        _check(
            tfckpt.TensorStats.from_moments(name, a.shape, payload_moments(raw, d.code)), a, name
        )
        if d.swap > 0:
            swapped = a.view(np.dtype(f"u{d.swap}")).byteswap().tobytes()
            assert _CORE.tensor_stats(swapped, d.code, True) == native, name
            assert twin.tensor_stats(swapped, d.code, True)[:5] == native[:5], name
            assert twin.tensor_stats(swapped, d.code, True)[5:] == pytest.approx(
                native[5:], rel=1e-12
            ), name


def test_the_kernel_refuses_what_it_cannot_summarize():
    import tfckpt._pycore as twin

    for impl in (_CORE, twin):
        for code in (7, 20, 21, 0, 99):
            with pytest.raises(tfckpt.InvalidArgumentError, match="no statistics"):
                impl.tensor_stats(b"\0" * 8, code)
        with pytest.raises(tfckpt.InvalidArgumentError, match="not a whole number of 4-byte"):
            impl.tensor_stats(b"\0" * 6, 1)
    assert merge([]) == tfckpt.moments.EMPTY


def _save_with_tensorflow(prefix, values):
    import tensorflow as tf

    tensors = []
    for v in values.values():
        if v.dtype == ml_dtypes.bfloat16:
            tensors.append(tf.constant(v.astype(np.float32), dtype=tf.bfloat16))
        else:
            tensors.append(tf.constant(v))
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=list(values),
        shape_and_slices=[""] * len(values),
        tensors=tensors,
    )


def test_special_values_written_by_tensorflow(tmp_path):
    prefix = str(tmp_path / "special")
    values = {
        "specials": np.array([1.5, np.nan, np.inf, -np.inf, -0.0, 0.0, -2.0], np.float32),
        "all_nan": np.full((3, 2), np.nan, np.float32),
        "all_inf": np.array([np.inf, -np.inf, np.inf], np.float64),
        "empty": np.zeros((0, 4), np.float32),
        "empty_int": np.zeros((2, 0), np.int32),
        "half_sum_overflows": np.full(10000, 60000.0, np.float16),
        "half_specials": np.array([np.nan, -np.inf, 65504, -0.0], np.float16),
        "float32_squares_overflow": np.array([3e38, -3e38, 2e38], np.float32),
        "bf16": np.array([1e38, np.nan, -3.0], ml_dtypes.bfloat16),
        "bools": np.array([True, False, True, True]),
        "float64_big": np.array([1e300, -1e300, 5e299]),
        "scalar": np.float32(-0.0),
        "complex": np.array([3 + 4j, np.nan + 1j, 0j], np.complex64),
    }
    _save_with_tensorflow(prefix, values)
    result = tfckpt.stats(prefix)
    assert list(result) == sorted(values)
    for key, v in values.items():
        _check(result[key], v, key)
    s = result["specials"]
    assert (s.nan, s.posinf, s.neginf, s.zeros, s.min, s.max) == (1, 1, 1, 2, -2.0, 1.5)
    assert s.mean == pytest.approx(-0.5 / 4) and s.count == 7
    assert result["all_nan"].to_dict() == {
        "dtype": "float32",
        "shape": [3, 2],
        "count": 6,
        "nan": 6,
        "posinf": 0,
        "neginf": 0,
        "zeros": 0,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "l2": None,
    }
    assert (result["all_inf"].posinf, result["all_inf"].neginf, result["all_inf"].l2) == (
        2,
        1,
        None,
    )
    assert result["empty"].count == 0 and result["empty"].l2 is None
    assert result["empty_int"].shape == (2, 0) and result["empty_int"].mean is None
    half = result["half_sum_overflows"]
    assert (half.mean, half.std, half.max) == (60000.0, 0.0, 60000.0)
    assert half.l2 == pytest.approx(60000.0 * 100)
    big = result["float32_squares_overflow"]
    assert big.l2 == pytest.approx(math.sqrt(9e76 + 9e76 + 4e76), rel=1e-6)
    assert big.mean == pytest.approx(2e38 / 3, rel=1e-6)
    assert result["bools"].mean == 0.75 and result["bools"].zeros == 1
    assert result["complex"].max == 5.0 and result["complex"].nan == 1
    assert result["scalar"].shape == () and result["scalar"].zeros == 1
    assert set(tfckpt.stats(prefix, match="^empty")) == {"empty", "empty_int"}


def test_damaged_bytes_are_an_error_not_statistics(tmp_path):
    prefix = str(tmp_path / "ckpt")
    _save_with_tensorflow(prefix, {"a": np.arange(100000, dtype=np.float32)})
    data = tmp_path / "ckpt.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[40000] ^= 0x40
    data.write_bytes(bytes(raw))
    with pytest.raises(tfckpt.ChecksumMismatchError) as info:
        tfckpt.stats(prefix)
    assert info.value.key == "a"
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["stats", prefix], out=out, err=err) == 1
    assert out.getvalue() == "" and "Checksum does not match" in err.getvalue()


def _diverging_run(tmp_path, steps=4, bad_from=3):
    """A TensorFlow run saved by a CheckpointManager at steps 1..`steps`: `w` doubles each
    step and holds one NaN from step `bad_from` on; `b` grows by one."""
    import tensorflow as tf

    run = tmp_path / "run"
    w = tf.Variable(np.ones((4, 3), np.float32))
    b = tf.Variable(np.zeros(3, np.float32))
    ckpt = tf.train.Checkpoint(w=w, b=b)
    manager = tf.train.CheckpointManager(ckpt, str(run), max_to_keep=None)
    for step in range(1, steps + 1):
        w.assign(w * 2.0)
        b.assign_add(tf.ones(3))
        if step >= bad_from:
            w.assign(tf.tensor_scatter_nd_update(w, [[0, 0]], [np.nan]))
        manager.save(checkpoint_number=step)
    return run


def test_first_nonfinite_and_the_stats_table(tmp_path):
    run = _diverging_run(tmp_path)
    out = io.StringIO()
    assert cli.run(["stats", str(run), "--first-nonfinite"], out=out) == 1
    assert out.getvalue() == (
        f"first non-finite: step 3, {run / 'ckpt-3'} (1 of 3 tensors hold NaN or Inf)\n"
        f"  {W}: 1 NaN, 0 +Inf, 0 -Inf of 12\n"
    )
    out = io.StringIO()
    assert cli.run(["stats", str(run), "--first-nonfinite", "--json"], out=out) == 1
    doc = json.loads(out.getvalue())
    assert doc["first_nonfinite"]["step"] == 3 and doc["checkpoints"] == 4
    assert list(doc["first_nonfinite"]["keys"]) == [W]
    assert doc["first_nonfinite"]["keys"][W]["nan"] == 1
    out = io.StringIO()
    assert (
        cli.run(["stats", str(run), "--first-nonfinite", "--json", "--match", "^b/"], out=out) == 0
    )
    assert json.loads(out.getvalue()) == {
        "checkpoints": 4,
        "first_nonfinite": None,
        "unreadable": {},
    }
    out = io.StringIO()
    assert cli.run(["stats", str(run), "--first-nonfinite", "--match", "^b/"], out=out) == 0
    assert out.getvalue() == f"{run}: no NaN or Inf in 4 checkpoint(s)\n"

    out = io.StringIO()
    assert cli.run(["stats", str(run / "ckpt-4")], out=out) == 1  # a NaN is found
    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        "key",
        "dtype",
        "shape",
        "min",
        "max",
        "mean",
        "std",
        "nan",
        "+inf",
        "-inf",
    ]
    assert lines[1].split() == [W, "float32", "[4,3]", "16", "16", "16", "0", "1", "0", "0"]
    assert lines[2].split()[:3] == [B, "float32", "[3]"]
    assert lines[-1] == "# 3 tensors; 1 with NaN or Inf"
    out = io.StringIO()
    assert cli.run(["stats", str(run / "ckpt-1"), "--json"], out=out) == 0
    doc = json.loads(out.getvalue())
    assert doc[W]["mean"] == 2.0 and doc[W]["l2"] == pytest.approx(math.sqrt(12 * 4))
    assert doc[B] == {
        "dtype": "float32",
        "shape": [3],
        "count": 3,
        "nan": 0,
        "posinf": 0,
        "neginf": 0,
        "zeros": 0,
        "min": 1.0,
        "max": 1.0,
        "mean": 1.0,
        "std": 0.0,
        "l2": pytest.approx(math.sqrt(3)),
    }
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["stats", str(run / "ckpt-1"), "--match", "("], out=out, err=err) == 2
    assert "--match" in err.getvalue()


def test_first_nonfinite_names_unreadable_checkpoints(tmp_path):
    run = _diverging_run(tmp_path, steps=3, bad_from=9)
    data = run / "ckpt-2.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    with tfckpt.open(run / "ckpt-2") as r:
        raw[r.entry(W).offset + 20] ^= 0x01
    data.write_bytes(bytes(raw))
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["stats", str(run), "--first-nonfinite"], out=out, err=err) == 1
    assert out.getvalue() == (f"{run}: no NaN or Inf in 2 checkpoint(s); 1 could not be read\n")
    assert f"{run / 'ckpt-2'}" in err.getvalue() and "Checksum" in err.getvalue()


def test_scan_stats_columns(tmp_path):
    run = _diverging_run(tmp_path)
    recs = [r for r in tfckpt.scan(str(run), stats=True) if r.record == "checkpoint"]
    by_step = {r.step: r for r in recs}
    assert [by_step[s].nonfinite for s in (1, 2, 3, 4)] == [0, 0, 1, 1]
    for step, rec in by_step.items():
        per_key = tfckpt.stats(str(run / f"ckpt-{step}"))
        assert rec.l2 == pytest.approx(math.sqrt(sum(s.l2**2 for s in per_key.values())))
    # step 1: w is 2 everywhere (12 values), b is 1 (3), save_counter 1
    assert by_step[1].l2 == pytest.approx(math.sqrt(12 * 4 + 3 + 1))
    assert all(r.nonfinite is None for r in tfckpt.scan(str(run)) if r.record == "checkpoint")
    out = io.StringIO()
    assert cli.run(["scan", str(run), "--stats", "--format", "jsonl"], out=out) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(r["nonfinite"] for r in rows if r["record"] == "checkpoint") == [0, 0, 1, 1]
    out = io.StringIO()
    assert cli.run(["scan", str(run), "--stats"], out=out) == 0
    table = out.getvalue().splitlines()
    assert table[0].split()[-3:] == ["NONFINITE", "L2", "LOCATION"]
    row = next(line for line in table if f"{run / 'ckpt-3'}  (" in line)
    assert row.split("  (")[0].split()[-3:] == ["1", f"{by_step[3].l2:.4g}", str(run / "ckpt-3")]
    out = io.StringIO()
    assert cli.run(["scan", str(run), "--format", "jsonl"], out=out) == 0
    assert "nonfinite" not in out.getvalue()
    err = io.StringIO()
    assert cli.run(["scan", str(run), "--stats", "--keys"], out=io.StringIO(), err=err) == 2
    assert "--stats" in err.getvalue()


def test_plot_writes_a_readable_png(tmp_path):
    import matplotlib.image

    run = _diverging_run(tmp_path, steps=5, bad_from=4)
    png, data = tmp_path / "norms.png", tmp_path / "norms.json"
    out = io.StringIO()
    assert cli.run(["plot", str(run), "-o", str(png), "--data", str(data)], out=out) == 0
    assert out.getvalue() == f"{png}: 3 line(s) over 5 checkpoint(s); NaN or Inf at step 4, 5\n"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(str(png))
    assert img.shape[0] >= 500 and img.shape[1] >= 800
    rgb = img[..., :3]
    assert (rgb < 0.5).mean() > 0.005  # lines, labels and ticks are drawn
    assert (rgb > 0.9).mean() > 0.5  # on white
    red = (rgb[..., 0] > 0.8) & (rgb[..., 1] < 0.3) & (rgb[..., 2] < 0.3)
    assert red.sum() > 100  # the non-finite steps are marked in red
    series = json.loads(data.read_text())
    assert series["steps"] == [1, 2, 3, 4, 5]
    assert series["nonfinite_steps"] == [4, 5]
    assert series["grouped"] is False
    assert sorted(series["lines"]) == [B, "save_counter/.ATTRIBUTES/VARIABLE_VALUE", W]
    for i, step in enumerate(series["steps"]):
        assert series["paths"][i] == str(run / f"ckpt-{step}")
        for key, s in tfckpt.stats(str(run / f"ckpt-{step}")).items():
            line = series["lines"][key]
            assert line["l2"][i] == s.l2 and line["max_abs"][i] == s.max_abs
            assert line["nonfinite"][i] == s.nonfinite


def test_plot_groups_many_tensors_and_needs_a_run(tmp_path):
    import tensorflow as tf

    run = tmp_path / "wide"
    layers = {f"layer{i}": tf.Variable(np.full(4, float(i + 1), np.float32)) for i in range(14)}
    ckpt = tf.train.Checkpoint(**{name: tf.Module() for name in ("enc", "dec")})
    for i, (name, v) in enumerate(layers.items()):
        setattr(getattr(ckpt, "enc" if i % 2 else "dec"), name, v)
    tf.train.CheckpointManager(ckpt, str(run), max_to_keep=None).save(checkpoint_number=7)
    data = tmp_path / "wide.json"
    out = io.StringIO()
    assert (
        cli.run(["plot", str(run), "-o", str(tmp_path / "w.png"), "--data", str(data)], out=out)
        == 0
    )
    series = json.loads(data.read_text())
    # the step is the save counter's (the first save), as tfckpt scan reads it
    assert series["grouped"] is True and series["steps"] == [1]
    assert sorted(series["lines"]) == ["dec", "enc", "save_counter"]
    enc = [float(i + 1) for i in range(14) if i % 2]
    assert series["lines"]["enc"]["l2"] == [pytest.approx(math.sqrt(4 * sum(x * x for x in enc)))]
    assert series["lines"]["enc"]["max_abs"] == [14.0]
    err = io.StringIO()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        cli.run(["plot", str(empty), "-o", str(tmp_path / "x.png")], out=io.StringIO(), err=err)
        == 2
    )
    assert err.getvalue() == f"tfckpt: {empty}: no checkpoint found\n"
    assert not (tmp_path / "x.png").exists()
