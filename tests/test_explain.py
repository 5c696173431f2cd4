"""``tfckpt.explain_restore`` and ``tfckpt explain`` held against TensorFlow 2.21 restoring for
real.

Every scenario builds an old and a new model in TensorFlow, gives every variable its own
recognisable values (so each value says where it came from), saves the old one, writes the
new one's own fresh checkpoint (the `expected`), restores the old checkpoint into the new
model and writes it again. Reading that last checkpoint back tells which key received which
checkpoint value and which kept its own; `explain_restore` must say exactly that. Where TF
refuses a pair (dtype or shape), the mismatched value is refitted and the restore run again,
which gives what TF restores once the mismatch is fixed. The rename scenarios then restore the
``--fix`` output with ``assert_consumed()``.

The object-based scenarios run in one fixture (one TensorFlow import, small models).
"""

from __future__ import annotations

import io
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pytest

import tfckpt
import tfckpt.proto as P
from tfckpt.cli import run as cli_run
from tfckpt.objects import ObjectGraph

SLOT_M = "model/v/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"


def key(path: str) -> str:
    return tfckpt.object_key(path)


# ---------------------------------------------------------------------------------------
# the harness


@pytest.fixture(scope="module")
def tf():
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


@pytest.fixture(scope="module")
def keras(tf):
    import keras

    return keras


_tags = itertools.count(1)


def _variables(tf, root) -> List[Any]:
    """Every variable reachable from `root`, TF1 optimizers' slots included."""
    out, seen = [], set()
    for obj in tf.train.TrackableView(root).descendants():
        found = [obj]
        if hasattr(obj, "get_slot_names"):  # a TF1 optimizer: slots are not its children
            found += list(obj.variables())
        for v in found:
            if hasattr(v, "assign") and hasattr(v, "shape") and id(v) not in seen:
                seen.add(id(v))
                out.append(v)
    return out


def fill(tf, root) -> None:
    """Gives every variable its own values: tag * 1000 + 0, 1, 2 ..."""
    for v in _variables(tf, root):
        dtype = np.dtype(getattr(v.dtype, "as_numpy_dtype", v.dtype))
        shape = tuple(int(d) for d in v.shape)
        base = next(_tags) * 1000
        v.assign((base + np.arange(int(np.prod(shape)))).reshape(shape).astype(dtype))


def values(tf, prefix) -> Dict[str, tuple]:
    """key -> a fingerprint of its value (dtype, shape, bytes), as TF reads it."""
    r = tf.train.load_checkpoint(str(prefix))
    out = {}
    for k in r.get_variable_to_shape_map():
        if k == tfckpt.OBJECT_GRAPH_KEY:
            continue
        a = np.asarray(r.get_tensor(k))
        out[k] = (a.dtype.str, a.shape, a.tobytes())
    return out


@dataclass
class Observed:
    """What TF did: read off the values."""

    restored: Dict[str, str] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)


def observe(old: Dict[str, tuple], fresh: Dict[str, tuple], after: Dict[str, tuple]) -> Observed:
    by_value = {fp: k for k, fp in old.items()}
    assert len(by_value) == len(old), "old values are not all distinct"
    seen = Observed()
    assert set(fresh) <= set(after)
    for k, fp in after.items():
        if fp in by_value:
            seen.restored[k] = by_value[fp]
        elif k in fresh:
            assert fp == fresh[k], f"{k} holds a value from nowhere"
            seen.missing.append(k)
        # else: created by the restore with no value from the checkpoint (not a new key)
    seen.unused = sorted(set(old) - set(seen.restored.values()))
    seen.missing.sort()
    return seen


@dataclass
class Outcome:
    name: str
    old: str
    fresh: str
    observed: Observed
    report: Any
    new: Callable[[], Dict[str, Any]]
    error: Optional[BaseException] = None
    #: for mismatch scenarios: (expected key, checkpoint key) pairs TF refused
    refused: List[tuple] = field(default_factory=list)


def _checkpoint(tf, objects):
    return (
        tf.train.Checkpoint(**objects)
        if isinstance(objects, dict)
        else tf.train.Checkpoint(objects)
    )


