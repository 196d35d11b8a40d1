"""jaxsched.timm against live timm 1.0 (its ``timm.scheduler`` files, loaded by tests/_timm_loader.py).

For each drawn schedule: the LR timm sets on ``step(t)`` (``t_in_epochs=True``) or ``step_update(t)``
(``t_in_epochs=False``) for ``t = 0..n`` (timm computes in Python floats: the float64 reference), against
``s(t)`` under ``jax.jit`` with x64 (1e-10 x max|LR|, ``s`` passed as an argument) and in float32 (1e-6 x max|LR|,
``s`` closed over: the README's float32 contract), every parameter group. The cycle schedulers may differ from
timm only exactly at a restart whose float64 cycle index timm floors one short (see jaxsched._cycles); every such
step is checked against the top of the exact cycle instead. Multipliers within 1e-3 of 1, where timm's own
formula is inaccurate, are a deliberate difference (README) and not drawn (:func:`test_cycle_mul_next_to_one`).
PlateauLRScheduler is compared update by update on drawn metric sequences.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from jaxsched import timm as jt
from jaxsched._frameworks import from_timm
from jaxsched._value import CATALOGUE, REGISTRY
from tests._timm_loader import load_timm_scheduler, timm_version
from tests.parity._cycle_helpers import exact_restarts
from tests.parity._cycle_helpers import jaxsched_trajectory as trajectory

pytestmark = pytest.mark.slow  # whole trajectories against timm's schedulers

ts = load_timm_scheduler()
if ts is None:
    pytest.skip("timm is not installed", allow_module_level=True)

TOL32 = 1e-6
TOL64 = 1e-10
STEPS = 256
#: A third of the profile's examples per class (each compiles twice): about a minute with the ci profile.
EXAMPLES = max(8, settings().max_examples // 3)


def optimizer(lr):
    lrs = lr if isinstance(lr, tuple) else (lr,)
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": v} for v in lrs]
    return torch.optim.SGD(params, lr=lrs[0])


def timm_object(s, opt):
    args = dict(s.to_config()["args"])
    del args["lr"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # PlateauLRScheduler is deprecated in timm 1.0.2x
        return getattr(ts, type(s).__name__)(opt, **args)


def timm_trajectory(s, n):
    opt = optimizer(s.lr)
    sched = timm_object(s, opt)
    out = []
    for t in range(n + 1):
        if s.t_in_epochs:
            sched.step(t)
        else:
            sched.step_update(t)
        out.append([g["lr"] for g in opt.param_groups])
    return np.asarray(out, np.float64)


def jaxsched_trajectory(s, n, x64):
    return trajectory(s, n, x64, STEPS).reshape(n + 1, -1)


def restart_tops(s, n):
    """At exact restarts: the value at the top of the exact cycle (timm may be one cycle short there)."""
    if not hasattr(s, "cycle_mul") or s.cycle_mul == 1.0:
        return lambda t: None
    shift = s.warmup_t if s.warmup_prefix else 0
    tops = exact_restarts(s.t_initial, s.cycle_mul, n)
    top_shape = 0.5 * (1 - math.tanh(s.lb)) if isinstance(s, jt.TanhLRScheduler) else 1.0
    lrs = np.atleast_1d(np.asarray(s.lr, np.float64))

    def allowed(t):
        i = tops.get(t - shift)
        if i is None or t < s.warmup_t:
            return None
        if i >= s.cycle_limit:
            return np.full_like(lrs, s.lr_min)
        return s.lr_min + (lrs * s.cycle_decay**i - s.lr_min) * top_shape

    return allowed


def reference_rounding(s) -> float:
    """timm's own float64 rounding: its shapes (``1 - tanh(z)``, ``1 - t_curr / t_i``) are accurate to a few ulps of
    1, so its LRs to a few ulps of the schedule's peak, whatever the trajectory's largest LR (2.08e-7 for a tanh
    whose warm-up climbs to its value at t=2 and whose cycles end at t=3, where timm is 2.75e-17 off the exact
    value, 1.3e-10 of that largest LR; see test_reference_rounding_of_a_tiny_trajectory)."""
    peak = np.abs(np.concatenate([np.atleast_1d(np.asarray(s.lr, np.float64)),
                                  [getattr(s, "lr_min", 0.0), getattr(s, "warmup_lr_init", 0.0)]])).max()
    return 8 * float(np.finfo(np.float64).eps) * float(peak)


def check(s, n):
    if currently_in_test_context():  # also called from plain regression tests
        note(f"schedule: {s!r}  steps: {n}")
    ref = timm_trajectory(s, n)
    allowed = restart_tops(s, n)
    scale = float(np.max(np.abs(ref))) or 1.0
    for x64, tol in ((True, TOL64), (False, TOL32)):
        got = np.broadcast_to(jaxsched_trajectory(s, n, x64), ref.shape)
        assert np.all(np.isfinite(got)), f"non-finite values for {s!r}"
        tiny = reference_rounding(s) if x64 else float(np.finfo(np.float32).tiny)
        err = np.abs(got - ref).max(axis=1)
        for t in np.flatnonzero(err > tol * scale + tiny):
            expected = allowed(int(t))
            assert expected is not None, (
                f"{'x64' if x64 else 'float32'}: |jaxsched - timm| = {err[t]:.3g} > {tol:g} x {scale:.3g} at t={t}: "
                f"jaxsched {got[t].tolist()} vs timm {ref[t].tolist()}\n  schedule: {s!r}"
            )
            assert np.max(np.abs(got[t] - expected)) <= tol * scale + tiny, (t, got[t], expected, s)


# ----------------------------------------------------------------------------------------------------------
# strategies


def floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


lr_values = st.one_of(floats(1e-4, 10.0), st.sampled_from([0.1, 1.0]))
steps = st.integers(20, STEPS - 1)
#: Not within 1e-3 of 1 (but 1 itself): there timm's ``1 - cycle_mul`` cancels, its error passes 1e-10 of the LR
#: from 1 + 1e-4 (a poly with power 0.1 just before a cycle's end: 5.6e-10 at 1.00001) and at 1.0000000000000002
#: its cycle index jumps mid-cycle (test_cycle_mul_next_to_one).
muls = st.one_of(st.sampled_from([1.0, 1.0, 2.0, 3.0, 1.5, 1.1, 1.04]), floats(1.0 + 1e-3, 3.0))


@st.composite
def lrs(draw):
    g = draw(st.sampled_from([None, None, 2, 3]))
    return draw(lr_values) if g is None else tuple(draw(st.lists(lr_values, min_size=g, max_size=g)))


@st.composite
def common(draw, lr, prefix_default):
    low = min(lr) if isinstance(lr, tuple) else lr
    return dict(warmup_t=draw(st.integers(0, 20)), warmup_lr_init=draw(st.one_of(st.just(0.0), floats(0.0, low))),
                warmup_prefix=draw(st.booleans()) if draw(st.booleans()) else prefix_default,
                t_in_epochs=draw(st.booleans()))


@st.composite
def cycles(draw, lr):
    low = min(lr) if isinstance(lr, tuple) else lr
    return dict(t_initial=draw(st.integers(1, 80)), lr_min=draw(st.one_of(st.just(0.0), floats(0.0, low))),
                cycle_mul=draw(muls), cycle_decay=draw(floats(0.1, 1.0)), cycle_limit=draw(st.integers(0, 6)))


k_decays = st.one_of(st.just(1.0), floats(0.2, 3.0))


@st.composite
def cosine(draw):
    lr = draw(lrs())
    return jt.CosineLRScheduler(lr, **draw(cycles(lr)), **draw(common(lr, False)), k_decay=draw(k_decays)), \
        draw(steps)


@st.composite
def tanh(draw):
    lr = draw(lrs())
    lb = draw(floats(-10.0, 0.0))
    return jt.TanhLRScheduler(lr, lb=lb, ub=draw(floats(lb + 0.5, 8.0)), **draw(cycles(lr)),
                              **draw(common(lr, False))), draw(steps)


@st.composite
def poly(draw):
    lr = draw(lrs())
    return jt.PolyLRScheduler(lr, power=draw(st.one_of(st.just(0.5), floats(0.1, 4.0))), **draw(cycles(lr)),
                              **draw(common(lr, False)), k_decay=draw(k_decays)), draw(steps)


@st.composite
def step(draw):
    lr = draw(lrs())
    return jt.StepLRScheduler(lr, decay_t=draw(st.integers(1, 60)), decay_rate=draw(floats(0.05, 1.0)),
                              **draw(common(lr, True))), draw(steps)


@st.composite
def multistep(draw):
    lr = draw(lrs())
    n = draw(steps)
    ms = sorted(draw(st.lists(st.integers(0, n), max_size=5)))
    return jt.MultiStepLRScheduler(lr, decay_t=ms, decay_rate=draw(floats(0.05, 1.0)), **draw(common(lr, True))), n


@st.composite
def wsd(draw):
    lr = draw(lrs())
    low = min(lr) if isinstance(lr, tuple) else lr
    T = draw(st.integers(1, 150))
    stable_fn = draw(st.sampled_from(["constant", "rsqrt", "power"]))
    warmup_t = draw(st.integers(0, 20))
    timescale = draw(st.one_of(st.none(), floats(0.5, 50.0))) if warmup_t else draw(floats(0.5, 50.0))
    return jt.WSDLRScheduler(
        lr, t_initial=T, decay_t=draw(st.integers(1, T)), lr_min=draw(st.one_of(st.just(0.0), floats(0.0, low))),
        stable_fn=stable_fn, stable_timescale=timescale, stable_power=draw(floats(0.1, 2.0)),
        decay_fn=draw(st.sampled_from(["linear", "1-sqrt", "cosine", "power", "exp"])),
        decay_power=draw(floats(0.2, 3.0)), decay_ratio=draw(floats(0.01, 0.9)), warmup_t=warmup_t,
        warmup_lr_init=draw(st.one_of(st.just(0.0), floats(0.0, low))), t_in_epochs=draw(st.booleans())), \
        draw(steps)


CASES = {"CosineLRScheduler": cosine, "TanhLRScheduler": tanh, "PolyLRScheduler": poly,
         "StepLRScheduler": step, "MultiStepLRScheduler": multistep, "WSDLRScheduler": wsd}


@pytest.mark.parametrize("name", list(CASES))
@given(data=st.data())
@settings(max_examples=EXAMPLES)
def test_parity_with_timm(name, data):
    s, n = data.draw(CASES[name](), label="case")
    check(s, n)


@given(lr=lrs(), d=floats(0.05, 30.0), rate=floats(0.05, 1.0), n=steps)
@settings(max_examples=EXAMPLES)
def test_step_with_float_decay_t_x64(lr, d, rate, n):
    """A float ``decay_t`` (timm's EfficientNet recipe): Python's ``t // decay_t``, exact in x64."""
    s = jt.StepLRScheduler(lr, decay_t=d, decay_rate=rate, t_in_epochs=False)
    note(repr(s))
    ref = timm_trajectory(s, n)
    got = np.broadcast_to(jaxsched_trajectory(s, n, True), ref.shape)
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL64 * float(np.max(ref)))


