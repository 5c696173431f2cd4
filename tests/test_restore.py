"""What TensorFlow restores from checkpoints tfckpt wrote or edited.

* A checkpoint holds values, never initializers: values injected by tfckpt win over
  ``tf.constant``, random and zeros-then-assign initial values (the classic "why does my
  constant come back?" is running the initializer *after* the restore, shown in TF1 form).
* Name-based (``tf.compat.v1.train.Saver``, graph mode) restore, a partitioned variable
  written as slices and restored under three different partitionings.
* Object-based restore with ``assert_consumed()``: a nested tf.Module with escaped names,
  save_counter and ``tf.compat.v1.train.AdamOptimizer`` slots, written from plain paths; a
  Keras 3 model with its Adam state, edited.
* Keras 3 (3.15 in TF 2.21) has no API that loads a TF checkpoint: ``load_weights`` takes
  ``.keras``, ``.weights.h5``/``.weights.json``, legacy ``.h5`` and Orbax directories only.
  What exists is ``tf.train.Checkpoint(model=model).restore`` and, for SavedModels,
  ``tf.saved_model.load`` and ``keras.layers.TFSMLayer`` (which read ``variables/variables``).
* SavedModel variables edited in place compute with the new values.
* A dtype or shape that does not match: TensorFlow's exact errors, and one case where TF
  does not complain at all.
* ``tfckpt.testing``: the helpers for users' own test suites.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tf_corpus

import tfckpt
import tfckpt.testing as ct


@pytest.fixture(scope="module")
def tf():
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


@pytest.fixture(scope="module")
def keras(tf):
    import keras

    return keras


KEY = "model/v/.ATTRIBUTES/VARIABLE_VALUE"


# ---------------------------------------------------------------------------------------
# values, not initializers


def _module_with(tf, init: str):
    m = tf.Module()
    if init == "constant":
        m.v = tf.Variable(tf.constant([[1.0, 2.0], [3.0, 4.0]]))
    elif init == "random":
        m.v = tf.Variable(tf.random.normal([2, 2]))
    elif init == "zeros_then_assign":
        m.v = tf.Variable(tf.zeros([2, 2]))
        m.v.assign([[5.0, 6.0], [7.0, 8.0]])
    return m


@pytest.mark.parametrize("init", ["constant", "random", "zeros_then_assign"])
def test_restore_gives_injected_values_not_initial_ones(tf, tmp_path, init):
    saved = _module_with(tf, init)
    prefix = tf.train.Checkpoint(model=saved).save(str(tmp_path / "ckpt"))
    r = tfckpt.open(prefix)
    # What TF saved is the variable's value at save time, and nothing about how it was made.
    assert r.keys() == [
        "_CHECKPOINTABLE_OBJECT_GRAPH",
        KEY,
        "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
    ]
    assert r[KEY].tobytes() == saved.v.numpy().tobytes()

    injected = np.array([[-1.0, 0.5], [9.0, 1e-3]], np.float32)
    ct.inject(prefix, {"model/v": injected})
    fresh = _module_with(tf, init)  # initialized afresh: constant, new random, or assigned
    tf.train.Checkpoint(model=fresh).restore(prefix).assert_consumed()
    assert fresh.v.numpy().tobytes() == injected.tobytes()


def test_tf1_initializer_run_after_restore_brings_the_constant_back(tf, tmp_path):
    """The classic report "TensorFlow does not restore variables initialized with
    constants": the checkpoint has the values; running the initializer after the restore
    overwrites them."""
    v1 = tf.compat.v1
    prefix = str(tmp_path / "model.ckpt")

    def graph():
        g = tf.Graph()
        with g.as_default():
            v = v1.get_variable("v", initializer=tf.constant([1.0, 2.0, 3.0]))
            return g, v, v1.train.Saver(), v1.global_variables_initializer()

    g, v, saver, init = graph()
    with v1.Session(graph=g) as s:
        s.run(init)
        saver.save(s, prefix, write_meta_graph=False)
    ct.inject(prefix, v=np.array([7.0, 8.0, 9.0]))  # float64 numbers, cast to the float32 key

    g, v, saver, init = graph()
    with v1.Session(graph=g) as s:
        saver.restore(s, prefix)
        assert s.run(v).tolist() == [7.0, 8.0, 9.0]
        s.run(init)  # the mistake
        assert s.run(v).tolist() == [1.0, 2.0, 3.0]


# ---------------------------------------------------------------------------------------
# name-based (TF1 Saver)


def test_tf1_saver_restores_tfckpt_checkpoint_with_partitioned_variable(tf, tmp_path):
    """w, global_step and scope/pv [5,3] written as the two slices fixed_size_partitioner(2)
    makes; restored into 2 partitions (slices match), 3 partitions (TF assembles each
    partition from intersecting stored slices) and one whole variable."""
    v1 = tf.compat.v1
    w = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    pv = np.arange(15, dtype=np.float32).reshape(5, 3) * 10
    prefix = str(tmp_path / "model.ckpt")
    with tfckpt.Writer(prefix) as wr:
        wr.add("w", w)
        wr.add("global_step", np.int64(1234))
        wr.add_slice("scope/pv", (5, 3), np.s_[0:3], pv[0:3])
        wr.add_slice("scope/pv", (5, 3), np.s_[3:5], pv[3:5])
    assert len(tfckpt.open(prefix).entry("scope/pv").slices) == 2

    for parts in (2, 3, None):
        g = tf.Graph()
        with g.as_default():
            wv = v1.get_variable("w", shape=[3, 4])
            with v1.variable_scope("scope"):
                pvar = v1.get_variable(
                    "pv",
                    shape=[5, 3],
                    partitioner=v1.fixed_size_partitioner(parts) if parts else None,
                )
            gs = v1.train.get_or_create_global_step()
            whole = tf.convert_to_tensor(pvar)
            saver = v1.train.Saver()
            with v1.Session(graph=g) as s:
                saver.restore(s, prefix)
                got_w, got_pv, got_gs = s.run([wv, whole, gs])
        assert got_w.tobytes() == w.tobytes()
        assert got_pv.tobytes() == pv.tobytes(), parts
        assert got_gs == 1234


# ---------------------------------------------------------------------------------------
# object-based (tf.train.Checkpoint)


def _mlp(tf):
    class Dense(tf.Module):
        def __init__(self, n_in, n_out, name=None):
            super().__init__(name=name)
            self.kernel = tf.Variable(tf.zeros([n_in, n_out]))
            self.bias = tf.Variable(tf.zeros([n_out]))

        def __call__(self, x):
            return x @ self.kernel + self.bias

    class MLP(tf.Module):
        def __init__(self):
            super().__init__()
            self.hidden = Dense(4, 3)
            self.out = Dense(3, 2)
            self.table = {"k.x/y": tf.Variable([0.0, 0.0]), "plain": tf.Variable(np.int64(0))}
            setattr(self, "attr.with.dots", tf.Variable(np.zeros((2, 2), np.float32)))
            self.blocks = [tf.Variable(np.zeros(2, np.float16)), [tf.Variable("")]]

        def __call__(self, x):
            return self.out(tf.nn.relu(self.hidden(x)))

    return MLP()


def test_object_graph_from_plain_paths_restores_with_assert_consumed(tf, tmp_path):
    """A nested tf.Module (dicts, lists, a name with '.' and '/' given as a tuple path, an
    attribute with dots), save_counter, and tf.compat.v1.train.AdamOptimizer state: the
    slots m and v of every trainable variable and beta1_power/beta2_power."""
    rs = np.random.RandomState(3)
    values = {
        "model/hidden/kernel": rs.randn(4, 3).astype(np.float32),
        "model/hidden/bias": rs.randn(3).astype(np.float32),
        "model/out/kernel": rs.randn(3, 2).astype(np.float32),
        "model/out/bias": rs.randn(2).astype(np.float32),
        ("model", "table", "k.x/y"): np.array([5.0, 6.0], np.float32),
        "model/table/plain": np.int64(42),
        "model/attr.with.dots": np.full((2, 2), 3.0, np.float32),
        "model/blocks/0": np.array([1.5, -2.0], np.float16),
        "model/blocks/1/0": b"text",
        "optimizer/beta1_power": np.float32(0.5),
        "optimizer/beta2_power": np.float32(0.25),
    }
    trainable = ["model/hidden/kernel", "model/hidden/bias", "model/out/kernel", "model/out/bias"]
    slots = {
        (v, "optimizer", s): rs.randn(*values[v].shape).astype(np.float32)
        for v in trainable
        for s in ("m", "v")
    }
    prefix = tfckpt.write(
        tmp_path / "ckpt-7", values, object_graph=True, save_counter=7, slots=slots
    )
    keys = tfckpt.open(prefix).keys()
    assert "model/table/k..x.Sy/.ATTRIBUTES/VARIABLE_VALUE" in keys
    assert "model/attr..with..dots/.ATTRIBUTES/VARIABLE_VALUE" in keys
    assert "model/hidden/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE" in keys

    model = _mlp(tf)
    opt = tf.compat.v1.train.AdamOptimizer(0.1)  # legacy optimizer: slots by name, in eager
    with tf.GradientTape() as tape:  # one step creates the slots and beta powers
        loss = tf.reduce_sum(model(tf.ones([2, 4])))
    opt.apply_gradients(
        zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
    )
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt)
    ckpt.restore(prefix).assert_consumed()

    assert ckpt.save_counter.numpy() == 7
    assert model.hidden.kernel.numpy().tobytes() == values["model/hidden/kernel"].tobytes()
    assert model.table["k.x/y"].numpy().tolist() == [5.0, 6.0]
    assert model.table["plain"].numpy() == 42
    assert (getattr(model, "attr.with.dots").numpy() == 3).all()
    assert model.blocks[0].numpy().tolist() == [1.5, -2.0]
    assert model.blocks[1][0].numpy() == b"text"
    variables = {
        "model/hidden/kernel": model.hidden.kernel,
        "model/hidden/bias": model.hidden.bias,
        "model/out/kernel": model.out.kernel,
        "model/out/bias": model.out.bias,
    }
    for path, v in variables.items():
        for s in ("m", "v"):
            assert opt.get_slot(v, s).numpy().tobytes() == slots[(path, "optimizer", s)].tobytes()
    beta1, beta2 = opt._get_beta_accumulators()
    assert beta1.numpy() == 0.5 and beta2.numpy() == 0.25


def _keras_built(tf, keras):
    model = tf_corpus._keras_model(keras)
    opt = keras.optimizers.Adam(learning_rate=1e-2)
    model.compile(optimizer=opt, loss="mse")
    return model, opt


def test_keras_model_and_adam_state_from_edited_checkpoint(tf, keras, corpus, tmp_path):
    """The corpus' Keras 3 Sequential + Adam checkpoint (written by CheckpointManager), every
    value replaced with tfckpt, restored into a fresh model and optimizer built the same way.
    Keras 3 keeps the weights under optimizer/_trainable_variables/N and the Adam moments
    under optimizer/_variables/N."""
    src = corpus["keras_adam"].prefix
    r = tfckpt.open(src)
    source_bytes = {k: r.raw_entry(k) for k in r.keys()}
    new = {}
    for k in r.keys():
        if k == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        v = r[k]
        new[k] = np.int64(4321) if v.dtype == np.int64 else (v * -2 + 0.125).astype(v.dtype)
    edited = ct.with_values(src, tmp_path, set=new)
    assert {k: tfckpt.open(src).raw_entry(k) for k in r.keys()} == source_bytes  # untouched

    model, opt = _keras_built(tf, keras)
    status = tf.train.Checkpoint(model=model, optimizer=opt).restore(edited)
    # The optimizer's variables do not exist yet: the restore of its state is deferred.
    with pytest.raises(AssertionError, match=r"Unresolved object in checkpoint .*optimizer"):
        status.assert_consumed()
    status.assert_existing_objects_matched()
    opt.build(model.trainable_variables)  # created now, and restored on creation
    status.assert_consumed()

    def key(path):
        return f"{path}/.ATTRIBUTES/VARIABLE_VALUE"

    for i, v in enumerate(model.trainable_variables):
        assert v.numpy().tobytes() == new[key(f"optimizer/_trainable_variables/{i}")].tobytes()
    assert opt.iterations.numpy() == 4321
    assert float(opt.learning_rate.numpy()) == pytest.approx(1e-2 * -2 + 0.125)
    for i, v in enumerate(opt.variables[2:], start=2):  # momentum / velocity per weight
        assert v.numpy().tobytes() == new[key(f"optimizer/_variables/{i}")].tobytes()
    x = np.ones((1, 4), np.float32)
    h = np.maximum(
        x @ new[key("optimizer/_trainable_variables/0")]
        + new[key("optimizer/_trainable_variables/1")],
        0,
    )
    want = (
        h @ new[key("optimizer/_trainable_variables/2")]
        + new[key("optimizer/_trainable_variables/3")]
    )
    np.testing.assert_allclose(model(x).numpy(), want, rtol=1e-6)


def test_keras3_load_weights_does_not_read_tf_checkpoints(tf, keras, corpus, tmp_path):
    """Keras 3 has no TF-checkpoint path in load_weights (nor does save_weights write one);
    tf.keras is Keras 3 too. A tfckpt-edited checkpoint reaches a Keras model through
    tf.train.Checkpoint(model=model).restore, shown above."""
    import keras as keras_mod

    assert tf.keras.Model is keras_mod.Model and keras_mod.__version__.startswith("3.")
    edited = ct.with_values(corpus["keras_model_only"].prefix, tmp_path, set={})
    model = tf_corpus._keras_model(keras)
    for path in (edited, edited + ".index", str(tmp_path)):
        with pytest.raises(
            ValueError,
            match="File format not supported: filepath=.* Keras 3 "
            "only supports V3 `.keras` files, `.weights.h5` "
            "files, legacy H5 format files",
        ):
            model.load_weights(path)
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5`"):
        model.save_weights(str(tmp_path / "model.ckpt"))
    tf.train.Checkpoint(model=model).read(edited).assert_consumed()  # written by write()


def test_keras3_exported_savedmodel_edited_computes_with_new_values(tf, keras, tmp_path):
    """model.export() writes a SavedModel whose variables/variables holds every weight twice:
    under variables/N, which the serving function uses, and under _all_variables/N, which
    nothing computes with. keras.layers.TFSMLayer and tf.saved_model.load see edits of the
    first, not of the second."""
    model = tf_corpus._keras_model(keras)
    x = np.ones((1, 4), np.float32)
    before = model(x).numpy()
    export = str(tmp_path / "exported")
    model.export(export, verbose=False)
    prefix = os.path.join(export, "variables", "variables")
    r = tfckpt.open(prefix)
    assert sum(k.startswith("variables/") for k in r.keys()) == 4
    assert sum(k.startswith("_all_variables/") for k in r.keys()) == 4

    def halves(group):
        return {
            f"{group}/{i}/.ATTRIBUTES/VARIABLE_VALUE": np.full(
                r.entry(f"{group}/{i}/.ATTRIBUTES/VARIABLE_VALUE").shape, 0.5, np.float32
            )
            for i in range(4)
        }

    ct.inject(prefix, halves("_all_variables"))
    np.testing.assert_allclose(
        keras.layers.TFSMLayer(export, call_endpoint="serve")(x).numpy(), before, rtol=1e-6
    )
    ct.inject(prefix, halves("variables"))
    # relu(1*0.5*4 + 0.5) = 2.5 in each of 3 units; 2.5*0.5*3 + 0.5 = 4.25
    assert keras.layers.TFSMLayer(export, call_endpoint="serve")(x).numpy().tolist() == [
        [4.25, 4.25]
    ]
    assert tf.saved_model.load(export).serve(x).numpy().tolist() == [[4.25, 4.25]]


# ---------------------------------------------------------------------------------------
# SavedModel


def test_savedmodel_variables_edited_in_place(tf, corpus, tmp_path):
    """The corpus SavedModel (tf.Module with a tf.function, w, b, steps and a string variable
    in a list), edited in place, loads with tf.saved_model.load and computes with the new
    values; untouched values (the strings) are copied through byte for byte."""
    sm = str(tmp_path / "saved_model")
    shutil.copytree(corpus["savedmodel"].extra["savedmodel_dir"], sm)
    prefix = os.path.join(sm, "variables", "variables")
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    b = np.array([10.0, 20.0], np.float32)
    ct.inject(prefix, w=w, b=b)
    assert tfckpt.open(prefix)["vocab/0/.ATTRIBUTES/VARIABLE_VALUE"].tolist() == [b"a", b"b"]
    loaded = tf.saved_model.load(sm)
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    assert loaded(x).numpy().tolist() == (x @ w + b).tolist() == [[26.0, 42.0]]
    assert loaded.steps.numpy() == 17 and loaded.vocab[0].numpy().tolist() == [b"a", b"b"]

    ct.inject(prefix, {"vocab/0": np.array([b"x", b"yz"], dtype=object), "steps": 99})
    loaded = tf.saved_model.load(sm)
    assert loaded.steps.numpy() == 99 and loaded.vocab[0].numpy().tolist() == [b"x", b"yz"]
    assert loaded(x).numpy().tolist() == [[26.0, 42.0]]


# ---------------------------------------------------------------------------------------
# values that do not fit the model


class _Holder:
    @staticmethod
    def make(tf):
        m = tf.Module()
        m.v = tf.Variable(np.zeros(3, np.float32))
        return m


def test_object_restore_wrong_dtype_exact_error(tf, tmp_path):
    prefix = tfckpt.write(
        tmp_path / "ckpt", {"model/v": np.arange(3, dtype=np.float64)}, object_graph=True
    )
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        tf.train.Checkpoint(model=_Holder.make(tf)).restore(prefix)
    assert (
        "tensor_name = model/v/.ATTRIBUTES/VARIABLE_VALUE; expected dtype float does not "
        "equal original dtype double [Op:RestoreV2]"
    ) in str(e.value)


def test_object_restore_wrong_shape_exact_error(tf, tmp_path):
    prefix = tfckpt.write(
        tmp_path / "ckpt", {"model/v": np.arange(4, dtype=np.float32)}, object_graph=True
    )
    with pytest.raises(ValueError) as e:
        tf.train.Checkpoint(model=_Holder.make(tf)).restore(prefix)
    assert str(e.value) == (
        "Received incompatible tensor with shape (4,) when attempting to "
        "restore variable with shape (3,) and name Variable:0."
    )


def _tf1_restore(tf, prefix, use_resource):
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        w = v1.get_variable("w", shape=[3], dtype=tf.float32, use_resource=use_resource)
        saver = v1.train.Saver()
        with v1.Session(graph=g) as s:
            saver.restore(s, prefix)
            return s.run(w)


def test_name_based_restore_wrong_dtype_exact_error(tf, tmp_path):
    prefix = tfckpt.write(tmp_path / "ckpt", {"w": np.arange(3, dtype=np.float64)})
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        _tf1_restore(tf, prefix, use_resource=True)
    assert str(e.value).startswith(
        "Restoring from checkpoint failed. This is most likely due "
        "to a mismatch between the current graph and the graph "
        "from the checkpoint."
    )
    assert "tensor_name = w; expected dtype float does not equal original dtype double" in str(
        e.value
    )


def test_name_based_restore_wrong_shape(tf, tmp_path):
    """A reference variable refuses; a resource variable -- what get_variable makes in TF2 --
    silently takes the checkpoint's shape [4] although it was declared [3]."""
    prefix = tfckpt.write(tmp_path / "ckpt", {"w": np.arange(4, dtype=np.float32)})
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        _tf1_restore(tf, prefix, use_resource=False)
    assert "Assign requires shapes of both tensors to match. lhs shape= [3] rhs shape= [4]" in str(
        e.value
    )
    assert _tf1_restore(tf, prefix, use_resource=True).tolist() == [0.0, 1.0, 2.0, 3.0]


