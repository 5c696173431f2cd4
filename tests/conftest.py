"""Shared fixtures: a corpus of real TensorFlow checkpoints and TF's own reading of them.

* ``corpus``  (session): ``{case name: tf_corpus.Case}``, built once per
  session into a temporary directory.  Set ``TFCKPT_CORPUS_DIR=/some/dir`` to
  keep the corpus across runs: cases already complete there are reused and
  only missing (or stale, see ``tf_corpus.CORPUS_VERSION``) ones are built.
* ``oracles`` (session): a lazy mapping ``{case name: tf_oracle.oracle(prefix)}``,
  each computed with TensorFlow on first use and cached.

TensorFlow is imported only when these fixtures are used.
"""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

TESTS_DIR = pathlib.Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> pathlib.Path:
    env = os.environ.get("TFCKPT_CORPUS_DIR")
    if env:
        p = pathlib.Path(env).expanduser().resolve()
        p.mkdir(parents=True, exist_ok=True)
        return p
    return tmp_path_factory.mktemp("corpus")


@pytest.fixture(scope="session")
def corpus(corpus_dir):
    import tf_corpus

    return tf_corpus.build_corpus(corpus_dir, reuse=bool(os.environ.get("TFCKPT_CORPUS_DIR")))


class OracleCache:
    """Lazily computes and caches ``tf_oracle.oracle(case.prefix)`` per case name."""

    def __init__(self, cases):
        self._cases = cases
        self._cache = {}

    def __getitem__(self, name: str) -> dict:
        if name not in self._cache:
            import tf_oracle

            self._cache[name] = tf_oracle.oracle(self._cases[name].prefix)
        return self._cache[name]

    def __contains__(self, name: str) -> bool:
        return name in self._cases

    def __iter__(self):
        return iter(self._cases)

    def __len__(self) -> int:
        return len(self._cases)

    def keys(self):
        return self._cases.keys()


@pytest.fixture(scope="session")
def oracles(corpus) -> OracleCache:
    return OracleCache(corpus)
