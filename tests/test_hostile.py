"""A hostile environment around the parser (issue 10): files that are not files, files that
change under a reader, rival writers, a full disk, state-file bombs.

Every case runs in a child process under an address-space cap and a timeout, so that a hang,
a SIGBUS or a runaway allocation fails the case instead of the test run, and asserts the
error class and its message. Archive bombs (class 5) are in tests/test_hostile_archives.py,
misbehaving HTTP servers (class 6) in tests/test_hostile_remote.py.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tfckpt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AS_LIMIT = 1 << 30  # 1 GiB of address space per child
TIMEOUT = 60

PREAMBLE = """
import json, os, sys
sys.path.insert(0, {root!r})
import numpy as np
import tfckpt


def attempt(fn):
    try:
        return {{"ok": repr(fn())}}
    except tfckpt.CheckpointError as e:
        return {{"cls": type(e).__name__, "msg": str(e)}}


def report(value):
    print("RESULT " + json.dumps(value), flush=True)
"""


def _limits() -> None:
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_child(code: str, timeout: float = TIMEOUT, fsize: int = 0):
    """Runs `code` (after PREAMBLE) in a child under the limits; returns what it reported
    with ``report``. A signal, a timeout or no report fails the test, saying which."""

    def limits() -> None:
        _limits()
        if fsize:  # a "full disk": writes past `fsize` bytes fail with EFBIG
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = dict(os.environ, PYTHONFAULTHANDLER="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    src = PREAMBLE.format(root=ROOT) + textwrap.dedent(code)
    try:
        p = subprocess.run(
            [sys.executable, "-c", src],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limits,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child did not finish in {timeout} s (a hang)")
    if p.returncode < 0:
        pytest.fail(
            f"the child was killed by signal {signal.Signals(-p.returncode).name}: "
            f"{p.stderr[-2000:]}"
        )
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"no result (exit {p.returncode}): {p.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT ") :])


def _ckpt(tmp_path, name="ckpt", n=1000, **kw) -> str:
    return tfckpt.write(
        str(tmp_path / name),
        {
            "a": np.arange(n, dtype=np.float32),
            "b": np.arange(n, dtype=np.float32) * 2,
            "s": np.array([b"x", b"yz"], dtype=object),
        },
        **kw,
    )


def _replace_by_fifo(path: str) -> None:
    os.unlink(path)
    os.mkfifo(path)


# -- 1. files that are not files ------------------------------------------------------------


def test_fifo_as_data_shard_is_named_never_opened(tmp_path):
    p = _ckpt(tmp_path)
    _replace_by_fifo(p + ".data-00000-of-00001")
    out = run_child(
        f"""
        r = tfckpt.open({p!r})
        report([attempt(lambda: r.read("a")), attempt(lambda: r.verify_all()),
                attempt(lambda: r.read_slice("a", np.s_[0:3]))])
    """,
        timeout=30,
    )
    assert out[0]["cls"] == "MissingShardError"
    assert "is a FIFO (named pipe), not a regular file" in out[0]["msg"]
    assert "a" in out[0]["msg"] and p in out[0]["msg"]
    assert "FIFO" in out[1]["ok"]  # every payload reported, each naming the FIFO
    assert out[2]["cls"] == "MissingShardError" and "FIFO" in out[2]["msg"]


@pytest.mark.parametrize("where", ["index", "directory", "state"])
def test_fifo_as_index_or_state_file(tmp_path, where):
    p = _ckpt(tmp_path)
    if where == "state":
        target = str(tmp_path / "checkpoint")
        os.mkfifo(target)
    else:
        _replace_by_fifo(p + ".index")
        target = p if where == "index" else str(tmp_path)
    out = run_child(f"report(attempt(lambda: tfckpt.open({target!r})))", timeout=30)
    assert out["cls"] == "NotACheckpointError", out
    assert "is a FIFO (named pipe), not a regular file" in out["msg"]


def test_socket_as_data_shard(tmp_path):
    p = _ckpt(tmp_path)
    shard = p + ".data-00000-of-00001"
    os.unlink(shard)
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(shard)
        out = run_child(f"report(attempt(lambda: tfckpt.open({p!r}).read('a')))", timeout=30)
    finally:
        s.close()
    assert out["cls"] == "MissingShardError" and "is a socket" in out["msg"], out


@pytest.mark.parametrize(
    "path, kind", [("/dev/zero", "a character device"), ("/proc/self/status", None)]
)
def test_devices_and_proc_files(path, kind):
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    out = run_child(f"report(attempt(lambda: tfckpt.open({path!r})))", timeout=30)
    assert out["cls"] == "NotACheckpointError", out
    if kind:
        assert f"is {kind}, not a regular file" in out["msg"]
    else:
        assert "is not a checkpoint" in out["msg"]


def test_scan_reports_a_fifo_shard_without_blocking(tmp_path):
    p = _ckpt(tmp_path)
    _replace_by_fifo(p + ".data-00000-of-00001")
    out = run_child(
        f"""
        report([repr(r) for r in tfckpt.scan({str(tmp_path)!r}, verify=True)])
    """,
        timeout=60,
    )
    assert any("FIFO" in r for r in out), out


# -- 2. files that change under a reader ------------------------------------------------------

RACE = """
import threading
p = {p!r}
shard = p + ".data-00000-of-00001"
original = open(shard, "rb").read()
stop = False

