"""A hostile environment around remote reads (issue 10, class 6): a misbehaving HTTP server
on 127.0.0.1 whose tree loops, whose index is larger than any limit, that trickles one byte a
second, answers 500 (for a while, or for ever) or 404 for a data shard.

The server runs in a thread of the test process; every client runs in a child process under
an address-space cap and a timeout (a hang, a signal or a runaway allocation fails the case,
not the run) and reports the error class and message, which the test asserts. Scans assert
that the trouble is a record and that the scan goes on to the next path. Format V1
checkpoints at URLs (issue 11) are found by scans of HTTP trees.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import posixpath
import re
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse

import numpy as np
import pytest

import tfckpt

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
AS_LIMIT = 1 << 30  # 1 GiB of address space per child
HUGE = 8 << 30  # the size the huge index claims: 8 GiB, generated on the fly
HALF = 512 << 20  # an index half the child's address space: fetched once, or not at all

PREAMBLE = """
import json, os, sys
sys.path.insert(0, {root!r})
import numpy as np
import tfckpt
from tfckpt.remote import RemoteLimits


def attempt(fn):
    try:
        return {{"ok": repr(fn())}}
    except tfckpt.CheckpointError as e:
        return {{"cls": type(e).__name__, "msg": str(e)}}


def records(*paths, **kw):
    return [(r.record, r.name, r.status, r.error) for r in tfckpt.scan(list(paths), **kw)]


def report(value):
    print("RESULT " + json.dumps(value), flush=True)