# ---------------------------------------------------------------------------------------
# tfckpt.testing


def test_make_checkpoint_object_graph(tf, tmp_path):
    """With save_counter the checkpoint passes restore(...).assert_consumed(); without it,
    restore() creates a save_counter the checkpoint does not bind, and read() is the match
    (as for tf.train.Checkpoint.write, which does not save the counter either)."""
    prefix = ct.make_checkpoint(
        tmp_path,
        {"model/v": np.array([1.0, 2.0, 3.0], np.float32)},
        object_graph=True,
        save_counter=1,
    )
    assert prefix == str(tmp_path / "ckpt")
    m = _Holder.make(tf)
    tf.train.Checkpoint(model=m).restore(prefix).assert_consumed()
    assert m.v.numpy().tolist() == [1.0, 2.0, 3.0]
    bare = ct.make_checkpoint(
        tmp_path, {"model/v": np.array([4.0, 5.0, 6.0], np.float32)}, name="bare", object_graph=True
    )
    with pytest.raises(AssertionError, match=r"not bound to checkpointed values.*save_counter"):
        tf.train.Checkpoint(model=_Holder.make(tf)).restore(bare).assert_consumed()
    tf.train.Checkpoint(model=m).read(bare).assert_consumed()
    assert m.v.numpy().tolist() == [4.0, 5.0, 6.0]
    named = ct.make_checkpoint(tmp_path, {"w": np.zeros(2)}, name="tf1", update_state=True)
    assert tf.train.latest_checkpoint(str(tmp_path)) == named


