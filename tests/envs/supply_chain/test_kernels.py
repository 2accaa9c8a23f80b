"""The supply chain's compiled loops give the same economy as their plain twins (same code, run
by Python), and the step runs with numba switched off."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket.envs.supply_chain import SupplyChainCore, movement, protocol, space

KERNELS = (space.close_pairs, protocol.refresh_kernel, protocol.setup_kernel, movement.roles_kernel,
           movement.direction_kernel)


def trajectory(days=15):
    core = SupplyChainCore("supply_chain_small", days=days)
    core.reset(seed=5)
    while not core.done:
        core.step()
    return core.state_dict()["arrays"]


def test_compiled_equals_twin(monkeypatch):
    if any(k.compiled is None for k in KERNELS):
        pytest.skip("numba is off")
    compiled = trajectory()
    for k in KERNELS:
        monkeypatch.setattr(k, "impl", k.twin)
    twin = trajectory()
    for name, v in compiled.items():
        np.testing.assert_allclose(twin[name], v, rtol=1e-12, atol=1e-12, err_msg=name)