"""


def _limits() -> None:
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _env() -> dict:
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )


def _finished(p: subprocess.CompletedProcess) -> None:
    if p.returncode < 0:
        pytest.fail(
            f"the child was killed by signal {signal.Signals(-p.returncode).name}: "
            f"{p.stderr[-2000:]}"
        )


def run_child(code: str, timeout: float = 60):
    """Runs `code` (after PREAMBLE) in a child under the limits; returns what it reported.
    A signal, a timeout (a hang) or no report fails the test."""
    src = PREAMBLE.format(root=ROOT) + textwrap.dedent(code)
    try:
        p = subprocess.run(
            [sys.executable, "-c", src],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_limits,
            env=_env(),
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child did not finish in {timeout} s (a hang)")
    _finished(p)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"no result (exit {p.returncode}): {p.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT ") :])


def run_cli(*args: str, timeout: float = 60):
    """``tfckpt ARGS`` in a child under the limits: (exit status, stdout, stderr)."""
    try:
        p = subprocess.run(
            [sys.executable, "-m", "tfckpt", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_limits,
            env=_env(),
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"tfckpt {' '.join(args)} did not finish in {timeout} s (a hang)")
    _finished(p)
    return p.returncode, p.stdout, p.stderr


# -- the server ---------------------------------------------------------------------------


class Hostile(http.server.BaseHTTPRequestHandler):
    """Serves the files under `root` (HEAD, GET, one byte range, HTML index pages of
    directories) and misbehaves under some names:

    * ``/loop/...``: a server-side link of a directory to itself (``loop/self/`` lists what
      ``loop/`` lists, and so on for ever);
    * ``/esc/sub/``: a link to ``%2e%2e/``, its parent in another spelling;
    * ``/deep/...``: directories without end, each with another name (``d1/d2/d3/``...);
    * ``/wide/``: a page of 200 directory links;
    * ``*.huge.index`` (under ``/huge/``): an index of 8 GiB, made up as it is sent; under
      ``/unsized/`` the same without a Content-Length; under ``/half/``, of 512 MiB;
    * ``/trickle/...``: file bodies at one byte a second;
    * a path in ``faults``: answered 500 that many more times (-1: always);
    * ``gone``: paths answered 404 though the file is there.
    """

    root = "."
    faults: dict = {}
    gone: set = set()
    requests: list = []
    raw: list = []  # the request targets as sent
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    # -- helpers
    def _send(self, status: int, body: bytes, head: bool, ctype: str = "text/html") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _page(self, links, head: bool) -> None:
        body = "".join(f'<a href="{link}">{link}</a>\n' for link in links)
        self._send(200, f"<html><body>\n{body}</body></html>\n".encode(), head)

    def _range(self, size: int):
        m = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range") or "")
        if not m:
            return 0, size - 1, False
        return int(m.group(1)), min(int(m.group(2)) if m.group(2) else size - 1, size - 1), True

    def _serve(self, head: bool) -> None:
        raw = urllib.parse.urlparse(self.path).path
        path = posixpath.normpath(urllib.parse.unquote(raw))
        with self.lock:
            type(self).requests.append((self.command, path))
            type(self).raw.append(self.path)
            left = self.faults.get(path, 0)
            if left:
                self.faults[path] = left - 1 if left > 0 else left
        if left:
            return self._send(500, b"injected fault", head)
        if path in self.gone:
            return self._send(404, b"not found", head)
        if path.startswith("/loop"):
            return self._page(["ckpt-1.index", "self/"], head)
        if path.rstrip("/") == "/esc":
            return self._page(["sub/"], head)
        if path.rstrip("/") == "/esc/sub":  # its parent, spelt so that it looks like a child
            return self._page(["%2e%2e/"], head)
        if path.startswith("/deep"):
            depth = path.count("/")
            return self._page([f"d{depth}/"], head)
        if path.rstrip("/") == "/wide":
            return self._page([f"w{i:03d}/" for i in range(200)], head)
        if path.startswith("/wide/"):
            return self._page([], head)
        if path.endswith(".huge.index"):
            total = HALF if path.startswith("/half/") else HUGE
            return self._huge(head, sized=not path.startswith("/unsized/"), total=total)
        if path.rstrip("/") in ("/huge", "/unsized"):
            return self._page(["ckpt.huge.index"], head)
        local = os.path.join(self.root, path.lstrip("/").removeprefix("trickle/"))
        if os.path.isdir(local):
            names = sorted(os.listdir(local))
            links = [
                urllib.parse.quote(n) + ("/" if os.path.isdir(os.path.join(local, n)) else "")
                for n in names
            ]
            return self._page(links, head)
        if not os.path.isfile(local):
            return self._send(404, b"not found", head)
        size = os.path.getsize(local)
        start, end, ranged = self._range(size)
        self.send_response(206 if ranged else 200)
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if head:
            return
        with open(local, "rb") as f:
            f.seek(start)
            data = f.read(end - start + 1)
        if path.startswith("/trickle/"):
            self._trickle(data)
        else:
            self.wfile.write(data)

    def _trickle(self, data: bytes) -> None:
        """One byte a second, until the client hangs up (or a minute has passed)."""
        for i in range(min(len(data), 60)):
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:
                return
            time.sleep(1)

    def _huge(self, head: bool, sized: bool, total: int) -> None:
        start, end, ranged = self._range(total)
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", "application/octet-stream")
        if sized:
            self.send_header("Content-Length", str(end - start + 1))
            if ranged:
                self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        self.end_headers()
        if head:
            return
        block = b"\0" * (1 << 20)
        left = end - start + 1
        try:
            while left > 0:  # made up as it goes: no disk, no memory
                n = min(left, len(block))
                self.wfile.write(block[:n])
                left -= n
        except OSError:
            return


@contextlib.contextmanager
def hostile_server(root):
    handler = type(
        "Handler",
        (Hostile,),
        {"root": str(root), "faults": {}, "gone": set(), "requests": [], "raw": []},
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _tensors():
    return {
        "a": np.arange(1000, dtype=np.float32),
        "b": np.arange(1000, dtype=np.float32) * 2,
        "s": np.array([b"x", b"yz"], dtype=object),
    }


@pytest.fixture()
def served(tmp_path):
    www = tmp_path / "www"
    for d in ("good", "flaky", "broken", "noshard", "badindex"):
        tfckpt.write(str(www / d / "ckpt-1"), _tensors(), update_state=True)
    with hostile_server(www) as (handler, base):
        yield handler, base, www


# -- loops, depth, entries ----------------------------------------------------------------


def test_a_link_loop_is_a_record_and_the_scan_goes_on(served):
    handler, base, _ = served
    out = run_child(
        f"""
        report(records({base + "/loop/"!r}, {base + "/good/"!r}))
        """
    )
    loops = [r for r in out if r[0] == "path"]
    assert loops == [
        [
            "path",
            "self",
            "error",
            f"link loop: lists exactly what its ancestor {base}/loop lists (a link back to "
            "it); not walked",
        ]
    ]
    # The made-up index under /loop/ is not a checkpoint; the next root is scanned whole.
    assert ["checkpoint", "ckpt-1", "ok", None] in out
    assert not any(path.startswith("/loop/self/self") for _, path in handler.requests)


def test_a_loop_spelled_with_escapes_is_known_by_its_canonical_url(served):
    _, base, _ = served
    out = run_child(f"report(records({base + '/esc/'!r}))")
    assert out == [
        [
            "path",
            "sub/%2e%2e",
            "error",
            f"link loop: {base}/esc was walked already (not walked again)",
        ]
    ]


def test_depth_and_entries_are_bounded_by_options(served):
    _, base, _ = served
    out = run_child(
        f"""
        report([records({base + "/deep/"!r}, limits=RemoteLimits(max_depth=5)),
                records({base + "/wide/"!r}, limits=RemoteLimits(max_entries=50)),
                records({base + "/deep/"!r})])
        """
    )
    deep, wide, default = out
    assert deep == [
        ["path", "d1/d2/d3/d4/d5/d6", "error",
         f"not walked: deeper than 5 levels below {base}/deep (--max-depth)"],
    ]  # fmt: skip
    assert wide == [
        ["path", "", "error",
         f"walk stopped: more than 50 entries under {base}/wide (--max-entries)"],
    ]  # fmt: skip
    assert default[0][1].count("/") == 64 and "deeper than 64 levels" in default[0][3]
    code, out_text, err = run_cli("scan", base + "/deep/", "--max-depth", "2", "--format", "jsonl")
    assert code == 1 and err == ""
    rec = json.loads(out_text)
    assert rec["name"] == "d1/d2/d3" and "deeper than 2 levels" in rec["error"]


# -- a huge index -------------------------------------------------------------------------


def test_a_huge_index_is_refused_before_a_byte_of_it_moves(served):
    handler, base, _ = served
    out = run_child(
        f"""
        report([attempt(lambda: tfckpt.open({base + "/huge/ckpt.huge"!r})),
                attempt(lambda: tfckpt.open({base + "/unsized/ckpt.huge"!r},
                                            limits=RemoteLimits(max_index_bytes=1 << 20))),
                records({base + "/huge/"!r}, {base + "/good/ckpt-1"!r},
                        limits=RemoteLimits(max_index_bytes=256 << 20))])
        """,
        timeout=120,
    )
    sized, unsized, scanned = out
    assert sized == {
        "cls": "UnreadableError",
        "msg": f"{base}/huge/ckpt.huge.index: the index is {HUGE} bytes, more than the "
        f"{1 << 30} bytes tfckpt fetches into memory (--max-index-size); refused without "
        "fetching it",
    }
    assert unsized == {
        "cls": "UnreadableError",
        "msg": f"{base}/unsized/ckpt.huge.index: the index is more than the {1 << 20} bytes "
        "tfckpt fetches into memory (--max-index-size); refused",
    }
    assert scanned[0][:3] == ["checkpoint", "ckpt.huge", "error"]
    assert f"the index is {HUGE} bytes, more than the {256 << 20} bytes" in scanned[0][3]
    assert scanned[1] == ["checkpoint", "ckpt-1", "ok", None]
    # Of the sized one, only HEADs: the size was checked first.
    assert ("GET", "/huge/ckpt.huge.index") not in handler.requests
    code, _, err = run_cli("dump", base + "/huge/ckpt.huge", "--max-index-size", "1M")
    assert code == 2
    assert f"the index is {HUGE} bytes, more than the 1048576 bytes" in err


def test_an_index_within_the_limit_is_held_once(served):
    """512 MiB of index in a child with 1 GiB of address space: fetched whole and then
    copied (or joined from a list of chunks) it would not fit; fetched piece by piece into
    one buffer it does, and its zeros are reported as the damage they are."""
    _, base, _ = served
    out = run_child(
        f"""
        report(attempt(lambda: tfckpt.open({base + "/half/ckpt.huge"!r})))
        """,
        timeout=120,
    )
    assert out["cls"] == "CorruptCheckpointError", out
    assert out["msg"].startswith(f"{base}/half/ckpt.huge.index: ")


# -- a trickling server -------------------------------------------------------------------


def test_a_trickle_is_cut_off_by_the_timeout_and_the_deadline(served):
    _, base, _ = served
    url = base + "/trickle/good/ckpt-1"
    out = run_child(
        f"""
        a = attempt(lambda: tfckpt.open({url!r}, limits=RemoteLimits(timeout=1.5, attempts=2)))
        b = attempt(lambda: tfckpt.open({url!r}, limits=RemoteLimits(timeout=30, deadline=2)))
        c = records({url!r}, {base + "/good/ckpt-1"!r}, limits=RemoteLimits(timeout=1, attempts=1))
        report([a, b, c])
        """,
        timeout=90,  # each index trickles for a minute: only the bounds end the child sooner
    )
    by_timeout, by_deadline, scanned = out
    assert by_timeout["cls"] == "UnreadableError"
    assert by_timeout["msg"].startswith(f"{url}.index: the server failed to send bytes [0, ")
    assert by_timeout["msg"].endswith(
        "2 times; last: no complete answer within the 1.5 s one request may take (--timeout)"
    )
    assert by_deadline["cls"] == "UnreadableError"
    assert re.fullmatch(
        re.escape(f"{url}.index: gave up trying to send bytes [0, ")
        + r"\d+\) after [\d.]+ s, the 2 s deadline \(--deadline\); last: no complete answer "
        r"within the [\d.]+ s left before the deadline",
        by_deadline["msg"],
    ), by_deadline["msg"]
    assert scanned[0][:3] == ["checkpoint", "ckpt-1", "error"]
    assert "no complete answer within the 1 s" in scanned[0][3]
    assert scanned[1] == ["checkpoint", "ckpt-1", "ok", None]
    code, _, err = run_cli("verify", url, "--timeout", "1", "--retries", "1")
    assert code == 2 and "no complete answer within the 1 s one request may take" in err


# -- 500s and 404s -------------------------------------------------------------------------


def test_server_errors_are_retried_then_reported(served):
    handler, base, _ = served
    handler.faults["/flaky/ckpt-1.data-00000-of-00001"] = 2  # then the bytes
    handler.faults["/broken/ckpt-1.data-00000-of-00001"] = -1  # always
    handler.faults["/badindex/ckpt-1.index"] = -1
    out = run_child(
        f"""
        r = tfckpt.open({base + "/flaky/ckpt-1"!r})
        flaky = float(r.read("a")[7])
        r = tfckpt.open({base + "/broken/ckpt-1"!r}, limits=RemoteLimits(attempts=3))
        broken = attempt(lambda: r.read("b"))
        index = attempt(lambda: tfckpt.open({base + "/badindex/ckpt-1"!r}))
        scanned = records({base + "/broken/"!r}, {base + "/good/"!r}, verify=True)
        report([flaky, broken, index, scanned])
        """
    )
    flaky, broken, index, scanned = out
    assert flaky == 7.0
    data_url = f"{base}/broken/ckpt-1.data-00000-of-00001"
    assert broken["cls"] == "UnreadableShardError"
    assert broken["msg"] == (  # its size is asked first (a HEAD), and fails
        f"{data_url}: the server failed to give a data file's size 3 times; last: HTTP 500 "
        "Internal Server Error (needed for key b)"
    )
    assert index["cls"] == "UnreadableError"
    assert index["msg"].startswith(f"{base}/badindex/ckpt-1.index: the server failed to ")
    assert "4 times; last: HTTP 500" in index["msg"]
    broken_rec = next(r for r in scanned if r[0] == "checkpoint" and r[2] == "error")
    assert "the server failed to" in broken_rec[3] and "HTTP 500" in broken_rec[3]
    assert ["checkpoint", "ckpt-1", "ok", None] in scanned  # /good/, after /broken/
    assert [r[0] for r in scanned].count("state") == 2


def test_a_404_for_a_shard_is_a_missing_shard_naming_the_url(served):
    handler, base, _ = served
    data_path = "/noshard/ckpt-1.data-00000-of-00001"
    handler.gone.add(data_path)
    url = base + "/noshard/ckpt-1"
    out = run_child(
        f"""
        r = tfckpt.open({url!r})
        report([attempt(lambda: r.read("a")), attempt(lambda: r.read_slice("b", np.s_[2:4])),
                records({url!r}, {base + "/good/ckpt-1"!r})])
        """
    )
    read, sliced, scanned = out
    message = (
        f"Data shard 0 of 1 is missing: {base}{data_path} does not exist (the server "
        "answered 'not found')"
    )
    assert read == {"cls": "MissingShardError", "msg": message + " (needed for key a)"}
    assert sliced["cls"] == "MissingShardError" and sliced["msg"].startswith(message)
    assert scanned == [
        ["checkpoint", "ckpt-1", "error", message],
        ["checkpoint", "ckpt-1", "ok", None],
    ]
    code, out_text, err = run_cli("verify", url)
    assert code == 1 and err == ""
    assert out_text.startswith(f"MISSING data shard 0: {base}{data_path}: does not exist")


def test_a_url_that_is_not_there_is_a_record_and_the_scan_goes_on(served):
    _, base, _ = served
    out = run_child(f"report(records({base + '/nothing/'!r}, {base + '/good/ckpt-1'!r}))")
    assert out[0][:3] == ["path", "nothing", "error"] and "not found" in out[0][3]
    assert out[1] == ["checkpoint", "ckpt-1", "ok", None]


def test_limits_are_checked():
    with pytest.raises(ValueError, match="timeout must be positive"):
        tfckpt.RemoteLimits(timeout=0)
    with pytest.raises(ValueError, match="max_index_bytes must be a positive integer"):
        tfckpt.RemoteLimits(max_index_bytes=0)
    code, _, err = run_cli("scan", "http://127.0.0.1:9/", "--max-index-size", "lots")
    assert code == 2 and "not a byte count: 'lots'" in err


# -- format V1 checkpoints at URLs (issue 11) ---------------------------------------------


def test_scan_finds_format_v1_checkpoints_over_http(tmp_path):
    www = tmp_path / "www"
    for name in ("v1_single", "v1_sharded", "v1_snappy"):
        shutil.copytree(os.path.join(FIXTURES, name), www / name)
    local = [
        (r.record, r.name, r.status, r.keys, r.parameters, r.bytes, r.shards, r.step)
        for r in tfckpt.scan(str(www), verify=True)
    ]
    assert [r[:3] for r in local if r[0] == "checkpoint"] == [
        ("checkpoint", "v1_sharded/model.ckpt-?????-of-00003", "ok"),
        ("checkpoint", "v1_single/model.ckpt", "ok"),
        ("checkpoint", "v1_snappy/model.ckpt", "ok"),
    ]
    with hostile_server(www) as (handler, base):
        out = run_child(
            f"""
            rs = list(tfckpt.scan({base + "/"!r}, verify=True))
            report([(r.record, r.name, r.status, r.keys, r.parameters, r.bytes, r.shards,
                     r.step) for r in rs] + [[r.location for r in rs]])
            """
        )
        *remote, locations = out
        assert [tuple(r) for r in remote] == local
        assert f"{base}/v1_sharded/model.ckpt-?????-of-00003" in locations
        # A set with a shard gone is an error record naming it.
        handler.gone.add("/v1_sharded/model.ckpt-00001-of-00003")
        os.remove(www / "v1_sharded" / "model.ckpt-00001-of-00003")
        out = run_child(f"report(records({base + '/v1_sharded/'!r}))")
        assert out[1] == [
            "checkpoint",
            "model.ckpt-?????-of-00003",
            "error",
            f"{base}/v1_sharded/model.ckpt-?????-of-00003: 1 of the 3 files of the set are "
            "missing (the first: model.ckpt-00001-of-00003)",
        ]


def test_format_v1_checkpoints_open_at_urls(tmp_path):
    www = tmp_path / "www"
    for name in ("v1_single", "v1_sharded"):
        shutil.copytree(os.path.join(FIXTURES, name), www / name)
    single = str(www / "v1_single" / "model.ckpt")
    sharded = str(www / "v1_sharded" / "model.ckpt-?????-of-00003")
    expected = {}
    for p in (single, sharded):
        with tfckpt.open(p) as r:
            expected[p] = {k: repr(r.read(k).tolist()) for k in r.keys()}
    with hostile_server(www) as (handler, base):
        urls = [base + "/v1_single/model.ckpt", base + "/v1_sharded/model.ckpt-?????-of-00003"]
        out = run_child(
            f"""
            got = []
            for url in {urls!r}:
                with tfckpt.open(url) as r:
                    got.append([r.header.format, r.header.num_shards,
                                {{k: repr(r.read(k).tolist()) for k in r.keys()}}])
            small = attempt(lambda: tfckpt.open({urls[1]!r},
                                                limits=RemoteLimits(max_index_bytes=500)))
            report([got, small])
            """
        )
        got, small = out
        assert got == [["V1", 1, expected[single]], ["V1", 3, expected[sharded]]]
        # No request ever carried the pattern's '?' (it would start a query).
        assert handler.raw and not any("?" in target for target in handler.raw)
        sizes = sum(os.path.getsize(www / "v1_sharded" / n) for n in os.listdir(www / "v1_sharded")
                    if n != "checkpoint")  # fmt: skip
        assert small == {
            "cls": "UnreadableError",
            "msg": f"{base}/v1_sharded/model.ckpt-00000-of-00003: the 3 files of the format V1 "
            f"checkpoint hold {sizes} bytes, more than the 500 bytes tfckpt fetches into memory "
            "(--max-index-size); refused without fetching them",
        }
        code, out_text, err = run_cli("dump", urls[0])
        assert code == 0 and err == ""
        assert out_text.endswith("# 18 tensors, 98 parameters, 851 B in 1 format V1 file\n")