def test_step_float_decay_t_follows_python_floor_division():
    """``3 // 0.1 == 29.0`` in Python (0.1 is slightly above 1/10): the LR decays 29 times by t = 3, not 30."""
    s = jt.StepLRScheduler(1.0, decay_t=0.1, decay_rate=0.5)
    with jax.enable_x64(True):
        assert timm_trajectory(s, 3)[3, 0] == 0.5**29
        assert float(s(3)) == pytest.approx(0.5**29, rel=1e-12)


# ----------------------------------------------------------------------------------------------------------
# the plateau


def plateau_trajectories(p, metrics, x64):
    opt = optimizer(p.lr)
    sched = timm_object(p, opt)
    ref = []
    for epoch, m in enumerate(metrics, start=1):
        sched.step(epoch, m)
        ref.append([g["lr"] for g in opt.param_groups])
    with jax.enable_x64(x64):
        state = p.init()
        got = []
        update = jax.jit(lambda st, v: p.update(st, value=v))
        for m in metrics:
            state = update(state, m)
            got.append(np.atleast_1d(np.asarray(p(state), np.float64)))
    return np.asarray(got), np.asarray(ref, np.float64)


@given(lr=lrs(), data=st.data())
@settings(max_examples=2 * EXAMPLES)
def test_plateau_parity(lr, data):
    low = min(lr) if isinstance(lr, tuple) else lr
    p = jt.PlateauLRScheduler(
        lr, decay_rate=data.draw(st.sampled_from([0.1, 0.5, 0.9])), patience_t=data.draw(st.integers(0, 4)),
        threshold=data.draw(st.sampled_from([0.0, 1e-4, 0.05])), cooldown_t=data.draw(st.integers(0, 3)),
        warmup_t=data.draw(st.integers(0, 4)), warmup_lr_init=data.draw(st.sampled_from([0.0, low / 10])),
        lr_min=data.draw(st.sampled_from([0.0, low / 100])), mode=data.draw(st.sampled_from(["min", "max"])))
    # metrics on a coarse grid: exact ties and clear improvements, no decisions within float32 rounding
    metrics = data.draw(st.lists(st.integers(0, 8).map(lambda k: k / 4), min_size=5, max_size=40))
    note(f"{p!r} metrics={metrics}")
    for x64, tol in ((True, TOL64), (False, TOL32)):
        got, ref = plateau_trajectories(p, metrics, x64)
        np.testing.assert_allclose(np.broadcast_to(got, ref.shape), ref, rtol=0, atol=tol * float(np.max(ref)))


