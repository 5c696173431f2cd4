"""Keras 2 weights into Keras 3 (tfckpt.to_keras, ``tfckpt convert --like``), and back.

Keras 2 (``tf-keras`` with ``TF_USE_LEGACY_KERAS=1``) and Keras 3 cannot live in one process,
so this module is also the script its children run (``python tests/test_keras.py STEP DIR``):

1. ``k2save`` (Keras 2) builds each scenario's model, trains a step, saves its weights in
   TensorFlow format (``save_weights`` or ``tf.train.Checkpoint``) with the model's weights
   in ``model.weights`` order and its predictions; ``k3target`` (Keras 3, beside it) saves the
   same architecture, fresh, as the ``.keras`` target.
2. The test converts with tfckpt (no TensorFlow involved).
3. ``k3check`` (Keras 3) loads each converted ``.weights.h5`` into a fresh model and compares
   every weight bit for bit and the predictions; ``k2restore`` (Keras 2, beside it) restores
   the reverse conversion with ``tf.train.Checkpoint(model=m).read``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

#: Each scenario: how Keras 2 saves it ("" for save_weights, else the tf.train.Checkpoint
#: keyword) and the optimizer that trains it (Adam leaves its moments in the checkpoint).
SCENARIOS = {
    "sequential": ("", "sgd"),
    "cnn_batchnorm": ("", "sgd"),
    "embedding_lstm": ("", "sgd"),
    "bidirectional_gru": ("", "sgd"),
    "subclassed": ("", "sgd"),
    "nested": ("", "sgd"),
    "auto_named": ("", "sgd"),
    "adam": ("", "adam"),
    "checkpoint_model": ("model", "adam"),
    "checkpoint_net": ("net", "sgd"),
}
#: Scenarios converted back (Keras 3 -> a checkpoint Keras 2 restores).
REVERSE = ("sequential", "subclassed", "checkpoint_net")


# -- the children -------------------------------------------------------------------------


def build(keras, name):
    """The same architecture in Keras 2 and Keras 3: (model, input array)."""
    import numpy as np

    L = keras.layers
    rng = np.random.default_rng(7)
    if name == "cnn_batchnorm":
        m = keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                L.Conv2D(4, 3),
                L.BatchNormalization(),
                L.ReLU(),
                L.MaxPooling2D(),
                L.Flatten(),
                L.Dense(3),
            ]
        )
        return m, rng.random((4, 8, 8, 1), dtype=np.float32)
    if name == "embedding_lstm":
        m = keras.Sequential(
            [keras.Input((5,), dtype="int32"), L.Embedding(10, 4), L.LSTM(3), L.Dense(1)]
        )
        return m, rng.integers(0, 10, (4, 5)).astype("int32")
    if name == "bidirectional_gru":
        m = keras.Sequential(
            [
                keras.Input((5, 2)),
                L.Bidirectional(L.GRU(3, return_sequences=True)),
                L.GlobalAveragePooling1D(),
                L.Dense(1),
            ]
        )
        return m, rng.random((4, 5, 2), dtype=np.float32)
    if name == "subclassed":

        class TwoTowers(keras.Model):
            def __init__(self):
                super().__init__()
                self.towers = [L.Dense(4, activation="relu"), L.Dense(4)]
                self.head = L.Dense(2)
                self.alpha = L.Dense(2)

            def call(self, x):
                return self.head(self.towers[1](self.towers[0](x))) + self.alpha(x)

        m = TwoTowers()
        x = rng.random((4, 3), dtype=np.float32)
        m(x)
        return m, x
    if name == "nested":
        inner = keras.Sequential([L.Dense(5, activation="relu"), L.Dense(4)])
        inp = keras.Input((3,))
        out = L.Dense(2)(L.BatchNormalization()(inner(L.Dense(3)(inp))))
        return keras.Model(inp, out), rng.random((4, 3), dtype=np.float32)
    if name == "auto_named":  # three same-shape layers: by name they would map wrongly
        m = keras.Sequential([keras.Input((4,)), L.Dense(4), L.Dense(4), L.Dense(4)])
        return m, rng.random((4, 4), dtype=np.float32)
    m = keras.Sequential(
        [
            keras.Input((3,)),
            L.Dense(4, activation="relu"),
            L.Dropout(0.1),
            L.BatchNormalization(),
            L.Dense(2),
        ]
    )
    return m, rng.random((4, 3), dtype=np.float32)


def _arrays(model):
    import numpy as np

    return {f"w{i:03d}": np.asarray(w) for i, w in enumerate(model.weights)}


def _predict(model, x):
    import numpy as np

    return np.asarray(model(x, training=False))


def _k2save(root):
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import numpy as np
    import tensorflow as tf

    keras = tf.keras
    assert not keras.__name__.startswith("keras."), keras  # tf-keras, Keras 2
    for name, (keyword, optimizer) in SCENARIOS.items():
        d = os.path.join(root, name)
        model, x = build(keras, name)
        y = np.asarray(model(x)) + 1.0
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
        if keyword == "model":
            tf.train.Checkpoint(model=model, optimizer=model.optimizer).save(
                os.path.join(d, "ckpt")
            )
        elif keyword:
            tf.train.Checkpoint(**{keyword: model}).write(os.path.join(d, "ckpt"))
        else:
            model.save_weights(os.path.join(d, "ckpt"))
        np.savez(os.path.join(d, "weights.npz"), **_arrays(model))
        np.save(os.path.join(d, "x.npy"), x)
        np.save(os.path.join(d, "pred.npy"), _predict(model, x))
        with open(os.path.join(d, "names.json"), "w") as f:
            json.dump([w.name for w in model.weights], f)
        if name in REVERSE:  # what the reverse direction fills
            fresh, _ = build(keras, name)
            tf.train.Checkpoint(model=fresh).write(os.path.join(d, "fresh"))


def _k3target(root):
    import keras

    assert keras.__version__.startswith("3."), keras.__version__
    for name in SCENARIOS:
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        if name == "auto_named":  # shift Keras 3's automatic names away from Keras 2's
            keras.layers.Dense(1), keras.layers.Dense(1)
        model, _ = build(keras, name)
        if name == "adam":
            model.compile(optimizer="adam", loss="mse")  # a target holding optimizer values
        model.save(os.path.join(d, "target.keras"))
        model.save_weights(os.path.join(d, "target.weights.h5"))


def _k3check(root):
    import keras

    results = {}
    for name in SCENARIOS:
        d = os.path.join(root, name)
        model, _ = build(keras, name)
        model.load_weights(os.path.join(d, "out.weights.h5"))
        results[name] = _compare(model, d)
    print(json.dumps(results))


def _k2restore(root):
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf

    results = {}
    for name in REVERSE:
        d = os.path.join(root, name)
        model, _ = build(tf.keras, name)
        status = tf.train.Checkpoint(model=model).read(os.path.join(d, "back"))
        status.assert_existing_objects_matched()
        results[name] = _compare(model, d)
    print(json.dumps(results))


def _compare(model, d):
    """Every weight bit for bit against Keras 2's, in model.weights order, and the
    predictions; a list of differences (empty when all agree)."""
    import numpy as np

    want = np.load(os.path.join(d, "weights.npz"))
    got = _arrays(model)
    problems = []
    if sorted(want.files) != sorted(got):
        problems.append(f"{len(got)} weights, Keras 2 had {len(want.files)}")
    for k in sorted(set(want.files) & set(got)):
        a, b = want[k], got[k]
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            problems.append(f"weight {k}: {b.dtype}{b.shape} differs from {a.dtype}{a.shape}")
    x, pred = np.load(os.path.join(d, "x.npy")), np.load(os.path.join(d, "pred.npy"))
    if not np.allclose(_predict(model, x), pred, rtol=1e-5, atol=1e-6):
        problems.append("predictions differ")
    return problems


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    {"k2save": _k2save, "k3target": _k3target, "k3check": _k3check, "k2restore": _k2restore}[
        sys.argv[1]
    ](sys.argv[2])
    sys.exit(0)


# -- the tests ------------------------------------------------------------------------------

import io  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tfckpt  # noqa: E402
from tfckpt.cli import run as cli_run  # noqa: E402
from tfckpt.tools.keras import LayoutMismatchError  # noqa: E402

pytest.importorskip("h5py")
pytest.importorskip("tf_keras")

HERE = os.path.abspath(__file__)


def _start(step, root, legacy):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    env.pop("TF_USE_LEGACY_KERAS", None)
    if legacy:
        env["TF_USE_LEGACY_KERAS"] = "1"
    return subprocess.Popen(
        [sys.executable, HERE, step, str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-4000:]
    return json.loads(out.strip().splitlines()[-1]) if out.strip() else None


def _tfckpt(*args):
    out, err = io.StringIO(), io.StringIO()
    code = cli_run(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _as_keras_archive(model, weights, out):
    """`model` (a .keras archive) with the weights file replaced by `weights`."""
    import zipfile

    with open(weights, "rb") as f:
        new = f.read()
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, new if item.filename == "model.weights.h5" else src.read(item))


@pytest.fixture(scope="module")
def keras_runs(tmp_path_factory):
    """Saves every scenario with Keras 2 and its target with Keras 3 (two children side by
    side), converts each with tfckpt, then checks the results in Keras 3 and the reverse
    conversions in Keras 2 (again side by side)."""
    root = tmp_path_factory.mktemp("keras")
    saving = [_start("k2save", root, legacy=True), _start("k3target", root, legacy=False)]
    for p in saving:
        _finish(p)
    reports = {}
    for name, (keyword, _) in SCENARIOS.items():
        d = root / name
        code, out, err = _tfckpt(
            "convert",
            str(d / "ckpt" if not keyword or keyword == "net" else d),
            str(d / "out.weights.h5"),
            "--like",
            str(d / "target.keras"),
            "--json",
        )
        assert code == 0, err
        reports[name] = json.loads(out)
        if name in REVERSE:  # as Keras 3 would save the model holding those weights
            _as_keras_archive(d / "target.keras", d / "out.weights.h5", d / "trained.keras")
            code, out, err = _tfckpt(
                "convert", str(d / "trained.keras"), str(d / "back"), "--like", str(d / "fresh")
            )
            assert code == 0, err
    checking = [_start("k3check", root, legacy=False), _start("k2restore", root, legacy=True)]
    forward, backward = (_finish(p) for p in checking)
    return {"root": root, "reports": reports, "forward": forward, "backward": backward}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_keras3_loads_the_keras2_weights_exactly(keras_runs, name):
    """Every weight bit for bit (in model.weights order) and the predictions."""
    assert keras_runs["forward"][name] == []
    report = keras_runs["reports"][name]
    assert report["matched_by"].startswith("layer order") or name == "subclassed"
    assert report["model"] == SCENARIOS[name][0]


@pytest.mark.parametrize("name", REVERSE)
def test_keras2_restores_the_reverse_conversion(keras_runs, name):
    assert keras_runs["backward"][name] == []


def test_auto_names_differ_between_versions_and_do_not_matter(keras_runs):
    """Three same-shape layers whose automatic names shifted between the versions: paired
    by order they land right (the Keras 3 check above), by name they would not."""
    import h5py

    d = keras_runs["root"] / "auto_named"
    with open(d / "names.json") as f:
        old = [n.split("/")[0] for n in json.load(f)][::2]
    with h5py.File(d / "out.weights.h5") as f:
        new = [f[f"layers/{g}/vars"].attrs["name"] for g in ("dense", "dense_1", "dense_2")]
    assert old != list(new)
    # A bare .weights.h5 target: one container of one class, so its order decides.
    report = tfckpt.to_keras(d / "ckpt", d / "h5like.weights.h5", like=d / "target.weights.h5")
    assert report.matched_by.startswith("attribute paths")
    _same_values(d / "h5like.weights.h5", d / "out.weights.h5", report)


def test_pairing_by_name_must_keep_the_container_order(keras_runs, tmp_path):
    """Names that would swap two layers of one class are refused, not followed."""
    import shutil

    import h5py

    d = keras_runs["root"] / "sequential"
    like = tmp_path / "swapped.weights.h5"
    shutil.copyfile(d / "target.weights.h5", like)
    with h5py.File(like, "r+") as f:
        a, b = f["layers/dense/vars"], f["layers/dense_1/vars"]
        a.attrs["name"], b.attrs["name"] = b.attrs["name"], a.attrs["name"]
    code, _, err = _tfckpt(
        "convert", str(d / "ckpt"), str(tmp_path / "o.weights.h5"), "--like", str(like)
    )
    assert code == 1 and "would reorder layers" in err
    assert "layer_with_weights-0" in err and "layers/dense_1" in err


def _same_values(a_path, b_path, report):
    import h5py

    with h5py.File(a_path) as a, h5py.File(b_path) as b:
        for p in report.pairs:
            assert a[p.dataset][()].tobytes() == b[p.dataset][()].tobytes(), p.dataset


def test_optimizer_state_is_ignored_and_said_so(keras_runs):
    root = keras_runs["root"]
    with tfckpt.open(root / "adam" / "ckpt") as r:
        assert any(k.startswith("optimizer/") for k in r.keys())
    report = keras_runs["reports"]["adam"]
    assert report["outside"]["optimizer"] > 0
    assert report["h5_outside"]  # the target's own optimizer values, left as they were
    assert all(not p["key"].startswith("optimizer/") for p in report["pairs"])
    assert keras_runs["reports"]["checkpoint_model"]["outside"]["optimizer"] > 0
    _, out, _ = _tfckpt(
        "convert",
        str(root / "adam" / "ckpt"),
        str(root / "x.weights.h5"),
        "--like",
        str(root / "adam" / "target.keras"),
        "--dry-run",
    )
    assert "ignored" in out and "keys under optimizer (not model weights)" in out


def test_output_keeps_the_targets_layout(keras_runs):
    import h5py

    d = keras_runs["root"] / "cnn_batchnorm"

    def layout(path):
        items = []
        with h5py.File(path) as f:
            f.visititems(
                lambda n, o: items.append(
                    (
                        n,
                        sorted((k, str(v)) for k, v in o.attrs.items()),
                        getattr(o, "shape", None),
                        str(getattr(o, "dtype", "")),
                    )
                )
            )
        return items

    import zipfile

    with zipfile.ZipFile(d / "target.keras") as z:
        z.extract("model.weights.h5", d / "unzipped")
    assert layout(d / "out.weights.h5") == layout(d / "unzipped" / "model.weights.h5")


def test_dry_run_prints_the_full_mapping_and_writes_nothing(keras_runs):
    d = keras_runs["root"] / "embedding_lstm"
    code, out, _ = _tfckpt(
        "convert",
        str(d / "ckpt"),
        str(d / "dry.weights.h5"),
        "--like",
        str(d / "target.keras"),
        "--dry-run",
    )
    assert code == 0
    assert not (d / "dry.weights.h5").exists()
    lines = [line for line in out.splitlines() if " -> " in line]
    assert len(lines) == 6
    # The LSTM's two kernels, told apart by order, not by shape.
    assert lines[1].startswith(
        "layer_with_weights-1/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE -> layers/lstm/cell/vars/0"
    )
    assert lines[2].startswith("layer_with_weights-1/cell/recurrent_kernel/")
    assert "layers/lstm/cell/vars/1" in lines[2]


def test_mismatches_name_both_sides_and_exit_1(keras_runs):
    root = keras_runs["root"]
    # Shapes: a Dense stack against a CNN target.
    code, _, err = _tfckpt(
        "convert",
        str(root / "sequential" / "ckpt"),
        str(root / "m.weights.h5"),
        "--like",
        str(root / "cnn_batchnorm" / "target.keras"),
    )
    assert code == 1
    assert "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE" in err
    assert "layers/conv2d/vars/0" in err and "shapes differ" in err
    # Count: layers with weights that do not line up.
    code, _, err = _tfckpt(
        "convert",
        str(root / "sequential" / "ckpt"),
        str(root / "m.weights.h5"),
        "--like",
        str(root / "embedding_lstm" / "target.keras"),
    )
    assert code == 1
    assert "do not line up" in err and "layers/lstm/cell" in err and "<- here" in err
    assert not (root / "m.weights.h5").exists()
    with pytest.raises(LayoutMismatchError):
        tfckpt.to_keras(
            root / "nested" / "ckpt",
            root / "m.weights.h5",
            like=root / "auto_named" / "target.keras",
        )
    # Usage: a Keras file without --like, an unknown keyword.
    assert _tfckpt("convert", str(root / "sequential" / "ckpt"), str(root / "m.weights.h5"))[0] == 2
    code, _, err = _tfckpt(
        "convert",
        str(root / "checkpoint_net" / "ckpt"),
        str(root / "m.weights.h5"),
        "--like",
        str(root / "checkpoint_net" / "target.keras"),
        "--model",
        "nope",
    )
    assert code == 2 and "no object 'nope'" in err and "net" in err


def test_a_weights_h5_target_pairs_by_path_container_order_and_name(keras_runs):
    """A bare .weights.h5 target (no config.json): a subclassed model's attribute paths and
    its one-class container line up; the nested model's layers, of several classes, have
    only their automatic names, which shifted: an error that shows both sides."""
    d = keras_runs["root"] / "subclassed"
    report = tfckpt.to_keras(d / "ckpt", d / "h5like.weights.h5", like=d / "target.weights.h5")
    assert report.matched_by.startswith("attribute paths")
    assert {p.dataset.split("/vars/")[0] for p in report.pairs} == {
        "head",
        "alpha",
        "layers/dense",
        "layers/dense_1",
    }
    _same_values(d / "h5like.weights.h5", d / "out.weights.h5", report)
    d = keras_runs["root"] / "nested"
    with pytest.raises(
        LayoutMismatchError,
        match="layer_with_weights-1/layer_with_weights-0"
        r"(.|\n)*layers/sequential/layers/dense",
    ):
        tfckpt.to_keras(d / "ckpt", d / "h5like.weights.h5", like=d / "target.weights.h5")


def test_dump_tree_shows_no_self_link_paths(keras_runs):
    code, out, _ = _tfckpt("dump", "--tree", str(keras_runs["root"] / "sequential" / "ckpt"))
    assert code == 0
    assert "root/" not in out
    assert "(also layer-1)" in out or "(also layer-" in out
    assert "root = same object as (root)" in out


def test_without_h5py_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    tfckpt.write(str(tmp_path / "c"), {"a": np.zeros(2, np.float32)})
    with pytest.raises(tfckpt.CheckpointError, match=r"h5py.*tfckpt\[keras\]"):
        tfckpt.to_keras(tmp_path / "c", tmp_path / "o.weights.h5", like=tmp_path / "t.keras")