def vandal():
    while not stop:
        with open(shard, "r+b") as f:
            f.truncate(4096)
        with open(shard, "r+b") as f:
            f.write(original)

outcomes = set()
t = threading.Thread(target=vandal)
r = tfckpt.open(p, mmap={mmap})
t.start()
try:
    for i in range({rounds}):
        for fn in (lambda: r.verify_key("a"), lambda: r.verify_all(),
                   lambda: r.read_slice("a", np.s_[-5:]), lambda: r.read("s"),
                   lambda: r.read("b").sum() if not {mmap} else 0):
            res = attempt(fn)
            outcomes.add(res.get("cls", "ok") + ":" + ("changed" if "changed since the "
                         "checkpoint was opened" in res.get("msg", "") + res.get("ok", "")
                         else res.get("msg", "")[:80]))
finally:
    stop = True
    t.join()
report(sorted(outcomes))
"""


@pytest.mark.parametrize("mmap", [True, False])
def test_shard_truncated_and_rewritten_while_verifying_never_kills(tmp_path, mmap):
    """A vandal thread truncates and rewrites a shard in place while the reader verifies,
    slices and reads: every call either succeeds or says the file changed; no SIGBUS."""
    p = _ckpt(tmp_path, n=1 << 20)  # 8 MiB of data: the CRC pass takes a while
    out = run_child(RACE.format(p=p, mmap=mmap, rounds=40), timeout=120)
    for o in out:
        assert o.startswith("ok:") or o == "CorruptCheckpointError:changed", out
    assert "CorruptCheckpointError:changed" in out, out


def test_in_place_edits_under_an_open_reader(tmp_path):
    """A reader opened before two in-place rewrites (the second reuses the first data file
    name) never returns the new file's bytes through its old index."""
    p = _ckpt(tmp_path)
    out = run_child(f"""
        r = tfckpt.open({p!r})
        first = r.keys()  # no data file opened yet
        for gen in (1, 2):
            tfckpt.write({p!r}, {{"z": np.arange(gen * 7000, dtype=np.float64),
                                  "a": np.full(1000, -gen, np.float32)}}, overwrite=True)
        report([first, attempt(lambda: r.read_slice("a", np.s_[0:4]).tolist()),
                attempt(lambda: r.read("b")), attempt(lambda: r.verify_all())])
    """)
    first, sliced, read, verified = out
    assert first == ["a", "b", "s"]
    for res in (sliced, read):
        assert res["cls"] == "CorruptCheckpointError", res
        assert "the file changed since the checkpoint was opened" in res["msg"]
        assert p + ".data-00000-of-00001" in res["msg"]
    assert "changed since the checkpoint was opened" in verified["ok"]


def test_replaced_shard_already_mapped_still_reads_the_opened_checkpoint(tmp_path):
    p = _ckpt(tmp_path)
    out = run_child(f"""
        r = tfckpt.open({p!r})
        r.read("a")  # maps the shard
        tfckpt.write({p!r}, {{"a": np.zeros(5000, np.float32)}}, overwrite=True)
        tfckpt.write({p!r}, {{"a": np.ones(1000, np.float32)}}, overwrite=True)
        report([r.read_slice("a", np.s_[1:3]).tolist(), float(r.read("b")[3]),
                len(r.verify_all())])
    """)
    assert out == [[1.0, 2.0], 6.0, 0]