# ----------------------------------------------------------------------------------------------------------
# coverage and the refusals


def test_every_timm_scheduler_is_covered():
    """timm 1.0's seven schedulers have a class, a catalogue entry and a strategy."""
    assert set(jt.CLASSES) == set(CASES) | {"PlateauLRScheduler"}
    for name, cls in jt.CLASSES.items():
        assert CATALOGUE[f"timm.scheduler.{name}"] is cls
        assert REGISTRY[f"timm.{name}"] is cls
        assert hasattr(ts, name)
    version = timm_version()
    assert version is not None and version.startswith("1.0.")


def test_timm_restart_index_is_short_where_documented():
    """timm's float64 floor(log(...)) at cycle_mul=3 lands one cycle short at t = 121 (cycle 5's start)."""
    s = jt.CosineLRScheduler(1.0, t_initial=1, cycle_mul=3.0, cycle_limit=10)
    ref = timm_trajectory(s, 130)[:, 0]
    got = jaxsched_trajectory(s, 130, True)[:, 0]
    assert ref[121] < 1e-12 and got[121] == pytest.approx(1.0)
    mask = np.arange(131) != 121
    np.testing.assert_allclose(got[mask], ref[mask], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [jt.CosineLRScheduler, jt.TanhLRScheduler, jt.PolyLRScheduler])
