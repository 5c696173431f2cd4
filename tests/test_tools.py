"""diff, average, migrate, convert and the edit / average / migrate / diff / convert commands,
tested against TensorFlow 2.21 (what it restores, what it refuses, what it reads) and against
the reference ``safetensors`` package.

The subcommands are run in-process through ``tfckpt.cli.run(argv, out, err)``.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import shutil
import struct
import warnings

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tfckpt import cli, tools
from tfckpt.errors import CheckpointError, CorruptCheckpointError, InvalidArgumentError


@pytest.fixture(scope="module")
def tf():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    return tf


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.run([str(a) for a in argv], out, err)
    return code, out.getvalue(), err.getvalue()


def copy_checkpoint(prefix: str, dst_dir) -> str:
    """Copies the files of checkpoint `prefix` into `dst_dir`; returns the new prefix."""
    os.makedirs(dst_dir, exist_ok=True)
    base = os.path.basename(prefix)
    for name in os.listdir(os.path.dirname(prefix)):
        if name.startswith(base + ".index") or name.startswith(base + ".data-"):
            shutil.copy(os.path.join(os.path.dirname(prefix), name), dst_dir)
    return os.path.join(str(dst_dir), base)


def data_bytes(prefix: str, with_graph: bool = True) -> int:
    """Bytes of the tensors a checkpoint stores (partitioned ones: all their slices)."""
    with tfckpt.open(prefix) as r:
        return sum(r.stored_size(k) for k in r.keys() if with_graph or k != tfckpt.OBJECT_GRAPH_KEY)


def bits(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a)
    return a.reshape(-1).view(np.uint8).tobytes()


def listing(directory) -> list:
    return sorted(
        (p, os.path.getsize(os.path.join(d, p)))
        for d, _, files in os.walk(directory)
        for p in files
    )


KERNEL = "model/hidden/kernel/.ATTRIBUTES/VARIABLE_VALUE"


# =======================================================================================
# diff


def test_diff_identical_copies_are_equal(corpus, tmp_path):
    for case in ("module_nested", "sharded_policy", "tf1_partitioned", "strings", "data_iterator"):
        src = corpus[case].prefix
        dst = copy_checkpoint(src, tmp_path / case)
        d = tools.diff(src, dst)
        assert d.equal, d.describe()
        with tfckpt.open(src) as r:
            assert d.compared == len([k for k in r.keys() if k != tfckpt.OBJECT_GRAPH_KEY])
        code, out, err = run("diff", src, dst)
        assert (code, err) == (0, "")
        assert out == f"equal: {d.compared} tensors compared\n"


def test_diff_reports_the_one_value_edit_changed(corpus, tmp_path):
    src = corpus["tf2_optimizer_slots"].prefix
    with tfckpt.open(src) as r:
        k = np.array(r[KERNEL])
    new = k.copy()
    new[2, 1] = -k[2, 1]  # |a-b| = 2|a|, relative 2
    new[0, 0] = k[0, 0] + 0.25  # a small change
    out = str(tmp_path / "edited")
    tfckpt.edit(src, out, set={KERNEL: new})
    d = tools.diff(src, out)
    assert list(d.value_changes) == [KERNEL]
    assert not (d.only_a or d.only_b or d.dtype_changes or d.shape_changes)
    assert not d.object_graph_changed  # edit keeps the graph (compared as a message)
    c = d.value_changes[KERNEL]
    assert (c.count, c.total) == (2, 12)
    small = abs(float(new[0, 0]) - float(k[0, 0]))
    assert c.max_abs == max(2 * abs(float(k[2, 1])), small)
    assert c.max_rel == 2.0
    code, text, _ = run("diff", src, out)
    assert code == 1
    assert text.splitlines() == [
        f"value: {KERNEL}: 2 of 12 elements differ (max abs {c.max_abs:.6g}, max rel 2)",
        "different: 1 values differ (15 tensors compared)",
    ]
    code, text, _ = run("diff", "--json", src, out)
    doc = json.loads(text)
    assert code == 1 and doc["equal"] is False
    assert doc["value_changes"] == {
        KERNEL: {"count": 2, "total": 12, "max_abs": c.max_abs, "max_rel": 2.0}
    }
    # Within tolerance it is equal, but only for floats.
    assert tools.diff(src, out, atol=2 * abs(float(k[2, 1])) + 1e-9).equal
    code, text, _ = run("diff", "-q", "--atol", "100", src, out)
    assert (code, text) == (0, "")


def test_diff_reports_dtype_shape_and_key_changes(corpus, tmp_path):
    src = corpus["tf2_optimizer_slots"].prefix
    bias = "model/out/bias/.ATTRIBUTES/VARIABLE_VALUE"
    beta = "optimizer/beta1_power/.ATTRIBUTES/VARIABLE_VALUE"
    with tfckpt.open(src) as r:
        k = np.array(r[KERNEL])
    out = str(tmp_path / "changed")
    tfckpt.edit(
        src,
        out,
        set={KERNEL: k.astype(np.float64), bias: np.zeros(5, np.float32)},
        allow_dtype_change=True,
        allow_shape_change=True,
        drop=[beta],
        add={"model/extra/.ATTRIBUTES/VARIABLE_VALUE": np.ones(2, np.float32)},
    )
    d = tools.diff(src, out)
    assert d.only_a == [beta]
    assert d.only_b == ["model/extra/.ATTRIBUTES/VARIABLE_VALUE"]
    assert d.dtype_changes == {KERNEL: ("float32", "float64")}
    assert d.shape_changes == {bias: ((2,), (5,))}
    assert d.value_changes == {}
    assert d.object_graph_changed  # the drop and the add changed the graph
    code, text, _ = run("diff", src, out)
    assert code == 1
    lines = text.splitlines()
    assert lines[:4] == [
        f"only in A: {beta}",
        "only in B: model/extra/.ATTRIBUTES/VARIABLE_VALUE",
        f"dtype: {KERNEL}: float32 -> float64",
        f"shape: {bias}: [2] -> [5]",
    ]
    assert lines[-1].startswith(
        "different: 1 only in A, 1 only in B, 1 dtype changed, "
        "1 shape changed, object graph differs"
    )


def test_diff_floats_nan_ints_strings_and_partitions(tmp_path, monkeypatch):
    x = np.array([[1.0, np.nan, -0.0], [np.inf, 5.0, 1e-30]], np.float32)
    base = {
        "f": x,
        "i": np.array([1, 2, 3], np.int64),
        "s": np.array([b"a", b"b"], object),
        "b": np.array([True, False]),
        "h": x.astype(ml_dtypes.bfloat16),
        "c": np.array([1 + 2j, np.nan + 1j], np.complex64),
    }
    a = tfckpt.write(str(tmp_path / "a"), base)
    same = dict(base, f=np.array([[1.0, np.nan, 0.0], [np.inf, 5.0, 1e-30]], np.float32))
    assert tools.diff(a, tfckpt.write(str(tmp_path / "same"), same)).equal  # -0 == 0, NaN == NaN
    other = {
        "f": np.array([[1.0, 1.0, 0.0], [-np.inf, 5.0000005, 1e-30]], np.float32),
        "i": np.array([1, 2, 4], np.int64),
        "s": np.array([b"a", b"c"], object),
        "b": np.array([True, True]),
        "h": base["h"],
        "c": base["c"],
    }
    d = tools.diff(a, tfckpt.write(str(tmp_path / "other"), other))
    f = d.value_changes["f"]
    assert (f.count, f.total) == (3, 6)
    assert np.isnan(f.max_abs) and np.isnan(f.max_rel)  # NaN against a number
    assert (d.value_changes["i"].count, d.value_changes["i"].max_abs) == (1, 1.0)
    assert d.value_changes["i"].max_rel == 0.25
    assert (d.value_changes["s"].count, d.value_changes["s"].max_abs) == (1, None)
    assert (d.value_changes["b"].count, d.value_changes["b"].max_abs) == (1, 1.0)
    assert set(d.value_changes) == {"f", "i", "s", "b"}
    # Tolerances loosen floats only; inf against -inf is never close.
    loose = tools.diff(a, str(tmp_path / "other"), rtol=1e-3, atol=1e-3)
    assert loose.value_changes["f"].count == 2
    assert loose.value_changes["i"].count == 1
    # A partitioned tensor equals the same values stored whole, whatever the slicing; the
    # comparison runs in chunks along axis 0.
    monkeypatch.setattr(tools._common, "CHUNK_ELEMENTS", 4)
    big = np.arange(35, dtype=np.float32).reshape(7, 5)
    whole = tfckpt.write(str(tmp_path / "whole"), {"e": big})
    with tfckpt.Writer(str(tmp_path / "parts")) as w:
        w.add_slice("e", (7, 5), np.s_[0:3], big[0:3])
        w.add_slice("e", (7, 5), np.s_[3:7], big[3:7])
    assert tools.diff(whole, str(tmp_path / "parts")).equal
    changed = big.copy()
    changed[[0, 4, 6], [1, 2, 4]] += 1000
    with tfckpt.Writer(str(tmp_path / "parts2")) as w:
        w.add_slice("e", (7, 5), "0,2:-", changed[0:2])
        w.add_slice("e", (7, 5), "2,5:-", changed[2:7])
    c = tools.diff(whole, str(tmp_path / "parts2")).value_changes["e"]
    assert (c.count, c.total, c.max_abs) == (3, 35, 1000.0)
    assert c.max_rel == 1000 / 1001


def _module(tf, **variables):
    m = tf.Module()
    for name, value in variables.items():
        setattr(m, name, tf.Variable(value))
    return m


def test_diff_names_the_keys_behind_key_not_found(tf, tmp_path):
    """A variable renamed in the model: TensorFlow's restore does not consume the old key;
    diff against a fresh save of the new model names exactly the unmatched keys."""
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    old = tf.train.Checkpoint(model=_module(tf, dense_kernel=w, bias=np.zeros(2, np.float32)))
    old_prefix = old.write(str(tmp_path / "old" / "ckpt"))
    new_model = _module(tf, kernel=np.zeros((3, 2), np.float32), bias=np.ones(2, np.float32))
    # TensorFlow names the unbound Python variable, not the key it looked for.
    with pytest.raises(AssertionError, match="not bound to checkpointed values"):
        tf.train.Checkpoint(model=new_model).read(old_prefix).assert_consumed()
    fresh = tf.train.Checkpoint(model=new_model).write(str(tmp_path / "fresh" / "ckpt"))
    d = tools.diff(old_prefix, fresh)
    assert d.only_a == ["model/dense_kernel/.ATTRIBUTES/VARIABLE_VALUE"]
    assert d.only_b == ["model/kernel/.ATTRIBUTES/VARIABLE_VALUE"]
    assert not d.shape_changes and not d.dtype_changes
    code, out, _ = run("diff", old_prefix, fresh)
    assert code == 1
    assert out.splitlines()[:2] == [
        "only in A: model/dense_kernel/.ATTRIBUTES/VARIABLE_VALUE",
        "only in B: model/kernel/.ATTRIBUTES/VARIABLE_VALUE",
    ]


def test_diff_names_the_key_behind_a_shape_mismatch(tf, tmp_path):
    old = tf.train.Checkpoint(model=_module(tf, kernel=np.ones((3, 2), np.float32)))
    old_prefix = old.write(str(tmp_path / "old" / "ckpt"))
    new_model = _module(tf, kernel=np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*shape \(4, 2\)"):
        tf.train.Checkpoint(model=new_model).read(old_prefix)
    fresh = tf.train.Checkpoint(model=new_model).write(str(tmp_path / "fresh" / "ckpt"))
    d = tools.diff(old_prefix, fresh)
    key = "model/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    assert d.shape_changes == {key: ((3, 2), (4, 2))}
    assert not (d.only_a or d.only_b or d.value_changes or d.dtype_changes)
    code, out, _ = run("diff", old_prefix, fresh)
    assert code == 1 and out.splitlines()[0] == f"shape: {key}: [3,2] -> [4,2]"


def test_diff_command_trouble_is_exit_2(corpus, tmp_path):
    code, out, err = run("diff", corpus["strings"].prefix, str(tmp_path / "missing"))
    assert code == 2 and out == "" and err.startswith("tfckpt: ")
    damaged = copy_checkpoint(corpus["tf2_optimizer_slots"].prefix, tmp_path / "bad")
    data = pathlib.Path(damaged + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    code, out, err = run("diff", corpus["tf2_optimizer_slots"].prefix, damaged)
    assert code == 2 and "Checksum does not match" in err
    code, _, err = run("diff", "only-one-argument")
    assert code == 2


def test_diff_trouble_is_exit_2_in_every_output_mode(corpus, tmp_path):
    """diff(1)'s convention: trouble (a missing side, a damaged tensor, a file that is no
    checkpoint) is 2 in the text, --json and -q modes alike, never 1 ("different"), with
    nothing on stdout and the error on stderr."""
    good = corpus["tf2_optimizer_slots"].prefix
    damaged = copy_checkpoint(good, tmp_path / "bad")
    with tfckpt.open(damaged) as r:
        e = r.entry(KERNEL)
    data = pathlib.Path(damaged + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[e.offset] ^= 0x01
    data.write_bytes(bytes(raw))
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a checkpoint\n")
    cases = [
        (str(tmp_path / "missing"), "No checkpoint at"),
        (damaged, "Checksum does not match: stored"),
        (str(text_file), "is not a checkpoint"),
    ]
    for other, words in cases:
        for mode in ([], ["--json"], ["-q"]):
            for a, b in ((good, other), (other, good)):
                code, out, err = run("diff", *mode, a, b)
                assert (code, out) == (2, ""), (mode, other, code, out)
                assert err.startswith("tfckpt: ") and err.count("\n") == 1, err
                assert words in err, err
    # and the damaged key is named
    assert KERNEL in run("diff", good, damaged)[2]
    # the same pair without damage differs by nothing: 0; a real difference: 1
    assert run("diff", "-q", good, copy_checkpoint(good, tmp_path / "copy"))[0] == 0


# =======================================================================================
# average


def test_average_is_numpy_float64_mean_and_restores_in_tf(tf, tmp_path):
    rs = np.random.RandomState(7)
    values = []
    m = tf.Module()
    m.w = tf.Variable(np.zeros((5, 3), np.float32))
    m.h = tf.Variable(np.zeros(4, np.float16))
    m.bf = tf.Variable(np.zeros(3, ml_dtypes.bfloat16))
    m.d = tf.Variable(np.zeros(2, np.float64))
    m.c = tf.Variable(np.zeros(2, np.complex64))
    m.step = tf.Variable(np.int64(0))
    m.tag = tf.Variable(b"run-0")
    ckpt = tf.train.Checkpoint(model=m)
    prefixes = []
    for i in range(3):
        v = {
            "w": rs.randn(5, 3).astype(np.float32),
            "h": rs.randn(4).astype(np.float16),
            "bf": rs.randn(3).astype(ml_dtypes.bfloat16),
            "d": rs.randn(2),
            "c": (rs.randn(2) + 1j * rs.randn(2)).astype(np.complex64),
        }
        for k, x in v.items():
            getattr(m, k).assign(x)
        m.step.assign(100 * (i + 1))
        m.tag.assign(b"run-%d" % i)
        values.append(v)
        prefixes.append(ckpt.save(str(tmp_path / "run" / "ckpt")))
    out = tools.average(prefixes, str(tmp_path / "avg" / "ckpt-3"))
    expected = {}
    for k in values[0]:
        stack = np.stack([v[k] for v in values])
        acc = np.complex128 if stack.dtype.kind == "c" else np.float64
        expected[k] = np.mean(stack.astype(acc), axis=0).astype(stack.dtype)
    with tfckpt.open(out) as r:
        for k, want in expected.items():
            got = r[f"model/{k}/.ATTRIBUTES/VARIABLE_VALUE"]
            assert got.dtype == want.dtype and bits(got) == bits(want), k
        assert r["model/step/.ATTRIBUTES/VARIABLE_VALUE"] == 300  # ints from the last
        assert r["model/tag/.ATTRIBUTES/VARIABLE_VALUE"] == b"run-2"
        assert r["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] == 3
        with tfckpt.open(prefixes[-1]) as last:
            assert r.raw_entry(tfckpt.OBJECT_GRAPH_KEY) == last.raw_entry(tfckpt.OBJECT_GRAPH_KEY)
    fresh = tf.Module()
    for k, x in values[0].items():
        setattr(fresh, k, tf.Variable(np.zeros_like(x)))
    fresh.step = tf.Variable(np.int64(0))
    fresh.tag = tf.Variable(b"")
    tf.train.Checkpoint(model=fresh).restore(out).assert_consumed()
    for k, want in expected.items():
        assert bits(getattr(fresh, k).numpy()) == bits(want), k
    assert fresh.step.numpy() == 300 and fresh.tag.numpy() == b"run-2"
    code, text, _ = run("average", *prefixes, "-o", tmp_path / "avg2" / "ckpt")
    assert code == 0 and "mean of 3 checkpoints" in text
    assert tools.diff(out, str(tmp_path / "avg2" / "ckpt")).equal


def test_average_partitioned_keeps_the_last_slicing(tf, tmp_path):
    vals = [np.arange(15, dtype=np.float32).reshape(5, 3) * (i + 1) + 0.1 for i in range(3)]
    a = tfckpt.write(str(tmp_path / "a"), {"emb": vals[0], "n": np.int32(1)})
    with tfckpt.Writer(str(tmp_path / "b")) as w:
        w.add_slice("emb", (5, 3), np.s_[0:2], vals[1][0:2])
        w.add_slice("emb", (5, 3), np.s_[2:5], vals[1][2:5])
        w.add("n", np.int32(2))
    with tfckpt.Writer(str(tmp_path / "c")) as w:
        w.add_slice("emb", (5, 3), "0,4:-", vals[2][0:4])
        w.add_slice("emb", (5, 3), "4,1:-", vals[2][4:5])
        w.add("n", np.int32(3))
    out = tools.average([a, str(tmp_path / "b"), str(tmp_path / "c")], str(tmp_path / "avg"))
    want = np.mean(np.stack(vals).astype(np.float64), axis=0).astype(np.float32)
    with tfckpt.open(out) as r, tfckpt.open(str(tmp_path / "c")) as c:
        assert r.entry("emb").slices == c.entry("emb").slices
        assert bits(r["emb"]) == bits(want)
        assert r["n"] == 3
    assert bits(tf.train.load_checkpoint(out).get_tensor("emb")) == bits(want)


def test_average_refuses_checkpoints_of_different_models(tmp_path):
    a = tfckpt.write(str(tmp_path / "a"), {"w": np.zeros(3, np.float32), "x": np.zeros(1)})
    b = tfckpt.write(str(tmp_path / "b"), {"w": np.zeros(3, np.float32)})
    with pytest.raises(InvalidArgumentError, match=r"lacks key x"):
        tools.average([b, a], str(tmp_path / "o1"))
    c = tfckpt.write(str(tmp_path / "c"), {"w": np.zeros(4, np.float32), "x": np.zeros(1)})
    with pytest.raises(InvalidArgumentError, match=r"key w is float32\[3\] .* float32\[4\]"):
        tools.average([a, c], str(tmp_path / "o2"))
    assert not os.path.exists(str(tmp_path / "o2.index"))
    code, _, err = run("average", a, c, "-o", tmp_path / "o3")
    assert code == 2 and "key w" in err
    code, _, err = run("average", a, "-o", tmp_path / "o4")
    assert code == 2 and "at least two" in err


# =======================================================================================
# migrate


@pytest.fixture(scope="module")
def tf1_dense_checkpoint(tf, tmp_path_factory):
    """A TF1 graph-mode checkpoint: dense/kernel, dense/bias, global_step, Adam slots."""
    d = tmp_path_factory.mktemp("tf1_dense")
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        rs = np.random.RandomState(3)
        x = tf.constant(rs.randn(4, 3).astype(np.float32))
        with v1.variable_scope("dense"):
            kernel = v1.get_variable("kernel", initializer=rs.randn(3, 2).astype(np.float32))
            bias = v1.get_variable("bias", initializer=np.array([0.5, -0.5], np.float32))
        gs = v1.train.get_or_create_global_step()
        loss = tf.reduce_sum(tf.square(tf.matmul(x, kernel) + bias))
        train = v1.train.AdamOptimizer(0.1).minimize(loss, global_step=gs)
        saver = v1.train.Saver()
        with v1.Session(graph=g) as s:
            s.run(v1.global_variables_initializer())
            s.run(train)
            prefix = saver.save(s, str(d / "model.ckpt"), global_step=gs)
    return prefix


class _NewDense:
    """The TF2 model: a tf.Module whose variables carry the TF1 names."""

    @staticmethod
    def build(tf, extra=False):
        m = tf.Module()
        m.kernel = tf.Variable(np.zeros((3, 2), np.float32), name="dense/kernel")
        m.bias = tf.Variable(np.zeros(2, np.float32), name="dense/bias")
        m.step = tf.Variable(np.int64(0), name="global_step")
        if extra:
            m.scale = tf.Variable(np.full(2, 7.0, np.float32), name="scale")
        return m


def test_migrate_tf1_name_based_checkpoint_restores_in_tf2(tf, tf1_dense_checkpoint, tmp_path):
    old = tf1_dense_checkpoint
    with tfckpt.open(old) as r:
        assert r.object_graph is None
        assert "dense/kernel/Adam" in r
    like = tf.train.Checkpoint(model=_NewDense.build(tf)).write(str(tmp_path / "like" / "c"))
    out = str(tmp_path / "migrated" / "ckpt-1")
    rep = tools.migrate(old, like, out)
    assert rep.mapped == {
        "model/kernel/.ATTRIBUTES/VARIABLE_VALUE": "dense/kernel",
        "model/bias/.ATTRIBUTES/VARIABLE_VALUE": "dense/bias",
        "model/step/.ATTRIBUTES/VARIABLE_VALUE": "global_step",
    }
    assert rep.unmapped_old == [
        "beta1_power",
        "beta2_power",
        "dense/bias/Adam",
        "dense/bias/Adam_1",
        "dense/kernel/Adam",
        "dense/kernel/Adam_1",
    ]
    assert rep.unfilled == [] and rep.mismatched == {} and not rep.complete
    model = _NewDense.build(tf)
    tf.train.Checkpoint(model=model).read(out).assert_consumed()
    reader = tf.train.load_checkpoint(old)
    assert bits(model.kernel.numpy()) == bits(reader.get_tensor("dense/kernel"))
    assert bits(model.bias.numpy()) == bits(reader.get_tensor("dense/bias"))
    assert model.step.numpy() == reader.get_tensor("global_step") == 1
    # Bytes were copied, not re-encoded.
    with tfckpt.open(out) as r, tfckpt.open(old) as o:
        for new, src in rep.mapped.items():
            assert r.entry(new).crc32c == o.entry(src).crc32c
    with pytest.raises(InvalidArgumentError, match="unmapped old dense/kernel/Adam"):
        tools.migrate(old, like, str(tmp_path / "strict"), strict=True)
    assert not os.path.exists(str(tmp_path / "strict.index"))


def test_migrate_fills_or_leaves_out_new_variables(tf, tf1_dense_checkpoint, tmp_path):
    old = tf1_dense_checkpoint
    like = tf.train.Checkpoint(model=_NewDense.build(tf, extra=True)).save(
        str(tmp_path / "like" / "c")
    )
    scale = "model/scale/.ATTRIBUTES/VARIABLE_VALUE"
    filled = tools.migrate(old, like, str(tmp_path / "filled"))
    assert filled.unfilled == [scale, "save_counter/.ATTRIBUTES/VARIABLE_VALUE"]
    model = _NewDense.build(tf, extra=True)
    model.scale.assign(np.zeros(2, np.float32))
    tf.train.Checkpoint(model=model).restore(str(tmp_path / "filled")).assert_consumed()
    assert model.scale.numpy().tolist() == [7.0, 7.0]  # like's value
    code, text, _ = run(
        "migrate", old, "--like", like, "-o", tmp_path / "left", "--no-fill", "--json"
    )
    assert code == 0
    doc = json.loads(text)
    assert doc["unfilled"] == filled.unfilled and doc["filled_from_like"] is False
    with tfckpt.open(str(tmp_path / "left")) as r:
        assert scale not in r
        assert all(scale not in v["key"] for v in r.object_graph.variables())
    model = _NewDense.build(tf, extra=True)
    model.scale.assign(np.full(2, 3.0, np.float32))
    status = tf.train.Checkpoint(model=model).restore(str(tmp_path / "left"))
    with pytest.raises(AssertionError):
        status.assert_existing_objects_matched()  # scale has no value: as it should
    assert model.scale.numpy().tolist() == [3.0, 3.0]
    assert bits(model.kernel.numpy()) == bits(
        tf.train.load_checkpoint(old).get_tensor("dense/kernel")
    )


def test_migrate_partitioned_tf1_variables_and_name_map(tf, corpus, oracles, tmp_path):
    case = corpus["tf1_partitioned"]
    m = tf.Module()
    m.pv2 = tf.Variable(np.zeros((6, 3), np.float32), name="pv2")
    m.pv3 = tf.Variable(np.zeros((7, 4), np.float32), name="scope/pv3")
    m.w = tf.Variable(np.zeros((3, 4), np.float32), name="weights")  # renamed: name_map
    m.b = tf.Variable(np.zeros(4, np.float32), name="b")
    m.ints = tf.Variable(np.zeros(5, np.int32), name="ints")
    like = tf.train.Checkpoint(model=m).write(str(tmp_path / "like" / "c"))
    out = str(tmp_path / "out")
    rep = tools.migrate(
        case.prefix, like, out, name_map={"w": "model/w"}
    )  # an object path or a key
    assert rep.mapped["model/w/.ATTRIBUTES/VARIABLE_VALUE"] == "w"
    assert rep.mapped["model/pv3/.ATTRIBUTES/VARIABLE_VALUE"] == "scope/pv3"
    assert rep.unfilled == []
    assert "global_step" in rep.unmapped_old and "pv2/Adam" in rep.unmapped_old
    with tfckpt.open(out) as r:  # copied as slices, not assembled
        assert len(r.entry("model/pv3/.ATTRIBUTES/VARIABLE_VALUE").slices) == 3
    fresh = tf.Module()
    for k in ("pv2", "pv3", "w", "b", "ints"):
        setattr(fresh, k, tf.Variable(np.zeros_like(getattr(m, k).numpy())))
    tf.train.Checkpoint(model=fresh).read(out).assert_consumed()
    truth = oracles["tf1_partitioned"]["values"]
    for k, old in (("pv2", "pv2"), ("pv3", "scope/pv3"), ("w", "w"), ("b", "b"), ("ints", "ints")):
        assert bits(getattr(fresh, k).numpy()) == bits(truth[old]), k


def _keras3_dense(name="sequential", layer="dense", use_bias=True):
    import keras

    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, name=layer, use_bias=use_bias)], name=name
    )


def test_migrate_into_keras3_matches_the_scope_keras_adds(tf, tf1_dense_checkpoint, tmp_path):
    """Keras 3 records ``net/dense/kernel`` where TF1 saved ``dense/kernel``: matched by
    suffix; TensorFlow restores the result into the Keras model."""
    old = tf1_dense_checkpoint
    like = tf.train.Checkpoint(model=_keras3_dense("net")).write(str(tmp_path / "like" / "c"))
    out = str(tmp_path / "out")
    code, text, err = run("migrate", old, "--like", like, "-o", out)
    assert (code, err) == (0, "")
    rep = tools.migrate(old, like, str(tmp_path / "again"))
    assert sorted(rep.mapped.values()) == ["dense/bias", "dense/kernel"]
    assert rep.lost == [] and rep.succeeded
    assert "global_step" in rep.unmapped_old and "dense/kernel/Adam" in rep.unmapped_old
    model = _keras3_dense("net")
    tf.train.Checkpoint(model=model).read(out).assert_existing_objects_matched()
    reader = tf.train.load_checkpoint(old)
    assert bits(model.layers[0].kernel.numpy()) == bits(reader.get_tensor("dense/kernel"))
    assert bits(model.layers[0].bias.numpy()) == bits(reader.get_tensor("dense/bias"))


def test_migrate_that_maps_nothing_or_loses_values_fails(tf, tf1_dense_checkpoint, tmp_path):
    old = tf1_dense_checkpoint
    like = tf.train.Checkpoint(model=_keras3_dense("net", "head")).write(
        str(tmp_path / "like" / "c")
    )
    out = str(tmp_path / "out")
    code, text, err = run("migrate", old, "--like", like, "-o", out)
    assert (code, err) == (1, "")
    assert text.splitlines()[0] == (
        "FAILED: no old value was mapped to a new key; nothing "
        "was written (use --map REGEX=REPLACEMENT)"
    )
    assert not os.path.exists(out + ".index")
    assert (
        json.loads(run("migrate", old, "--like", like, "-o", out, "--json")[1])["succeeded"]
        is False
    )
    # --map REGEX=REPLACEMENT names the new variables.
    code, text, err = run(
        "migrate", old, "--like", like, "-o", out, "--map", r"^dense/(kernel|bias)$=net/head/\1"
    )
    assert (code, err) == (0, ""), text
    assert text.splitlines()[-1].startswith("# 2 mapped")
    model = _keras3_dense("net", "head")
    tf.train.Checkpoint(model=model).read(out).assert_existing_objects_matched()
    assert bits(model.layers[0].bias.numpy()) == bits(
        tf.train.load_checkpoint(old).get_tensor("dense/bias")
    )
    code, _, err = run("migrate", old, "--like", like, "-o", out, "--map", "^nope/=x")
    assert code == 2 and err == (f"tfckpt: --map ^nope/=x: the pattern matches no key of {old}\n")
    # A model value left behind (the new model has no bias): exit 1, the report leads with it.
    like = tf.train.Checkpoint(model=_keras3_dense("net", use_bias=False)).write(
        str(tmp_path / "like2" / "c")
    )
    code, text, err = run("migrate", old, "--like", like, "-o", tmp_path / "o2")
    assert (code, err) == (1, "")
    assert text.splitlines()[:2] == [
        "FAILED: 1 old model values were not mapped and would be lost (use --map "
        "REGEX=REPLACEMENT):",
        "lost    dense/bias",
    ]


def test_migrate_reports_mismatch_and_ambiguous_names(tf, tf1_dense_checkpoint, tmp_path):
    m = tf.Module()
    m.kernel = tf.Variable(np.zeros((2, 2), np.float32), name="dense/kernel")  # wrong shape
    m.a = tf.Variable(np.zeros(2, np.float32), name="dense/bias")
    m.b = tf.Variable(np.zeros(2, np.float32), name="dense/bias")  # the name twice
    like = tf.train.Checkpoint(model=m).write(str(tmp_path / "like" / "c"))
    rep = tools.migrate(tf1_dense_checkpoint, like, str(tmp_path / "o"), dry_run=True)
    assert list(rep.mismatched) == ["model/kernel/.ATTRIBUTES/VARIABLE_VALUE"]
    assert "float32[3,2]" in rep.mismatched["model/kernel/.ATTRIBUTES/VARIABLE_VALUE"]
    assert rep.ambiguous == {
        "dense/bias": ["model/a/.ATTRIBUTES/VARIABLE_VALUE", "model/b/.ATTRIBUTES/VARIABLE_VALUE"]
    }
    assert not os.path.exists(str(tmp_path / "o.index"))
    with pytest.raises(InvalidArgumentError, match="must be an object-based"):
        tools.migrate(like, tf1_dense_checkpoint, str(tmp_path / "x"))


# =======================================================================================
# conversion


def _tf_values(tf, prefix):
    reader = tf.train.load_checkpoint(prefix)
    out = {}
    for k in reader.get_variable_to_shape_map():
        try:
            out[k] = reader.get_tensor(k)
        except Exception:
            pass
    return out


def _same_value(a, b) -> bool:
    if isinstance(a, bytes) or getattr(a, "dtype", None) == np.dtype(object):
        return np.array_equal(np.asarray(a, object), np.asarray(b, object))
    return np.asarray(a).dtype == np.asarray(b).dtype and bits(np.asarray(a)) == bits(np.asarray(b))


def test_npz_round_trip_is_bit_exact_for_every_dtype(tf, corpus, oracles, tmp_path):
    src = corpus["dtypes"].prefix
    npz = str(tmp_path / "d.npz")
    rep = tools.to_npz(src, npz)
    assert rep.skipped == {}
    with np.load(npz, allow_pickle=False) as z:  # no pickles needed
        assert z["dt/float32"].dtype == np.float32
        assert z["dt/bfloat16"].dtype == np.uint16  # numpy has no bfloat16
        assert z["dt/string"].dtype.kind == "S"
        manifest = json.loads(z["__tfckpt__"].item())
        assert manifest["dtypes"]["dt/bfloat16"] == "bfloat16"
        assert manifest["dtypes"]["dt/qint8"] == "qint8"
        with tfckpt.open(src) as r:
            assert bits(z["dt/bfloat16"].view(ml_dtypes.bfloat16)) == bits(r["dt/bfloat16"])
    back = str(tmp_path / "back")
    tools.from_npz(npz, back)
    assert tools.diff(src, back).equal
    with tfckpt.open(src) as a, tfckpt.open(back) as b:
        assert [(k, a.entry(k).dtype_name, a.entry(k).shape) for k in a.keys()] == [
            (k, b.entry(k).dtype_name, b.entry(k).shape) for k in b.keys()
        ]
    truth = oracles["dtypes"]["values"]
    got = _tf_values(tf, back)
    assert set(got) == set(truth)
    for k in truth:
        assert _same_value(got[k], truth[k]), k


def test_npz_strings_keep_trailing_nul_bytes(corpus, tmp_path):
    src = corpus["strings"].prefix
    npz = str(tmp_path / "s.npz")
    tools.to_npz(src, npz)
    with np.load(npz, allow_pickle=False) as z:
        assert z["str/binary"].dtype.kind == "S"
        assert "__tfckpt__/lengths/str/binary" in z.files  # b"\x00" would read back as b""
        assert "__tfckpt__/lengths/str/unicode" not in z.files
    tools.from_npz(npz, str(tmp_path / "back"))
    assert tools.diff(src, str(tmp_path / "back")).equal


def test_npz_object_graph_variants_and_plain_numpy_files(tf, corpus, tmp_path):
    it = corpus["data_iterator"].prefix
    with pytest.raises(InvalidArgumentError, match="it/.ATTRIBUTES/ITERATOR_STATE: dtype variant"):
        tools.to_npz(it, str(tmp_path / "it.npz"))
    assert not os.path.exists(str(tmp_path / "it.npz"))
    rep = tools.to_npz(it, str(tmp_path / "it.npz"), skip_unsupported=True)
    assert list(rep.skipped) == ["it/.ATTRIBUTES/ITERATOR_STATE"]
    assert rep.written == ["save_counter/.ATTRIBUTES/VARIABLE_VALUE"]
    # With the object graph stored, the round trip gives the same checkpoint back.
    src = corpus["module_nested"].prefix
    tools.to_npz(src, str(tmp_path / "m.npz"), object_graph=True)
    tools.from_npz(str(tmp_path / "m.npz"), str(tmp_path / "m"))
    assert tools.diff(src, str(tmp_path / "m")).equal
    # A user's np.savez of path-like names becomes an object-based checkpoint TF restores.
    kernel = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.savez(
        str(tmp_path / "user.npz"),
        **{
            "model/dense/kernel": kernel,
            "model/dense/bias": np.ones(2, np.float32),
            "model/vocab": np.array(["a", "bé"]),
            "model/steps": np.int64(5),
        },
    )
    out = str(tmp_path / "user")
    tools.from_npz(str(tmp_path / "user.npz"), out, object_graph=True)
    model = tf.Module()
    model.dense = tf.Module()
    model.dense.kernel = tf.Variable(np.zeros((3, 2), np.float32))
    model.dense.bias = tf.Variable(np.zeros(2, np.float32))
    model.vocab = tf.Variable(["", ""])
    model.steps = tf.Variable(np.int64(0))
    tf.train.Checkpoint(model=model).read(out).assert_consumed()
    assert bits(model.dense.kernel.numpy()) == bits(kernel)
    assert model.vocab.numpy().tolist() == [b"a", "bé".encode()]
    assert model.steps.numpy() == 5
    np.savez(str(tmp_path / "obj.npz"), ok=np.ones(2), bad=np.array([{}], dtype=object))
    with pytest.raises(InvalidArgumentError, match="bad: numpy dtype object"):
        tools.from_npz(str(tmp_path / "obj.npz"), str(tmp_path / "obj"))
    rep = tools.from_npz(str(tmp_path / "obj.npz"), str(tmp_path / "obj"), skip_unsupported=True)
    assert list(rep.skipped) == ["bad"] and rep.written == ["ok"]


def test_npz_names_in_key_form_keep_their_slots(tf, tmp_path):
    """Names already in key form are parsed (tfckpt.keys), not taken as paths: a slot key
    becomes a slot variable of its optimizer in the object graph built for them."""
    from tfckpt.keys import parse_slot_key

    value = "model/w/.ATTRIBUTES/VARIABLE_VALUE"
    slot = "model/w/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"
    assert parse_slot_key(slot) == ("model/w", "optimizer", "m", "VARIABLE_VALUE")
    assert parse_slot_key(value) is None
    np.savez(
        str(tmp_path / "k.npz"),
        **{value: np.arange(2, dtype=np.float32), slot: np.full(2, 7, np.float32)},
    )
    out = str(tmp_path / "k")
    tools.from_npz(str(tmp_path / "k.npz"), out, object_graph=True)
    with tfckpt.open(out) as r:
        assert r.keys() == [tfckpt.OBJECT_GRAPH_KEY, value, slot]
        graph = r.object_graph
        (optimizer,) = [n for n in graph.nodes if n.slot_variables]
        (link,) = optimizer.slot_variables
        assert optimizer.path == "optimizer" and link.slot_name == "m"
        assert graph.nodes[link.original_node_id].path == "model/w"
        assert graph.nodes[link.slot_node_id].keys == [slot]
    model = tf.Module()
    model.w = tf.Variable(np.zeros(2, np.float32))
    tf.train.Checkpoint(model=model).read(out).assert_existing_objects_matched()
    assert model.w.numpy().tolist() == [0.0, 1.0]
    assert sorted(n for n, _ in tf.train.list_variables(out)) == sorted(r.keys())


SAFETENSORS_UNSUPPORTED = ("complex128", "float4_e2m1fn", "float8_e4m3b11fnuz", "string")


def test_safetensors_file_is_the_reference_writers_byte_for_byte(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    rs = np.random.RandomState(1)
    tensors = {
        "b.weight": rs.randn(3, 5).astype(np.float32),
        "a": rs.randn(7),
        "mask": np.array([True, False, True]),
        "ids": np.arange(5, dtype=np.int64),
        "h": rs.randn(2, 2).astype(np.float16),
        "u": np.arange(3, dtype=np.uint8),
        "c": np.array([1 + 2j], np.complex64),
        "scalar": np.array(2.5, np.float32),
        "empty": np.zeros((0, 4), np.int16),
        "é/ü": np.ones(1, np.uint32),
    }
    prefix = tfckpt.write(str(tmp_path / "ck"), tensors)
    mine = str(tmp_path / "mine.safetensors")
    tools.to_safetensors(prefix, mine)
    st.save_file(tensors, str(tmp_path / "ref.safetensors"))
    with open(mine, "rb") as f, open(str(tmp_path / "ref.safetensors"), "rb") as g:
        assert f.read() == g.read()
    loaded = st.load_file(mine)
    assert set(loaded) == set(tensors)
    for k, v in tensors.items():
        assert loaded[k].dtype == np.asarray(v).dtype and bits(loaded[k]) == bits(np.asarray(v))
    with pytest.raises(CheckpointError, match="exists"):
        tools.to_safetensors(prefix, mine)


def test_safetensors_both_directions_for_every_dtype(tf, corpus, oracles, tmp_path):
    safetensors = pytest.importorskip("safetensors")
    src = corpus["dtypes"].prefix
    path = str(tmp_path / "d.safetensors")
    with pytest.raises(InvalidArgumentError) as e:
        tools.to_safetensors(src, path)
    for name in SAFETENSORS_UNSUPPORTED:
        assert f"dt/{name}: dtype {name} has no safetensors equivalent" in str(e.value)
    rep = tools.to_safetensors(src, path, skip_unsupported=True)
    assert sorted(rep.skipped) == sorted(
        f"{kind}/{name}"
        for name in SAFETENSORS_UNSUPPORTED
        for kind in ("dt", "scalar", "empty", "rank3")
    )
    with open(path, "rb") as f:
        parsed = dict(safetensors.deserialize(f.read()))  # the reference parser
    with safetensors.safe_open(path, framework="numpy") as f:
        recorded = json.loads(f.metadata()["tfckpt.dtypes"])
    assert recorded["dt/qint8"] == "qint8" and recorded["dt/int4"] == "int4"
    names = {
        "bfloat16": "BF16",
        "float8_e4m3fn": "F8_E4M3",
        "float8_e5m2": "F8_E5M2",
        "float8_e4m3fnuz": "F8_E4M3FNUZ",
        "float8_e5m2fnuz": "F8_E5M2FNUZ",
        "complex64": "C64",
        "bool": "BOOL",
        "uint16": "U16",
        "qint8": "I8",
        "int4": "I8",
        "quint8": "U8",
        "uint4": "U8",
        "float16": "F16",
        "int64": "I64",
    }
    with tfckpt.open(src) as r:
        assert set(parsed) == set(rep.written)
        for k in rep.written:
            e = r.entry(k)
            info = parsed[k]
            assert list(info["shape"]) == list(e.shape), k
            if e.dtype_name in names:
                assert info["dtype"] == names[e.dtype_name], k
            want = r[k]
            if e.dtype_name in ("int4", "int2"):
                want = want.astype(np.int8)
            elif e.dtype_name in ("uint4", "uint2"):
                want = want.astype(np.uint8)
            assert bytes(info["data"]) == bits(want), k
    back = str(tmp_path / "back")
    tools.from_safetensors(path, back)
    d = tools.diff(src, back)
    assert d.only_a == sorted(rep.skipped) and not d.only_b
    assert not (d.dtype_changes or d.shape_changes or d.value_changes)
    truth = oracles["dtypes"]["values"]
    got = _tf_values(tf, back)
    for k in got:
        assert _same_value(got[k], truth[k]), k
    assert set(got) == set(truth) - set(rep.skipped)


def test_safetensors_from_the_reference_writer_to_tf(tf, tmp_path):
    safetensors = pytest.importorskip("safetensors")
    st = pytest.importorskip("safetensors.numpy")
    rs = np.random.RandomState(2)
    plain = {
        "model/dense/kernel": rs.randn(4, 3).astype(np.float32),
        "model/dense/bias": rs.randn(3).astype(np.float32),
        "model/steps": np.array(9, np.int64),
        "model/mask": np.array([True, False]),
    }
    st.save_file(plain, str(tmp_path / "plain.safetensors"), metadata={"format": "np"})
    out = str(tmp_path / "plain")
    rep = tools.from_safetensors(str(tmp_path / "plain.safetensors"), out, object_graph=True)
    assert sorted(rep.written) == sorted(plain)
    model = tf.Module()
    model.dense = tf.Module()
    model.dense.kernel = tf.Variable(np.zeros((4, 3), np.float32))
    model.dense.bias = tf.Variable(np.zeros(3, np.float32))
    model.steps = tf.Variable(np.int64(0))
    model.mask = tf.Variable([False, False])
    tf.train.Checkpoint(model=model).read(out).assert_consumed()
    assert bits(model.dense.kernel.numpy()) == bits(plain["model/dense/kernel"])
    assert model.steps.numpy() == 9 and model.mask.numpy().tolist() == [True, False]
    # Types numpy cannot save: through the reference library's raw serializer.
    bf = rs.randn(2, 3).astype(ml_dtypes.bfloat16)
    f8 = rs.randn(5).astype(ml_dtypes.float8_e5m2)
    arrays = {"bf": ("bfloat16", bf), "f8": ("float8_e5m2", f8)}
    if hasattr(safetensors, "TensorSpec"):  # safetensors >= 0.8: raw pointers
        specs = {
            k: safetensors.TensorSpec(
                dtype=t, shape=list(a.shape), data_ptr=a.ctypes.data, data_len=a.nbytes
            )
            for k, (t, a) in arrays.items()
        }
    else:  # older releases take the bytes
        specs = {
            k: {"dtype": t, "shape": list(a.shape), "data": a.tobytes()}
            for k, (t, a) in arrays.items()
        }
    safetensors.serialize_file(specs, str(tmp_path / "ml.safetensors"))
    tools.from_safetensors(str(tmp_path / "ml.safetensors"), str(tmp_path / "ml"))
    reader = tf.train.load_checkpoint(str(tmp_path / "ml"))
    assert reader.get_variable_to_dtype_map()["bf"] == tf.bfloat16
    assert bits(reader.get_tensor("bf")) == bits(bf)
    assert bits(reader.get_tensor("f8")) == bits(f8)


def _safetensors_bytes(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize(
    "header, data, message",
    [
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "cover"),
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "needs 8"),
        ({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "gap"),
        ({"x": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 1]}}, b"\0", "unknown"),
        ({"x": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "bad safetensors entry"),
    ],
)
def test_safetensors_malformed_files_are_refused(tmp_path, header, data, message):
    path = str(tmp_path / "bad.safetensors")
    with open(path, "wb") as f:
        f.write(_safetensors_bytes(header, data))
    with pytest.raises(CorruptCheckpointError, match=message):
        tools.from_safetensors(path, str(tmp_path / "out"))
    assert not os.path.exists(str(tmp_path / "out.index"))


@pytest.mark.parametrize(
    "header, data, message",
    [
        (
            {"x": {"dtype": "F32", "shape": [True, True], "data_offsets": [0, 4]}},
            b"\0" * 4,
            "bad safetensors entry for 'x'",
        ),
        (
            {"x": {"dtype": "F32", "shape": [0, 2**63], "data_offsets": [0, 0]}},
            b"",
            "bad safetensors entry for 'x'",
        ),
        (
            {"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}},
            b"\0" * 4,
            "bad safetensors entry for 'x'",
        ),
        (
            {"x": {"dtype": "F32", "shape": [1], "data_offsets": [False, 4]}},
            b"\0" * 4,
            "bad safetensors entry for 'x'",
        ),
        (
            {
                "__metadata__": {"tfckpt.dtypes": "[1, 2]"},
                "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            },
            b"\0" * 4,
            "bad tfckpt.dtypes metadata: not a JSON object of tensor names to dtype names",
        ),
        (
            {
                "__metadata__": {"tfckpt.dtypes": '{"x": 3}'},
                "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            },
            b"\0" * 4,
            "bad tfckpt.dtypes metadata: not a JSON object",
        ),
        (
            {
                "__metadata__": {"tfckpt.dtypes": '{"x": "float99"}'},
                "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            },
            b"\0" * 4,
            "bad tfckpt.dtypes metadata: x: unknown dtype 'float99'",
        ),
        (
            {
                "__metadata__": {"tfckpt.dtypes": '{"x": "float64"}'},
                "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            },
            b"\0" * 4,
            "bad tfckpt.dtypes metadata: x is stored as F32, which does not hold float64 values",
        ),
        (
            {
                "__metadata__": {"tfckpt.dtypes": '{"y": "float32"}'},
                "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            },
            b"\0" * 4,
            "bad tfckpt.dtypes metadata: it names 'y', which the file does not hold",
        ),
        (
            {"b": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}},
            b"\1\0\2",
            "b: BOOL element 2 is byte 2, not 0 or 1",
        ),
    ],
)
def test_safetensors_hostile_headers_are_checkpoint_errors(tmp_path, header, data, message):
    """Shapes of booleans or past int64, offsets that run backwards, malformed dtype metadata
    and BOOL bytes other than 0/1: each a CheckpointError naming the fault, nothing written."""
    path = str(tmp_path / "bad.safetensors")
    with open(path, "wb") as f:
        f.write(_safetensors_bytes(header, data))
    with pytest.raises(CorruptCheckpointError, match=re.escape(message)):
        tools.from_safetensors(path, str(tmp_path / "out"))
    assert not os.path.exists(str(tmp_path / "out.index"))
    code, out, err = run("convert", path, tmp_path / "out")
    assert code == 1 and "internal error" not in err and message in err


def test_safetensors_truncated_and_duplicate_headers_are_refused(tmp_path):
    path = str(tmp_path / "t.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", 1000) + b"{}")
    with pytest.raises(CorruptCheckpointError, match="past the end"):
        tools.from_safetensors(path, str(tmp_path / "o"))
    raw = (
        b'{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
        b'"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
    )
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"\0")
    with pytest.raises(CorruptCheckpointError, match="duplicate key"):
        tools.from_safetensors(path, str(tmp_path / "o"))


# =======================================================================================
# the commands


def test_edit_dry_run_writes_nothing(corpus, tmp_path):
    src = copy_checkpoint(corpus["tf2_optimizer_slots"].prefix, tmp_path / "ck")
    np.save(str(tmp_path / "k.npy"), np.ones((4, 3), np.float32))
    before = listing(tmp_path)
    code, out, err = run(
        "edit",
        src,
        "-o",
        tmp_path / "ck" / "out",
        "--dry-run",
        "--set",
        f"{KERNEL}={tmp_path / 'k.npy'}",
        "--drop-optimizer",
    )
    assert (code, err) == (0, "")
    assert listing(tmp_path) == before
    lines = out.splitlines()
    assert lines[0].startswith("# dry run: nothing written")
    assert f"set     {KERNEL}: float32[4, 3] -> float32[4, 3]" in lines
    assert "drop    optimizer/beta1_power/.ATTRIBUTES/VARIABLE_VALUE" in lines
    assert sum(1 for x in lines if x.startswith("drop ")) == 10
    code, out, _ = run(
        "edit",
        src,
        "--in-place",
        "--dry-run",
        "--json",
        "--rename",
        f"{KERNEL}=model/hidden/w/.ATTRIBUTES/VARIABLE_VALUE",
    )
    assert code == 0 and listing(tmp_path) == before
    doc = json.loads(out)
    assert doc["dry_run"] is True
    assert doc["renamed"] == {KERNEL: "model/hidden/w/.ATTRIBUTES/VARIABLE_VALUE"}


def test_edit_command_sets_renames_drops_and_adds(tf, corpus, tmp_path):
    src = corpus["tf2_optimizer_slots"].prefix
    new_kernel = np.arange(12, dtype=np.float64).reshape(4, 3)  # cast to float32 on the way
    np.save(str(tmp_path / "k.npy"), new_kernel)
    np.save(str(tmp_path / "e.npy"), np.array([1, 2], np.int32))
    out = str(tmp_path / "out")
    value = "/.ATTRIBUTES/VARIABLE_VALUE"
    code, text, err = run(
        "edit",
        src,
        "-o",
        out,
        "--set",
        f"{KERNEL}={tmp_path / 'k.npy'}",
        "--rename",
        f"model/out/bias{value}=model/out/b{value}",
        "--drop-regex",
        r"\.OPTIMIZER_SLOT",
        "--drop",
        f"optimizer/beta2_power{value}",
        "--add",
        f"model/extra{value}={tmp_path / 'e.npy'}",
    )
    assert (code, err) == (0, ""), err
    assert text.splitlines()[-1].startswith("# 4 kept, 1 renamed, 9 dropped, 1 set, 1 added")
    with tfckpt.open(out) as r:
        assert r[KERNEL].dtype == np.float32 and r[KERNEL].tolist() == new_kernel.tolist()
        assert "model/out/b/.ATTRIBUTES/VARIABLE_VALUE" in r
        assert not any(".OPTIMIZER_SLOT" in k for k in r.keys())
    m = tf.Module()
    m.hidden, m.out = tf.Module(), tf.Module()
    m.hidden.kernel = tf.Variable(np.zeros((4, 3), np.float32))
    m.hidden.bias = tf.Variable(np.zeros(3, np.float32))
    m.out.kernel = tf.Variable(np.zeros((3, 2), np.float32))
    m.out.b = tf.Variable(np.zeros(2, np.float32))
    m.extra = tf.Variable(np.zeros(2, np.int32))
    tf.train.Checkpoint(model=m).restore(out).assert_existing_objects_matched()
    assert m.hidden.kernel.numpy().tolist() == new_kernel.tolist()
    assert m.extra.numpy().tolist() == [1, 2]
    with tfckpt.open(src) as r:
        assert bits(m.out.b.numpy()) == bits(r["model/out/bias/.ATTRIBUTES/VARIABLE_VALUE"])
    # Usage and lookup errors are exit status 2, with nothing written.
    assert run("edit", src)[0] == 2
    code, _, err = run("edit", src, "-o", tmp_path / "x", "--drop", "no/such/key")
    assert code == 2 and "no/such/key" in err and not os.path.exists(str(tmp_path / "x.index"))
    code, _, err = run("edit", src, "-o", tmp_path / "x", "--set", "bad")
    assert code == 2 and "LEFT=RIGHT" in err


def _f32_checkpoint(tmp_path) -> str:
    prefix = str(tmp_path / "src" / "ckpt")
    with tfckpt.Writer(prefix) as w:
        w.add("w", np.array([1.0, 2.0], np.float32))
        w.add("n", np.array([1, 2], np.uint8))
    return prefix


def test_edit_set_casts_only_exactly(tmp_path):
    """A value of another dtype is cast only when every element survives the cast; an inexact
    cast needs allow_cast (--cast), and a value that does not fit is refused even then."""
    src = _f32_checkpoint(tmp_path)
    out = str(tmp_path / "out")
    # Exact: float64 halves and int64 small integers into float32.
    plan = tfckpt.edit(src, out, set={"w": np.array([0.5, -3.0]), "n": np.array([7, 255])})
    assert plan.set == {
        "w": "float32[2] -> float32[2] (cast from float64)",
        "n": "uint8[2] -> uint8[2] (cast from int64)",
    }
    with tfckpt.open(out) as r:
        assert r["w"].dtype == np.float32 and r["w"].tolist() == [0.5, -3.0]
        assert r["n"].dtype == np.uint8 and r["n"].tolist() == [7, 255]
    tfckpt.edit(src, out, set={"w": np.array([4, 5], np.int64)}, overwrite=True)
    assert tfckpt.open(out)["w"].tolist() == [4.0, 5.0]
    # Inexact: refused, nothing written; allowed with allow_cast.
    with pytest.raises(
        InvalidArgumentError,
        match=r"^w: the value is float64, the checkpoint "
        r"holds float32, and casting would change values; pass allow_cast "
        r"\(--cast\)",
    ):
        tfckpt.edit(src, str(tmp_path / "x"), set={"w": np.array([0.1, 2.0])})
    with pytest.raises(InvalidArgumentError, match="casting would change values"):
        tfckpt.edit(src, str(tmp_path / "x"), set={"w": np.array([2**24 + 1, 0], np.int64)})
    assert not os.path.exists(str(tmp_path / "x.index"))
    tfckpt.edit(src, out, set={"w": np.array([0.1, 2.0])}, allow_cast=True, overwrite=True)
    assert tfckpt.open(out)["w"].tolist() == [np.float32(0.1), 2.0]
    # Overflow: refused with or without allow_cast.
    for value, what in [
        (np.array([1e300, 1.0]), "1e+300 does not fit float32"),
        (np.array([1, 300]), "300 does not fit uint8"),
        (np.array([-1, 0]), "-1 does not fit uint8"),
        (np.array([np.nan, 1.0]), "nan does not fit uint8"),
    ]:
        key = "w" if "float32" in what else "n"
        for allow in (False, True):
            message = f"^{key}: the value {re.escape(what)}; "
            with pytest.raises(InvalidArgumentError, match=message):
                tfckpt.edit(src, str(tmp_path / "x"), set={key: value}, allow_cast=allow)
    assert not os.path.exists(str(tmp_path / "x.index"))
    # NaN and infinity are carried exactly into a float tensor.
    tfckpt.edit(src, out, set={"w": np.array([np.nan, -np.inf])}, overwrite=True)
    assert str(tfckpt.open(out)["w"].tolist()) == "[nan, -inf]"
    # Strings and numbers never turn into each other.
    with pytest.raises(InvalidArgumentError, match="pass allow_dtype_change"):
        tfckpt.edit(src, str(tmp_path / "x"), set={"w": np.array([b"a", b"b"], object)})


def test_edit_command_set_refuses_overflow_and_casts_with_cast(tmp_path):
    src = _f32_checkpoint(tmp_path)
    np.save(str(tmp_path / "big.npy"), np.array([1e300, 1.0]))
    np.save(str(tmp_path / "tenth.npy"), np.array([0.1, 1.0]))
    out = str(tmp_path / "out")
    code, text, err = run("edit", src, "-o", out, "--set", f"w={tmp_path / 'big.npy'}")
    assert (code, text) == (2, "")
    assert err == "tfckpt: w: the value 1e+300 does not fit float32; nothing was cast\n"
    assert not os.path.exists(out + ".index")
    code, _, err = run("edit", src, "-o", out, "--set", f"w={tmp_path / 'big.npy'}", "--cast")
    assert code == 2 and "does not fit float32" in err
    code, _, err = run("edit", src, "-o", out, "--set", f"w={tmp_path / 'tenth.npy'}")
    assert code == 2 and "pass allow_cast (--cast)" in err
    code, text, err = run("edit", src, "-o", out, "--set", f"w={tmp_path / 'tenth.npy'}", "--cast")
    assert (code, err) == (0, "")
    assert "set     w: float32[2] -> float32[2] (cast from float64)" in text.splitlines()
    assert tfckpt.open(out)["w"].tolist() == [np.float32(0.1), 1.0]


def test_edit_rename_moves_values_in_the_object_graph(tf, corpus, tmp_path):
    """tfckpt.edit(rename=...) on an object-based checkpoint: the object graph names the new
    keys at the objects their paths name, no object keeps an old key, the optimizer slots
    follow their variable, and TensorFlow restores the values into renamed objects."""
    src = corpus["tf2_optimizer_slots"].prefix
    value = "/.ATTRIBUTES/VARIABLE_VALUE"
    renames = {KERNEL: f"model/hidden/w{value}", f"model/out/bias{value}": f"model/out/b{value}"}
    out = str(tmp_path / "renamed")
    plan = tfckpt.edit(src, out, rename=renames)
    assert plan.renamed == renames
    with tfckpt.open(src) as old, tfckpt.open(out) as r:
        g = r.object_graph
        stored = set(r.keys()) - {tfckpt.OBJECT_GRAPH_KEY}
        assert {v["key"] for v in g.variables()} == stored  # every value reached, no stale key
        assert not set(renames) & stored
        for old_key, new_key in renames.items():
            assert r.read(new_key).tobytes() == old.read(old_key).tobytes()
            assert r.entry(new_key).crc32c == old.entry(old_key).crc32c
            assert g.paths_for_key(new_key) == [new_key[: -len(value)]]
            assert g.nodes_for_key(old_key) == []
            assert g.node(new_key[: -len(value)]).keys == [new_key]
        # the kernel's Adam slots now hang off the object at model/hidden/w
        slots = {v["key"]: v["slot"] for v in g.variables() if "slot" in v}
        assert len(slots) == 8
        moved_slots = set()
        for var, new_var in (("hidden/kernel", "hidden/w"), ("out/bias", "out/b")):
            for slot in ("m", "v"):
                k = f"model/{var}/.OPTIMIZER_SLOT/optimizer/{slot}{value}"
                assert slots[k] == {
                    "name": slot,
                    "variable": f"model/{new_var}",
                    "optimizer": "optimizer",
                }
                assert g.paths_for_key(k) == [f"model/{new_var}/.OPTIMIZER_SLOT/optimizer/{slot}"]
                moved_slots.add(k)
        # untouched keys and objects are as they were
        for k in stored - set(renames.values()):
            assert r.raw_entry(k) == old.raw_entry(k)
            if k not in moved_slots:
                assert g.paths_for_key(k) == old.object_graph.paths_for_key(k), k
    m = tf.Module()
    m.hidden, m.out = tf.Module(), tf.Module()
    m.hidden.w = tf.Variable(np.zeros((4, 3), np.float32))
    m.hidden.bias = tf.Variable(np.zeros(3, np.float32))
    m.out.kernel = tf.Variable(np.zeros((3, 2), np.float32))
    m.out.b = tf.Variable(np.zeros(2, np.float32))
    tf.train.Checkpoint(model=m).read(out).assert_existing_objects_matched()
    with tfckpt.open(src) as old:
        assert bits(m.hidden.w.numpy()) == bits(old[KERNEL])
        assert bits(m.out.b.numpy()) == bits(old[f"model/out/bias{value}"])
    # the old names no longer restore anything: TF finds no value for them
    stale = tf.Module()
    stale.hidden = tf.Module()
    stale.hidden.kernel = tf.Variable(np.zeros((4, 3), np.float32))
    tf.train.Checkpoint(model=stale).read(out).expect_partial()
    assert not stale.hidden.kernel.numpy().any() and m.hidden.w.numpy().any()


def _restore_mlp(tf, prefix):
    class Dense(tf.Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.kernel = tf.Variable(tf.zeros([n_in, n_out]))
            self.bias = tf.Variable(tf.zeros([n_out]))

    m = tf.Module()
    m.hidden, m.out = Dense(4, 3), Dense(3, 2)
    tf.train.Checkpoint(model=m).restore(prefix).assert_existing_objects_matched()
    return m


def test_drop_optimizer_leaves_a_third_that_tf_restores(tf, corpus, tmp_path):
    import keras
    import tf_corpus

    # tf.compat.v1 Adam: .OPTIMIZER_SLOT keys and beta powers go.
    src = corpus["tf2_optimizer_slots"].prefix
    out = str(tmp_path / "slots")
    code, _, err = run("edit", src, "-o", out, "--drop-optimizer")
    assert (code, err) == (0, "")
    with tfckpt.open(out) as r:
        assert sorted(r.keys()) == sorted(
            [tfckpt.OBJECT_GRAPH_KEY, "save_counter/.ATTRIBUTES/VARIABLE_VALUE"]
            + [
                f"model/{layer}/{v}/.ATTRIBUTES/VARIABLE_VALUE"
                for layer in ("hidden", "out")
                for v in ("kernel", "bias")
            ]
        )
    ratio = data_bytes(out, False) / data_bytes(src, False)
    assert ratio <= 0.40, ratio
    m = _restore_mlp(tf, out)
    with tfckpt.open(src) as r:
        assert bits(m.hidden.kernel.numpy()) == bits(r[KERNEL])

    # Keras 3: the model's kernels are stored under optimizer/_trainable_variables/N keys
    # (the optimizer reaches them first), yet they are the model's: they stay.
    src = corpus["keras_adam"].prefix
    out = str(tmp_path / "keras")
    assert run("edit", src, "-o", out, "--drop-optimizer")[0] == 0
    with tfckpt.open(out) as r:
        kept = sorted(r.keys())
    assert kept == sorted(
        [tfckpt.OBJECT_GRAPH_KEY, "save_counter/.ATTRIBUTES/VARIABLE_VALUE"]
        + [f"optimizer/_trainable_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(4)]
    )
    assert data_bytes(out, False) / data_bytes(src, False) <= 0.40
    model = tf_corpus._keras_model(keras)
    tf.train.Checkpoint(model=model).restore(out).assert_existing_objects_matched()
    with tfckpt.open(src) as r:
        for i, w in enumerate(model.weights):
            stored = r[f"optimizer/_trainable_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"]
            assert bits(w.numpy()) == bits(stored), w.path


def test_drop_optimizer_shrinks_an_adam_trained_keras_model_to_a_third(tf, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(64)]
    )
    opt = keras.optimizers.Adam(1e-3)
    model.compile(optimizer=opt, loss="mse")
    x = np.random.RandomState(0).randn(16, 64).astype(np.float32)
    model.train_on_batch(x, x)
    src = tf.train.Checkpoint(model=model, optimizer=opt).save(str(tmp_path / "run" / "ckpt"))
    out = str(tmp_path / "slim" / "ckpt-1")
    code, text, _ = run("edit", src, "-o", out, "--drop-optimizer")
    assert code == 0
    files = lambda p: sum(
        os.path.getsize(os.path.join(os.path.dirname(p), f))  # noqa: E731
        for f in os.listdir(os.path.dirname(p))
        if f.startswith(os.path.basename(p) + ".data-")
    )
    ratio = files(out) / files(src)
    assert ratio <= 0.40, ratio  # a third, plus the object graph
    assert data_bytes(out) == files(out)
    restored = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(64)]
    )
    tf.train.Checkpoint(model=restored).restore(out).assert_existing_objects_matched()
    for a, b in zip(model.weights, restored.weights):
        assert bits(a.numpy()) == bits(b.numpy())


def test_optimizer_keys_of_a_name_based_checkpoint(corpus):
    assert tools.optimizer_keys(corpus["tf1_partitioned"].prefix) == [
        "b/Adam",
        "b/Adam_1",
        "beta1_power",
        "beta2_power",
        "pv2/Adam",
        "pv2/Adam_1",
        "scope/pv3/Adam",
        "scope/pv3/Adam_1",
        "w/Adam",
        "w/Adam_1",
    ]
    assert tools.optimizer_keys(corpus["module_nested"].prefix) == []


def test_convert_command_directions_and_errors(corpus, tmp_path):
    src = corpus["module_nested"].prefix
    code, out, err = run("convert", src, tmp_path / "m.safetensors")
    assert code == 2 and "string" in err  # strings have no safetensors type
    code, out, err = run("convert", src, tmp_path / "m.safetensors", "--skip-unsupported", "--json")
    assert code == 0
    doc = json.loads(out)
    assert list(doc["skipped"]) == ["model/text/.ATTRIBUTES/VARIABLE_VALUE"]
    code, out, _ = run("convert", tmp_path / "m.safetensors", tmp_path / "back")
    assert code == 0 and out.startswith(f"# {len(doc['written'])} tensors written")
    code, _, _ = run("convert", src, tmp_path / "m.npz", "--object-graph")
    assert code == 0
    assert run("convert", tmp_path / "m.npz", tmp_path / "m2")[0] == 0
    assert tools.diff(src, str(tmp_path / "m2")).equal
    code, _, err = run("convert", tmp_path / "m.npz", tmp_path / "m3", "--object-graph")
    assert code == 2 and "already holds" in err
    code, _, err = run("convert", src, tmp_path / "m.npz")
    assert code == 2 and "exists" in err
    code, _, err = run("convert", src, tmp_path / "plain")
    assert code == 2 and "extension" in err
    code, _, err = run("convert", tmp_path / "none.npz", tmp_path / "x")
    assert code == 2 and "no such file" in err


def test_writer_full_slice_keeps_the_dtype_asked_for(tmp_path):
    """A full slice is written as a plain tensor, of the dtype given (average and the
    converters pass dtypes that an array alone cannot carry, such as qint8)."""
    with tfckpt.Writer(str(tmp_path / "q")) as w:
        w.add_slice("q", (4,), np.s_[0:4], np.arange(4), dtype="qint8")
        w.add_slice("h", (2, 3), "-:-", np.ones((2, 3)), dtype="bfloat16")
    with tfckpt.open(str(tmp_path / "q")) as r:
        assert (r.entry("q").dtype_name, r.entry("h").dtype_name) == ("qint8", "bfloat16")
        assert not r.entry("q").slices and r["q"].tolist() == [0, 1, 2, 3]


def test_diff_and_average_hold_one_region_not_whole_tensors(tmp_path, monkeypatch):
    """Memory stays bounded: diff holds chunks only; average holds the tensor (or slice) it
    writes plus chunks, never float64 copies of whole inputs."""
    import tracemalloc

    monkeypatch.setattr(tools._common, "CHUNK_ELEMENTS", 1 << 16)
    x = np.random.RandomState(0).randn(4096, 1024).astype(np.float32)  # 16 MiB
    y = x.copy()
    y[100, 7] += 1
    a = tfckpt.write(str(tmp_path / "a"), {"x": x})
    b = tfckpt.write(str(tmp_path / "b"), {"x": y})
    with tfckpt.Writer(str(tmp_path / "c")) as w:
        w.add_slice("x", x.shape, np.s_[0:1000], x[:1000])
        w.add_slice("x", x.shape, np.s_[1000:], x[1000:])
    del x, y
    size = 16 << 20
    for other in (b, str(tmp_path / "c")):
        tracemalloc.start()
        try:
            d = tools.diff(a, other)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < size / 8, peak
    assert d.equal and tools.diff(a, b).value_changes["x"].count == 1
    tracemalloc.start()
    try:
        tools.average([a, b, str(tmp_path / "c")], str(tmp_path / "avg"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size * 1.2, peak