def run_scenario(
    tf, tmp, name, old_fn, new_fn, *, method="read", refit=None, save_counter=None
) -> Outcome:
    """Saves old_fn()'s objects, restores them into new_fn()'s with `method`, and observes.
    `refit` {old key: (dtype, shape)} rewrites values TF refuses, to see what it restores
    once the mismatch is fixed."""
    d = tmp / name
    old_objects = old_fn()
    fill(tf, _checkpoint(tf, old_objects))
    ck = _checkpoint(tf, old_objects)
    if save_counter is not None:
        ck.save_counter.assign(save_counter)
    old = ck.write(str(d / "old"))
    new_objects = new_fn()
    ck = _checkpoint(tf, new_objects)
    fill(tf, ck)
    fresh = ck.write(str(d / "fresh"))
    fresh_values = values(tf, fresh)
    error = None
    source = old
    try:
        getattr(ck, method)(old)
    except Exception as e:  # noqa: BLE001 - TF's refusal is what the scenario observes
        error = e
        assert refit, f"{name}: restore raised {e!r}"
        source = str(d / "refit")
        tfckpt.edit(
            old,
            source,
            set={
                k: (next(_tags) * 1000 + np.arange(int(np.prod(shape)))).reshape(shape).astype(dt)
                for k, (dt, shape) in refit.items()
            },
            allow_dtype_change=True,
            allow_shape_change=True,
        )
        new_objects = new_fn()
        ck = _checkpoint(tf, new_objects)
        fill(tf, ck)
        fresh = ck.write(str(d / "fresh2"))
        fresh_values = values(tf, fresh)
        getattr(ck, method)(source)
    after = ck.write(str(d / "after"))
    observed = observe(values(tf, source), fresh_values, values(tf, after))
    report = tfckpt.explain_restore(old, fresh, save_counter=method == "restore")
    out = Outcome(name, old, fresh, observed, report, new_fn, error)
    if refit:
        out.refused = sorted((e, c) for e, c in observed.restored.items() if c in refit)
    return out


def assert_explains(outcome: Outcome, report=None) -> None:
    report = report or outcome.report
    seen = outcome.observed
    assert report.restored == seen.restored
    assert sorted(report.missing) == seen.missing
    assert sorted(report.unused) == seen.unused
    assert sorted((m.key, m.checkpoint_key) for m in report.mismatched) == outcome.refused
    assert report.ok == (not seen.missing and not outcome.refused)
    d = report.to_dict()
    assert list(d) == ["restored", "missing", "unused", "mismatched", "renames", "ok"]
    assert tfckpt.OBJECT_GRAPH_KEY not in json.dumps(d)


# ---------------------------------------------------------------------------------------
# the models


def module(tf, **variables):
    m = tf.Module()
    for name, value in variables.items():
        setattr(m, name, value if isinstance(value, tf.Module) else tf.Variable(value))
    return m


def z(*shape, dtype="float32"):
    return np.zeros(shape, dtype)


