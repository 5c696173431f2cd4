"""Golden fixtures: tiny committed checkpoints of every format variant, replayed WITHOUT
TensorFlow, so a change that breaks reading old files fails in seconds.

``tests/fixtures/manifest.json`` says, per fixture, which paths open it, what the header
says, each file's SHA-256, and per key the dtype, shape, slices and a digest of the value
(:func:`digest`). ``tests/make_fixtures.py`` (with TensorFlow) regenerates the tree.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib.abc
import io
import json
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
MANIFEST = "manifest.json"


def digest(value) -> str:
    """sha256 of a value's canonical bytes: little-endian C-order elements for numbers;
    for strings, each element as an 8-byte little-endian length and its bytes; for
    variants, each element's type name, metadata and tensors (dtype, shape, digest), each
    length-prefixed."""
    return hashlib.sha256(_canonical(np.asarray(value))).hexdigest()


def _canonical(arr) -> bytes:
    if arr.dtype == object:
        out = bytearray()
        for x in arr.reshape(-1).tolist():
            out += _framed(x if isinstance(x, bytes) else _variant_bytes(x))
        return bytes(out)
    arr = np.ascontiguousarray(arr)
    if sys.byteorder == "big" and arr.dtype.itemsize > 1:  # pragma: no cover
        unit = arr.dtype.itemsize // (2 if arr.dtype.kind == "c" else 1)
        arr = arr.view(f"u{unit}").byteswap()
    return arr.tobytes()


def _framed(b: bytes) -> bytes:
    return len(b).to_bytes(8, "little") + b


def _variant_bytes(v) -> bytes:
    parts = [
        _framed(v.type_name.encode()),
        _framed(bytes(v.metadata)),
        len(v.tensors).to_bytes(8, "little"),
    ]
    for t in v.tensors:
        t = np.asarray(t)
        parts.append(_framed(str(t.dtype).encode() + repr(list(t.shape)).encode()))
        parts.append(_framed(_canonical(t)))
    return b"".join(parts)


def _manifest() -> dict:
    return json.loads((FIXTURES / MANIFEST).read_text())


# Collected without failing when the manifest is missing (test_tree_is_small then fails),
# so that make_fixtures.py can import digest() before the first manifest exists.
FIXTURE_NAMES = sorted(_manifest()["fixtures"]) if (FIXTURES / MANIFEST).is_file() else []


@pytest.fixture(scope="module")
def manifest():
    return _manifest()


@pytest.fixture(scope="module", autouse=True)
def tf_loaded_before():
    """Whether TensorFlow was imported before this module's tests ran (by other modules of
    a whole-suite run): then "tensorflow" in sys.modules proves nothing, and
    ``tensorflow_imports`` below is what catches an import."""
    return "tensorflow" in sys.modules


class _ImportWatch(importlib.abc.MetaPathFinder):
    """Records every import of TensorFlow on the main thread: through the import statement
    (``builtins.__import__``, which sees it even when TensorFlow is already loaded) and
    through the finders (``importlib.import_module`` of a module not loaded yet)."""

    def __init__(self) -> None:
        self.attempts: list = []
        self._import = builtins.__import__

    @staticmethod
    def _is_tf(name: str) -> bool:
        return name == "tensorflow" or name.startswith("tensorflow.")

    def _note(self, name: str) -> None:
        if self._is_tf(name) and threading.current_thread() is threading.main_thread():
            self.attempts.append(name)

    def __call__(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            self._note(name)
        return self._import(name, globals, locals, fromlist, level)

    def find_spec(self, name, path=None, target=None):
        self._note(name)
        return None  # the other finders do the work

    def __enter__(self) -> "_ImportWatch":
        builtins.__import__ = self
        sys.meta_path.insert(0, self)
        return self

    def __exit__(self, *exc) -> None:
        builtins.__import__ = self._import
        sys.meta_path.remove(self)


@pytest.fixture(scope="module", autouse=True)
def tensorflow_imports():
    """The TensorFlow imports attempted while this module's tests run: there must be none,
    whether or not another module of the run has imported TensorFlow already."""
    with _ImportWatch() as watch:
        yield watch.attempts


def test_tree_is_small(manifest):
    total = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file())
    assert total < 300 * 1024
    covered = {v for rec in manifest["fixtures"].values() for v in rec["variants"]}
    assert {
        "v1-single",
        "v1-sharded",
        "v1-partitioned",
        "v2-single",
        "v2-multishard",
        "v2-partitioned",
        "strings",
        "variant",
        "big-endian",
        "snappy",
        "object-graph",
    } <= covered


def test_no_stray_files(manifest):
    listed = {f for rec in manifest["fixtures"].values() for f in rec["files"]}
    on_disk = {
        f.relative_to(FIXTURES).as_posix()
        for f in FIXTURES.rglob("*")
        if f.is_file() and f.name != MANIFEST
    }
    assert on_disk == listed


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_files_unchanged(manifest, name):
    """The committed bytes are the generated ones (no line-ending or LFS mangling)."""
    for rel, f in manifest["fixtures"][name]["files"].items():
        data = (FIXTURES / rel).read_bytes()
        assert len(data) == f["size"], rel
        assert hashlib.sha256(data).hexdigest() == f["sha256"], rel


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_reads_as_recorded(manifest, name):
    import tfckpt

    rec = manifest["fixtures"][name]
    for path in rec["open"]:
        with tfckpt.open(FIXTURES / path) as r:
            assert r.header.format == rec["header"]["format"], path
            assert r.header.num_shards == rec["header"]["num_shards"], path
            assert r.header.endianness == rec["header"]["endianness"], path
            assert sorted(r.keys()) == sorted(rec["tensors"]), path
            for key, want in rec["tensors"].items():
                e = r.entry(key)
                assert (e.dtype_name, list(e.shape)) == (want["dtype"], want["shape"]), key
                assert sorted(s.spec for s in e.slices) == want.get("slices", []), key
                value = r.read(key)
                assert value.shape == tuple(want["shape"]), key
                assert digest(value) == want["sha256"], (name, key)
            graph = r.object_graph
            if rec["object_paths"]:
                for obj, key in rec["object_paths"].items():
                    assert key in graph.node(obj).keys, (name, obj)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_partitioned_regions(manifest, name):
    """Each partitioned tensor read region by region equals the whole value."""
    import tfckpt

    rec = manifest["fixtures"][name]
    with tfckpt.open(FIXTURES / rec["open"][0]) as r:
        for key, want in rec["tensors"].items():
            if not want.get("slices") or not want["shape"]:
                continue
            whole = r.read(key)
            n = want["shape"][0]
            for lo, hi in ((0, 1), (1, n), (n // 2, n)):
                part = r.read_slice(key, np.s_[lo:hi])
                assert part.tolist() == whole[lo:hi].tolist(), (key, lo, hi)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_verifies(manifest, name):
    from tfckpt import cli

    rec = manifest["fixtures"][name]
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["verify", str(FIXTURES / rec["open"][0])], out, err) == 0, out.getvalue()
    assert "OK" in out.getvalue()


def test_replay_needs_no_tensorflow():
    """The whole replay in a fresh interpreter, which must never import TensorFlow."""
    code = (
        "import sys, pytest\n"
        f"rc = pytest.main([{str(pathlib.Path(__file__))!r}, '-q', '-p', 'no:cacheprovider',\n"
        "                  '-k', 'not needs_no_tensorflow'])\n"
        "assert 'tensorflow' not in sys.modules, 'the fixture replay imported tensorflow'\n"
        "sys.exit(int(rc))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=str(FIXTURES.parent.parent),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_zz_tensorflow_not_imported_here(tf_loaded_before, tensorflow_imports):
    """Run last in this module: nothing above imported TensorFlow (in a whole-suite run,
    where TensorFlow is already loaded, the import watch is what can tell)."""
    assert tensorflow_imports == []
    assert tf_loaded_before or "tensorflow" not in sys.modules
