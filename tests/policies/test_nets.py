"""`policies.nets.Tanh`: torch's tanh through NumPy on the CPU (torch 2.13's CPU tanh is ~12x slower),
the same values to a couple of ulps, torch's own backward, and nn.Tanh checkpoints loading unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from channelmarket.policies.nets import _NUMPY_TANH_FROM, GaussianActor, Tanh, _NumpyTanh, mlp


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_are_torch_tanh_to_a_few_ulps_and_edges_exact(dtype):
    x = torch.cat([torch.randn(5000, dtype=dtype) * 4, torch.tensor([0.0, -0.0, 30.0, -30.0, float("inf"),
                                                                       float("-inf"), 1e-30], dtype=dtype)])
    got, want = Tanh()(x), torch.tanh(x)
    assert got.dtype == dtype and got.shape == x.shape
    ulp = torch.finfo(dtype).eps
    assert torch.all((got - want).abs() <= 4 * ulp * want.abs().clamp_min(torch.finfo(dtype).tiny))
    assert torch.equal(got[-7:-1], want[-7:-1])   # 0, -0, saturation and the infinities exactly
    assert torch.signbit(got[5001]) and not torch.signbit(got[5000])
    assert torch.isnan(Tanh()(torch.tensor([float("nan")], dtype=dtype))).all()


def test_the_gradient_is_tanh_backward_and_passes_gradcheck():
    x = torch.randn(40, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_NumpyTanh.apply, (x,))   # the NumPy path itself, on a small input
    a = torch.randn(300, 16, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    g = torch.randn(300, 16)
    Tanh()(a).backward(g)
    torch.tanh(b).backward(g)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)   # 1 - y^2 near |y| = 1: absolute


def test_strided_inputs_and_no_grad_and_other_dtypes():
    x = torch.randn(256, 32)[:, ::2]
    torch.testing.assert_close(Tanh()(x), torch.tanh(x), rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        y = Tanh()(torch.randn(8, 4))
    assert not y.requires_grad
    h = torch.randn(10, dtype=torch.float16)   # not NumPy's: torch computes it
    assert torch.equal(Tanh()(h), torch.tanh(h))


def test_a_checkpoint_of_an_nn_tanh_network_loads_and_acts_the_same():
    torch.manual_seed(0)
    old = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
    new = mlp(6, (8, 8), 2)
    assert [type(m) for m in new] == [nn.Linear, Tanh, nn.Linear, Tanh, nn.Linear]
    new.load_state_dict(old.state_dict())   # the activations hold nothing: the keys are the same
    x = torch.randn(50, 6)
    torch.testing.assert_close(new(x), old(x), rtol=1e-5, atol=1e-6)
    actor = GaussianActor(6, 2)
    assert all(not isinstance(m, nn.Tanh) for m in actor.modules())
    assert np.isfinite(actor.dist(x).sample().numpy()).all()


def test_small_inputs_take_torch_tanh_itself():
    # below the size where NumPy pays for the Function's own call, the values are torch's, bit for bit
    x = torch.randn(_NUMPY_TANH_FROM - 1)
    assert torch.equal(Tanh()(x), torch.tanh(x))
    assert Tanh()(x.requires_grad_(True)).grad_fn.name() == "TanhBackward0"
    big = torch.randn(_NUMPY_TANH_FROM, requires_grad=True)
    assert "NumpyTanh" in Tanh()(big).grad_fn.name()