def test_inject_keys_paths_and_keywords(tmp_path):
    prefix = ct.make_checkpoint(
        tmp_path, {"model/v": np.zeros(3, np.float32), "step": np.int64(0)}, object_graph=True
    )
    assert ct.inject(prefix, {"model/v": [1.0, 2.0, 3.0]}, step=5) == prefix
    r = tfckpt.open(prefix)
    assert r[KEY].dtype == np.float32 and r[KEY].tolist() == [1.0, 2.0, 3.0]
    assert r["step/.ATTRIBUTES/VARIABLE_VALUE"] == 5
    ct.inject(prefix, {KEY: np.full(3, 4.0)})
    assert tfckpt.open(prefix)[KEY].tolist() == [4.0, 4.0, 4.0]
    with pytest.raises(tfckpt.KeyNotFoundError, match="Key model/w not found in checkpoint"):
        ct.inject(prefix, {"model/w": [1.0]})
    with pytest.raises(tfckpt.InvalidArgumentError, match="shape"):
        ct.inject(prefix, {"model/v": [1.0, 2.0]})
    assert [f for f in os.listdir(tmp_path) if "tmp" in f or "tempstate" in f] == []


def test_with_values_leaves_source_and_refuses_itself(tmp_path):
    src = ct.make_checkpoint(tmp_path / "a", {"w": np.zeros(2, np.float32)})
    dst = ct.with_values(src, tmp_path / "b", set={"w": [1.0, 2.0]})
    assert dst == str(tmp_path / "b" / "ckpt")
    assert tfckpt.open(src)["w"].tolist() == [0.0, 0.0]
    assert tfckpt.open(dst)["w"].tolist() == [1.0, 2.0]
    renamed = ct.with_values(src, tmp_path / "b", name="renamed", rename={"w": "w2"})
    assert tfckpt.open(renamed).keys() == ["w2"]
    with pytest.raises(tfckpt.InvalidArgumentError, match="use inject"):
        ct.with_values(src, tmp_path / "a")


