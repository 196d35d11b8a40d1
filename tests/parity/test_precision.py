"""The float32 contract with torch (issue 11): max|jaxsched - torch| <= 1e-6 x the largest |LR| torch holds over
the compared trajectory in float32, 1e-10 with x64.

Explicit regression cases for the five measured findings (each failed before the fix), then hypothesis over the
hard regions (``tests.strategies.HARD_CASES``): growing exponentials, non-integer CyclicLR cycles landing on their
boundaries, eta_min above the initial LR, the running form past T_max, long horizons, from_torch at near-zero LRs.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, note
from hypothesis import strategies as st

import jaxsched as js
from jaxsched._numerics import cyclic_position, exp_k_log
from tests.references import torch_trajectory
from tests.strategies import HARD_CASES, decayed_torch_cases, pasteable

TOL = {False: 1e-6, True: 1e-10}
#: float32 cannot hold LRs below its smallest normal number (torch's 5e-92 after 300 halvings): that much is allowed
TINY32 = float(np.finfo(np.float32).tiny)
X64 = pytest.mark.parametrize("x64", [False, True], ids=["float32", "x64"])


def _closed(s, n, x64, momentum=False):
    """``s(0..n)`` (or ``s.momentum``) under jit, as float64 of shape (n + 1, G)."""
    with jax.enable_x64(x64):
        out = jax.jit(s.momentum if momentum else s)(jnp.arange(n + 1))
        assert out.dtype == (jnp.float64 if x64 else jnp.float32)
        return np.asarray(out, np.float64).reshape(n + 1, -1)


def _running(s, n, x64, state=None):
    """``jaxsched.Running(s)`` scanned over ``n + 1`` steps (from ``state``, else ``init()``)."""
    with jax.enable_x64(x64):
        r = js.Running(s)

        def body(st_, _):
            return r.update(st_), r(st_)

        out = jax.lax.scan(body, r.init() if state is None else state, None, length=n + 1)[1]
        assert out.dtype == (jnp.float64 if x64 else jnp.float32)
        return np.asarray(out, np.float64).reshape(n + 1, -1)


def _torch(s, n):
    with jax.enable_x64(True):  # torch's lambdas evaluated in float64, as torch does with Python floats
        ref, mom = torch_trajectory(s, n)
    return ref.reshape(n + 1, -1), (None if mom is None else np.asarray(mom, np.float64).reshape(n + 1, -1))


def _check(got, ref, x64, what, s, scale=None, atol=0.0):
    got = np.broadcast_to(got, ref.shape)
    assert np.all(np.isfinite(got)), f"{what}: non-finite values for {pasteable(s)}"
    err = np.abs(got - ref).max(axis=1)
    scale = float(np.max(np.abs(ref))) if scale is None else scale
    k = int(np.argmax(err))
    assert err[k] <= TOL[x64] * scale + atol, (
        f"{what} ({'x64' if x64 else 'float32'}): max|jaxsched - torch| = {err[k]:.3g} = "
        f"{err[k] / max(scale, 1e-300):.3g} x max|LR| at step {k}: jaxsched {got[k].tolist()} vs torch "
        f"{ref[k].tolist()}\n  schedule: {pasteable(s)}"
    )


# ------------------------------------------------------------------------------------------------------------
# 1. from_torch accepts a scheduler whose LR decayed to about 0 (the check has a floor at the initial LRs)

S = torch.optim.lr_scheduler


def _torch_sched(kind, kw, lr=0.1):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    if kind == "SequentialLR":
        return opt, S.SequentialLR(opt, [S.ConstantLR(opt, factor=0.5, total_iters=2), S.ExponentialLR(opt, **kw)],
                                   milestones=[3])
    return opt, getattr(S, kind)(opt, **kw)


def _step(opt, sched, n):
    out = []
    for _ in range(n):
        opt.step()
        sched.step()
        out.append(float(opt.param_groups[0]["lr"]))
    return out


DECAYED = [
    ("LinearLR", dict(end_factor=0.0), 5),  # torch holds -1.48e-18 where the closed form is 0
    ("StepLR", dict(step_size=1, gamma=0.5), 300),  # 4.9e-92: below float32's range
    ("ExponentialLR", dict(gamma=0.5), 300),
    ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.5), 300),
    ("SequentialLR", dict(gamma=0.5), 300),
]


def _continue_from_torch(kind, kw, k, x64, running, more=30):
    """from_torch after ``k`` steps, then ``more`` steps of torch and of jaxsched: (got, ref, scale)."""
    opt, sched = _torch_sched(kind, kw)
    _step(opt, sched, k)
    now = float(opt.param_groups[0]["lr"])
    with jax.enable_x64(x64):
        out: Any = js.from_torch(sched, running=running)  # a schedule, or (Running, state) with running
        ref = np.asarray([now] + _step(opt, sched, more), np.float64).reshape(-1, 1)
        if running:
            r, state = out
            got = _running(r.schedule, more, x64, state=state)
        else:
            got = _closed(out, more, x64)
    # the compared trajectory is the scheduler's: it held its initial LR (0.1) at construction
    return got, ref, max(float(np.max(np.abs(ref))), 0.1)


@X64
@pytest.mark.parametrize("running", [False, True], ids=["closed", "running"])
@pytest.mark.parametrize("kind,kw,k", DECAYED, ids=[d[0] for d in DECAYED])
def test_from_torch_accepts_a_decayed_lr(kind, kw, k, x64, running):
    got, ref, scale = _continue_from_torch(kind, kw, k, x64, running)
    _check(got, ref, x64, f"from_torch({kind}) after {k} steps", kind, scale=scale, atol=0.0 if x64 else TINY32)


def test_from_torch_still_refuses_an_edited_lr():
    """The floor does not hide a real edit: an LR halved outside the scheduler is refused."""
    opt, sched = _torch_sched("ExponentialLR", dict(gamma=0.9))
    _step(opt, sched, 10)
    opt.param_groups[0]["lr"] *= 0.5
    with pytest.raises(ValueError, match="changed outside the scheduler"):
        js.from_torch(sched)


# ------------------------------------------------------------------------------------------------------------
# 2. CyclicLR: cycle boundaries decided as torch decides them (float64 floor(1 + e / total)), both precisions

CYCLIC = [
    js.CyclicLR(base_lr=0.1, max_lr=1.0, step_size_up=0.3, step_size_down=0, cycle_momentum=False),
    js.CyclicLR(2.64e-4, max_lr=2.64e-3, step_size_up=1.1, step_size_down=0, mode="exp_range", gamma=0.9999),
    js.CyclicLR(0.1, max_lr=1.0, step_size_up=0.3, step_size_down=0, mode="triangular2", cycle_momentum=False),
    js.CyclicLR(2.64e-4, max_lr=2.64e-3, step_size_up=1.1, step_size_down=0, mode="triangular2"),
    js.CyclicLR(0.01, max_lr=0.1, step_size_up=0.7, step_size_down=1.4, mode="triangular2"),
]


@X64
@pytest.mark.parametrize("s", CYCLIC, ids=[f"up={c.step_size_up}-{c.mode}" for c in CYCLIC])
def test_cyclic_boundaries_match_torch(s, x64):
    n = 200
    ref, mom = _torch(s, n)
    _check(_closed(s, n, x64), ref, x64, "CyclicLR", s)
    if s.cycle_momentum:
        assert mom is not None
        _check(_closed(s, n, x64, momentum=True), mom, x64, "CyclicLR momentum", s)


def _torch_position(e: int, up: float, total: float):
    """torch's CyclicLR arithmetic, verbatim (Python floats)."""
    cycle = math.floor(1 + e / total)
    x = 1.0 + e / total - cycle
    ratio = up / total
    return cycle, (x / ratio if x <= ratio else (x - 1) / (ratio - 1))


