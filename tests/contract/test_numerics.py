"""Numerics: finite values at huge steps, exact zeros where torch has them, float32 accuracy over long runs."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsched as js
from tests.references import torch_trajectory
from tests.strategies import examples

INT32_MAX = 2**31 - 1


def _loops(s) -> bool:
    """Schedules whose closed form loops over the steps (MultiplicativeLR with a step-dependent lambda, a
    ChainedScheduler with non-multiplicative members): a huge step is a huge loop, use jaxsched.Running there."""
    members = s.schedulers if isinstance(s, (js.SequentialLR, js.ChainedScheduler)) else (s,)
    if isinstance(s, js.ChainedScheduler) and not s.closed_form:
        return True
    return any(isinstance(m, js.MultiplicativeLR) and not m.step_independent for m in members)


HUGE = [(name, s) for name, s in examples() if not _loops(s)]


@pytest.mark.parametrize("name,s", HUGE, ids=[h[0] for h in HUGE])
def test_finite_at_int32_max(name, s):
    """float32 (int32 steps): finite at 2**31 - 1 and around it, under jit (traced: OneCycleLR holds its end)."""
    steps = jnp.asarray([0, 1, INT32_MAX - 1, INT32_MAX], jnp.int32)
    out = jax.jit(s)(steps)
    assert out.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(out))), f"{name}: {out}"
    if hasattr(s, "momentum") and s.cycle_momentum:
        assert bool(jnp.all(jnp.isfinite(jax.jit(s.momentum)(steps))))


@pytest.mark.parametrize("name,s", HUGE, ids=[h[0] for h in HUGE])
def test_finite_at_2_pow_40_with_x64(name, s):
    with jax.enable_x64(True):
        steps = jnp.asarray([0, 2**40 - 1, 2**40, 2**40 + 1], jnp.int64)
        out = jax.jit(s)(steps)
        assert out.dtype == jnp.float64
        assert bool(jnp.all(jnp.isfinite(out))), f"{name}: {out}"


def test_concrete_step_beyond_int32_needs_x64():
    with pytest.raises(ValueError, match="x64"):
        js.StepLR(0.1, step_size=3)(2**31)


# torch's closed forms, evaluated in Python at huge steps (float64), against jaxsched in float32 and x64


def _cawr(lr, T0, Tm, eta, e):
    """torch's ``step(epoch)`` branch: ``epoch % T_0`` when ``T_mult == 1``, else the geometric restarts."""
    if Tm == 1:
        return eta + (lr - eta) * (1 + math.cos(math.pi * (e % T0) / T0)) / 2
    Ti, start = T0, 0
    while e - start >= Ti:
        start, Ti = start + Ti, Ti * Tm
    return eta + (lr - eta) * (1 + math.cos(math.pi * (e - start) / Ti)) / 2


def _cyclic(base, peak, up, down, e):
    total = up + down
    cycle = math.floor(1 + e / total)
    x = 1.0 + e / total - cycle
    ratio = up / total
    scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
    return base + (peak - base) * scale


BIG = INT32_MAX - 5
CLOSED = [
    ("StepLR", js.StepLR(0.1, step_size=10**8, gamma=0.5), lambda e: 0.1 * 0.5 ** (e // 10**8)),
    ("ExponentialLR", js.ExponentialLR(0.1, gamma=1 - 1e-9), lambda e: 0.1 * (1 - 1e-9) ** e),
    ("MultiStepLR", js.MultiStepLR(0.1, milestones=[BIG - 1, BIG, BIG], gamma=0.5),
     lambda e: 0.1 * 0.5 ** sum(m <= e for m in [BIG - 1, BIG, BIG])),
    ("LinearLR", js.LinearLR(0.1, start_factor=0.1, total_iters=2 * 10**9),
     lambda e: 0.1 * (0.1 + 0.9 * min(e, 2 * 10**9) / (2 * 10**9))),
    ("PolynomialLR", js.PolynomialLR(0.1, total_iters=INT32_MAX, power=2.0),
     lambda e: 0.1 * (1.0 - min(e, INT32_MAX) / INT32_MAX) ** 2.0),
    ("CosineAnnealingLR", js.CosineAnnealingLR(0.1, T_max=1000, eta_min=0.001),
     lambda e: 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * e / 1000)) / 2),
    ("CosineAnnealingWarmRestarts", js.CosineAnnealingWarmRestarts(0.1, T_0=3, T_mult=2),
     lambda e: _cawr(0.1, 3, 2, 0.0, e)),
    ("CosineAnnealingWarmRestarts-Tmult1", js.CosineAnnealingWarmRestarts(0.1, T_0=7, eta_min=0.01),
     lambda e: _cawr(0.1, 7, 1, 0.01, e)),
    ("CyclicLR", js.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=1000, step_size_down=3000),
     lambda e: _cyclic(0.01, 0.1, 1000.0, 3000.0, e)),
    ("SWALR", js.SWALR(0.1, swa_lr=0.01, anneal_epochs=10**9, anneal_strategy="linear"),
     lambda e: 0.01 * min(e / 10**9, 1.0) + 0.1 * (1 - min(e / 10**9, 1.0))),
    ("SequentialLR", js.SequentialLR([js.ConstantLR(0.1, factor=0.5, total_iters=3),
                                      js.CosineAnnealingLR(0.1, T_max=10**6)], milestones=[10**9]),
     lambda e: 0.1 * (1 + math.cos(math.pi * (e - 10**9) / 10**6)) / 2),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,s,torch_closed", CLOSED, ids=[c[0] for c in CLOSED])