def test_corrupt_makes_tensorflow_restore_fail(tf, tmp_path):
    prefix = ct.make_checkpoint(
        tmp_path,
        {"model/v": np.arange(3, dtype=np.float32), "model/u": np.arange(5, dtype=np.float32)},
        object_graph=True,
    )
    path, at = ct.corrupt(prefix, "model/v", at=-1)
    assert path == prefix + ".data-00000-of-00001"
    e = tfckpt.open(prefix).entry(KEY)
    assert at == e.offset + e.size - 1
    m = _Holder.make(tf)
    with pytest.raises(
        tf.errors.DataLossError,
        match=r"TensorBundle at .*ckpt shard 0 \(12 "
        r"bytes\): Checksum does not match",
    ):
        tf.train.Checkpoint(model=m).restore(prefix)
    with pytest.raises(tfckpt.ChecksumMismatchError, match="Checksum does not match"):
        tfckpt.open(prefix)[KEY]
    # The other value still reads, for TF and tfckpt.
    assert tf.train.load_checkpoint(prefix).get_tensor(
        "model/u/.ATTRIBUTES/VARIABLE_VALUE"
    ).tolist() == [0, 1, 2, 3, 4]
    ct.corrupt(prefix, "model/v", at=-1)  # flipped back
    assert tfckpt.open(prefix)[KEY].tolist() == [0.0, 1.0, 2.0]


