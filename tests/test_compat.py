"""tfckpt.compat: the same scripts run under TensorFlow and under ``python -m tfckpt.compat``
print the same output, over every corpus case and the situations where TensorFlow raises.

TensorFlow runs each script once, in a subprocess, over all paths together (its start-up
dominates); tfckpt.compat runs the same script the same way.
"""

from __future__ import annotations

import difflib
import os
import pathlib
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tfckpt
import tfckpt.compat as tf

SCRIPTS = pathlib.Path(__file__).resolve().parent / "compat_scripts"
ROOT = pathlib.Path(tfckpt.__file__).resolve().parent.parent
ENV = dict(
    os.environ,
    TF_CPP_MIN_LOG_LEVEL="3",
    PYTHONWARNINGS="ignore",
    PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
)


def _run(args, *, under_tf: bool) -> str:
    cmd = [sys.executable] + ([] if under_tf else ["-m", "tfckpt.compat"]) + [str(a) for a in args]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _same_output(script: str, paths) -> str:
    args = [SCRIPTS / script, *paths]
    expected = _run(args, under_tf=True)
    got = _run(args, under_tf=False)
    diff = list(
        difflib.unified_diff(
            expected.splitlines(), got.splitlines(), "tensorflow", "tfckpt.compat", lineterm="", n=1
        )
    )
    assert not diff, "\n".join(diff[:80])
    return got


def _situations(root: pathlib.Path, corpus) -> list:
    """Paths where TensorFlow raises or resolves something: missing prefixes, directories
    without a usable state file, a missing data file."""
    empty = root / "empty"
    empty.mkdir()
    states = {
        "garbage_state": "garbage {{\n",
        "empty_state": 'model_checkpoint_path: ""\n',
        "windows_state": 'model_checkpoint_path: "C:\\\\train\\\\ckpt-1"\n',
        "absolute_state": 'model_checkpoint_path: "/no/such/machine/ckpt-1"\n',
    }
    out = [str(root / "no" / "such" / "prefix"), str(empty)]
    for name, text in states.items():
        (root / name).mkdir()
        (root / name / "checkpoint").write_text(text)
        out.append(str(root / name))
    lost = root / "lost_shard"
    shutil.copytree(pathlib.Path(corpus["module_nested"].prefix).parent, lost)
    for f in lost.glob("*.data-*"):
        f.unlink()
    out.append(str(lost / pathlib.Path(corpus["module_nested"].prefix).name))
    out.append(str(root / "not_a_table.bin"))
    (root / "not_a_table.bin").write_bytes(b"x" * 100)
    return out


def test_probe_matches_tensorflow_over_the_corpus(corpus, tmp_path):
    paths = []
    for name in sorted(corpus):
        case = corpus[name]
        paths.append(case.prefix)
        if os.path.isdir(os.path.dirname(case.prefix)):
            paths.append(os.path.dirname(case.prefix))  # latest_checkpoint, or the errors
    paths += _situations(tmp_path, corpus)
    out = _same_output("probe.py", paths)
    # The run covered what it should: values, the quirks, the errors.
    assert "np.float32(" not in out or "float32 np.float32" in out
    assert "bytes b'" in out  # a scalar string is bytes
    assert "raised InternalError: Tensorflow type 21" in out  # variants
    assert "raised NotFoundError: Key no/such/key not found in checkpoint" in out
    assert "raised ValueError: Couldn't find 'checkpoint' file" in out
    assert "raised DataLossError: Unable to open table file" in out
    assert "raised OpError:" in out  # the missing data file
    assert "raised ValueError: Invalid checkpoint state loaded from" in out