@pytest.mark.parametrize("t_initial, cycle_mul, t", [(20, 1.9531939083047116, 20), (6, 2.73061985554328, 6),
                                                     (56, 1.3734590565111102, 56), (25, 1.04, 51), (20, 1.1, 42)])
def test_restart_at_an_integer_start_is_exact(cls, t_initial, cycle_mul, t):
    """A cycle that starts exactly at step ``t``, as timm's own formula finds. The float64 table start ``t_initial *
    (cycle_mul - 1) / (cycle_mul - 1)`` rounded above ``t_initial`` (20.000000000000004; about 5% of random
    multipliers in [1, 3]) and ``25 * (1.04**2 - 1) / 0.04`` to 51.00000000000002, and the ceil put step ``t`` at
    the end of the previous cycle. The starts are exact rationals of ``cycle_mul`` as written: the double 1.1 is
    1.1000000000000000888, whose own value would start cycle 2 1.8e-15 after step 42."""
    s = cls(1.0, t_initial=t_initial, cycle_mul=cycle_mul, cycle_limit=4)
    n = min(t + 2 * t_initial, STEPS - 1)
    check(s, n)
    ref = timm_trajectory(s, t)[t, 0]
    with jax.enable_x64(True):
        assert float(s(t)) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("s", [
    jt.PolyLRScheduler(1.0, t_initial=1, power=0.5, cycle_mul=1.00001, cycle_limit=2, t_in_epochs=False),
    jt.PolyLRScheduler(1.0, t_initial=1, power=0.1, cycle_mul=1.00001, cycle_limit=2),
    jt.PolyLRScheduler(1.0, t_initial=7, power=0.1, cycle_mul=1.001, cycle_limit=5, k_decay=0.5),
    jt.PolyLRScheduler(1.0, t_initial=50, power=0.1, cycle_mul=1.3001, cycle_limit=5, k_decay=2.0),
    jt.TanhLRScheduler(1.0, t_initial=1, lb=0.0, ub=4.0, cycle_mul=1.5, cycle_limit=2, warmup_t=2, t_in_epochs=False),
], ids=repr)
def test_float32_near_a_cycle_end(s):
    """float32 where the shape cancels (drawn by the thorough profile, the first and last). A power below 1 magnifies
    the relative error of ``1 - t_curr / t_i`` just before a fractional cycle start (2.15e-6 of the LR for the
    first, 4.3e-5 with power 0.1, 1.5e-5 for t_initial=50, cycle_mul=1.3001 at t=115): it is now what is left of
    the cycle, from the exact table (``cycle_left``). Tanh's ``(1 - tanh(z)) / 2`` lost 1.5e-6 of the largest LR
    at z = 2.7: it is ``sigmoid(-2 z)``."""
    check(s, 200)


