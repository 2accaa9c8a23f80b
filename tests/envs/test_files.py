"""Atomic writes (envs.files): the old or the new file, never a torn one, with ordinary permissions."""

import os
import stat

import pytest

from channelmarket.envs.files import atomic_write_bytes, atomic_write_text, atomic_writer, sha256_file


def test_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "a" / "f.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert sorted(x.name for x in p.parent.iterdir()) == ["f.txt"]


def test_failure_inside_the_writer_keeps_the_old_file(tmp_path):
    p = tmp_path / "f.bin"
    atomic_write_bytes(p, b"old")
    with pytest.raises(RuntimeError):
        with atomic_writer(p, "wb") as f:
            f.write(b"half")
            raise RuntimeError("crash")
    assert p.read_bytes() == b"old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f.bin"]


def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(tmp_path):
    old = os.umask(0o022)
    try:
        p = tmp_path / "new.txt"
        atomic_write_text(p, "x")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644   # mkstemp alone gives 0600
        os.chmod(p, 0o640)
        atomic_write_text(p, "y")
        assert stat.S_IMODE(p.stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_sha256_and_bad_mode(tmp_path):
    p = tmp_path / "f"
    atomic_write_bytes(p, b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(ValueError, match="mode"):
        with atomic_writer(p, "a"):
            pass