def test_owned_reads_survive_truncation(tmp_path):
    """With mmap=False values live in the caller's memory: a file truncated afterwards
    cannot take them away, and the next read says the file changed."""
    p = _ckpt(tmp_path)
    out = run_child(f"""
        r = tfckpt.open({p!r}, mmap=False)
        a = r.read("a")
        os.truncate({p!r} + ".data-00000-of-00001", 0)
        report([float(a.sum()), attempt(lambda: r.read("b"))])
    """)
    assert out[0] == float(np.arange(1000).sum())
    assert out[1]["cls"] == "CorruptCheckpointError"
    assert "it was truncated from" in out[1]["msg"] and "key b" in out[1]["msg"]


def test_shard_missing_at_open_then_created(tmp_path):
    p = _ckpt(tmp_path)
    shard = p + ".data-00000-of-00001"
    os.rename(shard, shard + ".away")
    out = run_child(f"""
        r = tfckpt.open({p!r})
        os.rename({shard + ".away"!r}, {shard!r})
        report(attempt(lambda: r.read("a")))
    """)
    assert out["cls"] == "CorruptCheckpointError" and "it did not exist then" in out["msg"]


# -- 3. rival writers -----------------------------------------------------------------------


def test_overwrite_false_is_checked_at_commit(tmp_path):
    p = str(tmp_path / "ckpt")
    out = run_child(f"""
        w = tfckpt.Writer({p!r})
        w.add("mine", np.zeros(3, np.float32))
        tfckpt.write({p!r}, {{"theirs": np.ones(3, np.float32)}})
        res = attempt(w.close)
        r = tfckpt.open({p!r})
        report([res, r.keys(), len(r.verify_all()), sorted(os.listdir({str(tmp_path)!r}))])
    """)
    res, keys, bad, files = out
    assert res["cls"] == "CheckpointError"
    assert "another writer committed a checkpoint at this prefix" in res["msg"]
    assert "nothing was written" in res["msg"]
    assert keys == ["theirs"] and bad == 0
    assert files == ["ckpt.data-00000-of-00001", "ckpt.index"]


RIVALS = """
import multiprocessing as mp

def worker(me, barrier, base, trials, overwrite, queue):
    out = []
    for i in range(trials):
        barrier.wait()
        res = attempt(lambda: tfckpt.write(os.path.join(base, str(i), "ckpt"),
                                           {{"who": np.full(64, me, np.int32),
                                             f"only_{{me}}": np.int32(i)}},
                                           overwrite=overwrite))
        out.append(res)
    queue.put((me, out))

if __name__ == "__main__":
    base, trials = {base!r}, {trials}
    for i in range(trials):
        os.makedirs(os.path.join(base, str(i)))
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(me, barrier, base, trials, {overwrite}, queue))
             for me in (1, 2)]
    for p in procs:
        p.start()
    results = dict(queue.get() for _ in procs)
    for p in procs:
        p.join()
    summary = []
    for i in range(trials):
        prefix = os.path.join(base, str(i), "ckpt")
        r = tfckpt.open(prefix)
        who = r.read("who")
        summary.append(dict(one=results[1][i], two=results[2][i], keys=r.keys(),
                            who=sorted(set(who.tolist())), bad=len(r.verify_all()),
                            files=sorted(os.listdir(os.path.dirname(prefix)))))
    report(summary)
"""


@pytest.mark.parametrize("overwrite", [False, True])
def test_rival_writers_race_to_one_prefix(tmp_path, overwrite):
    """Two processes write the same prefix at the same instant, 200 times: the result
    always reads whole and is one writer's; without overwrite exactly one succeeds and the
    other is told why; no stray data file is ever left."""
    trials = 200
    out = run_child(
        RIVALS.format(base=str(tmp_path), trials=trials, overwrite=overwrite), timeout=180
    )
    assert len(out) == trials
    for t in out:
        assert t["bad"] == 0 and len(t["who"]) == 1, t
        winner = t["who"][0]
        assert t["keys"] == ["only_%d" % winner, "who"], t
        data = [f for f in t["files"] if ".data-" in f]
        assert t["files"] == sorted(data + ["ckpt.index"]), t
        results = (t["one"], t["two"])
        if overwrite:
            assert all("ok" in r for r in results), t
            continue
        ok = [r for r in results if "ok" in r]
        failed = [r for r in results if "cls" in r]
        assert len(ok) == 1 and len(failed) == 1, t
        assert failed[0]["cls"] == "CheckpointError"
        assert (
            "another writer committed" in failed[0]["msg"]
            or "exists; pass overwrite=True" in failed[0]["msg"]
        ), failed[0]