def test_corrupt_partitioned_and_empty(tmp_path):
    with tfckpt.Writer(tmp_path / "ckpt") as w:
        w.add_slice("p", (4,), np.s_[0:2], np.ones(2, np.float32))
        w.add_slice("p", (4,), np.s_[2:4], np.ones(2, np.float32))
        w.add("empty", np.zeros((0, 3), np.float32))
    prefix = str(tmp_path / "ckpt")
    ct.corrupt(prefix, "p")
    with pytest.raises(tfckpt.ChecksumMismatchError):
        tfckpt.open(prefix).read("p")
    with pytest.raises(tfckpt.InvalidArgumentError, match="stores no bytes"):
        ct.corrupt(prefix, "empty")
    with pytest.raises(tfckpt.InvalidArgumentError, match="outside the 8-byte payload"):
        ct.corrupt(prefix, "p", at=8)


def test_truncate_shard_makes_tensorflow_restore_fail(tf, tmp_path):
    prefix = ct.make_checkpoint(
        tmp_path,
        {"model/a": np.arange(4, dtype=np.float32), "model/v": np.arange(1000, dtype=np.float32)},
        object_graph=True,
    )
    size = os.path.getsize(prefix + ".data-00000-of-00001")
    path = ct.truncate_shard(prefix)  # half of it: through the middle of model/v
    assert os.path.getsize(path) == size // 2
    m = tf.Module()
    m.a, m.v = tf.Variable(np.zeros(4, np.float32)), tf.Variable(np.zeros(1000, np.float32))
    with pytest.raises(Exception, match="Read less bytes than requested"):
        tf.train.Checkpoint(model=m).restore(prefix)
    r = tfckpt.open(prefix)
    assert r["model/a/.ATTRIBUTES/VARIABLE_VALUE"].tolist() == [0, 1, 2, 3]
    with pytest.raises(tfckpt.CorruptCheckpointError, match="truncated shard"):
        r["model/v/.ATTRIBUTES/VARIABLE_VALUE"]
    ct.truncate_shard(prefix, size=0)
    assert os.path.getsize(path) == 0
    with pytest.raises(tfckpt.InvalidArgumentError, match="there is no shard 1"):
        ct.truncate_shard(prefix, 1)
    with pytest.raises(tfckpt.InvalidArgumentError, match="cannot truncate"):
        ct.truncate_shard(prefix, size=10)