def scenarios(tf, keras) -> Dict[str, dict]:
    """name -> run_scenario arguments."""

    def sequential(names, units=(3, 3), optimizer=False):
        m = keras.Sequential(
            [keras.Input((3,))] + [keras.layers.Dense(u, name=n) for n, u in zip(names, units)]
        )
        out: Dict[str, Any] = {"model": m}
        if optimizer:
            opt = keras.optimizers.Adam()
            opt.build(m.trainable_variables)
            out["optimizer"] = opt
        return out

    class Two(keras.Model):
        def __init__(self, order):
            super().__init__()
            for n in order:
                setattr(self, n, keras.layers.Dense(3, name=n))

        def call(self, x):
            return self.b(self.a(x))

    def two(order):
        m = Two(order)
        m(np.ones((1, 3), "float32"))
        opt = keras.optimizers.Adam()
        opt.build(m.trainable_variables)
        return {"model": m, "optimizer": opt}

    def tf1(names, slots=True):
        m = module(tf, **{n: z(2) for n in names})
        opt = tf.compat.v1.train.AdamOptimizer(0.1)
        if slots:
            opt.minimize(
                lambda: sum(tf.reduce_sum(getattr(m, n) ** 2) for n in names),
                var_list=[getattr(m, n) for n in names],
            )
        return {"model": m, "optimizer": opt}

    class Wrapper(tf.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

    def tied(first, second):
        m = tf.Module()
        v = tf.Variable(z(2))
        setattr(m, first, v)
        setattr(m, second, v)
        return {"model": m}

    def table():  # the seed question: a variable made from a constant
        return tf.Variable(tf.constant([[1.0, 2.0], [3.0, 4.0]]))

    return {
        "renamed_attribute": dict(
            old_fn=lambda: {"model": module(tf, emb=z(3, 2), bias=z(2))},
            new_fn=lambda: {"model": module(tf, embedding=z(3, 2), bias=z(2))},
        ),
        "constant_initializer": dict(
            old_fn=lambda: {"model": module(tf, table=table())},
            new_fn=lambda: {"model": module(tf, lookup_table=table())},
            method="restore",
        ),
        "added_layer": dict(
            old_fn=lambda: {"model": module(tf, a=z(2))},
            new_fn=lambda: {"model": module(tf, a=z(2), extra=z(4))},
        ),
        "removed_layer": dict(
            old_fn=lambda: {"model": module(tf, a=z(2), extra=z(4))},
            new_fn=lambda: {"model": module(tf, a=z(2))},
        ),
        "renamed_root": dict(
            old_fn=lambda: {"model": module(tf, w=z(2, 2), b=z(2))},
            new_fn=lambda: {"net": module(tf, w=z(2, 2), b=z(2))},
        ),
        "wrapped_in_container": dict(
            old_fn=lambda: {"model": module(tf, w=z(2, 2), b=z(2))},
            new_fn=lambda: {"model": Wrapper(module(tf, w=z(2, 2), b=z(2)))},
        ),
        "vocabulary_grew": dict(
            old_fn=lambda: {"model": module(tf, emb=z(10, 4), out=z(4))},
            new_fn=lambda: {"model": module(tf, emb=z(12, 4), out=z(4))},
            refit={key("model/emb"): ("float32", (12, 4))},
        ),
        "dtype_changed": dict(
            old_fn=lambda: {"model": module(tf, w=z(3), b=z(2))},
            new_fn=lambda: {"model": module(tf, w=z(3, dtype="float64"), b=z(2))},
            refit={key("model/w"): ("float64", (3,))},
        ),
        "alias_in_new_model": dict(
            old_fn=lambda: {"model": module(tf, a=z(2), b=z(2))}, new_fn=lambda: tied("b", "a")
        ),
        "tied_in_old_model": dict(
            old_fn=lambda: tied("a", "b"), new_fn=lambda: {"model": module(tf, a=z(2), b=z(2))}
        ),
        "keras_with_optimizer_into_model_only": dict(
            old_fn=lambda: sequential("xy", optimizer=True), new_fn=lambda: sequential("xy")
        ),
        "keras_model_only_into_with_optimizer": dict(
            old_fn=lambda: sequential("xy"), new_fn=lambda: sequential("xy", optimizer=True)
        ),
        "keras_sequential_reordered": dict(
            old_fn=lambda: sequential("xy", units=(3, 3), optimizer=True),
            new_fn=lambda: sequential("yx", units=(3, 3), optimizer=True),
        ),
        "keras_subclass_layers_created_in_another_order": dict(
            old_fn=lambda: two("ab"), new_fn=lambda: two("ba")
        ),
        "tf1_slots_renamed": dict(old_fn=lambda: tf1(["v", "w"]), new_fn=lambda: tf1(["v", "ww"])),
        "tf1_slots_created_by_restore": dict(
            old_fn=lambda: tf1(["v", "w"]), new_fn=lambda: tf1(["v", "w"], slots=False)
        ),
        "save_counter_by_restore": dict(
            old_fn=lambda: {"model": module(tf, a=z(2))},
            new_fn=lambda: {"model": module(tf, a=z(2))},
            method="restore",
            save_counter=424242,
        ),
        "root_object": dict(
            old_fn=lambda: module(tf, kernel=z(2, 3), bias=z(3)),
            new_fn=lambda: module(tf, kernels=z(2, 3), bias=z(3)),
        ),
    }


#: Scenarios where every unused value is a renamed variable's: --fix must make them whole.
RENAMES = [
    "renamed_attribute",
    "constant_initializer",
    "renamed_root",
    "wrapped_in_container",
    "tf1_slots_renamed",
    "root_object",
]


@pytest.fixture(scope="module")
def outcomes(tf, keras, tmp_path_factory) -> Dict[str, Outcome]:
    tmp = tmp_path_factory.mktemp("explain")
    return {name: run_scenario(tf, tmp, name, **kw) for name, kw in scenarios(tf, keras).items()}


SCENARIOS = [
    "renamed_attribute",
    "constant_initializer",
    "added_layer",
    "removed_layer",
    "renamed_root",
    "wrapped_in_container",
    "vocabulary_grew",
    "dtype_changed",
    "alias_in_new_model",
    "tied_in_old_model",
    "keras_with_optimizer_into_model_only",
    "keras_model_only_into_with_optimizer",
    "keras_sequential_reordered",
    "keras_subclass_layers_created_in_another_order",
    "tf1_slots_renamed",
    "tf1_slots_created_by_restore",
    "save_counter_by_restore",
    "root_object",
]


def test_scenario_list_is_complete(tf, keras):
    assert sorted(SCENARIOS) == sorted(scenarios(tf, keras))


@pytest.mark.parametrize("name", SCENARIOS)
def test_explain_restore_says_what_tensorflow_does(outcomes, name):
    assert_explains(outcomes[name])


# ---------------------------------------------------------------------------------------
# what the scenarios show (each checked against TF above; here the facts in words)


def test_renamed_attribute_is_missing_and_unused_and_renamed(outcomes):
    r = outcomes["renamed_attribute"].report
    assert r.missing == [key("model/embedding")]
    assert r.unused == [key("model/emb")]
    assert r.renames == {key("model/emb"): key("model/embedding")}
    assert "the graphs part at model" in r.why[key("model/embedding")]
    assert not r.ok


def test_alias_and_tie_follow_the_checkpoint_order(outcomes):
    # New code ties b and a to one variable: it takes a's value (the checkpoint stores a
    # first, whatever order the new code assigned them in); b's value is dropped silently.
    r = outcomes["alias_in_new_model"].report
    assert r.restored == {key("model/b"): key("model/a")} and r.ok
    assert r.unused == [key("model/b")]
    assert "two checkpoint objects reach one variable" in r.why[key("model/b")]
    # Old code tied them: the one saved value goes to a; b keeps its initial value.
    r = outcomes["tied_in_old_model"].report
    assert r.missing == [key("model/b")] and not r.renames


def test_keras_kernels_come_from_the_optimizer_keys(outcomes):
    r = outcomes["keras_with_optimizer_into_model_only"].report
    assert r.ok and r.restored
    assert all(c.startswith("optimizer/_trainable_variables/") for c in r.restored.values())
    assert all(k.startswith("model/") for k in r.restored)
    assert {k.split("/")[1] for k in r.unused} == {"_variables", "_iterations", "_learning_rate"}


def test_keras_moments_follow_position(outcomes):
    # Kernels are matched by layer name (a to a), the optimizer's moments by position: with
    # the layers created in another order, a's moments land on b's.
    out = outcomes["keras_subclass_layers_created_in_another_order"]
    r = out.report
    assert r.ok and not r.unused
    assert r.restored[key("model/a/_kernel")] == key("model/a/_kernel")
    # The first moment belongs to the first trainable variable: a's kernel in the old
    # model, b's in the new one; it is restored by position all the same.
    old, new = tfckpt.open(out.old).object_graph, tfckpt.open(out.fresh).object_graph
    first = "optimizer/_trainable_variables/0"
    assert old.node(first).keys == [key("model/a/_kernel")]
    assert new.node(first).keys == [key("model/b/_kernel")]
    moment = old.node("optimizer/_momentums/0").keys[0]
    assert new.node("optimizer/_momentums/0").keys == [moment]
    assert r.restored[moment] == moment


def test_tf1_slots_created_by_restore_get_their_keys(outcomes):
    r = outcomes["tf1_slots_created_by_restore"].report
    assert SLOT_M in r.restored and SLOT_M not in tfckpt.open(
        outcomes["tf1_slots_created_by_restore"].fresh
    )
    assert r.ok


def test_save_counter(outcomes):
    r = outcomes["save_counter_by_restore"].report
    assert r.restored[tfckpt.object_key("save_counter")] == tfckpt.object_key("save_counter")
    # read() does not create it: the value goes unused.
    r = tfckpt.explain_restore(
        outcomes["save_counter_by_restore"].old,
        outcomes["save_counter_by_restore"].fresh,
        save_counter=False,
    )
    assert r.unused == [tfckpt.object_key("save_counter")]


def test_mismatches_are_neither_missing_nor_unused(tf, outcomes):
    out = outcomes["vocabulary_grew"]
    assert type(out.error).__name__ == "ValueError"
    [m] = out.report.mismatched
    assert m.to_dict() == {
        "key": key("model/emb"),
        "checkpoint_key": key("model/emb"),
        "checkpoint": {"dtype": "float32", "shape": [10, 4]},
        "expected": {"dtype": "float32", "shape": [12, 4]},
    }
    assert not out.report.missing and not out.report.unused and not out.report.ok
    out = outcomes["dtype_changed"]
    assert isinstance(out.error, tf.errors.InvalidArgumentError)
    assert key("model/w") in str(out.error)
    [m] = out.report.mismatched
    assert (m.checkpoint.dtype, m.expected.dtype) == ("float32", "float64")


# ---------------------------------------------------------------------------------------
# --fix


@pytest.mark.parametrize("name", RENAMES)
def test_fix_restores_with_assert_consumed(tf, outcomes, tmp_path, name):
    out = outcomes[name]
    assert out.report.renames and set(out.report.renames) == set(out.observed.unused)
    fixed = str(tmp_path / "fixed")
    out.report.fix(fixed)
    after = tfckpt.explain_restore(fixed, out.fresh, save_counter=False)
    assert after.ok and not after.unused and not after.renames
    objects = out.new()
    ck = _checkpoint(tf, objects)
    ck.read(fixed).assert_consumed()
    got = values(tf, ck.write(str(tmp_path / "after")))
    old = values(tf, out.old)
    for ckpt_key, new_key in out.report.renames.items():
        assert got[new_key] == old[ckpt_key]


def test_seed_question_constant_stays_then_fix(tf, tmp_path):
    """The README's worked example: restore() 'fails silently' after a rename."""

    class Model(tf.Module):
        def __init__(self, attribute):
            super().__init__()
            setattr(self, attribute, tf.Variable(tf.constant([[1.0, 2.0], [3.0, 4.0]])))

    old = Model("table")
    old.table.assign([[10.0, 20.0], [30.0, 40.0]])
    ckpt = tf.train.Checkpoint(model=old).save(str(tmp_path / "run" / "ckpt"))
    new = Model("lookup_table")
    fresh = tf.train.Checkpoint(model=new).write(str(tmp_path / "fresh" / "ckpt"))
    tf.train.Checkpoint(model=new).restore(ckpt)  # no error
    assert new.lookup_table.numpy().tolist() == [[1.0, 2.0], [3.0, 4.0]]  # the constant

    out = io.StringIO()
    assert cli_run(["explain", ckpt, "--against", fresh], out=out) == 1
    text = out.getvalue()
    assert "model/lookup_table/.ATTRIBUTES/VARIABLE_VALUE" in text
    assert "the graphs part at model: the new model has 'lookup_table' there" in text
    assert "model/table/.ATTRIBUTES/VARIABLE_VALUE -> model/lookup_table" in text

    fixed = str(tmp_path / "fixed" / "ckpt-1")
    out = io.StringIO()
    assert cli_run(["explain", ckpt, "--against", fresh, "--fix", fixed], out=out) == 0
    new = Model("lookup_table")
    tf.train.Checkpoint(model=new).restore(fixed).assert_consumed()
    assert new.lookup_table.numpy().tolist() == [[10.0, 20.0], [30.0, 40.0]]


# ---------------------------------------------------------------------------------------
# each form of `expected`


def test_expected_as_savedmodel(tf, outcomes, tmp_path):
    out = outcomes["root_object"]  # restored into tf.train.Checkpoint(new_module)
    new = out.new()
    fill(tf, new)
    tf.saved_model.save(new, str(tmp_path / "sm"))
    r = tfckpt.explain_restore(out.old, str(tmp_path / "sm"))
    assert_explains(out, r)


def test_expected_as_json(outcomes, tmp_path):
    out = outcomes["renamed_attribute"]
    with tfckpt.open(out.fresh) as fresh:
        doc = {
            k: {"dtype": fresh.entry(k).dtype_name, "shape": list(fresh.entry(k).shape)}
            for k in fresh.keys()
            if k != tfckpt.OBJECT_GRAPH_KEY
        }
    path = tmp_path / "model.json"
    path.write_text(json.dumps(doc))
    r = tfckpt.explain_restore(out.old, str(path))
    assert_explains(out, r)
    assert r.renames == out.report.renames
    assert tfckpt.explain_restore(out.old, doc).to_dict() == r.to_dict()


def test_expected_as_json_with_slots_and_escaped_names():
    g = ObjectGraph.from_keys([key("m/a.b"), SLOT_M, key("model/v"), "plain"])
    assert g.node("m/a..b").keys == [key("m/a.b")]
    slot = g.nodes_for_key(SLOT_M)[0]
    assert slot.path == "model/v/.OPTIMIZER_SLOT/optimizer/m"
    assert g.child(0, "model") is not None and g.child(0, "plain") is None


@pytest.fixture(scope="module")
def tf1_graphs(tf, tmp_path_factory):
    """A TF1 graph saved by a Saver, and a new graph that renamed one variable: the new
    graph's .meta, its own name-based checkpoint, and what Saver.restore does."""
    v1 = tf.compat.v1
    tmp = tmp_path_factory.mktemp("tf1")

    def graph(bias_name):
        g = tf.Graph()
        with g.as_default():
            with v1.variable_scope("dense"):
                v1.get_variable("kernel", shape=[3, 2])
                v1.get_variable(bias_name, shape=[2])
            v1.get_variable("emb", shape=[6, 2], partitioner=v1.fixed_size_partitioner(2))
            v1.train.get_or_create_global_step()
            saver = v1.train.Saver()
        return g, saver

    def filled_session(g):
        s = v1.Session(graph=g)
        with g.as_default():
            for v in v1.global_variables():
                shape = v.shape.as_list()
                base = next(_tags) * 1000
                s.run(v.initializer)
                v.load(
                    (base + np.arange(int(np.prod(shape))))
                    .reshape(shape)
                    .astype(v.dtype.as_numpy_dtype),
                    s,
                )
        return s

    g, saver = graph("bias")
    with filled_session(g) as s:
        old = saver.save(s, str(tmp / "old" / "model.ckpt"), write_meta_graph=False)
    g, saver = graph("b")
    with filled_session(g) as s:
        fresh = saver.save(s, str(tmp / "fresh" / "model.ckpt"))
        error = None
        try:
            saver.restore(s, old)
        except tf.errors.NotFoundError as e:
            error = e
        with g.as_default():
            # What restores: a Saver of just the variables whose names the checkpoint has.
            names = set(tfckpt.open(old).keys())
            part = v1.train.Saver(
                var_list={n: v for n, v in _saver_names(v1).items() if n in names}
            )
        part.restore(s, old)
        after = saver.save(s, str(tmp / "after" / "model.ckpt"), write_meta_graph=False)
    return {
        "old": old,
        "fresh": fresh,
        "meta": fresh + ".meta",
        "after": after,
        "error": error,
        "graph": graph,
    }


def _saver_names(v1):
    """name a Saver saves each variable under -> the variable (partitioned: its parts)."""
    out = {}
    for v in v1.global_variables():
        info = getattr(v, "_save_slice_info", None)
        if info is not None:
            out.setdefault(info.full_name, []).append(v)
        else:
            out[v.op.name] = v
    return out


@pytest.mark.parametrize("form", ["meta", "fresh"])
def test_expected_as_tf1_metagraph_or_name_based_checkpoint(tf, tf1_graphs, form):
    t = tf1_graphs
    seen = observe(values(tf, t["old"]), values(tf, t["fresh"]), values(tf, t["after"]))
    r = tfckpt.explain_restore(t["old"], t[form])
    assert r.matching == "names"
    assert r.restored == seen.restored
    assert r.missing == seen.missing == ["dense/b"]
    assert r.unused == seen.unused == ["dense/bias"]
    assert r.restored["emb"] == "emb" and r.specs["emb"].shape == (6, 2)
    assert r.renames == {"dense/bias": "dense/b"}
    # The Saver is not silent about it.
    assert "dense/b" in str(t["error"])


def test_tf1_fix_restores_with_saver(tf, tf1_graphs, tmp_path):
    t = tf1_graphs
    fixed = str(tmp_path / "fixed" / "model.ckpt")
    tfckpt.explain_restore(t["old"], t["meta"]).fix(fixed)
    g, saver = t["graph"]("b")
    with tf.compat.v1.Session(graph=g) as s:
        saver.restore(s, fixed)
        with g.as_default():
            b = [v for v in tf.compat.v1.global_variables() if v.op.name == "dense/b"][0]
            assert s.run(b).tobytes() == tfckpt.open(t["old"])["dense/bias"].tobytes()


def test_metagraph_variables_read_like_tensorflow(tf, tf1_graphs):
    from tfckpt.tools.expected import read_expected

    specs = read_expected(tf1_graphs["meta"]).specs
    fresh = tf.train.load_checkpoint(tf1_graphs["fresh"])
    assert {k: (s.dtype, list(s.shape)) for k, s in specs.items()} == {
        k: (fresh.get_variable_to_dtype_map()[k].name, list(shape))
        for k, shape in fresh.get_variable_to_shape_map().items()
    }


def test_partial_protos_agree_with_tensorflow():
    from tensorflow.core.framework import attr_value_pb2, graph_pb2, node_def_pb2, variable_pb2
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

    theirs = {
        "AttrValue": attr_value_pb2.AttrValue,
        "NodeDef": node_def_pb2.NodeDef,
        "GraphDef": graph_pb2.GraphDef,
        "VariableDef": variable_pb2.VariableDef,
        "SaveSliceInfoDef": variable_pb2.SaveSliceInfoDef,
        "CollectionDef": meta_graph_pb2.CollectionDef,
        "MetaGraphDef": meta_graph_pb2.MetaGraphDef,
        "SavedModel": saved_model_pb2.SavedModel,
    }
    assert sorted(P.PARTIAL) == sorted(theirs)

    def same(ours, other):
        assert ours.full_name == other.full_name and ours.file.name == other.file.name
        fields = {f.name: f for f in other.fields}
        for f in ours.fields:
            g = fields[f.name]
            assert (f.number, f.type) == (g.number, g.type), f.full_name
            assert bool(f.containing_oneof) == bool(g.containing_oneof), f.full_name
            if f.message_type is not None:
                assert f.message_type.full_name == g.message_type.full_name
                opts = f.message_type.GetOptions().map_entry
                assert opts == g.message_type.GetOptions().map_entry, f.full_name
        for n in ours.nested_types:
            same(n, other.nested_types_by_name[n.name])

    for name, cls in theirs.items():
        same(getattr(P, name).DESCRIPTOR, cls.DESCRIPTOR)


# ---------------------------------------------------------------------------------------
# the command


def test_cli_json_and_exit_status(outcomes):
    out = outcomes["renamed_attribute"]
    buf = io.StringIO()
    assert cli_run(["explain", out.old, "--against", out.fresh, "--json"], out=buf) == 1
    assert json.loads(buf.getvalue()) == out.report.to_dict()
    ok = outcomes["removed_layer"]
    buf = io.StringIO()
    assert cli_run(["explain", ok.old, "--against", ok.fresh], out=buf) == 0
    assert "unused checkpoint values: 1" in buf.getvalue() and "OK:" in buf.getvalue()


def test_cli_trouble_is_2(outcomes, tmp_path):
    out = outcomes["renamed_attribute"]
    err = io.StringIO()
    assert (
        cli_run(
            ["explain", str(tmp_path / "nothing"), "--against", out.fresh],
            out=io.StringIO(),
            err=err,
        )
        == 2
    )
    assert "tfckpt:" in err.getvalue()
    assert cli_run(["explain", out.old], out=io.StringIO(), err=io.StringIO()) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"k": {"dtype": "float32"}}')
    assert (
        cli_run(["explain", out.old, "--against", str(bad)], out=io.StringIO(), err=io.StringIO())
        == 2
    )


