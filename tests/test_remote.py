"""Checkpoints behind URLs: a real HTTP server with range support on 127.0.0.1 (with injected
server faults), fsspec's memory filesystem, and a real S3-compatible server (moto in server
mode) on 127.0.0.1 when moto and s3fs are installed. No mocks of fsspec or of the reader."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import pathlib
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest

import tfckpt

fsspec = pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

ROOT = pathlib.Path(tfckpt.__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with single byte ranges; counts the body bytes sent; answers 503 to the
    next ``faults[path]`` requests for a path."""

    stats: dict
    faults: dict

    def log_message(self, *args) -> None:
        pass

    def _fault(self) -> bool:
        left = self.faults.get(self.path, 0)
        if left:
            self.faults[self.path] = left - 1
            self.send_error(503, "injected fault")
            return True
        return False

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        if not self._fault():
            super().do_HEAD()

    def do_GET(self) -> None:  # noqa: N802
        if self._fault():
            return
        path = pathlib.Path(self.translate_path(self.path))
        rng = self.headers.get("Range")
        if not path.is_file() or not rng:
            if path.is_file():
                self.stats["bytes"] += path.stat().st_size
            return super().do_GET()
        size = path.stat().st_size
        start_text, _, end_text = rng.removeprefix("bytes=").partition("-")
        start = int(start_text)
        end = min(int(end_text) if end_text else size - 1, size - 1)
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)
        self.stats["bytes"] += len(body)


@contextlib.contextmanager
def http_server(directory: pathlib.Path):
    stats = {"bytes": 0}
    faults: dict = {}
    handler = type("Handler", (RangeHandler,), {"stats": stats, "faults": faults})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stats, faults
    finally:
        server.shutdown()
        server.server_close()


def _tensors() -> dict:
    rs = np.random.RandomState(0)
    return {
        "big/kernel": rs.randn(1000, 512).astype(np.float32),  # 2 MB
        "small/bias": np.arange(7, dtype=np.float64),
        "step": np.int64(42),
        "names": np.array([b"alpha", b"", b"\xff"], dtype=object),
    }


@pytest.fixture()
def served(tmp_path):
    run = tmp_path / "run"
    prefix = tfckpt.write(str(run / "ckpt-1"), _tensors(), update_state=True)
    with http_server(tmp_path) as (base, stats, faults):
        yield base, prefix, stats, faults


def test_http_listing_moves_about_the_index_and_slices_only_their_rows(served):
    base, prefix, stats, _ = served
    index_size = os.path.getsize(prefix + ".index")
    with tfckpt.open(f"{base}/run/ckpt-1") as r:
        rows = r.listing()
        assert sorted(row[0] for row in rows) == sorted(_tensors())
        assert stats["bytes"] <= index_size + 1024  # the index, nothing of the data
        before = stats["bytes"]
        part = r.read_slice("big/kernel", (slice(10, 14),))
        assert np.array_equal(part, _tensors()["big/kernel"][10:14])
        assert stats["bytes"] - before <= 4 * 512 * 4 + 1024  # four rows, not the tensor
        assert np.array_equal(r.read("big/kernel"), _tensors()["big/kernel"])
        assert r.read("names").tolist() == [b"alpha", b"", b"\xff"]
        r.verify_key("big/kernel")


def test_http_directory_url_follows_the_state_file(served):
    base, _, _, _ = served
    for url in (f"{base}/run", f"{base}/run/", f"{base}/run/ckpt-1.index"):
        with tfckpt.open(url) as r:
            assert r.prefix.endswith("/run/ckpt-1") and int(r["step"]) == 42


def test_http_server_faults_are_retried_then_reported(served):
    base, _, _, faults = served
    data = "/run/ckpt-1.data-00000-of-00001"
    faults[data] = 2  # two 503s, then the bytes
    with tfckpt.open(f"{base}/run/ckpt-1") as r:
        assert float(r.read("small/bias")[3]) == 3.0
        faults[data] = 100
        with pytest.raises(tfckpt.CheckpointError, match="the server failed to .* 4 times"):
            r.read("big/kernel")
    with pytest.raises(tfckpt.NotACheckpointError, match="No checkpoint at"):
        tfckpt.open(f"{base}/run/ckpt-404")


def test_commands_read_urls(served, tmp_path):
    base, prefix, _, _ = served
    url = f"{base}/run/ckpt-1"

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "tfckpt", *args],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=120,
        )

    dump = cli("dump", url)
    assert dump.returncode == 0 and "big/kernel" in dump.stdout, dump.stderr
    assert cli("verify", url).returncode == 0
    same = cli("diff", url, prefix)
    assert same.returncode == 0, same.stdout + same.stderr
    out = tmp_path / "edited" / "ckpt-1"
    assert cli("edit", url, "-o", str(out), "--drop", "step").returncode == 0
    assert "step" not in tfckpt.open(str(out))
    import tfckpt.compat as tf

    assert tf.train.list_variables(url) == tf.train.list_variables(prefix)
    assert np.array_equal(tf.train.load_variable(url, "small/bias"), _tensors()["small/bias"])