def _bert_like_checkpoint(directory: pathlib.Path) -> str:
    rs = np.random.RandomState(0)
    tensors = {"global_step": np.int64(1000)}
    for i in range(2):
        base = f"bert/encoder/layer_{i}/attention/self"
        for part in ("query", "key", "value"):
            tensors[f"{base}/{part}/kernel"] = rs.randn(8, 8).astype(np.float32)
            tensors[f"{base}/{part}/bias"] = rs.randn(8).astype(np.float32)
        tensors[f"bert/encoder/layer_{i}/output/LayerNorm/gamma"] = np.ones(8, np.float32)
        tensors[f"bert/encoder/layer_{i}/output/LayerNorm/beta"] = np.zeros(8, np.float32)
    tensors["bert/embeddings/word_embeddings"] = rs.randn(30, 8).astype(np.float32)
    tensors["cls/predictions/output_bias"] = rs.randn(30).astype(np.float32)
    for key in list(tensors):
        if key != "global_step":
            tensors[f"{key}/adam_m"] = np.zeros_like(tensors[key])
            tensors[f"{key}/adam_v"] = np.zeros_like(tensors[key])
    return tfckpt.write(str(directory / "bert_model.ckpt"), tensors, update_state=True)


def test_bert_style_conversion_matches_tensorflow(corpus, tmp_path):
    bert = _bert_like_checkpoint(tmp_path)
    paths = [
        bert,
        str(tmp_path),
        corpus["keras_adam"].prefix,
        corpus["tf1_partitioned"].prefix,
        corpus["multi_device_tf1"].prefix,
        str(tmp_path / "missing"),
    ]
    out = _same_output("bert_style.py", paths)
    assert "bert.encoder.layer.0.attention.self.query.weight float32 [8, 8]" in out
    assert "Skipping bert/encoder/layer_0/attention/self/query/kernel/adam_m" in out
    assert "failed: NotFoundError: Unsuccessful TensorSliceReader constructor" in out


# -- the module itself -------------------------------------------------------------------
def test_missing_attributes_name_themselves():
    with pytest.raises(AttributeError, match=r"tensorflow\.keras is not provided by "):
        tf.keras  # noqa: B018
    with pytest.raises(AttributeError, match=r"tensorflow\.train\.Checkpoint is not provided"):
        tf.train.Checkpoint  # noqa: B018
    with pytest.raises(AttributeError, match=r"tensorflow\.errors\.nope is not provided"):
        tf.errors.nope  # noqa: B018
    assert not hasattr(tf, "float8_e4m3fn") and tf.dtypes.float8_e4m3fn.name == "float8_e4m3fn"
    assert not hasattr(tf.train, "NewCheckpointReader")


def test_dtypes_behave_like_tensorflows():
    assert tf.float32 == "float32" and tf.float32 == np.float32 and tf.half is tf.float16
    assert tf.float32 != tf.float64 and tf.float32 != "no-such-type" and tf.float32 != None  # noqa: E711
    assert tf.as_dtype(np.dtype([("qint8", "i1")])) is tf.qint8
    assert tf.qint8.as_numpy_dtype == np.dtype([("qint8", "i1")])
    assert tf.string.as_numpy_dtype is object
    with pytest.raises(KeyError):
        tf.variant.as_numpy_dtype  # noqa: B018
    assert pickle.loads(pickle.dumps(tf.bfloat16)) is tf.bfloat16
    with pytest.raises(TypeError, match="Cannot convert"):
        tf.as_dtype("DT_FLOAT")


def test_errors_are_op_errors():
    e = tf.errors.NotFoundError(None, None, "gone")
    assert isinstance(e, tf.errors.OpError) and str(e) == "gone" and e.error_code == 5
    assert pickle.loads(pickle.dumps(e)).message == "gone"


def test_runner_reports_missing_modules(tmp_path):
    script = tmp_path / "uses_keras.py"
    script.write_text(
        "import tensorflow.compat.v1 as tf1\nprint(tf1.train.NewCheckpointReader)\n"
        "from tensorflow import keras\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tfckpt.compat", str(script)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "NewCheckpointReader" in proc.stdout
    assert "tensorflow.keras is not provided by tfckpt.compat" in proc.stderr
    script.write_text("import tensorflow.python.training.py_checkpoint_reader\n")
    proc = subprocess.run(
        [sys.executable, "-m", "tfckpt.compat", str(script)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "tensorflow.python is not provided by tfckpt.compat" in proc.stderr
