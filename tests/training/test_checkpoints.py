"""The shared checkpoint lister: sealed checkpoints verify, damaged or unsealed ones are skipped
with a reason, and pruning keeps the newest intact ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket.envs.files import atomic_write_bytes
from channelmarket.training.checkpoints import latest_valid, list_checkpoints, prune, verify, write_manifest


def make(folder: Path, step: int, payload: bytes = b"weights") -> Path:
    a, b = folder / f"ckpt_{step}_model.pt", folder / f"ckpt_{step}_state.json"
    atomic_write_bytes(a, payload + str(step).encode())
    atomic_write_bytes(b, json.dumps({"step": step}).encode())
    return write_manifest(folder, "ckpt", step, [a, b])


def test_damaged_newest_falls_back_and_says_why(tmp_path):
    for s in (10, 20, 30):
        make(tmp_path, s)
    (tmp_path / "ckpt_30_model.pt").write_bytes(b"")                     # 0 bytes
    (tmp_path / "ckpt_20_state.json").write_text('{"step": 2')           # torn
    said = []
    ck = latest_valid(tmp_path, say=said.append)
    assert ck.step == 10
    assert "ckpt_30" in said[0] and "ckpt_20" in said[0] and "resuming from ckpt_10" in said[0]


def test_unsealed_checkpoint_is_not_listed(tmp_path):
    make(tmp_path, 10)
    atomic_write_bytes(tmp_path / "ckpt_20_model.pt", b"half written run")   # killed before the manifest
    assert [s for s, _ in list_checkpoints(tmp_path)] == [10]
    assert latest_valid(tmp_path, say=lambda m: None).step == 10


def test_manifest_naming_a_path_outside_is_refused(tmp_path):
    m = make(tmp_path, 10)
    doc = json.loads(m.read_text())
    doc["files"]["../evil"] = doc["files"].pop("ckpt_10_model.pt")
    m.write_text(json.dumps(doc))
    ck, why = verify(m)
    assert ck is None and "unsafe" in why


def test_nothing_intact_starts_new_run(tmp_path):
    make(tmp_path, 10)
    (tmp_path / "ckpt_10_model.pt").write_bytes(b"x")
    said = []
    assert latest_valid(tmp_path, say=said.append) is None
    assert "starting a new run" in said[0]


def test_prune_keeps_newest_intact_and_clears_leftovers(tmp_path):
    for s in (10, 20, 30, 40):
        make(tmp_path, s)
    (tmp_path / "ckpt_40_model.pt").write_bytes(b"")          # damaged newest: not counted as intact
    (tmp_path / ".ckpt_50_model.pt.abc.tmp").write_bytes(b"partial")
    prune(tmp_path, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [20, 30, 40]
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "ckpt_10_model.pt").exists()
    assert latest_valid(tmp_path, say=lambda m: None).step == 30


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["ok", "truncate", "empty", "delete", "nomanifest"]), min_size=1, max_size=5))
def test_latest_valid_is_newest_intact(tmp_path_factory, fates):
    folder = tmp_path_factory.mktemp("ck")
    intact = []
    for i, fate in enumerate(fates):
        step = (i + 1) * 10
        m = make(folder, step, payload=b"w" * 50)
        f = folder / f"ckpt_{step}_model.pt"
        if fate == "truncate":
            f.write_bytes(f.read_bytes()[:7])
        elif fate == "empty":
            f.write_bytes(b"")
        elif fate == "delete":
            f.unlink()
        elif fate == "nomanifest":
            m.unlink()
        else:
            intact.append(step)
    ck = latest_valid(folder, say=lambda m: None)
    assert (ck.step if ck else None) == (intact[-1] if intact else None)
    if ck:
        assert all(p.stat().st_size > 0 for p in ck.files.values())