def test_cli_fix_json(outcomes, tmp_path):
    out = outcomes["wrapped_in_container"]
    buf = io.StringIO()
    fixed = str(tmp_path / "fixed")
    assert (
        cli_run(["explain", out.old, "--against", out.fresh, "--fix", fixed, "--json"], out=buf)
        == 0
    )
    doc = json.loads(buf.getvalue())
    assert doc["report"]["ok"] is False and doc["after"]["ok"] is True
    assert doc["fix"]["renames"] == out.report.renames
    assert os.path.exists(fixed + ".index")


# ---------------------------------------------------------------------------------------
# one side name-based, the other object-based


def _tf1_graph(tf, names, tmp, label):
    """A TF1 graph with float32 variables `names` ([2] each), filled, saved by a Saver
    (with its .meta); returns (graph, saver, session, prefix)."""
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        variables = [v1.get_variable(n, shape=[2]) for n in names]
        saver = v1.train.Saver()
        s = v1.Session(graph=g)
        for v in variables:
            s.run(v.initializer)
            v.load((next(_tags) * 1000 + np.arange(2)).astype("float32"), s)
        return g, saver, s, saver.save(s, str(tmp / label / "model.ckpt"))


def test_name_based_checkpoint_into_object_model(tf, tmp_path):
    # tf.train.Checkpoint reading a Saver's checkpoint looks each variable up by its name.
    _, _, s, old = _tf1_graph(tf, ["a", "b"], tmp_path, "old")
    s.close()
    m = tf.Module()
    m.x, m.y = tf.Variable(z(2), name="a"), tf.Variable(z(2), name="bb")
    fill(tf, m)
    ck = tf.train.Checkpoint(model=m)
    fresh = ck.write(str(tmp_path / "fresh"))
    fresh_values = values(tf, fresh)
    ck.read(old)
    seen = observe(values(tf, old), fresh_values, values(tf, ck.write(str(tmp_path / "a"))))
    r = tfckpt.explain_restore(old, fresh)
    assert r.matching == "names"
    assert (r.restored, r.missing, r.unused) == (seen.restored, seen.missing, seen.unused)
    assert r.missing == [key("model/y")] and r.unused == ["b"]
    assert r.renames == {"b": key("model/y")}
    r.fix(str(tmp_path / "fixed"))  # the value must be named as the variable is: bb
    assert tfckpt.open(str(tmp_path / "fixed")).keys() == ["a", "bb"]
    m.y.assign(z(2))
    tf.train.Checkpoint(model=m).read(str(tmp_path / "fixed")).assert_consumed()
    assert m.y.numpy().tobytes() == tfckpt.open(old)["b"].tobytes()


