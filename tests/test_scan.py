"""tfckpt.scan / `tfckpt scan`: directory trees, archives, HTTP, a Dask cluster, outputs."""

from __future__ import annotations

import csv
import http.server
import io
import json
import os
import re
import shutil
import tarfile
import threading
import tracemalloc
import urllib.parse
import zipfile

import numpy as np
import pytest

import tfckpt
from tfckpt import cli
from tfckpt.scanning import CHECKPOINT_FIELDS, KEY_FIELDS

#: Corpus cases copied into the scanned tree, and the kind each is.
CASES = {
    "keras_adam": "object-based",
    "module_nested": "object-based",
    "keras_model_only": "object-based",
    "data_iterator": "object-based",
    "lookup_table": "object-based",
    "sharded_policy": "object-based",
    "tf1_partitioned": "name-based",
    "name_based_v1_saver_scalar": "name-based",
    "multi_device_tf1": "name-based",
    "strings": "name-based",
    "savedmodel": "savedmodel",
    "tf1_savedmodel": "savedmodel",
}


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def comparable(records):
    """Records without where they are, sorted: the same files unpacked, archived or remote
    give the same list."""
    out = []
    for r in records:
        d = r.to_dict() if hasattr(r, "to_dict") else dict(r)
        d.pop("location", None)
        if d.get("latest"):
            d["latest"] = re.split(r"[/!]", d["latest"])[-1]
        out.append(d)
    return sorted(out, key=lambda d: (d["name"], d["record"], d.get("key") or ""))


@pytest.fixture(scope="module")
def tree(corpus, tmp_path_factory):
    """A directory of real TensorFlow checkpoints: one subdirectory per corpus case."""
    root = tmp_path_factory.mktemp("scan") / "tree"
    for name in CASES:
        src = os.path.dirname(corpus[name].prefix)
        if corpus[name].kind == "savedmodel":
            src = corpus[name].extra["savedmodel_dir"]
            shutil.copytree(src, root / name / "saved_model")
        else:
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("case.json"))
    return root


@pytest.fixture(scope="module")
def tree_records(tree):
    return list(tfckpt.scan(tree))


def _prefix_of(tree, corpus, name):
    rel = os.path.relpath(corpus[name].prefix, os.path.dirname(corpus[name].prefix))
    if corpus[name].kind == "savedmodel":
        return str(tree / name / "saved_model" / "variables" / "variables")
    return str(tree / name / rel)


# -- directories ------------------------------------------------------------------------


def test_directory_scan_agrees_with_tensorflow(tree, tree_records, corpus, oracles):
    ckpts = {r.location: r for r in tree_records if r.record == "checkpoint"}
    for name, kind in CASES.items():
        prefix = _prefix_of(tree, corpus, name)
        rec = ckpts[prefix]
        o = oracles[name]
        assert rec.status == "ok", rec.error
        assert rec.kind == kind
        assert rec.keys == len(o["list_variables"])
        assert rec.parameters == sum(int(np.prod(s)) for _, s in o["list_variables"])
        assert rec.dtypes == dict(
            sorted({d: list(o["dtypes"].values()).count(d) for d in o["dtypes"].values()}.items())
        )
        files = [
            f
            for f in os.listdir(os.path.dirname(prefix))
            if f.startswith(os.path.basename(prefix) + ".")
            and (f.endswith(".index") or ".data-" in f)
        ]
        assert rec.bytes == sum(
            os.path.getsize(os.path.join(os.path.dirname(prefix), f)) for f in files
        )
        assert rec.shards == len([f for f in files if ".data-" in f])
        if "save_counter/.ATTRIBUTES/VARIABLE_VALUE" in o["values"]:
            assert (rec.step, rec.step_source) == (
                int(o["values"]["save_counter/.ATTRIBUTES/VARIABLE_VALUE"]),
                "save_counter",
            )
        elif "global_step" in o["values"]:
            assert (rec.step, rec.step_source) == (int(o["values"]["global_step"]), "global_step")
    # keras_adam keeps two checkpoints: save counters 1 and 2, both found.
    steps = sorted(r.step for r in ckpts.values() if r.name.startswith("keras_adam/"))
    assert steps == [1, 2]
    assert all(r.ok for r in tree_records)