def test_memory_urls_write_and_read(tmp_path):
    url = f"memory://tfckpt-tests/{uuid.uuid4().hex}/ckpt-1"
    assert tfckpt.write(url, _tensors()) == url
    with pytest.raises(tfckpt.CheckpointError, match="exists; pass overwrite=True"):
        tfckpt.write(url, {"x": np.zeros(1)})
    with tfckpt.open(url) as r:
        assert np.array_equal(r["big/kernel"], _tensors()["big/kernel"])
    edited = url.replace("ckpt-1", "ckpt-2")
    tfckpt.edit(url, edited, drop=["step"])
    assert sorted(tfckpt.open(edited).keys()) == ["big/kernel", "names", "small/bias"]


def test_a_failed_upload_leaves_no_index(tmp_path, monkeypatch):
    """The index is uploaded last: when a data file cannot be stored, nothing is visible."""
    import tfckpt.remote as remote

    url = f"memory://tfckpt-tests/{uuid.uuid4().hex}/ckpt-1"
    fs = fsspec.filesystem("memory")
    real_put = type(fs).put_file

    def failing_put(self, lpath, rpath, **kw):
        if ".data-" in rpath:
            raise PermissionError("denied")
        return real_put(self, lpath, rpath, **kw)

    monkeypatch.setattr(type(fs), "put_file", failing_put)
    with pytest.raises(PermissionError):
        tfckpt.write(url, _tensors())
    assert not remote.exists(url + ".index")


# -- S3: moto's server on 127.0.0.1 --------------------------------------------------------
@pytest.fixture()
def s3(monkeypatch):
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(k, v)
    options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **options)
    with contextlib.suppress(FileExistsError):  # moto's state lives as long as the process
        fs.mkdir("tfckpt-bucket")
    try:
        yield options
    finally:
        server.stop()


def test_s3_write_read_and_edit(s3, tmp_path):
    url = "s3://tfckpt-bucket/run/ckpt-1"
    tfckpt.write(url, _tensors(), storage_options=s3)
    with tfckpt.open(url, storage_options=s3) as r:
        assert np.array_equal(
            r.read_slice("big/kernel", (slice(0, 2),)), _tensors()["big/kernel"][:2]
        )
        assert r.read("names").tolist() == [b"alpha", b"", b"\xff"]
    env = dict(
        ENV,
        **{
            k: os.environ[k]
            for k in (
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION",
                "FSSPEC_S3_ENDPOINT_URL",
            )
        },
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfckpt",
            "edit",
            url,
            "-o",
            "s3://tfckpt-bucket/slim/ckpt-1",
            "--drop",
            "big/kernel",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    with tfckpt.open("s3://tfckpt-bucket/slim/ckpt-1", storage_options=s3) as r:
        assert sorted(r.keys()) == ["names", "small/bias", "step"]


def test_s3_scan_finds_format_v1_checkpoints(s3, tmp_path):
    """Format V1 files have no suffix to tell them by: in a bucket, as in a directory, their
    table footers are read (one range request each), and they are described as locally."""
    fixtures = ROOT / "tests" / "fixtures"
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3)
    local_root = tmp_path / "v1"
    for name in ("v1_single", "v1_sharded", "v1_snappy"):
        for f in sorted((fixtures / name).iterdir()):
            fs.put_file(str(f), f"tfckpt-bucket/v1/{name}/{f.name}")
            (local_root / name).mkdir(parents=True, exist_ok=True)
            (local_root / name / f.name).write_bytes(f.read_bytes())

    def rows(records):
        return [
            (r.record, r.name, r.status, r.error, r.keys, r.parameters, r.bytes, r.shards, r.step)
            for r in records
        ]

    remote = list(tfckpt.scan("s3://tfckpt-bucket/v1/", verify=True, storage_options=s3))
    local = list(tfckpt.scan(str(local_root), verify=True))
    assert rows(remote) == rows(local)
    names = [r.name for r in remote if r.record == "checkpoint"]
    assert names == [
        "v1_sharded/model.ckpt-?????-of-00003",
        "v1_single/model.ckpt",
        "v1_snappy/model.ckpt",
    ]
    assert all(r.ok for r in remote)
    with tfckpt.open("s3://tfckpt-bucket/v1/v1_single/model.ckpt", storage_options=s3) as r:
        with tfckpt.open(str(local_root / "v1_single" / "model.ckpt")) as lr:
            assert r.keys() == lr.keys() and r.header.format == "V1"
