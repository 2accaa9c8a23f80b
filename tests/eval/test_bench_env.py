"""`eval.bench_env`: the faces step alternately, the face's cost is dict minus array (fastest and
median over the rounds), and the command prints the table. No timing is asserted."""

from __future__ import annotations

import math

import pytest

from channelmarket.eval import bench_env
from channelmarket.eval.bench_env import Spread, face_cost, plan, time_faces


def test_face_cost_is_fastest_minus_fastest_and_median_of_round_differences():
    assert face_cost([1.0, 3.0, 2.0], [4.0, 5.0, 9.0]) == Spread(3.0, 3.0)   # round diffs 3, 2, 7
    assert Spread.of([5.0, 1.0, 3.0]) == Spread(1.0, 3.0)
    with pytest.raises(ValueError, match="one array and one dict time per round"):
        face_cost([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="one array and one dict time per round"):
        face_cost([], [])


def test_plan_times_fewer_longer_blocks_at_scale():
    assert plan(100, 60) == (3, 16) and plan(10_000, 60) == (15, 4) and plan(100_000, 60) == (5, 3)
    assert all(r >= 3 and b >= 1 for r, b in map(plan, (100, 1_000, 10_000, 100_000), (1, 1, 1, 1)))


def test_time_faces_reports_both_faces_and_the_face_cost():
    t = time_faces(100, rounds=3, block=2)
    assert t.n == 100 and t.channels > 0
    for s in (t.array_wall, t.array_cpu, t.dict_wall, t.dict_cpu):
        assert 0 < s.fastest <= s.median
    assert t.face_wall.fastest == pytest.approx(t.dict_wall.fastest - t.array_wall.fastest)
    assert 0 < t.own_wall.fastest < t.dict_wall.median and 0 < t.own_cpu.fastest < t.dict_cpu.median
    arr_only = time_faces(100, rounds=3, block=1, with_dict=False)
    assert arr_only.array_wall.fastest > 0 and math.isnan(arr_only.dict_wall.median)


def test_main_prints_the_table_with_the_spread(capsys):
    assert bench_env.main(["--sizes", "100", "1000", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "dict - array" in out and "the face in the step" in out and "fastest / median" in out
    assert "load average" in out and "CPU time" in out
    assert "| 100 | 500 |" in out and "| 1,000 | 5,000 |" in out
    assert bench_env.fit_exponent([1_000, 10_000], [1.0, 10.0]) == pytest.approx(1.0)
    with pytest.raises(SystemExit):
        bench_env.main(["--steps", "0"])