def test_state_files_say_which_checkpoint_is_latest(tree, tree_records):
    states = {r.name: r for r in tree_records if r.record == "state"}
    assert states["keras_adam/checkpoint"].latest == str(tree / "keras_adam" / "ckpt-2")
    assert states["keras_adam/checkpoint"].checkpoints == 2
    # A TF1 Saver recorded an absolute path elsewhere; the copy beside it is found.
    assert states["multi_device_tf1/checkpoint"].latest == str(
        tree / "multi_device_tf1" / "model.ckpt"
    )
    assert all(s.ok for s in states.values())


def test_records_come_in_a_sorted_walk_and_the_same_with_threads(tree, tree_records, monkeypatch):
    names = [r.name for r in tree_records]
    dirs = [n.split("/")[0] for n in names]
    assert dirs == sorted(dirs)
    # A short scan with -j N finishes before its workers would start: none are started.
    from tfckpt.scanning import run

    def no_pool(*args, **kwargs):
        raise AssertionError("workers started for a scan shorter than _INLINE_SECONDS")

    with monkeypatch.context() as m:
        m.setattr(run, "_INLINE_SECONDS", 60.0)
        m.setattr(run, "_pool", no_pool)
        assert [r.to_dict() for r in tfckpt.scan(tree, jobs=3)] == [
            r.to_dict() for r in tree_records
        ]
    # Workers from the first checkpoint on, and after the first few.
    started = []
    real_pool = run._pool
    monkeypatch.setattr(run, "_pool", lambda *a, **k: started.append(a) or real_pool(*a, **k))
    monkeypatch.setattr(run, "_INLINE_SECONDS", 0.0)
    assert [r.to_dict() for r in tfckpt.scan(tree, jobs=3)] == [r.to_dict() for r in tree_records]
    assert [r.to_dict() for r in tfckpt.scan([tree], jobs=2, keys=True)] == [
        r.to_dict() for r in tfckpt.scan(tree, keys=True)
    ]
    assert [a[0] for a in started] == [3, 2]
    clock = iter(range(10**6))  # a clock that has passed the inline time after 3 items
    monkeypatch.setattr(run, "_INLINE_SECONDS", 2.5)
    monkeypatch.setattr(run, "_clock", lambda: next(clock))
    assert [r.to_dict() for r in tfckpt.scan(tree, jobs=2)] == [r.to_dict() for r in tree_records]
    assert len(started) == 3


def _copy_ckpt(src_prefix, dst_dir, name):
    os.makedirs(dst_dir, exist_ok=True)
    d, base = os.path.split(src_prefix)
    for f in os.listdir(d):
        if f.startswith(base + "."):
            shutil.copy(os.path.join(d, f), os.path.join(dst_dir, name + f[len(base) :]))
    return os.path.join(dst_dir, name)