FULL_DISK = """
base = {base!r}
prefix = os.path.join(base, "ckpt")
res = attempt(lambda: tfckpt.write(prefix, {tensors}, overwrite=True, update_state=True))
r = tfckpt.open(prefix)
report([res, r.keys(), len(r.verify_all()), sorted(os.listdir(base))])
"""


@pytest.mark.parametrize("step", ["data", "index", "state"])
def test_full_disk_at_each_step_of_a_commit(tmp_path, step):
    """A write that fails for lack of space (RLIMIT_FSIZE: writes past the limit fail with
    EFBIG) at the data files, the index or the state file: the previous checkpoint stays
    whole, no temporary file is left, and the error says what was and was not written."""
    p = tfckpt.write(str(tmp_path / "ckpt"), {"old": np.float32(1)}, update_state=True)
    limit = 20000
    if step == "data":
        tensors = '{"big": np.zeros(10000, np.float32)}'
    elif step == "index":
        tensors = '{f"k{i:05d}" * 4: np.int8(i % 100) for i in range(3000)}'
    else:
        tensors = '{"new": np.float32(2)}'
        state = "".join(f'all_model_checkpoint_paths: "old-{i:06d}"\n' for i in range(1500))
        with open(tmp_path / "checkpoint", "w") as f:  # kept: the new one passes the limit
            f.write('model_checkpoint_path: "ckpt"\n' + state)
    out = run_child(FULL_DISK.format(base=str(tmp_path), tensors=tensors), fsize=limit)
    res, keys, bad, files = out
    assert res.get("cls") == "CheckpointError", res
    leftovers = [f for f in files if "tmp" in f or "tempstate" in f or "lock" in f]
    assert leftovers == [], files
    assert bad == 0
    if step == "state":
        assert res["msg"].startswith(
            f"the checkpoint {p} was written, but the 'checkpoint' state file was not updated"
        ), res
        assert "File too large" in res["msg"]
        assert keys == ["new"]
    else:
        assert "File too large" in res["msg"] and "nothing was written" in res["msg"], res
        assert keys == ["old"]


# -- 4. state files --------------------------------------------------------------------------


def test_huge_state_file_is_refused_without_reading_it(tmp_path):
    _ckpt(tmp_path)
    state = tmp_path / "checkpoint"
    with open(state, "wb") as f:
        f.write(b'model_checkpoint_path: "ckpt"\n')
        f.truncate(3 << 30)  # 3 GiB, sparse
    out = run_child(f"report(attempt(lambda: tfckpt.open({str(tmp_path)!r})))", timeout=30)
    assert out["cls"] == "NotACheckpointError"
    assert "not a valid 'checkpoint' state file (larger than 1048576 bytes" in out["msg"]


@pytest.mark.parametrize("recorded", ["/e*/pass*", "/*/*/*/*", "../../../../e?c/[p]asswd"])
def test_state_file_paths_are_never_globbed(tmp_path, recorded):
    _ckpt(tmp_path, name="real")
    (tmp_path / "checkpoint").write_text(f'model_checkpoint_path: "{recorded}"\n')
    out = run_child(f"report(attempt(lambda: tfckpt.open({str(tmp_path)!r})))", timeout=20)
    assert out["cls"] == "NotACheckpointError", out
    assert "/etc/passwd" not in out["msg"] and "/usr/bin" not in out["msg"]
    assert f"names checkpoint {recorded!r}" in out["msg"]
    assert "checkpoints present there: real" in out["msg"]


@pytest.mark.parametrize(
    "recorded", [r"C:\\Users\\me\\run\\ckpt-3", r"D:\\ckpt-3", "run/ckpt-3", "/elsewhere/ckpt-3"]
)
def test_state_file_path_falls_back_beside_it(tmp_path, recorded):
    p = _ckpt(tmp_path, name="ckpt-3")
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "%s"\n' % recorded.replace("\\", "\\\\")
    )
    assert tfckpt.open(str(tmp_path)).prefix == p


def test_relative_state_path_resolves_as_tensorflow_does(tmp_path):
    (tmp_path / "sub").mkdir()
    p = _ckpt(tmp_path / "sub", name="ckpt-1")
    _ckpt(tmp_path, name="ckpt-1")  # the same last component beside the state file
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "sub/ckpt-1"\n')
    assert tfckpt.open(str(tmp_path)).prefix == p
