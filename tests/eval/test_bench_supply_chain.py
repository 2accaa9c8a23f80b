"""`eval.bench_supply_chain`: the days are timed back to back, the query alone after them."""

from __future__ import annotations

from channelmarket.eval import bench_supply_chain


def test_days_back_to_back_and_the_query_after(monkeypatch):
    calls: list = []
    real_query = bench_supply_chain.neighbourhood
    monkeypatch.setattr(bench_supply_chain, "neighbourhood", lambda *a: (calls.append("query"), real_query(*a))[1])
    real_core = bench_supply_chain.core_for

    def recording_core(n):
        core = real_core(n)
        step = core.step
        core.step = lambda: (calls.append("day"), step())[1]
        return core

    monkeypatch.setattr(bench_supply_chain, "core_for", recording_core)
    r = bench_supply_chain.time_steps(300, 3, warmup=2)
    assert calls == ["day"] * 5 + ["query"] * 3
    assert 0.0 < r["best_ms"] <= r["wall_ms"] and r["query_ms"] > 0.0
    assert 0 < r["alive"] <= 300 and r["n"] == 300


def test_repeats_must_be_positive(capsys):
    import pytest

    with pytest.raises(SystemExit):
        bench_supply_chain.main(["--repeats", "0"])
    assert "--repeats 0" in capsys.readouterr().err


def test_the_row_is_the_repeat_with_the_lowest_median(monkeypatch, capsys):
    medians = iter([12.0, 8.0, 9.0])

    def fake(n, steps):
        m = next(medians)
        return {"n": n, "alive": n, "wall_ms": m, "cpu_ms": m, "query_ms": 1.0, "best_ms": m - 1}

    monkeypatch.setattr(bench_supply_chain, "time_steps", fake)
    monkeypatch.setattr(bench_supply_chain.host_spread, "measure", lambda: bench_supply_chain.host_spread.Spread(1.0, 1.1))
    assert bench_supply_chain.main(["--quick", "--repeats", "3"]) == 0   # --quick times one repeat
    out = capsys.readouterr().out
    assert "12.00 ms per step" in out and "misses" in out


def test_the_verdict_takes_the_lowest_of_the_repeats(monkeypatch, capsys):
    at_10k = iter([12.0, 8.0, 9.0])

    def fake(n, steps):
        m = next(at_10k) if n == 10_000 else 5.0
        return {"n": n, "alive": n, "wall_ms": m, "cpu_ms": m, "query_ms": 1.0, "best_ms": m - 1}

    monkeypatch.setattr(bench_supply_chain, "time_steps", fake)
    monkeypatch.setattr(bench_supply_chain.host_spread, "measure", lambda: bench_supply_chain.host_spread.Spread(1.0, 1.1))
    assert bench_supply_chain.main(["--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "8.00 ms per step, the lowest of the repeats' medians (12.00, 8.00, 9.00) (meets" in out