def test_object_checkpoint_into_tf1_saver(tf, tmp_path):
    # A Saver restoring an object-based checkpoint maps names through the graph's records.
    m = tf.Module()
    m.x, m.y = tf.Variable(z(2), name="a"), tf.Variable(z(2), name="b")
    fill(tf, m)
    old = tf.train.Checkpoint(model=m).write(str(tmp_path / "old"))
    g, saver, s, fresh = _tf1_graph(tf, ["a", "b"], tmp_path, "fresh")
    with g.as_default(), s:
        fresh_values = values(tf, fresh)
        saver.restore(s, old)
        after = saver.save(s, str(tmp_path / "after" / "model.ckpt"), write_meta_graph=False)
    seen = observe(values(tf, old), fresh_values, values(tf, after))
    r = tfckpt.explain_restore(old, fresh + ".meta")
    assert r.restored == seen.restored == {"a": key("model/x"), "b": key("model/y")}
    assert r.ok and not r.unused


def test_expected_as_savedmodel_without_variables_reads_its_metagraph(tf1_graphs, tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    with open(tf1_graphs["meta"], "rb") as f:
        saved.meta_graphs.add().ParseFromString(f.read())
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(saved.SerializeToString())
    by_meta = tfckpt.explain_restore(tf1_graphs["old"], tf1_graphs["meta"])
    by_savedmodel = tfckpt.explain_restore(tf1_graphs["old"], str(tmp_path / "sm"))
    assert by_savedmodel.to_dict() == by_meta.to_dict()


def test_cli_read_leaves_save_counter_unused(outcomes):
    out = outcomes["save_counter_by_restore"]
    buf = io.StringIO()
    assert cli_run(["explain", out.old, "--against", out.fresh, "--read", "--json"], out=buf) == 0
    assert json.loads(buf.getvalue())["unused"] == [tfckpt.object_key("save_counter")]
