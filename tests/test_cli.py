"""The ``tfckpt`` command, tested for real against TensorFlow 2.21.

* inspect_checkpoint parity: for every spec in ``INSPECT_SPECS`` the stdout and exit status of
  tfckpt's drop-in (``tfckpt --file_name=...`` and ``tfckpt inspect ...``) must equal, character
  for character, those of TensorFlow's own ``tensorflow.python.tools.inspect_checkpoint``.
  TensorFlow's outputs are computed once per module in ONE subprocess (``_TF_DRIVER``) that
  executes the real module as ``__main__`` (``runpy.run_module``) once per spec, with the
  spec's ``sys.argv``: TensorFlow's own argparse, absl ``app.run``, ``main`` and
  ``print_tensors_in_checkpoint_file`` all run, exactly as ``python -m`` runs them; only
  ``sys.stdout`` is captured per run and numpy's print options are restored between runs.
  ``test_real_module_runs`` checks that this is faithful: three genuine
  ``python -m tensorflow.python.tools.inspect_checkpoint`` processes (tf_oracle.inspect_result)
  must give the very bytes the driver recorded, and the three documented ways to start
  tfckpt's drop-in (console script, ``inspect`` subcommand, ``python -m
  tfckpt.inspect_checkpoint``) as real processes must give those bytes too.
* dump, verify: in-process through ``tfckpt.cli.run(argv, out, err)``, checked against the
  TensorFlow oracle (``oracles`` fixture) and the files on disk.
* process behaviour (exit statuses, stderr, a pipe into ``head``, progress on a terminal):
  real subprocesses.

Deliberate differences from TensorFlow's inspect_checkpoint, not covered by parity specs
(see ``test_inspect_where_tensorflow_fails``): tfckpt reads partitioned half/uint16/string
tensors that TF refuses ("Dtype half not supported."); it accepts a directory, a state file,
a ``.index`` or ``.data-*`` file where TF fails or reads nothing; and for files that are not
checkpoints (HDF5, .keras) it prints its own one-line explanation instead of TF's
"Unable to open table file ...". Format V1 parity is in tests/test_v1.py.
"""

from __future__ import annotations

import glob
import io
import json
import os
import pathlib
import pty
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tfckpt
from tfckpt import cli

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
_SCRIPT = pathlib.Path(sys.executable).with_name("tfckpt")
#: the console script, as a user runs it
TFCKPT = [str(_SCRIPT)] if _SCRIPT.exists() else [shutil.which("tfckpt") or "tfckpt"]

# ---------------------------------------------------------------------------------------
# TensorFlow's inspect_checkpoint, many runs in one process


_TF_DRIVER = r"""
import contextlib, io, json, os, runpy, sys, warnings
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
warnings.simplefilter("ignore")
import numpy as np
import tensorflow  # noqa: F401  (imported once, before the first run)

runs_path, out_path = sys.argv[1:3]
results = []
for argv in json.load(open(runs_path, encoding="utf-8")):
    buf = io.StringIO()
    code = 0
    sys.argv = ["inspect_checkpoint.py", *argv]
    with np.printoptions(), contextlib.redirect_stdout(buf):
        try:
            runpy.run_module("tensorflow.python.tools.inspect_checkpoint",
                             run_name="__main__", alter_sys=True)
        except SystemExit as e:
            code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
        except BaseException as e:
            code = "crash: " + type(e).__name__
    results.append({"stdout": buf.getvalue(), "code": code})
with open(out_path, "w", encoding="utf-8") as f:
    json.dump(results, f)
"""

# (id, corpus case, flags). "{P}" in a flag is the case's prefix; unless a flag mentions
# {P} (or "--file"), "--file_name={P}" comes first.
_DTYPE_KEYS = [
    "dt/bfloat16",
    "scalar/bfloat16",
    "rank3/bfloat16",
    "empty/bfloat16",
    "dt/qint8",
    "dt/quint8",
    "dt/qint16",
    "dt/quint16",
    "rank3/qint32",
    "dt/string",
    "scalar/string",
    "empty/string",
    "rank3/string",
    "dt/float8_e4m3fn",
    "dt/float8_e5m2fnuz",
    "dt/float4_e2m1fn",
    "dt/int4",
    "dt/uint2",
    "dt/complex128",
    "scalar/complex64",
    "dt/bool",
    "empty/float64",
    "rank3/float16",
    "dt/uint64",
    "scalar/int8",
]
_STRING_KEYS = [
    "str/binary",
    "str/scalar",
    "str/empty_scalar",
    "str/empty_element",
    "str/unicode",
    "str/2d",
    "str/zero_len",
    "str/long",
]
_VV = "/.ATTRIBUTES/VARIABLE_VALUE"
_ALL_PO = ["--all_tensors", "--printoptions"]
_PARITY_CASES = [
    "module_nested",
    "tf1_partitioned",
    "dtypes",
    "strings",
    "keras_adam",
    "tf2_optimizer_slots",
    "data_iterator",
    "lookup_table",
    "savedmodel",
    "multi_device_tf1",
    "name_based_v1_saver_scalar",
]

INSPECT_SPECS = (
    # the default output: DebugString, slice keys included (invalid UTF-8 dropped)
    [(f"default-{c}", c, []) for c in _PARITY_CASES + ["sharded_policy", "big_key_count"]]
    + [(f"names-{c}", c, ["--all_tensor_names"]) for c in _PARITY_CASES + ["sharded_policy"]]
    + [(f"all-{c}", c, ["--all_tensors", "--printoptions", "threshold=5"]) for c in _PARITY_CASES]
    + [(f"tensor-dtypes-{k}", "dtypes", [f"--tensor_name={k}"]) for k in _DTYPE_KEYS]
    + [(f"tensor-strings-{k}", "strings", [f"--tensor_name={k}"]) for k in _STRING_KEYS]
    + [
        ("tensor-partitioned-pv2", "tf1_partitioned", ["--tensor_name=pv2"]),
        ("tensor-partitioned-pv3", "tf1_partitioned", ["--tensor_name=scope/pv3"]),
        ("tensor-partitioned-slot", "tf1_partitioned", ["--tensor_name=scope/pv3/Adam_1"]),
        ("tensor-sharded-float32", "sharded_policy", [f"--tensor_name=big{_VV}"]),
        ("tensor-sharded-bfloat16", "sharded_policy", [f"--tensor_name=bf16{_VV}"]),
        ("tensor-sharded-complex64", "sharded_policy", [f"--tensor_name=c64{_VV}"]),
        (
            "tensor-cyrillic-bf16",
            "module_nested",
            [f"--tensor_name=model/table/\u043a\u043b\u044e\u0447{_VV}"],
        ),
        ("tensor-string-var", "module_nested", [f"--tensor_name=model/text{_VV}"]),
        (
            "tensor-object-graph",
            "tf2_optimizer_slots",
            ["--tensor_name=_CHECKPOINTABLE_OBJECT_GRAPH"],
        ),
        ("tensor-name-based-bf16", "name_based_v1_saver_scalar", ["--tensor_name=bf16_var"]),
        # a variant: TF's get_tensor raises, the message ends the output
        ("tensor-variant", "data_iterator", ["--tensor_name=it/.ATTRIBUTES/ITERATOR_STATE"]),
        (
            "tensor-printoptions",
            "dtypes",
            ["--tensor_name=rank3/float64", "--printoptions", "precision=3", "threshold=5"],
        ),
        # not found: no params line
        ("tensor-missing", "module_nested", ["--tensor_name=no/such/key"]),
        (
            "tensor-missing-count",
            "module_nested",
            ["--tensor_name=nope", "--count_exclude_pattern=x"],
        ),
        ("tensor-empty-name", "module_nested", ["--tensor_name="]),
        # --count_exclude_pattern
        ("count-module", "module_nested", ["--count_exclude_pattern=^model/(table|layers)/"]),
        ("count-partitioned", "tf1_partitioned", ["--count_exclude_pattern=Adam"]),
        ("count-keras", "keras_adam", ["--count_exclude_pattern=optimizer/_variables"]),
        ("count-quantized", "dtypes", ["--count_exclude_pattern=q(u)?int"]),
        (
            "count-slots-names",
            "tf2_optimizer_slots",
            ["--all_tensor_names", "--count_exclude_pattern=OPTIMIZER_SLOT"],
        ),
        ("count-none", "module_nested", ["--count_exclude_pattern=zzz"]),
        ("count-all", "module_nested", ["--count_exclude_pattern=.*"]),
        ("count-bad-regex", "module_nested", ["--count_exclude_pattern=["]),
        # numpy print options, as TF's parse_numpy_printoption sets them
        ("print-linewidth", "dtypes", _ALL_PO + ["threshold=5", "linewidth=30"]),
        ("print-precision", "dtypes", _ALL_PO + ["precision=2", "suppress=true"]),
        ("print-edgeitems", "dtypes", _ALL_PO + ["edgeitems=1", "threshold=1"]),
        ("print-sign", "dtypes", _ALL_PO + ["sign=+", "threshold=5"]),
        ("print-floatmode", "dtypes", _ALL_PO + ["floatmode=unique", "threshold=5"]),
        ("print-nanstr", "dtypes", _ALL_PO + ["nanstr=NAN", "infstr=INF", "threshold=5"]),
        ("print-bool-t", "dtypes", _ALL_PO + ["suppress=t", "threshold=5"]),
        ("print-full", "tf1_partitioned", _ALL_PO + ["threshold=100000"]),
        (
            "print-before-flags",
            "tf1_partitioned",
            ["--printoptions", "threshold=3", "--all_tensors"],
        ),
        # flag forms
        ("flag-false", "module_nested", ["--all_tensors=false"]),
        ("flag-True", "module_nested", ["--all_tensors=True"]),
        ("flag-separate-false", "module_nested", ["--all_tensors", "false"]),
        ("flag-names-not-values", "module_nested", ["--all_tensor_names", "--all_tensors=FALSE"]),
        ("flag-all-beats-name", "tf1_partitioned", ["--all_tensor_names", "--tensor_name=w"]),
        ("flag-abbreviated", "name_based_v1_saver_scalar", ["--file={P}", "--tensor=global_step"]),
        ("flag-positional", "module_nested", ["positional", "arguments"]),
        # errors, as TF prints them (stdout, exit 0) and the usage line (exit 1)
        ("error-no-such-path", None, ["--file_name=/nonexistent/dir/ckpt-1"]),
        ("usage-no-file-name", None, ["--tensor_name=x"]),
        ("usage-empty-file-name", None, ["--file_name=", "--all_tensors"]),
    ]
)
#: flags where TF 2.21 itself crashes (absl's BooleanParser error has no .message)
TF_CRASH_SPECS = [("crash-bool-yes", "dtypes", ["--all_tensors", "--printoptions", "suppress=yes"])]
#: damaged checkpoints built by the ``damaged`` fixture (case = its key), run through both tools
DAMAGED_SPECS = [
    ("snappy-index-default", "snappy_index_block", []),
    ("snappy-index-names", "snappy_index_block", ["--all_tensor_names"]),
    ("snappy-index-tensor", "snappy_index_block", ["--tensor_name=utf8"]),
]


