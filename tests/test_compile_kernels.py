"""`channelmarket compile`: every market sort stepped once, so that a later process finds each kernel it
calls in numba's cache (no compile in the first step of a new process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from channelmarket.compile_kernels import compile_all, main
from channelmarket.envs import compiled

needs_numba = pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: nothing compiles")

_FIRST_STEPS = """
import json, numpy as np
from channelmarket.envs import compiled
from channelmarket.envs.core import MarketCore
from channelmarket.envs.supply_chain import SupplyChainCore
for name in ("energy_default", "energy_lightning"):
    c = MarketCore(name); c.reset(1); c.step(np.zeros((c.n_agents, c.n_actions)))
s = SupplyChainCore("supply_chain_small"); s.reset(1); s.step()
missed = {k: int(sum(v.compiled.stats.cache_misses.values())) for k, v in compiled.KERNELS.items()
          if v.compiled is not None and hasattr(v.compiled, "stats")}
print(json.dumps({k: n for k, n in missed.items() if n}))
"""


@needs_numba
def test_after_compile_a_new_process_compiles_nothing_in_its_first_steps(tmp_path):
    lines = []
    assert compile_all(steps=2, log=lines.append) >= 0.0
    assert any("supply chain" in line for line in lines) and any("eps_auction" in line for line in lines)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-c", _FIRST_STEPS], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=600, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {}, "kernels compiled in a new process after compile"


def test_the_command_prints_its_total(capsys):
    assert main(["--quiet"]) == 0   # numba on: loads what the test above compiled; off: nothing to do
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("channelmarket compile: ")