@pytest.fixture()
def broken(tmp_path, corpus):
    """Every kind of damage a scan meets, in one tree."""
    src = corpus["keras_adam"].prefix
    root = tmp_path / "broken"
    good = _copy_ckpt(src, root, "ckpt-1")
    # A truncated index, a missing shard, a truncated shard, a flipped data byte.
    p = _copy_ckpt(src, root / "trunc_index", "ckpt-2")
    with open(p + ".index", "r+b") as f:
        f.truncate(os.path.getsize(p + ".index") // 2)
    p = _copy_ckpt(src, root / "missing_shard", "ckpt-3")
    os.remove(p + ".data-00000-of-00001")
    p = _copy_ckpt(src, root / "trunc_shard", "ckpt-4")
    with open(p + ".data-00000-of-00001", "r+b") as f:
        f.truncate(os.path.getsize(p + ".data-00000-of-00001") - 3)
    # Half-written saves: BundleWriter temp files, a sharded save's _temp directory, data
    # without its index, a state file update cut short.
    half = root / "half"
    half.mkdir()
    (half / "ckpt-5.index.tempstate1234").write_bytes(b"x")
    (half / "ckpt-5.data-00000-of-00001.tempstate5678").write_bytes(b"x" * 10)
    _copy_ckpt(src, half / "ckpt-6_temp", "part-00000-of-00001")
    shutil.copy(good + ".data-00000-of-00001", half / "ckpt-7.data-00000-of-00001")
    (half / "checkpoint.tmp0123abcd").write_text('model_checkpoint_path: "ckpt-5"\n')
    (half / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-5"\nall_model_checkpoint_paths: "ckpt-5"\n'
    )
    # Unreadable entries: a symlink loop, a link to itself, a broken link, a FIFO.
    links = root / "links"
    links.mkdir()
    os.symlink("..", links / "up")
    os.symlink("self.index", links / "self.index")
    os.symlink("nowhere", links / "gone.index")
    os.mkfifo(links / "fifo.index")
    if os.geteuid() != 0:  # root reads anything: chmod cannot make a file unreadable
        p = _copy_ckpt(src, root / "noperm", "ckpt-8")
        os.chmod(p + ".index", 0)
    return root


def _by_name(records):
    out = {}
    for r in records:
        out.setdefault(r.name, []).append(r)
    return out


def test_damage_is_reported_in_records_never_raised(broken):
    recs = list(tfckpt.scan(broken))
    by = _by_name(recs)
    assert by["ckpt-1"][0].ok
    assert "bad magic number" in by["trunc_index/ckpt-2"][0].error
    assert "missing" in by["missing_shard/ckpt-3"][0].error
    assert "truncated" in by["trunc_shard/ckpt-4"][0].error
    temp = by["half/ckpt-5.data-00000-of-00001.tempstate5678"][0]
    assert temp.record == "checkpoint" and "interrupted save of ckpt-5" in temp.error
    assert "temporary directory" in by["half/ckpt-6_temp"][0].error
    assert not any(n.startswith("half/ckpt-6_temp/") for n in by)  # parts never scanned
    assert "without the index ckpt-7.index" in by["half/ckpt-7"][0].error
    assert "interrupted update" in by["half/checkpoint.tmp0123abcd"][0].error
    state = by["half/checkpoint"][0]
    assert state.record == "state" and not state.ok and "ckpt-5" in state.error
    assert state.latest is None
    assert "leads back to" in by["links/up"][0].error
    assert "loop" in by["links/self.index"][0].error
    assert "broken symbolic link" in by["links/gone.index"][0].error
    assert "FIFO" in by["links/fifo.index"][0].error
    if os.geteuid() != 0:
        assert "Permission denied" in by["noperm/ckpt-8"][0].error
    assert all(r.status in ("ok", "error") and (r.ok == (r.error is None)) for r in recs)
    code, out, _ = run_cli("scan", str(broken), "--format", "jsonl")
    assert code == 1
    assert len(out.splitlines()) == len(recs)


def test_verify_finds_a_flipped_byte(tmp_path, corpus):
    p = _copy_ckpt(corpus["keras_adam"].prefix, tmp_path / "d", "ckpt-2")
    assert [r.ok for r in tfckpt.scan(tmp_path / "d", verify=True)] == [True]
    with tfckpt.open(p) as r:
        e = r.entry("optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE")
    with open(p + ".data-00000-of-00001", "r+b") as f:
        f.seek(e.offset)
        b = f.read(1)
        f.seek(e.offset)
        f.write(bytes([b[0] ^ 0x40]))
    assert [r.ok for r in tfckpt.scan(tmp_path / "d")] == [True]  # listing reads no data
    (rec,) = tfckpt.scan(tmp_path / "d", verify=True)
    assert not rec.ok and "Checksum does not match" in rec.error
    keys = list(tfckpt.scan(tmp_path / "d", verify=True, keys=True))
    bad = [k.key for k in keys if not k.ok]
    assert bad == ["optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"]
    assert run_cli("scan", str(tmp_path / "d"), "--verify")[0] == 1
    assert run_cli("scan", str(tmp_path / "d"))[0] == 0


def test_keys_and_match(tree, corpus, oracles):
    rows = list(tfckpt.scan(tree, keys=True, match=r"/tf1_partitioned/"))
    assert rows and all(r.record == "key" and r.name.startswith("tf1_partitioned/") for r in rows)
    o = oracles["tf1_partitioned"]
    assert sorted((r.key, list(r.shape)) for r in rows) == sorted(o["list_variables"])
    assert {r.key: r.dtype for r in rows} == o["dtypes"]
    pv2 = next(r for r in rows if r.key == "pv2")
    assert pv2.partitioned and pv2.bytes == 6 * 3 * 4
    # A key pattern: checkpoints holding a matching key, and with --keys just those keys.
    ckpts = [r.name for r in tfckpt.scan(tree, match=r"Adam_1$")]
    assert ckpts == ["tf1_partitioned/model.ckpt-1"]
    keys = sorted(r.key for r in tfckpt.scan(tree, keys=True, match=r"pv3/Adam_1$"))
    assert keys == ["scope/pv3/Adam_1"]


def test_step_sources(tmp_path):
    d = tmp_path / "steps"
    tfckpt.write(d / "a" / "ckpt", {"model/w": np.ones(3, np.float32)}, save_counter=7)
    tfckpt.write(d / "b" / "model.ckpt-99", {"global_step": np.int64(1234), "w": np.ones(2)})
    tfckpt.write(d / "c" / "model-42", {"w": np.ones(2, np.float32)})
    got = {r.name: (r.kind, r.step, r.step_source) for r in tfckpt.scan(d)}
    assert got == {
        "a/ckpt": ("object-based", 7, "save_counter"),
        "b/model.ckpt-99": ("name-based", 1234, "global_step"),
        "c/model-42": ("name-based", 42, "suffix"),
    }


def test_single_checkpoint_paths_and_missing_root(tree, corpus):
    prefix = _prefix_of(tree, corpus, "keras_adam")
    for p in (prefix, prefix + ".index"):
        (rec,) = tfckpt.scan(p)
        assert rec.location == prefix and rec.name == "ckpt-2" and rec.step == 2
    (state,) = tfckpt.scan(tree / "keras_adam" / "checkpoint")
    assert state.record == "state" and state.latest.endswith("ckpt-2")
    with pytest.raises(tfckpt.NotACheckpointError):
        tfckpt.scan(tree / "no-such-dir")
    code, _, err = run_cli("scan", str(tree / "no-such-dir"))
    assert code == 2 and "no such file" in err


# -- archives ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def archives(tree, tmp_path_factory):
    d = tmp_path_factory.mktemp("archives")
    paths = {"tar": d / "tree.tar", "tgz": d / "tree.tar.gz", "zip": d / "tree.zip"}
    with tarfile.open(paths["tar"], "w") as t:
        t.add(tree, arcname=".")
    with tarfile.open(paths["tgz"], "w:gz") as t:
        t.add(tree, arcname="")
    with zipfile.ZipFile(paths["zip"], "w") as z:
        for base, _, files in sorted(os.walk(tree)):
            for f in sorted(files):
                full = os.path.join(base, f)
                # Stored and deflated members both: indexes stored, data deflated.
                kind = zipfile.ZIP_STORED if f.endswith(".index") else zipfile.ZIP_DEFLATED
                z.write(full, os.path.relpath(full, tree), compress_type=kind)
    return paths


@pytest.mark.parametrize("kind", ["tar", "tgz", "zip"])
def test_archives_give_the_records_of_the_directory(kind, archives, tree_records):
    recs = list(tfckpt.scan(archives[kind]))
    assert comparable(recs) == comparable(tree_records)
    assert all(r.location.startswith(str(archives[kind]) + "!/") for r in recs)
    assert comparable(tfckpt.scan(archives[kind], keys=True, verify=True)) == comparable(
        tfckpt.scan(
            os.path.dirname(tree_records[0].location).rsplit("/", 1)[0], keys=True, verify=True
        )
    )


def test_uncompressed_tar_members_are_read_in_place(archives):
    from tfckpt.scanning.archives import tar_tree
    from tfckpt.storage import TarMemberStorage

    t = tar_tree(str(archives["tar"]))
    members = {n: m for n, m in t.files.items() if n.startswith("keras_adam/ckpt-2.")}
    storage = TarMemberStorage(
        str(archives["tar"]),
        "keras_adam/ckpt-2",
        {n[len("keras_adam/ckpt-2") :]: m for n, m in members.items()},
    )
    with tfckpt.Reader(storage=storage) as r:
        assert isinstance(r._index_buffer, memoryview)
        assert type(r._index_buffer.obj).__name__ == "MappedFile"
        value = r.read("save_counter/.ATTRIBUTES/VARIABLE_VALUE")
        assert int(value) == 2 and not value.flags.owndata  # a view of the mapped tar


def test_zip_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("bomb.index", b"\0" * (40 << 20))
    (rec,) = tfckpt.scan(path)
    assert not rec.ok and "absurd ratio" in rec.error


def test_too_large_compressed_member_is_said(archives):
    recs = list(tfckpt.scan(archives["tgz"], max_member_bytes=1000))
    big = [r for r in recs if r.record == "checkpoint" and not r.ok]
    assert big and all("too large to hold in memory" in r.error for r in big)


# -- remote: an HTTP server with Range requests, and memory:// ----------------------------


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves a directory: HTML index pages, HEAD, and ``Range: bytes=a-b``; counts the
    bytes of file contents it sends."""

    root = "."
    served = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head):
        rel = urllib.parse.unquote(urllib.parse.urlparse(self.path).path).lstrip("/")
        path = os.path.join(self.root, rel)
        if os.path.isdir(path):
            names = sorted(os.listdir(path))
            links = "".join(
                f'<a href="{urllib.parse.quote(n)}{"/" if os.path.isdir(os.path.join(path, n)) else ""}">{n}</a>\n'
                for n in names
            )
            body = f"<html><body>\n{links}</body></html>\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        if rng:
            m = re.match(r"bytes=(\d+)-(\d*)$", rng)
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if head:
            return
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(end - start + 1)
        with self.lock:
            type(self).served += len(data)
        self.wfile.write(data)


@pytest.fixture()
def http_server(tmp_path):
    class Handler(_RangeHandler):
        root = str(tmp_path / "www")
        served = 0

    os.makedirs(Handler.root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_http_listing_fetches_only_the_index(http_server, tree, tree_records):
    handler, url = http_server
    www = handler.root
    rng = np.random.default_rng(0)
    big = {
        f"model/layer{i}/kernel": rng.standard_normal((256, 1024)).astype(np.float32)
        for i in range(8)
    }  # 8 MiB of data
    tfckpt.write(os.path.join(www, "big", "ckpt-3"), big, save_counter=3)
    shutil.copytree(tree / "keras_adam", os.path.join(www, "keras_adam"))
    index_size = os.path.getsize(os.path.join(www, "big", "ckpt-3.index"))
    data_size = os.path.getsize(os.path.join(www, "big", "ckpt-3.data-00000-of-00001"))

    recs = list(tfckpt.scan(url + "/"))
    local = list(tfckpt.scan(www))
    assert comparable(recs) == comparable(local)
    bigrec = next(r for r in recs if r.name == "big/ckpt-3")
    assert bigrec.location == url + "/big/ckpt-3"
    assert bigrec.ok and bigrec.step == 3 and bigrec.keys == 10
    small = sum(
        os.path.getsize(os.path.join(www, "keras_adam", f))
        for f in os.listdir(os.path.join(www, "keras_adam"))
        if ".index" in f or f == "checkpoint"
    )
    # The indexes, the state file and two 8-byte save counters; no tensor data.
    assert handler.served <= index_size + small + 64, (handler.served, index_size, data_size)

    handler.served = 0
    (rec,) = tfckpt.scan(url + "/big/ckpt-3", verify=True)
    assert rec.ok and handler.served >= data_size
    handler.served = 0
    (rec,) = tfckpt.scan(url + "/big/ckpt-3.index", keys=True, match="layer3")
    assert rec.key == "model/layer3/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    assert handler.served == index_size
    # Damage over HTTP is a record too.
    os.remove(os.path.join(www, "big", "ckpt-3.data-00000-of-00001"))
    (rec,) = tfckpt.scan(url + "/big/ckpt-3")
    assert not rec.ok and "missing" in rec.error


def test_memory_filesystem(tree, tree_records):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for base, _, files in os.walk(tree):
        for f in files:
            full = os.path.join(base, f)
            with open(full, "rb") as fh:
                fs.pipe(f"/scantree/{os.path.relpath(full, tree)}", fh.read())
    try:
        recs = list(tfckpt.scan("memory://scantree", jobs=2))
        assert comparable(recs) == comparable(tree_records)
        assert recs[0].location.startswith("memory://scantree/")
    finally:
        fs.rm("/scantree", recursive=True)


# -- a Dask cluster of worker processes ---------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_dask_cluster_gives_the_local_records(tree, archives, tree_records):
    distributed = pytest.importorskip("distributed")
    paths = [str(tree), str(archives["tgz"])]
    expected = [r.to_dict() for r in tfckpt.scan(paths)]
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        bag = tfckpt.scan_to_dask(paths, partition_size=4)
        assert bag.npartitions > 2
        got = bag.compute()
        assert got == expected
        df = bag.to_dataframe().compute()
        assert list(df.location) == [r["location"] for r in expected]
        assert list(df.columns) == list(CHECKPOINT_FIELDS)
        # The workers are other processes: the work really left this one.
        assert len(client.scheduler_info()["workers"]) == 2
        df = tfckpt.scan_to_dask(str(tree), keys=True).to_dataframe().compute()
        assert list(df.columns) == list(KEY_FIELDS)
        assert len(df) == sum(1 for r in tfckpt.scan(tree, keys=True))
        code, out, _ = run_cli(
            "scan", str(tree), "--dask", cluster.scheduler_address, "--format", "jsonl"
        )
        assert code == 0
        assert [json.loads(line) for line in out.splitlines()] == [
            r.to_dict() for r in tree_records
        ]


# -- outputs ------------------------------------------------------------------------------


def test_jsonl_and_csv_parse_back(tree, tree_records, tmp_path):
    code, out, _ = run_cli("scan", str(tree), "--format", "jsonl")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [r.to_dict() for r in tree_records]

    code, out, _ = run_cli("scan", str(tree), "--format", "csv", "-j", "2")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(CHECKPOINT_FIELDS)
    assert len(rows) == len(tree_records)
    for row, rec in zip(rows, tree_records):
        assert row["location"] == rec.location and row["status"] == rec.status
        assert row["keys"] == ("" if rec.keys is None else str(rec.keys))
        assert (json.loads(row["dtypes"]) if row["dtypes"] else None) == rec.dtypes

    out_file = tmp_path / "keys.csv"
    code, out, _ = run_cli("scan", str(tree), "--keys", "--format", "csv", "-o", str(out_file))
    assert code == 0 and out == ""
    with out_file.open() as f:
        rows = list(csv.DictReader(f))
    keys = [r for r in tfckpt.scan(tree, keys=True)]
    assert [(r["key"] or None, json.loads(r["shape"]) if r["shape"] else None) for r in rows] == [
        (k.key, list(k.shape) if k.shape is not None else None) for k in keys
    ]

    code, out, _ = run_cli("scan", str(tree))
    assert code == 0 and out.startswith("STATUS")
    assert (
        out.rstrip()
        .splitlines()[-1]
        .startswith(f"# {sum(r.record == 'checkpoint' for r in tree_records)} checkpoint(s)")
    )


def test_parquet(tree, tree_records, tmp_path, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "scan.parquet"
    assert run_cli("scan", str(tree), "--format", "parquet", "-o", str(path))[0] == 0
    table = pq.read_table(path).to_pylist()
    assert len(table) == len(tree_records)
    for row, rec in zip(table, tree_records):
        assert row["location"] == rec.location and row["parameters"] == rec.parameters
        assert (dict(row["dtypes"]) if row["dtypes"] is not None else None) == rec.dtypes
    code, _, err = run_cli("scan", str(tree), "--format", "parquet")
    assert code == 2 and "--output" in err
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    code, _, err = run_cli("scan", str(tree), "--format", "parquet", "-o", str(path))
    assert code == 2 and "needs pyarrow" in err


# -- memory stays bounded ----------------------------------------------------------------


def test_memory_is_bounded_and_records_stream(tmp_path):
    root = tmp_path / "many"
    value = {"w": np.arange(4, dtype=np.float32), "global_step": np.int64(1)}
    for i in range(2000):
        tfckpt.write(root / f"d{i // 100:02d}" / f"model.ckpt-{i}", value)

    list(tfckpt.scan(root / "d00", jobs=2))  # warm up: imports and caches are not the scan
    it = tfckpt.scan(root, jobs=2)
    tracemalloc.start()
    try:
        first = next(it)
        assert first.name == "d00/model.ckpt-0" and first.step == 1
        n = 1
        for rec in it:
            assert rec.ok
            n += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 2000
    # Holding the 2000 records takes about 1.4 MiB; streaming keeps a window of a few.
    assert peak < 640 * 1024, peak


def test_unreadable_directory_is_a_record(tmp_path):
    if os.geteuid() == 0:
        # root lists any directory; a directory that vanishes mid-walk is the same case
        from tfckpt.scanning.trees import LocalTree

        d = tmp_path / "gone"
        d.mkdir()
        t = LocalTree(str(tmp_path))
        walk = t.walk()
        next(walk)
        d.rmdir()
        rel, items, error = next(walk)
        assert rel == "gone" and items is None and "No such file" in error
    else:
        d = tmp_path / "closed"
        d.mkdir()
        os.chmod(d, 0)
        try:
            (rec,) = tfckpt.scan(tmp_path)
            assert rec.record == "path" and "cannot list" in rec.error
        finally:
            os.chmod(d, 0o755)


# -- format V1 ---------------------------------------------------------------------------


def test_scan_finds_format_v1_checkpoints_tensorflow_writes(tmp_path):
    """A V1 Saver's files (no suffix to tell them by) are found, described and verified, and
    the state file naming them is not reported as naming checkpoints that are not there."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tensorflow as tf
    v1 = tf.compat.v1
    d = tmp_path / "v1run"
    d.mkdir()
    g = tf.Graph()
    with g.as_default():
        w = v1.get_variable("dense/kernel", initializer=np.ones((3, 2), np.float32))
        step = v1.train.get_or_create_global_step()
        bump = v1.assign_add(step, 5)
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
        with v1.Session(graph=g) as s:
            s.run(v1.global_variables_initializer())
            for _ in range(2):
                s.run(bump)
                saver.save(s, str(d / "model.ckpt"), global_step=step)
    assert w is not None
    names = sorted(f for f in os.listdir(d) if not f.endswith(".meta"))
    assert names == ["checkpoint", "model.ckpt-10", "model.ckpt-5"]  # no .index anywhere
    code, out, err = run_cli("scan", str(d), "--format", "jsonl", "--verify")
    assert (code, err) == (0, ""), out
    recs = [json.loads(line) for line in out.splitlines()]
    ckpts = {r["name"]: r for r in recs if r["record"] == "checkpoint"}
    assert sorted(ckpts) == ["model.ckpt-10", "model.ckpt-5"]
    tf_keys = tf.train.list_variables(str(d / "model.ckpt-10"))
    for name, r in ckpts.items():
        assert r["status"] == "ok" and r["kind"] == "name-based", r
        assert r["keys"] == len(tf_keys) == 2 and r["parameters"] == 7
        assert r["step"] == int(name.rsplit("-", 1)[1]) and r["step_source"] == "global_step"
        assert r["bytes"] == os.path.getsize(d / name)
    state = next(r for r in recs if r["record"] == "state")
    assert state["status"] == "ok" and state["latest"] == str(d / "model.ckpt-10")
    code, out, _ = run_cli("scan", str(d), "--keys", "--format", "jsonl")
    keys = sorted((r["name"], r["key"]) for r in map(json.loads, out.splitlines()))
    assert keys == [
        (n, k) for n in ("model.ckpt-10", "model.ckpt-5") for k in ("dense/kernel", "global_step")
    ]


def test_scan_finds_sharded_v1_fixture_and_its_state_file():
    root = os.path.join(os.path.dirname(__file__), "fixtures", "v1_sharded")
    code, out, err = run_cli("scan", root, "--format", "jsonl")
    assert (code, err) == (0, "")
    recs = [json.loads(line) for line in out.splitlines()]
    assert [(r["record"], r["name"], r["status"]) for r in recs] == [
        ("state", "checkpoint", "ok"),
        ("checkpoint", "model.ckpt-?????-of-00003", "ok"),
    ]
    assert recs[1]["shards"] == 3 and recs[1]["keys"] == 7


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_scan_finds_format_v1_checkpoints_inside_archives(tmp_path, kind):
    """A V1 checkpoint (TensorFlow-written fixtures) inside a tar or a deflated zip is found
    by its table footer and described, listed and verified, exactly as from its directory;
    a damaged member is a record, a missing file of a set is named."""
    fixtures = os.path.join(os.path.dirname(__file__), "fixtures")
    names = {"sharded": "v1_sharded", "single": "v1_single"}

    def pack(path, damage=None, drop=None):
        entries = {}
        for short, d in names.items():
            for f in sorted(os.listdir(os.path.join(fixtures, d))):
                with open(os.path.join(fixtures, d, f), "rb") as fh:
                    entries[f"run/{short}/{f}"] = fh.read()
        if damage:
            data = bytearray(entries[damage])
            data[len(data) // 3] ^= 0xFF
            entries[damage] = bytes(data)
        if drop:
            del entries[drop]
        if kind == "tar":
            with tarfile.open(path, "w") as t:
                for name, data in entries.items():
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
        else:
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
                for name, data in entries.items():
                    z.writestr(name, data)
        return path

    fields = ("record", "name", "status", "keys", "parameters", "bytes", "shards", "step", "error")

    def rows(paths, **kw):  # names as in their directory (in an archive: its path in it)
        return [
            tuple(os.path.basename(r.name) if f == "name" else r.to_dict()[f] for f in fields)
            for r in tfckpt.scan(paths, **kw)
        ]

    unpacked = [os.path.join(fixtures, d) for d in names.values()]
    archive = pack(str(tmp_path / f"v1.{kind}"))
    for verify in (False, True):
        found = rows(archive, verify=verify)
        assert found == rows(unpacked, verify=verify)
        assert [r[:3] for r in found] == [
            ("state", "checkpoint", "ok"),
            ("checkpoint", "model.ckpt-?????-of-00003", "ok"),
            ("state", "checkpoint", "ok"),
            ("checkpoint", "model.ckpt", "ok"),
        ]
    keys = [(r.location, r.key) for r in tfckpt.scan(archive, keys=True)]
    with tfckpt.open(os.path.join(fixtures, "v1_single", "model.ckpt")) as r:
        assert [k for loc, k in keys if loc.endswith("!/run/single/model.ckpt")] == r.keys()

    # The location a scan prints opens in dump and verify too.
    code, out, err = run_cli("dump", f"{archive}!/run/single/model.ckpt")
    assert (code, err) == (0, "") and "18 tensors, 98 parameters" in out
    code, out, err = run_cli("verify", f"{archive}!/run/sharded/model.ckpt-?????-of-00003")
    assert (code, err) == (0, "") and out.endswith(
        "OK (7 tensors, 337 B checked; table blocks verified)\n"
    )
    damaged = pack(str(tmp_path / f"damaged.{kind}"), damage="run/single/model.ckpt")
    (bad,) = [r for r in tfckpt.scan(damaged, verify=True) if r.name.endswith("/model.ckpt")]
    assert bad.status == "error"
    assert bad.error.startswith(f"{damaged}!/run/single/model.ckpt: ")
    gap = pack(str(tmp_path / f"gap.{kind}"), drop="run/sharded/model.ckpt-00001-of-00003")
    (partial,) = [r for r in tfckpt.scan(gap) if r.record == "checkpoint" and r.shards != 1]
    assert (partial.status, partial.error) == (
        "error",
        f"{gap}!/run/sharded/model.ckpt-?????-of-00003: 1 of the 3 files of the set are "
        "missing (the first: model.ckpt-00001-of-00003)",
    )