def _argv(corpus, case, flags):
    prefix = corpus[case].prefix if case else None
    argv = [f.replace("{P}", prefix) if prefix else f for f in flags]
    if case and not any("{P}" in f for f in flags):
        argv.insert(0, f"--file_name={prefix}")
    return argv


def _snappy_index_block_damaged(directory: pathlib.Path) -> str:
    """The committed Snappy-indexed fixture with its index block's Snappy stream declaring
    one byte more than it holds, the block checksum made right: the block passes its CRC
    and fails to decompress ("corrupted compressed block contents")."""
    src = pathlib.Path(__file__).resolve().parent / "fixtures" / "v2_snappy_index"
    shutil.copytree(src, directory)
    index = directory / "strings.index"
    raw = bytearray(index.read_bytes())
    off, size = tfckpt._native.Index(bytes(raw), str(index)).table_stats["index_handle"]
    assert raw[off + size] == 1 and raw[off] < 0x7F  # Snappy; a one-byte length varint
    raw[off] += 1
    crc = tfckpt._native.crc32c(bytes(raw[off : off + size + 1]))
    raw[off + size + 1 : off + size + 5] = tfckpt._native.mask_crc(crc).to_bytes(4, "little")
    index.write_bytes(bytes(raw))
    return str(directory / "strings")


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """{case: prefix} of the damaged checkpoints DAMAGED_SPECS name."""
    d = tmp_path_factory.mktemp("damaged")
    return {"snappy_index_block": _snappy_index_block_damaged(d / "snappy_index_block")}


