"""jaxsched.LinearWarmup: torch's SequentialLR([LinearLR, s]) for start_factor > 0, transformers' ramp at 0."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsched
from jaxsched.transformers import get_scheduler


def torch_warmup_then(main_cls, main_kw, lr, W, sf, steps):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    S = torch.optim.lr_scheduler
    warm = S.LinearLR(opt, start_factor=sf, end_factor=1.0, total_iters=W)
    main = getattr(S, main_cls)(opt, **main_kw)
    seq = S.SequentialLR(opt, [warm, main], milestones=[W])
    out = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        seq.step()
        out.append(opt.param_groups[0]["lr"])
    return np.asarray(out)


@settings(max_examples=max(6, settings.default.max_examples // 4))  # two compiles per example
@given(lr=st.floats(1e-3, 1.0), W=st.integers(1, 20), T=st.integers(1, 40),
       sf=st.none() | st.floats(0.01, 1.0), main=st.sampled_from(["CosineAnnealingLR", "StepLR", "ExponentialLR"]))
def test_equals_torch_sequential_linear_lr(lr, W, T, sf, main):
    kw = {"CosineAnnealingLR": {"T_max": T}, "StepLR": {"step_size": max(1, T // 4), "gamma": 0.5},
          "ExponentialLR": {"gamma": 0.95}}[main]
    s = jaxsched.LinearWarmup(getattr(jaxsched, main)(lr, **kw), W, start_factor=sf)
    ref = torch_warmup_then(main, kw, lr, W, s.start_factor, W + T + 5)
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(s)(jnp.arange(W + T + 6)))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12 * lr, err_msg=repr(s))
    np.testing.assert_allclose(np.asarray(jax.jit(s)(jnp.arange(W + T + 6))), ref, rtol=0, atol=1e-6 * lr)


def test_default_never_starts_at_zero_and_transformers_ramp_at_zero():
    W, T = 10, 100
    s = jaxsched.LinearWarmup(jaxsched.CosineAnnealingLR(1e-3, T_max=T - W), W)
    lrs = np.asarray(s(jnp.arange(T + 1)))
    assert lrs[0] == pytest.approx(1e-3 / (W + 1))
    np.testing.assert_allclose(lrs[:W + 1], 1e-3 * np.arange(1, W + 2) / (W + 1), rtol=1e-6)
    hf = get_scheduler("cosine", 1e-3, W, T)
    zero = jaxsched.LinearWarmup(jaxsched.CosineAnnealingLR(1e-3, T_max=T - W), W, start_factor=0.0)
    with jax.enable_x64(True):
        np.testing.assert_allclose(np.asarray(zero(jnp.arange(T + 1))), np.asarray(hf(jnp.arange(T + 1))),
                                   rtol=1e-12, atol=1e-18)
        lin = jaxsched.LinearWarmup(jaxsched.LinearLR(1e-3, 1.0, 0.0, total_iters=T - W), W, start_factor=0.0)
        np.testing.assert_allclose(np.asarray(lin(jnp.arange(T + 20))),
                                   np.asarray(get_scheduler("linear", 1e-3, W, T)(jnp.arange(T + 20))),
                                   rtol=1e-12, atol=1e-18)
    assert float(hf(0)) == 0.0


def test_contract_and_errors():
    s = jaxsched.LinearWarmup(jaxsched.StepLR((0.1, 0.2), step_size=3), 4)
    assert s.num_groups == 2 and np.asarray(s(0)).shape == (2,)
    assert jaxsched.parse_spec(repr(s)) == s and jaxsched.from_config(s.to_config()) == s
    assert hash(jaxsched.parse_spec(repr(s))) == hash(s)
    run = jaxsched.Running(s)
    st_ = run.init()
    got = []
    for _ in range(12):
        got.append(np.asarray(run(st_)))
        st_ = run.update(st_)
    np.testing.assert_allclose(got, np.asarray(s(jnp.arange(12))), rtol=1e-6)
    with pytest.raises(ValueError, match="start_factor=1.5"):
        jaxsched.LinearWarmup(jaxsched.StepLR(0.1, 3), 4, start_factor=1.5)
    with pytest.raises(ValueError, match="num_warmup_steps=-1"):
        jaxsched.LinearWarmup(jaxsched.StepLR(0.1, 3), -1)
    with pytest.raises(ValueError, match="SequentialLR"):
        jaxsched.LinearWarmup(jaxsched.SequentialLR([jaxsched.StepLR(0.1, 3)], milestones=[]), 4)
    with pytest.raises(TypeError, match="schedule=0.1"):
        jaxsched.LinearWarmup(0.1, 4)
