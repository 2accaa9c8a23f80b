"""The heap setting the market cores ask for: once per process, validated, switchable off."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from channelmarket.envs import memory


@pytest.mark.parametrize("bad", [0, -5, 2000, 1.5, True, "64"])
def test_retain_heap_rejects_sizes_outside_the_range(bad):
    with pytest.raises(ValueError, match="retain_heap: trim_mb"):
        memory.retain_heap(trim_mb=bad)


def test_retain_heap_is_idempotent():
    first = memory.retain_heap()
    assert isinstance(first, bool) and memory.retain_heap() is first
    if sys.platform.startswith("linux") and os.environ.get("CHANNELMARKET_RETAIN_HEAP", "1") != "0":
        assert first   # glibc


@pytest.mark.parametrize("make", ["MarketCore('energy_default')", "MarketCore('energy_default', n_markets=2)",
                                  "SupplyChainCore('supply_chain_small')"])
def test_every_core_asks_for_it(make):
    code = ("from channelmarket.envs import memory; from channelmarket.envs.core import MarketCore; "
            "from channelmarket.envs.supply_chain import SupplyChainCore; "
            f"assert memory._done is None; {make}; print(memory._done is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_retain_heap_can_be_switched_off():
    code = "from channelmarket.envs import memory; print(memory.retain_heap())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "CHANNELMARKET_RETAIN_HEAP": "0"})
    assert out.stdout.strip() == "False"