@pytest.fixture(scope="module")
def tf_inspect(corpus, damaged, tmp_path_factory):
    """{spec id: {"stdout": str, "code": int}}: TF's inspect_checkpoint for every spec."""
    specs = INSPECT_SPECS + TF_CRASH_SPECS + DAMAGED_SPECS
    d = tmp_path_factory.mktemp("tf_inspect")
    runs = [
        [f"--file_name={damaged[c]}", *f] if c in damaged else _argv(corpus, c, f)
        for _, c, f in specs
    ]
    (d / "runs.json").write_text(json.dumps(runs), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", _TF_DRIVER, str(d / "runs.json"), str(d / "out.json")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((d / "out.json").read_text(encoding="utf-8"))
    return {sid: r for (sid, _, _), r in zip(specs, results)}


def run_cli(argv):
    """(exit status, stdout, stderr) of tfckpt.cli.run in-process."""
    out, err = io.StringIO(), io.StringIO()
    before = np.get_printoptions()
    code = cli.run(list(argv), out, err)
    assert np.get_printoptions() == before, "run() left numpy print options changed"
    return code, out.getvalue(), err.getvalue()


def run_proc(args, **kw):
    """A real tfckpt process: CompletedProcess with bytes stdout/stderr."""
    return subprocess.run(TFCKPT + list(args), env=ENV, capture_output=True, timeout=120, **kw)


# ---------------------------------------------------------------------------------------
# inspect_checkpoint parity


@pytest.mark.parametrize("sid,case,flags", INSPECT_SPECS, ids=[s[0] for s in INSPECT_SPECS])
def test_inspect_parity(sid, case, flags, corpus, tf_inspect):
    tf = tf_inspect[sid]
    assert isinstance(tf["code"], int), tf  # TF itself ran to the end
    argv = _argv(corpus, case, flags)
    # `tfckpt --file_name=...` (or whichever inspect flag comes first) ...
    code, out, err = run_cli(argv)
    assert out == tf["stdout"]
    assert code == tf["code"], err
    assert err == ""
    # ... and `tfckpt inspect ...`, the same
    code2, out2, _ = run_cli(["inspect", *argv])
    assert (code2, out2) == (code, out)


def test_inspect_parity_covers_the_brief(tf_inspect):
    """The outputs compared above really contain what they are meant to exercise."""
    assert "\x00scope/pv3\x00" in tf_inspect["default-tf1_partitioned"]["stdout"]  # slice keys
    assert "(bfloat16)" in tf_inspect["tensor-dtypes-dt/bfloat16"]["stdout"]
    assert "[(" not in tf_inspect["tensor-dtypes-dt/qint8"]["stdout"]  # plain ints, not records
    assert "b'\\xff\\x00z'" in tf_inspect["tensor-dtypes-dt/string"]["stdout"]
    assert "..." in tf_inspect["all-dtypes"]["stdout"]  # threshold=5 summarised
    assert "<not convertible to a numpy dtype>" in tf_inspect["all-data_iterator"]["stdout"]
    assert tf_inspect["tensor-missing"]["stdout"] == "Tensor no/such/key not found in checkpoint\n"
    assert tf_inspect["usage-no-file-name"]["stdout"].startswith(
        "Usage: inspect_checkpoint --file_name=checkpoint_file_name"
    )
    assert tf_inspect["usage-no-file-name"]["code"] == 1
    assert "# Excluding " in tf_inspect["count-partitioned"]["stdout"]


@pytest.mark.parametrize("sid,case,flags", DAMAGED_SPECS, ids=[s[0] for s in DAMAGED_SPECS])
def test_inspect_snappy_damaged_index_gives_tensorflows_hint(sid, case, flags, damaged, tf_inspect):
    """An index whose Snappy block cannot be decompressed: TensorFlow prints the error and
    its hint that the file was compressed with SNAPPY (exit 0, whatever the flags); the
    drop-in prints the same hint line, after the same error, said with where it is."""
    tf = tf_inspect[sid]
    tf_lines = tf["stdout"].splitlines(keepends=True)
    assert tf["code"] == 0
    assert tf_lines == [
        "corrupted compressed block contents\n",
        "It's likely that your checkpoint file has been compressed with SNAPPY.\n",
    ]
    argv = [f"--file_name={damaged[case]}", *flags]
    for form in (argv, ["inspect", *argv]):
        code, out, err = run_cli(form)
        lines = out.splitlines(keepends=True)
        assert (code, err) == (tf["code"], "")
        assert len(lines) == 2 and lines[1:] == tf_lines[1:]  # the hint, word for word
        assert lines[0] == (
            f"{damaged[case]}.index: corrupted compressed block contents in "
            "index block at offset 241, size 37 (output length mismatch)\n"
        )


def test_inspect_where_tensorflow_crashes(corpus, tf_inspect):
    """`--printoptions suppress=yes`: TF 2.21 dies with an AttributeError traceback (its
    error path uses ValueError.message); tfckpt prints nothing on stdout either, and one
    line on stderr, exit 2 like any bad printoption."""
    sid, case, flags = TF_CRASH_SPECS[0]
    assert tf_inspect[sid] == {"stdout": "", "code": "crash: AttributeError"}
    code, out, err = run_cli(_argv(corpus, case, flags))
    assert (code, out) == (2, "")
    assert err.startswith("tfckpt: ") and err.count("\n") == 1 and "suppress" in err


def test_inspect_where_tensorflow_fails(corpus):
    """The deliberate differences (see the module docstring), pinned down."""
    # partitioned half tensor: TF prints "Dtype half not supported."; tfckpt prints it
    p = corpus["sharded_policy"].prefix
    code, out, _ = run_cli([f"--file_name={p}", "--tensor_name=half/.ATTRIBUTES/VARIABLE_VALUE"])
    assert code == 0
    assert out.startswith("tensor: half/.ATTRIBUTES/VARIABLE_VALUE (float16) [32, 48]\n[[")
    assert out.endswith("# Total number of params: 11224\n")
    # a directory, a state file, the .index: the checkpoint they lead to
    d = pathlib.Path(corpus["module_nested"].prefix)
    want = run_cli([f"--file_name={d}"])[1]
    for path in (d.parent, d.parent / "checkpoint", f"{d}.index"):
        assert run_cli([f"--file_name={path}"])[1] == want
    # not a checkpoint: one line on stdout saying what the file is, exit 0 as TF
    code, out, _ = run_cli([f"--file_name={corpus['keras_weights'].prefix}"])
    assert code == 0 and out.count("\n") == 1 and "HDF5" in out


# real processes: TF's module itself, and the three ways to start tfckpt's drop-in
_REAL_RUNS = [
    ("all-dtypes", "console"),
    ("default-tf1_partitioned", "inspect"),
    ("usage-empty-file-name", "module"),
]


@pytest.mark.parametrize("sid,form", _REAL_RUNS, ids=[r[0] for r in _REAL_RUNS])
def test_real_module_runs(sid, form, corpus, tf_inspect):
    import tf_oracle

    _, case, flags = next(s for s in INSPECT_SPECS if s[0] == sid)
    argv = _argv(corpus, case, flags)
    assert argv[0].startswith("--file_name=")
    tf = tf_oracle.inspect_result(argv[0][len("--file_name=") :], *argv[1:])
    # the driver is faithful to `python -m tensorflow.python.tools.inspect_checkpoint`
    assert tf.stdout == tf_inspect[sid]["stdout"]
    assert tf.returncode == tf_inspect[sid]["code"]
    cmd = {
        "console": TFCKPT + argv,
        "inspect": TFCKPT + ["inspect"] + argv,
        "module": [sys.executable, "-m", "tfckpt.inspect_checkpoint"] + argv,
    }[form]
    ours = subprocess.run(cmd, env=ENV, capture_output=True, timeout=120)
    assert ours.stdout == tf.stdout.encode("utf-8", "surrogateescape")  # byte for byte
    assert ours.returncode == tf.returncode
    assert ours.stderr == b""


def test_inspect_bad_printoption_is_a_usage_error(corpus):
    p = corpus["module_nested"].prefix
    for opt in ("bogus=1", "threshold=many", "formatter=x", "noequals", "suppress=maybe"):
        code, out, err = run_cli([f"--file_name={p}", "--all_tensors", "--printoptions", opt])
        assert (code, out) == (2, ""), opt
        assert err.startswith("tfckpt: ") and err.count("\n") == 1, err
    # TF applies --printoptions while parsing, before looking at --file_name
    code, out, err = run_cli(["inspect", "--printoptions", "bogus=1"])
    assert (code, out) == (2, "")


# ---------------------------------------------------------------------------------------
# dump


def _data_bytes_on_disk(prefix):
    return sum(os.path.getsize(f) for f in glob.glob(glob.escape(prefix) + ".data-*-of-*"))


def test_dump_exact_listing(corpus):
    p = corpus["name_based_v1_saver_scalar"].prefix
    code, out, err = run_cli(["dump", p])
    assert (code, err) == (0, "")
    assert out == (
        "bf16_var     bfloat16   [4]                     8 B\n"
        "global_step  int64      []                      8 B\n"
        "# 2 tensors, 5 parameters, 16 B in 1 data shard\n"
    )


TOTALS_CASES = [
    "module_nested",
    "tf1_partitioned",
    "dtypes",
    "strings",
    "keras_adam",
    "sharded_policy",
    "multi_device",
    "big_key_count",
    "data_iterator",
]


@pytest.mark.parametrize("case", TOTALS_CASES)
def test_dump_lines_and_totals(case, corpus, oracles):
    o = oracles[case]
    p = corpus[case].prefix
    code, out, err = run_cli(["dump", p])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    listed = o["list_variables"]
    assert len(lines) == len(listed) + 1
    params = sum(int(np.prod(shape)) for _, shape in listed)
    disk = _data_bytes_on_disk(p)
    shards = len(glob.glob(glob.escape(p) + ".data-*-of-*"))
    assert lines[-1] == (
        f"# {len(listed)} tensors, {params} parameters, "
        f"{cli.format_bytes(disk)} in {shards} data shard"
        f"{'s' if shards != 1 else ''}"
    )
    # one line per key, in TF's order: key, dtype, shape, size
    for line, (key, shape) in zip(lines, listed):
        fields = line[len(key) :].split()
        assert line.startswith(key + "  ")
        assert fields[0] == o["dtypes"][key]
        assert fields[1] == "[" + ",".join(map(str, shape)) + "]"
        assert re.fullmatch(r"\d+ B|\d+\.\d (KiB|MiB)", " ".join(fields[2:4]))
    # the same facts, exactly, for scripts
    code, out, _ = run_cli(["dump", p, "--json"])
    doc = json.loads(out)
    assert code == 0
    assert doc["totals"] == {"tensors": len(listed), "parameters": params, "bytes": disk}
    assert [t["key"] for t in doc["tensors"]] == [k for k, _ in listed]
    for t in doc["tensors"]:
        assert t["dtype"] == o["dtypes"][t["key"]]
        assert t["shape"] == o["shapes"][t["key"]]
        assert t["num_elements"] == int(np.prod(t["shape"]))
    assert doc["header"]["num_shards"] == shards
    assert sum(t["size"] for t in doc["tensors"]) == disk


def test_dump_json_details(corpus, oracles):
    p = corpus["tf1_partitioned"].prefix
    doc = json.loads(run_cli(["dump", p, "--json"])[1])
    by_key = {t["key"]: t for t in doc["tensors"]}
    pv3 = by_key["scope/pv3"]
    assert pv3["partitioned"] is True and pv3["shape"] == [7, 4]
    assert pv3["slices"] == ["0,3:0,4", "3,2:0,4", "5,2:0,4"]
    assert pv3["size"] == 7 * 4 * 4
    w = by_key["w"]
    assert w["partitioned"] is False and w["size"] == 48 and w["shard"] == 0
    data = pathlib.Path(glob.glob(glob.escape(p) + ".data-*")[0]).read_bytes()
    want = oracles["tf1_partitioned"]["values"]["w"]
    assert data[w["offset"] : w["offset"] + w["size"]] == want.astype("<f4").tobytes()
    # --all --json: values too
    doc = json.loads(
        run_cli(["dump", corpus["name_based_v1_saver_scalar"].prefix, "--all", "--json"])[1]
    )
    assert [t["value"] for t in doc["tensors"]] == [[1.0, -2.5, 3.140625, "inf"], 42]


def test_dump_tensor_value(corpus, oracles):
    case = "module_nested"
    o = oracles[case]
    p = corpus[case].prefix
    keys = [
        "model/layers/2/0/w/.ATTRIBUTES/VARIABLE_VALUE",
        "model/table/\u043a\u043b\u044e\u0447/.ATTRIBUTES/VARIABLE_VALUE",
        "model/text/.ATTRIBUTES/VARIABLE_VALUE",
        "model/counter/.ATTRIBUTES/VARIABLE_VALUE",
    ]
    for key in keys:
        code, out, err = run_cli(["dump", p, "--tensor", key])
        assert (code, err) == (0, "")
        shape = "[" + ",".join(map(str, o["shapes"][key])) + "]"
        assert out == f"tensor: {key} ({o['dtypes'][key]}) {shape}\n{o['values'][key]}\n"
    # several --tensor, and numpy print options
    code, out, _ = run_cli(
        [
            "dump",
            corpus["tf1_partitioned"].prefix,
            "--tensor",
            "pv2",
            "--tensor",
            "ints",
            "--printoptions",
            "threshold=4",
            "edgeitems=1",
        ]
    )
    o = oracles["tf1_partitioned"]
    with np.printoptions(threshold=4, edgeitems=1):
        assert out == (
            f"tensor: pv2 (float32) [6,3]\n{o['values']['pv2']}\n"
            f"tensor: ints (int32) [5]\n{o['values']['ints']}\n"
        )
    # --json value
    code, out, _ = run_cli(["dump", corpus["dtypes"].prefix, "--tensor", "dt/bfloat16", "--json"])
    doc = json.loads(out)
    want = oracles["dtypes"]["values"]["dt/bfloat16"].astype(np.float64)
    assert doc["dtype"] == "bfloat16" and doc["shape"] == [14]
    assert [float(v) for v in doc["value"]] == pytest.approx(want.tolist(), nan_ok=True)
    # a variant in JSON (its nested tensors as objects), not a crash
    code, out, _ = run_cli(
        [
            "dump",
            corpus["data_iterator"].prefix,
            "--tensor",
            "it/.ATTRIBUTES/ITERATOR_STATE",
            "--json",
        ]
    )
    assert code == 0
    assert json.loads(out)["value"][0]["type_name"] == "tensorflow::Iterator"


def _value_blocks(text, header):
    """{key: printed value} from `header`-matched lines each followed by a value."""
    blocks, key = {}, None
    for line in text.splitlines():
        m = re.match(header, line)
        if m:
            key = m.group(1)
            blocks[key] = []
        elif key is not None and not line.startswith("# "):
            blocks[key].append(line)
    return {k: "\n".join(v) for k, v in blocks.items()}


def test_dump_all_prints_values_as_inspect_does(corpus, tf_inspect):
    """`dump --all --printoptions threshold=5` prints each value as TF's --all_tensors does."""
    for case in ("tf1_partitioned", "dtypes", "module_nested"):
        code, out, _ = run_cli(
            ["dump", corpus[case].prefix, "--all", "--printoptions", "threshold=5"]
        )
        assert code == 0
        ours = _value_blocks(out, r"(\S+)\s+\S+\s+\[[\d,]*\]\s+[\d.]+ \w+")
        theirs = _value_blocks(tf_inspect[f"all-{case}"]["stdout"], r"tensor: (\S+) \(")
        assert ours == theirs


def test_dump_tree_keras(corpus, oracles):
    """Keras 3: the kernels live under optimizer/_trainable_variables; the model's layers
    refer to them as aliases."""
    code, out, err = run_cli(["dump", corpus["keras_adam"].prefix, "--tree"])
    assert (code, err) == (0, "")
    shapes = oracles["keras_adam"]["shapes"]
    for i, layer_var in ((0, "1/_kernel"), (2, "2/_kernel")):
        key = f"optimizer/_trainable_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"
        shape = ",".join(map(str, shapes[key]))
        line = next(ln for ln in out.splitlines() if f"<- {key}" in ln)
        assert f" {i}  float32[{shape}] <- {key}" in line
        assert f"model/_functional/_operations/{layer_var}" in line  # alias shown
        assert re.search(rf"_kernel = same object as optimizer/_trainable_variables/{i}\b", out)
    # the kernels sit under optimizer / _trainable_variables
    lines = out.splitlines()
    i_opt = next(i for i, ln in enumerate(lines) if re.match(r"^[├└]── optimizer\b", ln))
    i_tv = next(i for i, ln in enumerate(lines) if "── _trainable_variables" in ln)
    i_k0 = next(i for i, ln in enumerate(lines) if "<- optimizer/_trainable_variables/0/" in ln)
    assert i_opt < i_tv < i_k0


def test_dump_tree_slots(corpus, oracles):
    code, out, _ = run_cli(["dump", corpus["tf2_optimizer_slots"].prefix, "--tree"])
    assert code == 0
    lines = out.splitlines()
    slot_keys = [
        k for k in oracles["tf2_optimizer_slots"]["list_variables"] if ".OPTIMIZER_SLOT/" in k[0]
    ]
    assert len(slot_keys) == 8
    for key, shape in slot_keys:
        var_key = key.split("/.OPTIMIZER_SLOT/")[0] + "/.ATTRIBUTES/VARIABLE_VALUE"
        slot = key.split("/.OPTIMIZER_SLOT/optimizer/")[1].split("/")[0]
        i = next(i for i, ln in enumerate(lines) if ln.endswith(f"<- {key}"))
        assert f"[slot {slot} of optimizer]  float32[{','.join(map(str, shape))}]" in lines[i]
        # nested under the variable it belongs to
        depth = len(lines[i]) - len(lines[i].lstrip("│├└─ "))
        owner = next(ln for ln in reversed(lines[:i]) if len(ln) - len(ln.lstrip("│├└─ ")) < depth)
        assert owner.endswith(f"<- {var_key}")


def test_dump_tree_json_matches_tensorflow(corpus, oracles):
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    for case in ("tf2_optimizer_slots", "keras_adam"):
        code, out, _ = run_cli(["dump", corpus[case].prefix, "--tree", "--json"])
        assert code == 0
        nodes = json.loads(out)["nodes"]
        g = trackable_object_graph_pb2.TrackableObjectGraph()
        g.ParseFromString(oracles[case]["values"]["_CHECKPOINTABLE_OBJECT_GRAPH"])
        assert len(nodes) == len(g.nodes)
        for n, tn in zip(nodes, g.nodes):
            assert [(c["name"], c["node"]) for c in n["children"]] == [
                (c.local_name, c.node_id) for c in tn.children
            ]
            assert [a["checkpoint_key"] for a in n["attributes"]] == [
                a.checkpoint_key for a in tn.attributes
            ]
            assert [(s["original"], s["slot"], s["node"]) for s in n["slot_variables"]] == [
                (s.original_variable_node_id, s.slot_name, s.slot_variable_node_id)
                for s in tn.slot_variables
            ]


def test_dump_tree_name_based_fails_clearly(corpus):
    code, out, err = run_cli(["dump", corpus["tf1_partitioned"].prefix, "--tree"])
    assert (code, out) == (2, "")
    assert err.startswith("tfckpt: ") and err.count("\n") == 1
    assert "name-based checkpoint" in err and "no object graph" in err


# ---------------------------------------------------------------------------------------
# verify


def _copy(prefix, dest: pathlib.Path) -> str:
    dest.mkdir(parents=True, exist_ok=True)
    for f in glob.glob(glob.escape(prefix) + ".*"):
        if f.endswith(".index") or ".data-" in f:
            shutil.copy(f, dest)
    return str(dest / pathlib.Path(prefix).name)


def _flip(path, offset, bit=0x10):
    b = bytearray(pathlib.Path(path).read_bytes())
    b[offset] ^= bit
    pathlib.Path(path).write_bytes(bytes(b))


def test_verify_ok(corpus):
    for case in ("module_nested", "tf1_partitioned", "sharded_policy", "multi_device"):
        p = corpus[case].prefix
        code, out, err = run_cli(["verify", p])
        n = len(tfckpt.open(p))
        assert (code, err) == (0, "")
        assert out == (
            f"{p}: OK ({n} tensors, {cli.format_bytes(_data_bytes_on_disk(p))} "
            "checked; index blocks verified)\n"
        )
        code, out, _ = run_cli(["verify", p, "--json"])
        doc = json.loads(out)
        assert code == 0
        assert doc == {
            "prefix": p,
            "ok": True,
            "tensors_checked": n,
            "tensors_damaged": 0,
            "bytes_checked": _data_bytes_on_disk(p),
            "damaged": [],
        }
        assert run_cli(["verify", p, "-q"])[:2] == (0, "")


def test_verify_names_the_damaged_tensor(corpus, oracles, tmp_path):
    case = "tf2_optimizer_slots"
    p = _copy(corpus[case].prefix, tmp_path / "plain")
    key = "model/out/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    doc = json.loads(run_cli(["dump", p, "--json"])[1])
    e = next(t for t in doc["tensors"] if t["key"] == key)
    _flip(f"{p}.data-00000-of-00001", e["offset"] + 5)
    code, out, err = run_cli(["verify", p])
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"DAMAGED {key}: ") and "Checksum does not match" in lines[0]
    n = len(oracles[case]["list_variables"])
    assert lines[1] == (
        f"{p}: 1 of {n} tensors damaged "
        f"({cli.format_bytes(_data_bytes_on_disk(p))} checked; index blocks "
        "verified)"
    )
    code, out, _ = run_cli(["verify", p, "--json"])
    doc = json.loads(out)
    assert code == 1
    assert doc["ok"] is False and doc["tensors_checked"] == n and doc["tensors_damaged"] == 1
    assert doc["bytes_checked"] == _data_bytes_on_disk(p)
    assert [d["key"] for d in doc["damaged"]] == [key]
    assert "Checksum does not match" in doc["damaged"][0]["error"]
    # -q still prints the damage
    assert run_cli(["verify", p, "-q"])[:2] == (1, "\n".join(lines) + "\n")