@X64
@pytest.mark.parametrize("up,total", [(0.3, 0.3), (1.1, 1.1), (0.25, 0.55), (1.1, 2.3), (33.3, 33.3), (0.7, 0.7),
                                      (7.1, 17.0), (1.3, 1.3), (2.64, 2.64), (0.9, 1.7)])
def test_cyclic_position_decides_like_torch_up_to_int32_max(up, total, x64):
    """At the steps where e / total lands within a float64 ulp of an integer (the multiples of the decimal
    numerator) up to 2**31 - 1, and at random steps: the same cycle index and position as torch (in float32
    the cycle index saturates at 2**31 - 1, which only cycles shorter than a step reach)."""
    rng = np.random.default_rng(int(up * 1000 + total * 10))
    num = Fraction(total).limit_denominator(1000).numerator
    es = np.unique(np.concatenate([np.arange(0, 3000), num * np.arange(1, 3000),
                                   num * rng.integers(1, (2**31 - 1) // num, 3000), rng.integers(0, 2**31 - 1, 2000)]))
    with jax.enable_x64(x64):
        itype, ftype = (jnp.int64, jnp.float64) if x64 else (jnp.int32, jnp.float32)
        cyc, pos = jax.jit(lambda e: cyclic_position(e, up, total, ftype))(jnp.asarray(es, itype))
    cyc, pos = np.asarray(cyc, np.int64), np.asarray(pos, np.float64)
    want = [_torch_position(int(e), up, total) for e in es]
    bad = [(int(e), w, (int(c), float(p))) for e, w, c, p in zip(es, want, cyc, pos)
           if min(w[0], 2**31 - 2) != min(c, 2**31 - 2) or abs(w[1] - p) > (1e-12 if x64 else 3e-7)]
    assert not bad, f"{len(bad)} steps decided differently from torch, e.g. (step, torch, jaxsched): {bad[:3]}"


def test_cyclic_boundary_decisions_in_x64_beyond_int32():
    """x64 steps up to 2**40 at the boundary multiples: torch's own float64 expression."""
    up = total = 1.1
    es = 11 * np.arange(2**36 // 11 - 500, 2**36 // 11 + 500, dtype=np.int64)
    with jax.enable_x64(True):
        cyc, pos = jax.jit(lambda e: cyclic_position(e, up, total, jnp.float64))(jnp.asarray(es))
    want = np.asarray([_torch_position(int(e), up, total) for e in es])
    np.testing.assert_array_equal(np.asarray(cyc), want[:, 0])
    np.testing.assert_allclose(np.asarray(pos), want[:, 1], rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# 3. growing exponentials: k * log(gamma) carried as hi + lo in float32

GROWTH = [
    (js.ExponentialLR(1e-8, gamma=(1e9) ** (1 / 100)), 100),  # an LR range test ramp over 9 decades
    (js.ExponentialLR(0.146, gamma=1.001), 60_000),
    (js.MultiplicativeLR(1.15e-3, lr_lambda=lambda e: 1.3), 300),
    (js.StepLR(1e-3, step_size=2, gamma=2.0), 200),
]


@pytest.mark.parametrize("s,n", GROWTH, ids=["range-test", "exp-1.001-60000", "multiplicative-1.3", "step-2.0"])
def test_growing_exponentials_match_torch(s, n):
    ref, _ = _torch(s, n)
    for x64 in (False, True):
        _check(_closed(s, n, x64), ref, x64, "growth", s)


@pytest.mark.parametrize("gamma,k_max", [(1.00000003, 2**31 - 1), (1.00001, 8_000_000), (1.001, 80_000),
                                         (2.0, 127), (1.3, 330), ((1e12) ** (1 / 100), 100)])
def test_exp_k_log_keeps_the_product_rounding(gamma, k_max):
    """float32 exp(k log gamma) against float64, at every k up to 5000 and at spread k up to k_max."""
    log_g = math.log(gamma)
    ks = np.unique(np.concatenate([np.arange(min(k_max, 5000) + 1), np.linspace(0, k_max, 5000).astype(np.int64)]))
    got = np.asarray(jax.jit(lambda k: exp_k_log(k, log_g, jnp.float32))(jnp.asarray(ks, jnp.int32)), np.float64)
    want = np.exp(ks * log_g)
    assert np.max(np.abs(got - want) / want) <= 2e-7


# ------------------------------------------------------------------------------------------------------------
# 4. the running form in float32: the closed form plus the deviation from it, not a float32 recursion

RUNNING = [
    (js.CosineAnnealingLR(0.1, T_max=1000, eta_min=0.05), 2000),  # climbing back past T_max: A > 1
    (js.CosineAnnealingLR(0.08, T_max=97, eta_min=0.04), 400),
    (js.ExponentialLR(0.1, gamma=0.9999), 10_000),
    (js.SequentialLR([js.LinearLR(0.1, start_factor=0.1, total_iters=10),
                      js.CosineAnnealingLR(0.1, T_max=300, eta_min=0.02)], milestones=[10]), 900),
    (js.CosineAnnealingLR(1e-4, T_max=50, eta_min=0.01), 300),
    (js.ChainedScheduler([js.StepLR(0.1, step_size=3, gamma=0.9), js.ExponentialLR(0.1, gamma=0.999)]), 3000),
]


@X64
@pytest.mark.parametrize("s,n", RUNNING, ids=["cos-1000", "cos-97", "exp-0.9999", "warmup-cos", "cos-eta-above",
                                              "chained-multiplicative"])
def test_running_matches_torch(s, n, x64):
    ref, _ = _torch(s, n)
    _check(_running(s, n, x64), ref, x64, "Running", s)


@X64
def test_from_torch_running_continues_a_cosine_past_t_max(x64):
    got, ref, scale = _continue_from_torch("CosineAnnealingLR", dict(T_max=100, eta_min=0.05), 150, x64, True,
                                           more=400)
    _check(got, ref, x64, "from_torch(running=True)", "CosineAnnealingLR", scale=scale)


def test_running_keeps_an_edit_like_torch():
    """An LR set outside the scheduler is carried on (torch multiplies the edited LR): the deviation recursion."""
    opt, sched = _torch_sched("StepLR", dict(step_size=7, gamma=0.5))
    _step(opt, sched, 20)
    opt.param_groups[0]["lr"] *= 3.0
    out: Any = js.from_torch(sched, running=True)
    r, state = out
    ref = np.asarray([float(opt.param_groups[0]["lr"])] + _step(opt, sched, 100), np.float64).reshape(-1, 1)
    _check(_running(r.schedule, 100, False, state=state), ref, False, "edited Running", "StepLR")


CHAINED_AFFINE = js.ChainedScheduler([js.CosineAnnealingLR(0.08, T_max=97, eta_min=0.04),
                                      js.ConstantLR(0.08, factor=1.0, total_iters=0)])


def test_chained_affine_replay_x64():
    ref, _ = _torch(CHAINED_AFFINE, 400)
    _check(_closed(CHAINED_AFFINE, 400, True), ref, True, "ChainedScheduler replay", CHAINED_AFFINE)
    _check(_running(CHAINED_AFFINE, 400, True), ref, True, "Running(ChainedScheduler)", CHAINED_AFFINE)


@pytest.mark.xfail(strict=True, reason="not fixed: a ChainedScheduler without a closed form replays torch's "
                   "recursion in one float32 (8.7e-5 of the largest LR here); see the README's Precision section")
def test_chained_affine_replay_float32():
    ref, _ = _torch(CHAINED_AFFINE, 400)
    _check(_closed(CHAINED_AFFINE, 400, False), ref, False, "ChainedScheduler replay", CHAINED_AFFINE)


# ------------------------------------------------------------------------------------------------------------
# 5. eta_min far above lr: lr * cos^2 + eta_min * sin^2, each term accurate relative to itself

ETA_ABOVE = [
    js.CosineAnnealingWarmRestarts(2e-5, T_0=50, eta_min=0.01),
    js.SequentialLR([js.ConstantLR(2e-5, factor=0.5, total_iters=3),
                     js.CosineAnnealingWarmRestarts(2e-5, T_0=50, eta_min=0.01)], milestones=[5]),
    js.CosineAnnealingLR(2e-5, T_max=50, eta_min=0.01),
    js.CosineAnnealingWarmRestarts(1e-4, T_0=3, T_mult=2, eta_min=0.5),
]


@X64
@pytest.mark.parametrize("s", ETA_ABOVE, ids=["cawr", "sequential-cawr", "cosine", "cawr-tmult2"])
def test_eta_min_above_lr_every_short_run(s, x64):
    """Every prefix 0..n of the trajectory (n = 1..200) is within the contract of its own largest LR."""
    n = 200
    ref, _ = _torch(s, n)
    got = _closed(s, n, x64)
    err = np.maximum.accumulate(np.abs(got - ref).max(axis=1))
    top = np.maximum.accumulate(np.abs(ref).max(axis=1))
    worst = int(np.argmax(err / top))
    assert err[worst] <= TOL[x64] * top[worst], (
        f"run of {worst} steps: {err[worst] / top[worst]:.3g} x its largest LR for {pasteable(s)}")


# ------------------------------------------------------------------------------------------------------------
# hypothesis over the hard regions (slow: whole trajectories against torch)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HARD_CASES))
@given(data=st.data())
def test_hard_regions_match_torch(name, data):
    s, n = data.draw(HARD_CASES[name](), label="case")
    note(f"schedule: {pasteable(s)}  steps: {n}")
    ref, mom = _torch(s, n)
    for x64 in (False, True):
        # float32 holds no LR below its smallest normal number
        atol = 0.0 if x64 else TINY32
        _check(_closed(s, n, x64), ref, x64, name, s, atol=atol)
        if name == "running":
            _check(_running(s, n, x64), ref, x64, f"{name} (Running)", s, atol=atol)
        if mom is not None and getattr(s, "cycle_momentum", False):
            _check(_closed(s, n, x64, momentum=True), mom, x64, f"{name} momentum", s, atol=atol)


@pytest.mark.slow
@given(case=decayed_torch_cases(), running=st.booleans(), x64=st.booleans())
def test_from_torch_near_zero_lrs(case, running, x64):
    kind, kw, k = case
    note(f"{kind}({kw}) stepped {k} times, running={running}, x64={x64}")
    got, ref, scale = _continue_from_torch(kind, kw, k, x64, running)
    _check(got, ref, x64, f"from_torch({kind})", kind, scale=scale, atol=0.0 if x64 else TINY32)
