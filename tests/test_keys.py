"""The key vocabulary (tfckpt/keys.py): local names escaped and unescaped as TensorFlow's
object-based checkpoints spell them."""

from __future__ import annotations

import numpy as np

import tfckpt
from tfckpt.keys import (
    escape_local_name,
    object_key,
    parse_object_key,
    split_object_path,
    unescape_local_name,
)

NAMES = ["plain", "a.b", "a/b", "./", "/.", "a..S/b", ".S", "x.", "S", "..", "//"]


def test_escape_doubles_dots_before_slashes_become_dot_s():
    """``.`` -> ``..`` first, then ``/`` -> ``.S``: the dot a slash's escape adds is never
    doubled (mutant N1)."""
    assert escape_local_name("a/b") == "a.Sb"
    assert escape_local_name("a.b") == "a..b"
    assert escape_local_name("./") == "...S"
    assert escape_local_name("/.") == ".S.."
    assert escape_local_name(".S") == "..S"
    for name in NAMES:
        assert "/" not in escape_local_name(name), name
        assert unescape_local_name(escape_local_name(name)) == name, name


def test_escaped_names_are_tensorflows_keys(tmp_path):
    """tf.train.Checkpoint keys children with such names exactly as object_key spells them,
    and split_object_path gives the names back."""
    import tensorflow as tf

    names = ["a.b", "a/b", "./", "x.S"]
    ckpt = tf.train.Checkpoint(**{n: tf.Variable(float(i)) for i, n in enumerate(names)})
    prefix = ckpt.write(str(tmp_path / "ck"))
    keys = {k for k, _ in tf.train.list_variables(prefix)} - {tfckpt.OBJECT_GRAPH_KEY}
    assert keys == {object_key([n]) for n in names}
    with tfckpt.open(prefix) as r:
        for i, n in enumerate(names):
            key = object_key([n])
            assert r[key] == np.float32(i)
            path, attr = parse_object_key(key)
            assert split_object_path(path) == [n] and attr == "VARIABLE_VALUE"


def test_unescape_keeps_an_unknown_escape_and_a_trailing_dot():
    """Only ``..`` and ``.S`` are escapes: any other dot pair is kept as it is, dot included
    (mutant N2), and so is a dot at the end."""
    assert unescape_local_name("a..b") == "a.b"
    assert unescape_local_name("a.Sb") == "a/b"
    assert unescape_local_name("a.xb") == "a.xb"
    assert unescape_local_name(".s") == ".s"
    assert unescape_local_name("x.") == "x."
    assert unescape_local_name("...S") == "./"
    assert unescape_local_name("....") == ".."
    assert split_object_path("m/a..b/c.Sd/e.q") == ["m", "a.b", "c/d", "e.q"]