def test_verify_names_a_damaged_slice_by_its_tensor(corpus, tmp_path):
    """A partitioned tensor's slice entry is named as the tensor and slice, never by its raw
    index key (which holds NUL and control bytes)."""
    p = _copy(corpus["tf1_partitioned"].prefix, tmp_path / "part")
    r = tfckpt.open(p)

    e = r.entry("scope/pv3")
    sub = r.slice_entry("scope/pv3", e.slices[1])
    r.close()
    _flip(glob.glob(p + ".data-*")[0], sub.offset + 2)
    code, out, _ = run_cli(["verify", p])
    assert code == 1
    assert out.startswith("DAMAGED scope/pv3 (slice 3,2:0,4): ")
    assert "\x00" not in out and "\x01" not in out
    assert out.splitlines()[1].endswith(
        " 1 of 16 tensors damaged (780 B checked; index blocks verified)"
    )
    doc = json.loads(run_cli(["verify", p, "--json"])[1])
    assert [(d["key"], d["slice"]) for d in doc["damaged"]] == [("scope/pv3", "3,2:0,4")]


# ---------------------------------------------------------------------------------------
# exit statuses and stderr, as processes


def _one_line(stderr: bytes) -> str:
    text = stderr.decode()
    assert "Traceback" not in text
    assert text.startswith("tfckpt: ") and text.endswith("\n") and text.count("\n") == 1, text
    return text


