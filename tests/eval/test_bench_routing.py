"""`eval.bench_routing`: the step variants take turns in blocks of consecutive steps, every step timed."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket.eval import bench_routing


class _Recorder:
    """A stand-in market that records which variant stepped, in order."""

    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log

    def step(self, actions: np.ndarray) -> None:
        self.log.append(self.name)


def test_variants_step_in_blocks_and_every_step_is_timed(monkeypatch):
    log: list = []
    monkeypatch.setattr(bench_routing, "routing_core", lambda n, kw, seed=0: _Recorder(kw["tag"], log))
    res = bench_routing.time_steps(10, 7, {"a": {"tag": "a"}, "b": {"tag": "b"}}, block=3)
    timed = log[10:]   # after five warm-up steps each
    assert timed == list("aaabbbaaabbbab")
    assert set(res) == {"a", "b"}
    for fast, med, cfast, cmed in res.values():
        assert 0.0 <= fast <= med and 0.0 <= cfast <= cmed


def test_block_one_is_strict_alternation(monkeypatch):
    log: list = []
    monkeypatch.setattr(bench_routing, "routing_core", lambda n, kw, seed=0: _Recorder(kw["tag"], log))
    bench_routing.time_steps(10, 3, {"a": {"tag": "a"}, "b": {"tag": "b"}}, block=1)
    assert log[10:] == list("ababab")


def test_block_must_be_positive():
    with pytest.raises(ValueError, match="block=0"):
        bench_routing.time_steps(10, 3, {"a": {}}, block=0)


def test_a_real_market_runs_quickly():
    res = bench_routing.time_steps(200, 4, {"routing on": bench_routing.ROUTING}, block=2)
    fast, med, cfast, cmed = res["routing on"]
    assert 0.0 < fast <= med


def test_repeats_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        bench_routing.main(["--repeats", "0"])
    assert "--repeats 0" in capsys.readouterr().err
