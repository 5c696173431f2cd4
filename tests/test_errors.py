"""CheckpointError.with_context (tfckpt/errors.py): what a layer that knows more adds to an
error raised below it, by one rule, and what it never changes."""

from __future__ import annotations

import pytest

import tfckpt
from tfckpt.errors import (
    CheckpointError,
    ChecksumMismatchError,
    CorruptCheckpointError,
    MissingShardError,
)


def test_a_shard_alone_is_added_without_touching_the_message():
    """A shard is context too: known only to the caller, it is added even when nothing else
    is new, and the message, which does not print shards, stays as it was (mutant E1)."""
    err = CorruptCheckpointError("ck.index: block 3 is truncated", path="ck.index", key="k")
    out = err.with_context(shard=2)
    assert out is not err and type(out) is CorruptCheckpointError
    assert (out.path, out.key, out.shard, out.offset) == ("ck.index", "k", 2, None)
    assert str(out) == "ck.index: block 3 is truncated"
    assert err.shard is None  # the original is not modified
    # Nothing new (a shard already known stays the raiser's): the same object back.
    assert out.with_context(shard=5) is out
    assert out.with_context(path="other", key="other", shard=5).shard == 2
    assert err.with_context() is err


def test_a_checksum_mismatch_keeps_its_crcs_and_its_class():
    """The copy is of the error's own class, with the fields only that class has: the
    stored and computed CRCs of a ChecksumMismatchError survive the added context
    (mutant E2)."""
    err = ChecksumMismatchError(
        "Checksum does not match: stored 1 vs. calculated 2", stored=1, computed=2
    )
    out = err.with_context(path="/d/ck.data-00000-of-00001", key="w", shard=0, offset=96)
    assert type(out) is ChecksumMismatchError and isinstance(out, CorruptCheckpointError)
    assert (out.stored, out.computed) == (1, 2)
    assert (out.path, out.key, out.shard, out.offset) == ("/d/ck.data-00000-of-00001", "w", 0, 96)
    assert str(out) == (
        "/d/ck.data-00000-of-00001: Checksum does not match: stored 1 vs. "
        "calculated 2 (key w, offset 96)"
    )
    with pytest.raises(tfckpt.ChecksumMismatchError) as info:
        raise out
    assert info.value.stored == 1


def test_what_the_message_names_already_is_not_repeated():
    """The file is prefixed, and key and offset noted, only where the message does not
    name them yet (mutant E3): a storage error that starts with its file gains only the
    key."""
    name = "/d/ck.data-00000-of-00001"
    err = CorruptCheckpointError(
        f"{name}: bytes [8, 16) lie past the end of the 12-byte data file (truncated shard?)",
        offset=8,
    )
    out = err.with_context(path=name, key="k", shard=0, offset=8)
    assert str(out) == (
        f"{name}: bytes [8, 16) lie past the end of the 12-byte data file "
        "(truncated shard?) (key k)"
    )
    assert str(out).count(name) == 1
    assert (out.path, out.key, out.shard, out.offset) == (name, "k", 0, 8)
    named = MissingShardError("key w (slice 0,2): shard 1 is missing at offset 4")
    out = named.with_context(path="/d/ck.index", key="w (slice 0,2)", offset=4)
    assert str(out) == "/d/ck.index: key w (slice 0,2): shard 1 is missing at offset 4"
    assert type(out) is MissingShardError and out.key == "w (slice 0,2)"


def test_context_known_where_raised_wins():
    """A key, file or offset the error already carries is never replaced by the caller's,
    and an empty path adds nothing."""
    err = CheckpointError("bad", path="a.index", key="inner", offset=3)
    out = err.with_context(path="b.index", key="outer", offset=9, shard=1)
    assert (out.path, out.key, out.offset, out.shard) == ("a.index", "inner", 3, 1)
    assert str(out) == "bad"
    bare = CheckpointError("bad")
    assert bare.with_context(path="") is bare
    assert str(CheckpointError("bad").with_context(path="", key="k")) == "bad (key k)"