def test_exit_nonexistent_path():
    for cmd in (["dump"], ["verify"], ["dump", "--tree"]):
        r = run_proc(cmd + ["/nonexistent/dir/ckpt-1"])
        assert r.returncode == 2 and r.stdout == b""
        assert "/nonexistent/dir/ckpt-1" in _one_line(r.stderr)


def test_exit_missing_key(corpus):
    r = run_proc(["dump", corpus["module_nested"].prefix, "--tensor", "no/such/key"])
    assert r.returncode == 2 and r.stdout == b""
    assert "no/such/key" in _one_line(r.stderr)


def test_exit_hdf5(corpus):
    r = run_proc(["dump", corpus["keras_weights"].prefix])
    assert r.returncode == 2 and r.stdout == b""
    assert "HDF5" in _one_line(r.stderr)


def test_exit_corrupt_index(corpus, tmp_path):
    p = _copy(corpus["tf2_optimizer_slots"].prefix, tmp_path / "c")
    _flip(p + ".index", 40, 0x01)  # inside the first data block: its CRC no longer matches
    for cmd in (["dump", p], ["verify", p]):
        r = run_proc(cmd)
        assert r.returncode == 1 and r.stdout == b""
        assert "checksum mismatch" in _one_line(r.stderr)


def test_exit_missing_shard(corpus, tmp_path):
    p = _copy(corpus["multi_device"].prefix, tmp_path / "m")
    shards = sorted(glob.glob(p + ".data-*"))
    assert len(shards) == 3
    os.remove(shards[1])
    r = run_proc(["verify", p])
    assert r.returncode == 1 and r.stderr == b""
    assert r.stdout.startswith(b"MISSING data shard 1: ") and b"DAMAGED" not in r.stdout


def test_verify_names_a_missing_shard_once_and_counts_only_bytes_read(corpus, tmp_path):
    p = _copy(corpus["multi_device"].prefix, tmp_path / "m")
    shards = sorted(glob.glob(p + ".data-*"))
    with tfckpt.open(p) as r:
        in_shard = sorted(k for k in r.keys() if r.entry(k).shard_id == 1)
        total = r.summary()[5]
        gone = sum(r.entry(k).size for k in in_shard)
    os.remove(shards[1])
    code, out, err = run_cli(["verify", p])
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines[0] == (
        f"MISSING data shard 1: {shards[1]}: does not exist "
        f"({len(in_shard)} stored entries need it)"
    )
    # The shard is named once: no line per tensor it holds (the keys are in --json).
    assert len(lines) == 2
    assert lines[-1] == (
        f"{p}: {len(in_shard)} of {len(tfckpt.open(p))} tensors damaged "
        f"({cli.format_bytes(total - gone)} checked; index blocks verified)"
    )
    code, text, err = run_cli(["verify", p, "--json"])
    assert (code, err) == (1, "")
    doc = json.loads(text)
    assert doc["bytes_checked"] == total - gone
    assert doc["ok"] is False and doc["tensors_damaged"] == len(in_shard)
    assert doc["damaged"] == []  # nothing but the shard is wrong
    assert doc["shards_missing"] == [
        {
            "shard": 1,
            "path": shards[1],
            "tensors": len(in_shard),
            "error": "does not exist",
            "keys": in_shard,
        }
    ]


def test_verify_unreadable_shard_is_an_io_error(corpus, tmp_path):
    """A shard that is there but cannot be read is exit 2, named once with the cause; no
    tensor is called damaged and no byte counted as checked."""
    p = _copy(corpus["module_nested"].prefix, tmp_path / "u")
    shard = glob.glob(p + ".data-*")[0]
    os.remove(shard)
    os.mkdir(shard)  # EISDIR, which even root meets
    with tfckpt.open(p) as r:
        n = len(r)
        entries = sum(1 for row in r.listing(hidden=True) if not row[6])
        with pytest.raises(tfckpt.UnreadableShardError) as info:
            r.read(r.keys()[0])
    assert info.value.reason == "Is a directory" and info.value.path == shard
    assert isinstance(info.value, tfckpt.MissingShardError)  # as before the two were told apart
    code, out, err = run_cli(["verify", p])
    assert code == 2
    assert err == (
        f"tfckpt: cannot read data shard {shard}: Is a directory ({entries} stored "
        "entries not checked)\n"
    )
    assert out == (
        f"{p}: NOT VERIFIED: {n} of {n} tensors could not be read, 0 damaged "
        "(0 B checked; index blocks verified)\n"
    )
    doc = json.loads(run_cli(["verify", p, "--json"])[1])
    assert (doc["ok"], doc["bytes_checked"], doc["tensors_damaged"]) == (False, 0, 0)
    code, out, err = run_cli(["dump", p, "--tensor", tfckpt.open(p).keys()[0]])
    assert (
        code == 2
        and out == ""
        and err.startswith(f"tfckpt: Cannot open data shard {shard}: Is a directory")
    )