def test_reference_rounding_of_a_tiny_trajectory():
    """The whole trajectory stays below 2.1e-7 (the warm-up climbs to the tanh's value at t=2, ``cycle_limit=2``
    ends the cycles at t=3). timm's ``0.5 * (1 - tanh(z))`` at z = 7.69 is 2.75e-17 below the exact 2.0823145888e-7
    (cancellation next to 1), which jaxsched gives; that is 1.3e-10 of the largest LR, so the x64 comparison allows
    timm's own rounding (a few ulps of the peak LR, 1.8e-15 here) as it allows float32's smallest normal."""
    s = jt.TanhLRScheduler(1.0, t_initial=1, lb=0.0, ub=8.0, cycle_mul=1.04, cycle_limit=2, warmup_t=2,
                           t_in_epochs=False)
    check(s, 20)
    with jax.enable_x64(True):
        assert abs(float(s(2)) - 2.0823145888113724e-07) < 1e-21  # an ulp or two
    assert abs(timm_trajectory(s, 2)[2, 0] - 2.0823145888113724e-07) > 2e-17


def test_cycle_mul_next_to_one():
    """``cycle_mul=1.0000000000000002``: timm's ``1 - t / t_initial * (1 - cycle_mul)`` rounds to 1 or to
    1.0000000000000002, so its cycle index jumps in the middle of a cycle and ``t_curr`` goes negative (t_initial=20,
    t=11: timm 0.578, the LR of t=9). jaxsched is exact there (a deliberate difference, README): within a cycle it
    is the cycle_mul=1 schedule, and each cycle from the third starts just after its multiple of t_initial."""
    m = 1.0000000000000002
    s = jt.CosineLRScheduler(1.0, t_initial=20, cycle_mul=m, cycle_limit=6)
    ref = timm_trajectory(s, 130)[:, 0]
    with jax.enable_x64(True):
        got = np.asarray(s(jnp.arange(131)), np.float64)
        equal = np.asarray(jt.CosineLRScheduler(1.0, t_initial=20, cycle_limit=6)(jnp.arange(131)), np.float64)
    assert abs(ref[11] - 0.5 * (1 + math.cos(math.pi * 9 / 20))) < 1e-12  # timm: the LR of t = 9
    assert abs(got[11] - 0.5 * (1 + math.cos(math.pi * 11 / 20))) < 1e-12
    late = np.asarray([t for t in range(131) if t % 20 == 0 and t >= 40])  # the last step of the previous cycle
    np.testing.assert_allclose(np.delete(got, late), np.delete(equal, late), rtol=0, atol=1e-12)
    assert np.all(got[late] < 1e-12)


def test_noise_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="noise_range_t must be None.*torch.Generator"):
        jt.CosineLRScheduler(0.1, t_initial=10, noise_range_t=5)
    opt = optimizer(0.1)
    assert ts is not None
    with pytest.raises(ValueError, match="noise_range_t=.*torch.Generator"):
        from_timm(ts.CosineLRScheduler(opt, t_initial=10, noise_range_t=(2, 8)))


def test_harness_detects_a_wrong_schedule():
    s = jt.CosineLRScheduler(0.1, t_initial=50, warmup_t=5, warmup_lr_init=0.01)
    wrong = jt.CosineLRScheduler(0.1, t_initial=50, warmup_t=5, warmup_lr_init=0.01, warmup_prefix=True)
    ref = timm_trajectory(s, 60)
    got = jaxsched_trajectory(wrong, 60, True)
    assert np.max(np.abs(got - ref)) > 1e-3