def test_values_near_int32_max(name, s, torch_closed):
    ks = [BIG - 2, BIG, INT32_MAX]
    want = np.array([torch_closed(k) for k in ks])
    got32 = np.asarray(jax.jit(s)(jnp.asarray(ks, jnp.int32)), np.float64)
    np.testing.assert_allclose(got32, want, rtol=0, atol=1e-6 * np.max(np.abs(want)) + 1e-12, err_msg=name)
    with jax.enable_x64(True):
        got64 = np.asarray(jax.jit(s)(jnp.asarray(ks, jnp.int64)), np.float64)
    # torch's own float64 arithmetic on e ~ 2**31 carries ~1e-9 relative noise in cos(pi * e / T)
    np.testing.assert_allclose(got64, want, rtol=0, atol=1e-8 * np.max(np.abs(want)), err_msg=name)


# PolynomialLR: exactly zero from total_iters on (optax's polynomial_schedule gives NaN there under jit)


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0, 3.7, 1e-3])
@pytest.mark.parametrize("x64", [False, True])
def test_polynomial_exact_zero_past_total_iters(power, x64):
    s = js.PolynomialLR(0.1, total_iters=50, power=power)
    with jax.enable_x64(x64):
        out = np.asarray(jax.jit(s)(jnp.arange(45, 200)))
        grad = jax.grad(lambda lr: js.PolynomialLR(lr, total_iters=50, power=power)(60))(0.1)
    assert np.all(out[5:] == 0.0), out[5:10]
    assert np.all(out[:5] > 0.0)
    assert np.all(np.isfinite(out)) and np.isfinite(grad)


def test_polynomial_power_zero_is_one_everywhere():
    out = np.asarray(jax.jit(js.PolynomialLR(0.1, total_iters=5, power=0.0))(jnp.arange(10)))
    np.testing.assert_allclose(out, 0.1, rtol=1e-7)


# float32 over a long run


def test_float32_exponential_long_run_matches_torch():
    """ExponentialLR(gamma=0.9999) over 20000 steps in float32 stays within 1e-6 (x max LR) of torch's float64."""
    s = js.ExponentialLR(1.0, gamma=0.9999)
    ref, _ = torch_trajectory(s, 20000)
    got = np.asarray(jax.jit(s)(jnp.arange(20001)), np.float64)
    assert got.dtype == np.float64 and jax.jit(s)(0).dtype == jnp.float32
    err = np.max(np.abs(got - ref[:, 0]))
    assert err <= 1e-6 * np.max(np.abs(ref)), err


@pytest.mark.parametrize("s", [
    js.CosineAnnealingLR(1.0, T_max=5000),
    js.LinearLR(1.0, start_factor=1.0, end_factor=0.0, total_iters=20000),
    js.MultiplicativeLR(1.0, lr_lambda=lambda e: 0.9999),
], ids=["cosine-5000", "linear-20000", "multiplicative-const"])
def test_float32_long_runs_match_torch(s):
    ref, _ = torch_trajectory(s, 20000)
    got = np.asarray(jax.jit(s)(jnp.arange(20001)), np.float64)
    assert np.max(np.abs(got - ref[:, 0])) <= 1e-6 * np.max(np.abs(ref))


def test_cosine_minimum_is_exact():
    """Index T_max is exactly eta_min in torch; no 1 + cos cancellation leaves a residue in float32."""
    for T in (3, 7, 5000):
        s = js.CosineAnnealingLR(0.1, T_max=T, eta_min=0.0)
        assert float(jax.jit(s)(T)) == 0.0