def test_verify_permission_denied_shard_is_exit_2(corpus, tmp_path):
    """A shard whose mode forbids reading: exit 2, one line naming the cause. Root reads
    files whatever their mode, so as root the command runs without the capabilities that
    let it (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, dropped from its bounding set)."""
    import ctypes

    p = _copy(corpus["module_nested"].prefix, tmp_path / "perm")
    shard = glob.glob(p + ".data-*")[0]
    os.chmod(shard, 0)

    def drop_read_override():
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    as_root = os.geteuid() == 0
    proc = subprocess.run(
        TFCKPT + ["verify", p],
        env=ENV,
        capture_output=True,
        timeout=120,
        preexec_fn=drop_read_override if as_root else None,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert err == (
        f"tfckpt: cannot read data shard {shard}: Permission denied "
        f"({_stored_entries(p)} stored entries not checked)\n"
    )


def _stored_entries(prefix):
    with tfckpt.open(prefix) as r:
        return sum(1 for row in r.listing(hidden=True) if not row[6])


def test_unreadable_directory_is_not_a_directory_without_checkpoints(tmp_path, monkeypatch):
    real = os.scandir

    def denied(path="."):
        if os.fspath(path) == str(tmp_path):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(
        tfckpt.UnreadableError, match="^Cannot read directory .*: Permission denied$"
    ):
        tfckpt.open(str(tmp_path))
    code, out, err = run_cli(["dump", str(tmp_path)])
    assert (code, out) == (2, "")
    assert err == f"tfckpt: Cannot read directory {tmp_path}: Permission denied\n"


_LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 12345\n"
)


def test_git_lfs_pointer_wherever_it_sits(corpus, tmp_path):
    """A git-lfs pointer saved as the .index or as a data shard is named as such, with the
    advice to run git lfs pull: never "bad magic number" nor a checksum failure per key."""
    advice = "it is a git-lfs pointer file, not the checkpoint itself; run 'git lfs pull'"
    p = _copy(corpus["module_nested"].prefix, tmp_path / "idx")
    pathlib.Path(p + ".index").write_bytes(_LFS_POINTER)
    with pytest.raises(tfckpt.GitLfsPointerError) as info:
        tfckpt.open(p)
    assert str(info.value).startswith(f"{p}.index: {advice}")
    for argv in (["dump", p], ["verify", p], ["dump", p + ".index"]):
        code, out, err = run_cli(argv)
        assert (code, out) == (1, ""), argv
        assert err == f"tfckpt: {p}.index: {advice} to fetch the real file\n"
    q = _copy(corpus["module_nested"].prefix, tmp_path / "data")
    shard = glob.glob(q + ".data-*")[0]
    pathlib.Path(shard).write_bytes(_LFS_POINTER)
    with tfckpt.open(q) as r:
        key = r.keys()[0]
        n_entries = sum(1 for row in r.listing(hidden=True) if not row[6])
        with pytest.raises(tfckpt.GitLfsPointerError, match="git lfs pull"):
            r.read(key)
    code, out, err = run_cli(["verify", q])
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines[0] == (
        f"MISSING data shard 0: {shard}: {advice} to fetch the real file "
        f"({n_entries} stored entries need it)"
    )
    assert len(lines) == 2 and lines[1].startswith(f"{q}: ")  # named once, no line per key
    assert "Checksum" not in out
    code, out, err = run_cli(["dump", q, "--tensor", key])
    assert code == 1 and "git lfs pull" in err


def test_git_lfs_pointer_as_a_v1_checkpoint(tmp_path):
    path = tmp_path / "model.ckpt-00000-of-00001"
    path.write_bytes(_LFS_POINTER)
    code, out, err = run_cli(["dump", str(path)])
    assert (code, out) == (2, "") and "git lfs pull" in err


def test_hostile_key_names_are_escaped_in_human_output(tmp_path):
    """Keys and paths with escape sequences cannot clear the screen, set the window title
    or forge lines in dump, scan, verify and error lines; JSON keeps them exact."""
    hostile = "a\x1b[2J\x1b]0;owned\x07\nDAMAGED fake\rb"
    shown = "a\\x1b[2J\\x1b]0;owned\\x07\\nDAMAGED fake\\rb"
    d = tmp_path / "d\x1b[31m"
    prefix = str(d / "ckpt")
    with tfckpt.Writer(prefix) as w:
        w.add(hostile, np.zeros(2, np.float32))
    shown_dir = str(tmp_path) + "/d\\x1b[31m"
    code, out, err = run_cli(["dump", prefix])
    assert (code, err) == (0, "")
    assert out.splitlines()[0].startswith(shown + "  float32")
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    code, out, _ = run_cli(["dump", prefix, "--tensor", hostile])
    assert code == 0 and out.splitlines()[0] == f"tensor: {shown} (float32) [2]"
    assert json.loads(run_cli(["dump", prefix, "--json"])[1])["tensors"][0]["key"] == hostile
    code, out, _ = run_cli(["scan", str(tmp_path), "--keys"])
    assert code == 0 and "\x1b" not in out and f"{shown_dir}/ckpt  {shown}" in out
    assert all(not ln.startswith("DAMAGED") for ln in out.splitlines())
    code, out, _ = run_cli(["scan", str(tmp_path), "--keys", "--format", "jsonl"])
    assert json.loads(out.splitlines()[0])["key"] == hostile
    code, out, _ = run_cli(["verify", prefix])
    assert (code, out) == (
        0,
        f"{shown_dir}/ckpt: OK (1 tensors, 8 B checked; index blocks verified)\n",
    )
    code, out, err = run_cli(["dump", prefix, "--tensor", "no\x1b]0;x\x07"])
    assert code == 2 and "\x1b" not in err and "\x07" not in err and err.count("\n") == 1


def test_dump_tensor_json_is_streamed_and_exact(tmp_path):
    """dump --tensor K --json writes a big tensor chunk by chunk: the same JSON as the whole
    value converted at once, with memory for one chunk (not ~55 bytes per element)."""
    import tracemalloc

    import ml_dtypes

    big = np.arange(2_000_000, dtype=np.float32) / 7
    f = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 3
    f[0, 1, 2], f[1, 2, 3] = np.nan, -np.inf
    values = {
        "big": big,
        "f": f,
        "c": (np.arange(6) + 1j).astype(np.complex64).reshape(3, 2),
        "bf": np.array([1.5, -2, 3], ml_dtypes.bfloat16),
        "b": np.array([[True], [False]]),
        "wide": np.arange(70_000, dtype=np.int64).reshape(1, 70_000),
        "empty": np.zeros((2, 0), np.int8),
    }
    prefix = str(tmp_path / "ck")
    with tfckpt.Writer(prefix) as w:
        for k, v in values.items():
            w.add(k, v)

    def expected(k, v):
        def fix(x):
            if isinstance(x, list):
                return [fix(y) for y in x]
            if isinstance(x, complex):
                return [x.real, x.imag]
            if isinstance(x, float) and not np.isfinite(x):
                return str(x)
            return x

        as_list = v.astype(np.float64).tolist() if v.dtype == ml_dtypes.bfloat16 else v.tolist()
        return (
            json.dumps(
                {
                    "key": k,
                    "dtype": tfckpt.open(prefix).entry(k).dtype_name,
                    "shape": list(v.shape),
                    "value": fix(as_list),
                }
            )
            + "\n"
        )

    for k, v in values.items():
        if k != "big":
            code, out, err = run_cli(["dump", prefix, "--tensor", k, "--json"])
            assert (code, err, out) == (0, "", expected(k, v)), k
    code, out, _ = run_cli(["dump", prefix, "--tensor", "big", "--json"])
    assert code == 0 and out == expected("big", big)

    class Sink(io.TextIOBase):
        def write(self, text):
            return len(text)

    tracemalloc.start()
    try:
        assert cli.run(["dump", prefix, "--tensor", "big", "--json"], Sink(), io.StringIO()) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak  # whole: 2M elements x ~55 bytes = ~110 MB


def test_version_and_dir_list_what_a_user_looks_for():
    code, out, _ = run_cli(["--version"])
    assert code == 0 and out.startswith(f"tfckpt {tfckpt.__version__} (")
    assert out == cli.version_text() + "\n" and tfckpt.crc32c_implementation in out
    names = dir(tfckpt)
    for lazy in ("Writer", "edit", "scan", "diff", "migrate", "optimizer_keys"):
        assert lazy in names, lazy
    assert "open" in names and "Reader" in names


def test_missing_key_gets_the_closest_keys_and_the_object_key(corpus, tmp_path):
    p = corpus["tf2_optimizer_slots"].prefix
    kernel = "model/hidden/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    code, out, err = run_cli(["dump", p, "--tensor", "model/hidden/kernel"])
    assert (code, out) == (2, "")
    assert err == (
        f"tfckpt: Key model/hidden/kernel not found in checkpoint {p}; it is an "
        f"object path: its value is the key {kernel}\n"
    )
    code, _, err = run_cli(["dump", p, "--tensor", kernel.replace("kernel", "kernal")])
    assert code == 2 and err.endswith(
        f"; did you mean {kernel} or model/hidden/bias/.ATTRIBUTES/VARIABLE_VALUE or "
        "model/out/kernel/.ATTRIBUTES/VARIABLE_VALUE?\n"
    )  # the closest first
    code, _, err = run_cli(["edit", p, "-o", str(tmp_path / "o"), "--drop", "model/hidden/kernel"])
    assert code == 2 and f"its value is the key {kernel}" in err
    code, _, err = run_cli(["dump", p, "--tensor", "zzzzzz"])
    assert code == 2 and err == f"tfckpt: Key zzzzzz not found in checkpoint {p}\n"


def test_errors_name_command_line_flags(corpus, tmp_path):
    p = corpus["tf2_optimizer_slots"].prefix
    out = str(tmp_path / "o")
    assert run_cli(["edit", p, "-o", out])[0] == 0
    code, _, err = run_cli(["edit", p, "-o", out])
    assert code == 2 and "(--overwrite)" in err
    np.save(str(tmp_path / "k.npy"), np.zeros(3, np.float32))
    kernel = "model/hidden/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    code, _, err = run_cli(
        ["edit", p, "-o", out, "--overwrite", "--set", f"{kernel}={tmp_path / 'k.npy'}"]
    )
    assert code == 2 and "(--allow-shape-change)" in err


def test_dump_of_a_directory_says_which_checkpoint_it_chose(corpus, tmp_path):
    src = corpus["tf2_optimizer_slots"].prefix
    d = tmp_path / "run"
    p = _copy(src, d)
    code, out, _ = run_cli(["dump", str(d)])
    assert code == 0 and out.splitlines()[0] == f"# {p}: the checkpoint found in {d}"
    (d / "checkpoint").write_text(f'model_checkpoint_path: "{os.path.basename(p)}"\n')
    code, out, _ = run_cli(["dump", str(d)])
    assert out.splitlines()[0] == (
        f"# {p}: the latest checkpoint in {d}, as its 'checkpoint' state file says"
    )
    code, out, _ = run_cli(["dump", p])
    assert not out.startswith("#")


def test_progress_line_leaves_no_stale_characters():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    progress = cli.Progress("verifying", stream, total=10**9)
    progress.update(10**8)
    progress.last = float("-inf")
    progress.update(1)
    progress.close()
    draws = stream.getvalue().split("\r")[1:]
    assert all(d.endswith("\033[K") for d in draws[:-1]), draws
    assert draws[-1] == "\033[K"


def _readme_exit_table():
    """{command: (what 0, 1 and 2 mean)} from the table in README.md."""
    text = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (.*) \| (.*) \| (.*) \|$", text, re.M)
    return {cmd: cells for cmd, *cells in rows}


def test_readme_exit_status_table_is_true(corpus, tmp_path):
    """Every subcommand has a row in README's exit status table, and each status the row
    describes is the status of a run that does what the cell says."""
    table = _readme_exit_table()
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert sorted(table) == sorted(commands)
    good = _copy(corpus["tf2_optimizer_slots"].prefix, tmp_path / "good")
    other = corpus["name_based_v1_saver_scalar"].prefix
    damaged = _copy(corpus["tf2_optimizer_slots"].prefix, tmp_path / "damaged")
    doc = json.loads(run_cli(["dump", damaged, "--json"])[1])
    kernel = "model/hidden/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    _flip(
        damaged + ".data-00000-of-00001",
        next(t["offset"] for t in doc["tensors"] if t["key"] == kernel) + 1,
    )
    bad_index = _copy(corpus["tf2_optimizer_slots"].prefix, tmp_path / "bad_index")
    _flip(bad_index + ".index", 40, 0x01)
    unreadable = _copy(corpus["tf2_optimizer_slots"].prefix, tmp_path / "unreadable")
    os.remove(unreadable + ".data-00000-of-00001")
    os.mkdir(unreadable + ".data-00000-of-00001")
    edited = str(tmp_path / "edited")
    assert (
        run_cli(
            ["edit", good, "-o", edited, "--drop", "model/out/bias/.ATTRIBUTES/VARIABLE_VALUE"]
        )[0]
        == 0
    )
    nowhere = str(tmp_path / "nowhere" / "ckpt")
    out = lambda name: str(tmp_path / "out" / name)  # noqa: E731
    runs = {
        "dump": ([good], [bad_index], [nowhere]),
        "verify": ([good], [damaged], [unreadable]),
        "inspect": ([f"--file_name={good}"], [], [f"--file_name={good}", "--printoptions", "nope"]),
        "scan": (
            [str(tmp_path / "good")],
            [str(tmp_path / "damaged"), "--verify"],
            [str(tmp_path / "good"), "--jobs", "0"],
        ),
        "refs": ([good], [bad_index], [nowhere]),
        "edit": (
            [good, "-o", out("e0")],
            [damaged, "-o", out("e1")],
            [good, "-o", out("e2"), "--drop", "no/such/key"],
        ),
        "average": (
            [good, good, "-o", out("a0")],
            [damaged, good, "-o", out("a1")],
            [good, "-o", out("a2")],
        ),
        "migrate": (
            [good, "--like", good, "-o", out("m0")],
            [other, "--like", good, "-o", out("m1")],
            [good, "--like", nowhere, "-o", out("m2")],
        ),
        "diff": ([good, good], [good, edited], [good, nowhere]),
        "explain": (
            [good, "--against", good],
            [other, "--against", good],
            [good, "--against", nowhere],
        ),
        "convert": ([good, out("c0.npz")], [damaged, out("c1.npz")], [good, out("c2.xyz")]),
        "stats": ([good], [damaged], [nowhere]),
        "plot": (
            [str(tmp_path / "good"), "-o", out("p0.png")],
            [str(tmp_path / "mixed"), "-o", out("p1.png")],
            [str(tmp_path / "good"), "-o", out("p2.xyz")],
        ),
    }
    _copy(good, tmp_path / "mixed" / "a")  # a run with one damaged checkpoint
    _copy(damaged, tmp_path / "mixed" / "b")
    (tmp_path / "out").mkdir(exist_ok=True)
    assert sorted(runs) == sorted(table)
    for command, by_status in runs.items():
        for status, argv in enumerate(by_status):
            code, _, err = run_cli([command] + argv)
            assert code == status, (command, argv, err)
            assert "internal error" not in err and "Traceback" not in err


def test_dump_parameters_counts_the_model_apart_from_the_optimizer(corpus):
    p = corpus["tf2_optimizer_slots"].prefix
    code, out, err = run_cli(["dump", p, "--parameters"])
    assert (code, err) == (0, "")
    # model: kernels 4x3 and 3x2, biases 3 and 2, save_counter; optimizer: m and v of each
    # variable, beta1_power and beta2_power
    assert out == "# 72 parameters: 24 in 5 model tensors, 48 in 10 tensors of optimizer state\n"
    doc = json.loads(run_cli(["dump", p, "--parameters", "--json"])[1])
    assert doc["parameters"] == {
        "model": 24,
        "optimizer": 48,
        "model_tensors": 5,
        "optimizer_tensors": 10,
    }


def test_dump_and_verify_read_the_archive_locations_scan_prints(corpus, tmp_path):
    import tarfile
    import zipfile

    p = _copy(corpus["tf2_optimizer_slots"].prefix, tmp_path / "run")
    files = sorted(glob.glob(p + ".*"))
    tar, zf, tgz = (str(tmp_path / n) for n in ("a.tar", "a.zip", "a.tar.gz"))
    for path, mode in ((tar, "w"), (tgz, "w:gz")):
        with tarfile.open(path, mode) as t:
            for f in files:
                t.add(f, arcname="run/" + os.path.basename(f))
    with zipfile.ZipFile(zf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, "run/" + os.path.basename(f))
    listing = run_cli(["dump", p])[1]
    for archive in (tar, zf):
        code, out, _ = run_cli(["scan", archive, "--format", "jsonl"])
        location = json.loads(out.splitlines()[0])["location"]
        assert location == f"{archive}!/run/ckpt-1"
        for where in (location, location + ".index"):
            code, out, err = run_cli(["dump", where])
            assert (code, err, out) == (0, "", listing)
        code, out, err = run_cli(["verify", location])
        assert (code, err) == (0, "") and out.startswith(f"{location}: OK (16 tensors, ")
    code, out, err = run_cli(["dump", f"{tgz}!/run/ckpt-1"])
    assert (code, out) == (2, "")
    assert err == (
        f"tfckpt: {tgz} is a compressed tar, whose members cannot be read in "
        "place: unpack it, or 'tfckpt scan' it\n"
    )
    code, _, err = run_cli(["dump", f"{tar}!/run/ckpt-9"])
    assert code == 2 and err == f"tfckpt: No checkpoint index at {tar}!/run/ckpt-9.index\n"


def test_exit_usage_errors():
    for args in (["dump"], ["bogus"], ["dump", "x", "--no-such-flag"]):
        r = run_proc(args)
        assert r.returncode == 2 and b"Traceback" not in r.stderr, args
    assert run_proc(["--help"]).returncode == 0
    # the inspect usage line: stdout, status 1, as TensorFlow's tool
    r = run_proc(["inspect"])
    assert r.returncode == 1 and r.stdout.startswith(b"Usage: inspect_checkpoint --file_name=")


def test_main_never_shows_a_traceback(monkeypatch, capsys):
    """Even a bug ends in one line on stderr and status 2 (the console entry point)."""

    def broken(argv=None, out=None, err=None):
        raise ValueError("something unexpected")

    monkeypatch.setattr(cli, "run", broken)
    sigpipe = signal.getsignal(signal.SIGPIPE)  # main() sets SIG_DFL: keep pytest's
    try:
        with pytest.raises(SystemExit) as info:
            cli.main(["dump", "x"])
    finally:
        signal.signal(signal.SIGPIPE, sigpipe)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "tfckpt: internal error: ValueError: something unexpected\n"


# ---------------------------------------------------------------------------------------
# a pipe into head


def test_pipe_into_head_ends_quietly(corpus):
    """`tfckpt dump P | head -n 1`: tfckpt is ended by SIGPIPE, as `cat` or `grep` would be
    (decided: no Python exception, no message; the status is the signal's). As processes
    that is a return code of -SIGPIPE; a shell with pipefail reports 128 + 13 = 141."""
    p = corpus["big_key_count"].prefix
    first = run_cli(["dump", p])[1].splitlines()[0] + "\n"
    for cmd in (
        TFCKPT + ["dump", p],
        TFCKPT + [f"--file_name={p}", "--all_tensors"],
        [
            sys.executable,
            "-m",
            "tfckpt.inspect_checkpoint",
            f"--file_name={p}",
            "--all_tensor_names",
        ],
    ):
        with (
            subprocess.Popen(
                cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            ) as producer,
            subprocess.Popen(
                ["head", "-n", "1"], stdin=producer.stdout, stdout=subprocess.PIPE
            ) as head,
        ):
            producer.stdout.close()  # only head holds the read end now
            head_out = head.communicate(timeout=60)[0]
            err = producer.stderr.read()
            producer.wait(timeout=60)
        assert err == b"", cmd
        assert producer.returncode == -signal.SIGPIPE, cmd
        assert head.returncode == 0 and head_out.count(b"\n") == 1
    assert head_out.startswith(b"tensor: big/00000/")
    # the same as a shell pipeline
    sh = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{' '.join(TFCKPT)} dump '{p}' | head -n 1"],
        env=ENV,
        capture_output=True,
        timeout=60,
    )
    assert sh.stderr == b""
    assert sh.stdout.decode() == first
    assert sh.returncode == 128 + signal.SIGPIPE  # 141
    sh = subprocess.run(
        ["bash", "-c", f"{' '.join(TFCKPT)} dump '{p}' | head -n 1"],
        env=ENV,
        capture_output=True,
        timeout=60,
    )
    assert (sh.returncode, sh.stderr) == (0, b"")  # without pipefail: head's status


# ---------------------------------------------------------------------------------------
# progress on a terminal


def _run_with_stderr_on_pty(cmd, timeout=60.0):
    """Runs `cmd` with stderr on a pseudo-terminal; returns (status, stdout, tty bytes)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            cmd, env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave
        )
    finally:
        os.close(slave)
    tty = b""
    deadline = time.monotonic() + timeout
    with proc:
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer of the slave is gone
                    break
                if not chunk:
                    break
                tty += chunk
            stdout = proc.stdout.read()
            proc.wait(timeout=timeout)
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
    return proc.returncode, stdout, tty


@pytest.mark.parametrize("case", ["big_key_count", "strings"])
def test_verify_progress_on_a_terminal(case, corpus):
    p = corpus[case].prefix
    code, stdout, tty = _run_with_stderr_on_pty(TFCKPT + ["verify", p])
    assert code == 0
    text = tty.decode()
    assert "verifying:" in text
    assert re.search(r"verifying:\s+\d+\.\d%", text)
    assert "100.0%" in text
    assert text.endswith("\r\x1b[K")  # the progress line is cleared at the end
    assert stdout.decode() == (
        f"{p}: OK ({len(tfckpt.open(p))} tensors, "
        f"{cli.format_bytes(_data_bytes_on_disk(p))} checked; index "
        "blocks verified)\n"
    )
    # not a terminal: nothing but the result
    r = run_proc(["verify", p])
    assert (r.returncode, r.stderr, r.stdout) == (0, b"", stdout)


@pytest.mark.parametrize(
    "command, label",
    [
        ("stats", "stats"),
        ("scan", "scanning"),
        ("diff", "diffing"),
        ("average", "averaging"),
        ("convert", "converting"),
        ("edit", "writing"),
        ("plot", "plot"),
    ],
)
def test_long_commands_draw_progress_on_a_terminal_only(command, label, corpus, tmp_path):
    """Each long command draws its progress line (tqdm) on a terminal and clears it; its
    output is the same as in a pipe, where stderr stays empty."""
    good = corpus["tf2_optimizer_slots"].prefix
    run_dir = pathlib.Path(good).parent
    argv = {
        "stats": ["stats", good, "--json"],
        "scan": ["scan", str(run_dir), "--format", "jsonl"],
        "diff": ["diff", good, good, "--json"],
        "average": ["average", good, good, "-o", "{out}/avg"],
        "convert": ["convert", good, "{out}/c.npz"],
        "edit": ["edit", good, "-o", "{out}/e", "--json"],
        "plot": ["plot", str(run_dir), "-o", "{out}/p.png"],
    }[command]
    outputs = []
    for where in ("tty", "pipe"):
        out = tmp_path / where
        out.mkdir()
        args = [a.replace("{out}", str(out)) for a in argv]
        if where == "tty":
            code, stdout, tty = _run_with_stderr_on_pty(TFCKPT + args)
            text = tty.decode()
            assert re.search(rf"\r{label}: ", text), text
            if command == "scan":
                assert re.search(r"scanning: \d+ records, 0 with errors, [\d.]+/s", text)
            else:
                assert re.search(rf"{label}: +\d+\.\d%  \d", text), text
            assert text.endswith("\r\x1b[K")  # cleared at the end
        else:
            r = run_proc(args)
            code, stdout = r.returncode, r.stdout
            assert r.stderr == b""  # a pipe gets no progress line
        assert code == 0, stdout
        outputs.append(stdout.decode().replace(str(out), "OUT"))
    if command == "scan":  # one record per checkpoint, whatever the timing column says
        outputs = [[json.loads(x)["location"] for x in o.splitlines()] for o in outputs]
    assert outputs[0] == outputs[1]
    assert outputs[0]


def test_dump_starts_without_numpy_scanning_or_compat(tmp_path):
    """Listing a checkpoint is the command run most, and its cost is the start: `tfckpt
    dump` imports neither numpy, nor the scanning package (whose output formats the scan
    parser spells itself; they agree), nor the TensorFlow-compatible API."""
    import subprocess
    import sys

    from tfckpt.cli import scan as cli_scan
    from tfckpt.scanning import FORMATS

    assert cli_scan.FORMATS == FORMATS
    prefix = tfckpt.write(tmp_path / "ckpt", {"w": np.arange(3, dtype=np.float32)})
    code = (
        "import sys\n"
        "from tfckpt.cli import main\n"
        "try:\n"
        "    main(['dump', sys.argv[1]])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "names = [m for m in ('numpy', 'tfckpt.scanning', 'tfckpt.compat') if m in sys.modules]\n"
        "print('loaded:', names)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, prefix], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split()[:3] == ["w", "float32", "[3]"]
    assert proc.stdout.strip().splitlines()[-1] == "loaded: []"
